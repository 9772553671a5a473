"""BG/NBD + Gamma-Gamma on the Online Retail file: fit at a cutoff, judge the next 90 days.

    python experiments/2026-11-29-bgnbd/bgnbd.py [--data PATH] [--bootstrap 1000] [--json OUT]

Fits ``segmentlab.lifetime.CustomerValue`` on the history before the cutoff 90 days before the
data end (2011-09-11 on the real file) and scores every customer with a purchase before it:
ROC AUC of ``p_purchase_90d`` for "buys in [cutoff, cutoff + 90)" against recency alone and the
project's RFM logistic regression (trained one horizon earlier), MAE of
``expected_spend_90d`` against the naive "next 90 days = last 90 days", and predicted / actual
totals. 95 % intervals come from a paired bootstrap over customers. The models are also fitted
one horizon earlier (2011-06-13), the project's training cutoff, to see whether the estimates
are stable.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from time import perf_counter

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.lifetime.bgnbd import BGNBDModel
from segmentlab.lifetime.gamma_gamma import GammaGammaModel
from segmentlab.lifetime.summary import data_end, rfm_summary
from segmentlab.lifetime.value import CustomerValue
from segmentlab.prediction.windows import (
    FUTURE_SPEND,
    WILL_BUY,
    cutoff_frame,
    last_period_spend,
    rfm_baseline_features,
)
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, IS_RETURN

ROOT = Path(__file__).resolve().parents[2]
REAL_FILE = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"
HORIZON = 90


def timed_fit(transactions: pd.DataFrame, cutoff: pd.Timestamp,
              repeats: int) -> tuple[CustomerValue, dict[str, float]]:
    """The fitted model and median seconds of ``repeats`` runs: the whole fit and its parts."""
    runs = []
    for _ in range(repeats):
        start = perf_counter()
        model = CustomerValue(cutoff=cutoff, horizon_days=HORIZON).fit(transactions)
        whole = perf_counter() - start
        start = perf_counter()
        summary = rfm_summary(transactions, cutoff)
        summary_s = perf_counter() - start
        start = perf_counter()
        BGNBDModel().fit(summary)
        bgnbd_s = perf_counter() - start
        start = perf_counter()
        GammaGammaModel().fit(summary)
        runs.append({"fit_seconds": whole, "summary_seconds": summary_s, "bgnbd_seconds": bgnbd_s,
                     "gamma_gamma_seconds": perf_counter() - start})
    return model, pd.DataFrame(runs).median().to_dict()


def purchase_days_in_horizon(transactions: pd.DataFrame, cutoff: pd.Timestamp,
                             customers: pd.Index) -> pd.Series:
    """Distinct purchase days per customer in ``[cutoff, cutoff + HORIZON)``: what BG/NBD counts."""
    dates = transactions[INVOICE_DATE]
    later = transactions[(dates >= cutoff) & (dates < cutoff + pd.Timedelta(days=HORIZON))
                         & ~transactions[IS_RETURN]]
    days = later.assign(day=later[INVOICE_DATE].dt.normalize()).groupby(CUSTOMER_ID)["day"].nunique()
    return days.reindex(customers, fill_value=0)


def rfm_logreg_scores(transactions: pd.DataFrame, train_cutoff: pd.Timestamp,
                      eval_cutoff: pd.Timestamp) -> pd.Series:
    """``predict/rfm_logreg_roc_auc``'s baseline: logistic regression on log RFM, trained one
    horizon before the evaluation cutoff, as ``segmentlab.prediction`` does."""
    history, target = cutoff_frame(transactions, train_cutoff, HORIZON)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(rfm_baseline_features(history, train_cutoff).reindex(target.index), target[WILL_BUY])
    history, target = cutoff_frame(transactions, eval_cutoff, HORIZON)
    features = rfm_baseline_features(history, eval_cutoff).reindex(target.index)
    return pd.Series(model.predict_proba(features)[:, 1], index=target.index)


def scores_and_baselines(transactions: pd.DataFrame, model: CustomerValue,
                         train_cutoff: pd.Timestamp) -> pd.DataFrame:
    """One row per customer: model outputs, baselines and what happened."""
    cutoff = model.cutoff_
    history, target = cutoff_frame(transactions, cutoff, HORIZON)
    scores = model.transform(transactions)
    if not scores.index.equals(target.index):
        raise RuntimeError("CustomerValue and cutoff_frame disagree on the customers to score")
    last = history[~history[IS_RETURN]].groupby(CUSTOMER_ID)[INVOICE_DATE].max().dt.normalize()
    return scores.assign(
        days_since_last=(cutoff.normalize() - last.reindex(scores.index)).dt.days.astype(float),
        naive_spend=last_period_spend(history, cutoff, HORIZON).reindex(scores.index, fill_value=0.0),
        rfm_logreg=rfm_logreg_scores(transactions, train_cutoff, cutoff),
        will_buy=target[WILL_BUY], future_spend=target[FUTURE_SPEND],
        future_days=purchase_days_in_horizon(transactions, cutoff, scores.index))


def metrics(frame: pd.DataFrame) -> dict[str, float]:
    y, spend = frame["will_buy"].to_numpy(), frame["future_spend"].to_numpy()
    auc_model = roc_auc_score(y, frame[f"p_purchase_{HORIZON}d"])
    auc_recency = roc_auc_score(y, -frame["days_since_last"])
    mae_model = np.abs(frame[f"expected_spend_{HORIZON}d"] - spend).mean()
    mae_naive = np.abs(frame["naive_spend"] - spend).mean()
    return {"auc_p_purchase": auc_model, "auc_recency": auc_recency,
            "auc_gain": auc_model - auc_recency,
            "auc_rfm_logreg": roc_auc_score(y, frame["rfm_logreg"]),
            "auc_gain_vs_rfm_logreg": auc_model - roc_auc_score(y, frame["rfm_logreg"]),
            "auc_expected_purchases": roc_auc_score(y, frame[f"expected_purchases_{HORIZON}d"]),
            "mae_model": mae_model, "mae_naive": mae_naive, "mae_gain": mae_naive - mae_model,
            "total_ratio_model": frame[f"expected_spend_{HORIZON}d"].sum() / spend.sum(),
            "total_ratio_naive": frame["naive_spend"].sum() / spend.sum(),
            "purchase_days_ratio": frame[f"expected_purchases_{HORIZON}d"].sum()
            / frame["future_days"].sum()}


def bootstrap(frame: pd.DataFrame, n: int, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals of every metric, resampling customers with replacement."""
    rng = np.random.default_rng(seed)
    draws = [metrics(frame.iloc[rng.integers(0, len(frame), len(frame))]) for _ in range(n)]
    table = pd.DataFrame(draws)
    return {k: (float(table[k].quantile(0.025)), float(table[k].quantile(0.975))) for k in table}


def describe_fit(model: CustomerValue, seconds: dict[str, float]) -> dict:
    bg, gg = model.bgnbd_, model.gamma_gamma_
    return {"cutoff": str(model.cutoff_.date()), **seconds, "status": model.status_,
            "customers": model.n_customers_, "repeat_customers": bg.n_repeat_customers_,
            "excluded": model.excluded_, "bgnbd": bg.params_, "bgnbd_se": bg.standard_errors_,
            "bgnbd_loglik": bg.log_likelihood_, "gamma_gamma": gg.params_,
            "gamma_gamma_se": gg.standard_errors_, "spend_population_mean": gg.population_mean_,
            "gamma_gamma_excluded": gg.n_excluded_}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REAL_FILE))
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5, help="fits timed per cutoff")
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args()
    start = perf_counter()
    transactions = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(),
                                cache_dir=ROOT / "outputs" / "cache").transactions
    cutoff = data_end(transactions) - pd.Timedelta(days=HORIZON)
    fits = {}
    for name, at in {"eval": cutoff, "train": cutoff - pd.Timedelta(days=HORIZON)}.items():
        model, seconds = timed_fit(transactions, at, args.repeats)
        fits[name] = (model, describe_fit(model, seconds))
    frame = scores_and_baselines(transactions, fits["eval"][0], fits["train"][0].cutoff_)
    point, interval = metrics(frame), bootstrap(frame, args.bootstrap)
    result = {"fits": {k: v[1] for k, v in fits.items()}, "n_customers": len(frame),
              "base_rate": float(frame["will_buy"].mean()),
              "metrics": {k: {"value": float(v), "ci95": interval[k]} for k, v in point.items()},
              "seconds_total": perf_counter() - start}
    print(json.dumps(result, indent=2, default=float))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
