"""Shared fixtures: tiny data built in code, and the real configs composed for tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import segmentlab.config  # noqa: F401  (registers the typed settings with Hydra)
from segmentlab.schema import (
    AMOUNT,
    CLEAN_COLUMNS,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    QUANTITY,
    STOCK_CODE,
    UNIT_PRICE,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

#: Overrides that make a composed config quick and side-effect free.
FAST = ["data=synthetic", "data.n_customers=150", "data.n_lines=6000", "tracking=none",
        "evaluation.stability_resamples=2"]


@pytest.fixture(autouse=True)
def _headless_plots(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


def compose_config(*overrides: str, cache_dir: Path | None = None):
    """The project's real config tree with ``FAST`` and the given overrides applied."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        extra = [f"cache_dir={cache_dir}" if cache_dir else "cache_dir=null"]
        return compose("config", overrides=[*FAST, *extra, *overrides])


@pytest.fixture
def cfg(tmp_path):
    return compose_config(cache_dir=tmp_path / "cache")


@pytest.fixture
def transactions() -> pd.DataFrame:
    """About 60 customers in three planted behaviours, as cleaned invoice lines."""
    rng = np.random.default_rng(0)
    rows = []
    products = {"bag": ["JUMBO BAG RED", "LUNCH BAG PINK", "SHOPPER BAG"],
                "cake": ["CAKE CASES PACK", "CAKESTAND 3 TIER", "BAKING SET"],
                "light": ["T-LIGHT HOLDER", "CANDLE POT", "LANTERN WHITE"]}
    kinds = [("bag", 20, 12, 2), ("cake", 3, 2, 200), ("light", 1, 3, 30)]  # invoices, lines, qty
    invoice = 500000
    for c, (family, n_inv, n_lines, qty) in enumerate(kind for kind in kinds for _ in range(20)):
        for _ in range(max(1, int(rng.poisson(n_inv)))):
            invoice += 1
            date = pd.Timestamp("2011-01-01") + pd.Timedelta(hours=int(rng.integers(0, 24 * 330)))
            for _ in range(max(1, int(rng.poisson(n_lines)))):
                k = int(rng.integers(0, 3))
                q = max(1, int(rng.poisson(qty)))
                rows.append((str(invoice), f"{family[:2].upper()}{k}", products[family][k], q, date,
                             1.5 + k, 12000 + c, "United Kingdom" if c % 4 else "France", False))
    frame = pd.DataFrame(rows, columns=[c for c in CLEAN_COLUMNS if c != "amount"])
    frame.insert(8, "amount", frame["quantity"] * frame["unit_price"])
    returned = frame.iloc[::15].copy()
    returned["invoice_no"] = "C" + returned["invoice_no"]
    returned["quantity"] = -1
    returned["amount"] = returned["quantity"] * returned["unit_price"]
    returned["is_return"] = True
    frame = pd.concat([frame, returned], ignore_index=True)
    return frame[CLEAN_COLUMNS].sort_values("invoice_date", kind="stable").reset_index(drop=True)


def real_data_path() -> str | None:
    path = os.environ.get("SEGMENTLAB_DATA")
    return path if path and Path(path).exists() else None


def clean_lines(rows: list[tuple]) -> pd.DataFrame:
    """Cleaned frame from (invoice, stock, quantity, date, price, customer, country) tuples."""
    frame = pd.DataFrame(rows, columns=[INVOICE_NO, STOCK_CODE, QUANTITY, INVOICE_DATE,
                                        UNIT_PRICE, CUSTOMER_ID, COUNTRY])
    frame[INVOICE_DATE] = pd.to_datetime(frame[INVOICE_DATE], format="ISO8601")
    frame[QUANTITY] = frame[QUANTITY].astype("int64")
    frame[UNIT_PRICE] = frame[UNIT_PRICE].astype(float)
    frame[CUSTOMER_ID] = frame[CUSTOMER_ID].astype("int64")
    frame[DESCRIPTION] = "ITEM"
    frame[AMOUNT] = frame[QUANTITY] * frame[UNIT_PRICE]
    frame[IS_RETURN] = frame[INVOICE_NO].str.startswith("C")
    return frame[CLEAN_COLUMNS]


def run_experiment(cfg, choices: dict | None = None, overrides: list | None = None) -> float:
    """What ``run.py`` does with a composed config: assemble the experiment and run it."""
    from segmentlab.study.experiment import assemble
    from segmentlab.study.runner import run

    return run(assemble(cfg, choices or {}, overrides or []))
