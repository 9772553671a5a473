"""Cleaning raw invoice lines into purchases and returns, with a ledger of every dropped row.

Steps run in this fixed order; a row is counted once, under the first step that removes it:

1. ``missing_customer``   no customer id (guest checkouts cannot be segmented)
2. ``bad_debt``           invoice number starting "A" or description "Adjust bad debt"
3. ``non_product_code``   stock code in ``non_product_codes`` (postage, fees, manual lines...)
4. ``non_positive_price`` unit price <= 0 (free samples, stock write-offs)
5. ``wrong_quantity_sign`` quantity <= 0 on an ordinary invoice (stock adjustments), or
                          >= 0 on a cancellation, whose lines must be negative
6. ``duplicate``          exact repeat of an earlier kept line
7. ``quantity_outlier``   absolute quantity above ``max_quantity``
8. ``cancellation_kept_as_return`` or ``cancellation_dropped``: remaining "C" invoice lines

Only enabled steps appear in the ledger. Step 5 always runs; stock codes are upper-cased (when
asked) before any step, so ``85123a`` and ``85123A`` are one product everywhere downstream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from segmentlab.schema import (
    CLEAN_COLUMNS,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    QUANTITY,
    RAW_COLUMNS,
    STOCK_CODE,
    UNIT_PRICE,
    CleaningLedger,
    DataError,
)

#: Stock codes in the Online Retail data that are charges, fees or accounting lines rather
#: than products (matched ignoring case). Row counts are from the full file.
NON_PRODUCT_CODES = (
    "POST",          # postage (1,256 lines)
    "DOT",           # dotcom postage (710)
    "C2",            # carriage (144)
    "M",             # manual price line, also "m" (572)
    "D",             # discount (77)
    "S",             # samples (63)
    "B",             # adjust bad debt (3)
    "BANK CHARGES",  # (37)
    "AMAZONFEE",     # (34)
    "CRUK",          # charity commission (16)
    "PADS",          # cushion pads sold at 0.001 as a filler line (4)
    # Gift vouchers are payment, not merchandise (34 lines in total).
    "GIFT_0001_10", "GIFT_0001_20", "GIFT_0001_30", "GIFT_0001_40", "GIFT_0001_50",
)
# "DCGS..." codes are kept: they are real products sold through the dotcom channel.

_BAD_DEBT = "adjust bad debt"


class TransactionCleaner(BaseEstimator):
    """Configurable cleaning of raw invoice lines, every step a switch.

    Parameters
    ----------
    drop_missing_customer : bool
        Drop lines without a customer id. When False and some remain, ``customer_id`` is
        returned as nullable ``Int64`` instead of ``int64``.
    drop_bad_debt : bool
        Drop the "Adjust bad debt" accounting lines (invoice numbers starting with "A").
    non_product_codes : sequence of str
        Stock codes to drop, compared ignoring case; empty disables the step.
    drop_duplicates : bool
        Drop exact repeats of an earlier line (all raw columns equal).
    max_quantity : int or None
        Drop lines whose absolute quantity exceeds this. A cancelled order of that size goes
        with its cancellation, which has the same absolute quantity. The default removes the
        two known errors of the Online Retail data (80,995 and 74,215 units, each cancelled
        minutes later); the next largest order with a price is 4,800 units. None disables it.
    keep_returns : bool
        Keep cancellation lines ("C" invoices) as returns with ``is_return`` True;
        when False they are dropped.
    drop_non_positive_price : bool
        Drop lines whose unit price is zero or negative.
    uppercase_stock_codes : bool
        Upper-case stock codes first: the data writes some codes in two cases.
    """

    def __init__(self, drop_missing_customer: bool = True, drop_bad_debt: bool = True,
                 non_product_codes: Sequence[str] = NON_PRODUCT_CODES,
                 drop_duplicates: bool = True, max_quantity: int | None = 10_000,
                 keep_returns: bool = True, drop_non_positive_price: bool = True,
                 uppercase_stock_codes: bool = True):
        self.drop_missing_customer = drop_missing_customer
        self.drop_bad_debt = drop_bad_debt
        self.non_product_codes = non_product_codes
        self.drop_duplicates = drop_duplicates
        self.max_quantity = max_quantity
        self.keep_returns = keep_returns
        self.drop_non_positive_price = drop_non_positive_price
        self.uppercase_stock_codes = uppercase_stock_codes

    def clean(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, CleaningLedger]:
        """Drop unusable lines and set cancellations aside as returns.

        Parameters
        ----------
        raw : DataFrame
            ``RAW_COLUMNS``, as a source's ``read()`` returns them.

        Returns
        -------
        transactions : DataFrame
            ``CLEAN_COLUMNS``, ordered by ``invoice_date`` (stable), with a fresh index.
        ledger : CleaningLedger
            Rows in, purchases kept, and rows per step (returns included).
        """
        missing = [c for c in RAW_COLUMNS if c not in raw.columns]
        if missing:
            raise DataError(f"cannot clean: missing column(s) {', '.join(missing)}")
        frame = raw[RAW_COLUMNS]
        if self.uppercase_stock_codes:
            frame = frame.assign(**{STOCK_CODE: frame[STOCK_CODE].str.upper()})
        cancel = _flag(frame[INVOICE_NO].str.startswith("C"))
        keep = np.ones(len(frame), dtype=bool)
        dropped: dict[str, int] = {}
        for name, rule in self._steps(frame, cancel):
            hit = keep & rule(keep)
            dropped[name] = int(hit.sum())
            keep &= ~hit
        returns = keep & cancel
        dropped["cancellation_kept_as_return" if self.keep_returns
                else "cancellation_dropped"] = int(returns.sum())
        ledger = CleaningLedger(len(frame), int((keep & ~cancel).sum()), dropped)
        if not self.keep_returns:
            keep &= ~cancel
        return _finish(frame[keep], cancel[keep]), ledger

    def _steps(self, frame: pd.DataFrame, cancel: np.ndarray) -> list:
        """(ledger name, rule) pairs in run order; a rule maps the kept mask to a drop mask."""
        quantity = frame[QUANTITY].to_numpy(dtype="float64", na_value=np.nan)
        price = frame[UNIT_PRICE].to_numpy(dtype="float64", na_value=np.nan)
        steps = []
        if self.drop_missing_customer:
            steps.append(("missing_customer", lambda _: _flag(frame[CUSTOMER_ID].isna())))
        if self.drop_bad_debt:
            steps.append(("bad_debt", lambda _: _flag(
                frame[INVOICE_NO].str.startswith("A")
                | (frame[DESCRIPTION].str.strip().str.lower() == _BAD_DEBT))))
        if len(self.non_product_codes) > 0:
            codes = {str(c).upper() for c in self.non_product_codes}
            steps.append(("non_product_code",
                          lambda _: _flag(frame[STOCK_CODE].str.upper().isin(codes))))
        if self.drop_non_positive_price:
            # "not > 0" so that a missing price is dropped too.
            steps.append(("non_positive_price", lambda _: ~(price > 0)))
        steps.append(("wrong_quantity_sign",
                      lambda _: np.where(cancel, quantity >= 0, quantity <= 0)))
        if self.drop_duplicates:
            steps.append(("duplicate", lambda keep: _repeats(frame, keep)))
        if self.max_quantity is not None:
            steps.append(("quantity_outlier", lambda _: np.abs(quantity) > self.max_quantity))
        return steps


def _flag(values: pd.Series) -> np.ndarray:
    """Boolean mask with missing values as False."""
    return values.to_numpy(dtype=bool, na_value=False)


def _repeats(frame: pd.DataFrame, keep: np.ndarray) -> np.ndarray:
    """Lines that repeat an earlier kept line exactly."""
    repeats = np.zeros(len(frame), dtype=bool)
    repeats[keep] = frame[keep].duplicated(keep="first").to_numpy()
    return repeats


def _finish(kept: pd.DataFrame, is_return: np.ndarray) -> pd.DataFrame:
    """Add ``is_return``, fix the id dtype and order by date so results are reproducible."""
    out = kept.assign(**{IS_RETURN: is_return})
    if not out[CUSTOMER_ID].hasnans:
        out[CUSTOMER_ID] = out[CUSTOMER_ID].astype("int64")
    out = out.sort_values(INVOICE_DATE, kind="stable", ignore_index=True)
    return out[CLEAN_COLUMNS]
