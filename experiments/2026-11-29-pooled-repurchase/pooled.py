"""Pooled training windows for 90-day repurchase: which predictors, model and windows to default to?

    python experiments/2026-11-29-pooled-repurchase/pooled.py [--data PATH] [--json OUT] [--boot N]

Protocol (the one ``predict/roc_auc`` uses): the evaluation cutoff is ``data end - 90 days``
(2011-09-11 on the real file), scored on every customer with a purchase before it. Training rows
come from cutoffs every 7 days from the first with ``MIN_HISTORY`` days of history up to
``eval - 90 days``, so every training label ends on or before the evaluation cutoff. "single"
trains on the last of them only (what segmentlab does today); "every_14" and "every_7" stack the
cutoffs 14 or 7 days apart, counting back from the last.

The default is chosen on validation windows that end before the evaluation cutoff: scored at
``eval - 90 - 14k`` days (k = 0, 1, 2) and stacked, each trained on the regime's cutoffs whose
labels end by then. Starting from today's default, the regime, then the model, then the
feature set change only if the paired validation gain's 95 % customer-bootstrap interval is
above 0 (``choose``). Evaluation numbers come with a customer bootstrap (95 %) and the paired
gain over RFM-logreg, the project's baseline (``predict/rfm_logreg_roc_auc``: logistic
regression on log recency, frequency, monetary at the single training cutoff).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from time import perf_counter

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentlab.customers import snapshot_date as data_end
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.prediction.calibration import expected_calibration_error, reliability_table
from segmentlab.prediction.estimators import scaled_logistic_regression
from segmentlab.prediction.pooling import CUTOFF, pooled_frame
from segmentlab.prediction.segments import SegmentEncoder
from segmentlab.prediction.uncertainty import bootstrap_auc
from segmentlab.prediction.windows import WILL_BUY, train_cutoffs
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE
from segmentlab.study.experiment import assemble

ROOT = Path(__file__).resolve().parents[2]
REAL_FILE = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"
HORIZON, MIN_HISTORY, SEED = 90, 60, 42
VALIDATION_STEPS = (0, 14, 28)  # days before eval - horizon where validation windows are scored

SETS = {  # column prefixes; "segment" is the matched k-means segment, one-hot
    "rfm_baseline": ["rfm_baseline__"],
    "rfm+behaviour": ["rfm__", "behaviour__"],
    "rfm+behaviour+segment": ["rfm__", "behaviour__", "segment_"],
    "activity": ["activity__"],
    "rfm+activity": ["rfm__", "activity__"],
    "rfm+behaviour+activity": ["rfm__", "behaviour__", "activity__"],
    "rfm+behaviour+activity+segment": ["rfm__", "behaviour__", "activity__", "segment_"],
}
HGB = HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=200,
                                     random_state=0)
MODELS = {
    "logreg": scaled_logistic_regression(max_iter=3000),
    "hist_gradient_boosting": HGB,
    "average": VotingClassifier([("logreg", scaled_logistic_regression(max_iter=3000)),
                                 ("hgb", HGB)], voting="soft"),
}
REGIMES = {"single": None, "every_14": 14, "every_7": 7}
# The project's RFM-logreg baseline, exactly as prediction.py fits it.
RFM_LOGREG = make_pipeline(StandardScaler(), LogisticRegression())
DEFAULT = ("rfm+behaviour+segment", "logreg", "single")  # segmentlab's default today


def feature_sets(names: list[str]):
    """The named feature sets as configured in ``configs/features/``, composed by Hydra."""
    overrides = [f"seed={SEED}", f"features@prediction.features=[{','.join(names)}]", "tracking=none"]
    config_dir = Path(__file__).resolve().parents[2] / "configs"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return assemble(compose("config", overrides=overrides)).prediction_features()


def build_frames(transactions: pd.DataFrame, population: str = "active", active_days: int = 365):
    """Pooled training frame (every 7 days) and evaluation frame, segments added to both."""
    eval_cutoff = data_end(transactions) - pd.Timedelta(days=HORIZON)
    cutoffs = train_cutoffs(transactions[INVOICE_DATE].min(), eval_cutoff, HORIZON, every_days=7,
                            min_history_days=MIN_HISTORY)
    union = feature_sets(["rfm", "behaviour", "activity"])
    start = perf_counter()
    train = pooled_frame(transactions, lambda: clone(union), cutoffs, HORIZON, population,
                         active_days, labels_before=eval_cutoff)
    seconds = perf_counter() - start
    test = pooled_frame(transactions, lambda: clone(union), [eval_cutoff], HORIZON, population,
                        active_days)
    # A column the training rows lack (a country in the eval window's top list only) is
    # dropped and a missing one is 0, as RepurchaseModel.encode does when it scores.
    aligned = test.frame.reindex(columns=train.frame.columns, fill_value=0.0)
    frames = add_segments(train.frame, aligned, cutoffs[-1], train.feature_columns)
    return (*frames, cutoffs, eval_cutoff, train.counts, test.counts, seconds)


def add_segments(train: pd.DataFrame, test: pd.DataFrame, reference: pd.Timestamp,
                 features: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """k-means segments on rfm + behaviour per cutoff, matched to the last training cutoff's."""
    columns = [c for c in features if c.startswith(("rfm__", "behaviour__"))]
    segmenter = make_pipeline(StandardScaler(), KMeans(6, n_init=10, random_state=SEED))
    ref = train[train[CUTOFF] == reference].set_index(CUSTOMER_ID)[columns]
    encoder = SegmentEncoder(segmenter).fit(ref)
    out = []
    for frame in (train, test):
        parts = []
        for cutoff, rows in frame.groupby(CUTOFF, sort=True):
            X = rows.set_index(CUSTOMER_ID)[columns]
            labels = encoder.labels_ if cutoff == reference else encoder.matched(X)
            parts.append(encoder.one_hot(labels.reindex(X.index)).set_index(rows.index))
        out.append(frame.join(pd.concat(parts)))
    return out[0], out[1]


def columns_of(frame: pd.DataFrame, set_name: str) -> list[str]:
    return [c for c in frame.columns if c.startswith(tuple(SETS[set_name]))]


def regime_cutoffs(eligible: list[pd.Timestamp], regime: str) -> list[pd.Timestamp]:
    """The regime's cutoffs among ``eligible`` (ascending), counted back from the last."""
    last, step = eligible[-1], REGIMES[regime]
    if step is None:
        return [last]
    return [c for c in eligible if (last - c).days % step == 0]


def fit_predict(model, train: pd.DataFrame, columns: list[str], test: pd.DataFrame):
    start = perf_counter()
    fitted = clone(model).fit(train[columns], train[WILL_BUY])
    seconds = perf_counter() - start
    return fitted, fitted.predict_proba(test[columns])[:, 1], seconds


def validation_windows(frame: pd.DataFrame, last_train: pd.Timestamp) -> pd.DataFrame:
    """The rows scored in validation: every customer at each validation cutoff, stacked."""
    at = [last_train - pd.Timedelta(days=step) for step in VALIDATION_STEPS]
    return frame[frame[CUTOFF].isin(at)]


def validation_predict(model, frame: pd.DataFrame, columns: list[str], regime: str,
                       cutoffs: list[pd.Timestamp], rows: pd.DataFrame) -> np.ndarray:
    """Predictions for the validation rows, each window's model trained on the regime's
    cutoffs whose labels end by that window (so by the eval cutoff too)."""
    out = pd.Series(np.nan, index=rows.index)
    for at, scored in rows.groupby(CUTOFF):
        eligible = [c for c in cutoffs if c + pd.Timedelta(days=HORIZON) <= at]
        train = frame[frame[CUTOFF].isin(regime_cutoffs(eligible, regime))]
        out[scored.index] = fit_predict(model, train, columns, scored)[1]
    return out.to_numpy()


def evaluate(train, test, cutoffs, baseline, set_name, model_name, regime, n_boot,
             validation: pd.DataFrame):
    """One configuration: evaluation scores with intervals, and its validation predictions."""
    columns = columns_of(train, set_name)
    rows = train[train[CUTOFF].isin(regime_cutoffs(cutoffs, regime))]
    model = RFM_LOGREG if set_name == "rfm_baseline" and model_name == "logreg" else MODELS[model_name]
    _, p, seconds = fit_predict(model, rows, columns, test)
    y = test[WILL_BUY].to_numpy()
    boot = bootstrap_auc(y, p, {"rfm_logreg": baseline}, n=n_boot, seed=0)
    val = validation_predict(model, train, columns, regime, cutoffs, validation)
    y_val = validation[WILL_BUY].to_numpy()
    row = {"features": set_name, "model": model_name, "regime": regime, "rows": len(rows),
           "columns": len(columns), **boot, "validation_roc_auc": roc_auc_score(y_val, val),
           "validation_brier": brier_score_loss(y_val, val),
           "validation_ece": expected_calibration_error(y_val, val),
           "pr_auc": average_precision_score(y, p), "brier": brier_score_loss(y, p),
           "ece": expected_calibration_error(y, p), "fit_seconds": seconds}
    return row, val


def choose(table: pd.DataFrame, predictions: dict, validation: pd.DataFrame,
           n_boot: int) -> tuple[dict, list[dict]]:
    """Today's default, changed one factor at a time where validation shows a gain beyond noise.

    For the training regime, then the model, then the feature set: the best alternative (by
    validation ROC AUC) among configurations that differ from the current one in that factor
    only replaces it if the lower end of the 95 % customer-bootstrap interval of its paired
    validation gain is above 0. Also fills ``validation_gain_vs_default`` (and its interval)
    for every row. Returns the choice and the steps taken.
    """
    y, groups = validation[WILL_BUY].to_numpy(), validation[CUSTOMER_ID].to_numpy()

    def gain(key, over):
        return bootstrap_auc(y, predictions[key], {"other": predictions[over]}, n=n_boot, seed=1,
                             groups=groups)

    keys = list(zip(table["features"], table["model"], table["regime"], strict=True))
    for i, key in enumerate(keys):
        boot = gain(key, DEFAULT)
        table.loc[i, "validation_gain_vs_default"] = boot["gain_vs_other"]
        table.loc[i, "validation_gain_ci_low"] = boot["gain_vs_other_ci_low"]
        table.loc[i, "validation_gain_ci_high"] = boot["gain_vs_other_ci_high"]
    auc = dict(zip(keys, table["validation_roc_auc"], strict=True))
    current, steps = DEFAULT, []
    for factor in (2, 1, 0):  # regime, model, features
        others = [k for k in keys if k[factor] != current[factor] and k[0] != "rfm_baseline"
                  and all(k[j] == current[j] for j in range(3) if j != factor)]
        best = max(others, key=auc.get)
        boot = gain(best, current)
        switch = boot["gain_vs_other_ci_low"] > 0
        steps.append({"factor": ["features", "model", "regime"][factor], "current": current,
                      "best_alternative": best, "gain": boot["gain_vs_other"],
                      "ci_low": boot["gain_vs_other_ci_low"],
                      "ci_high": boot["gain_vs_other_ci_high"], "switched": bool(switch)})
        current = best if switch else current
    return dict(zip(["features", "model", "regime"], current, strict=True)), steps


def calibration(train, test, cutoffs, features, model, regime) -> list[dict]:
    """Raw probabilities against sigmoid and isotonic calibration on customer-grouped folds."""
    columns, model_name = columns_of(train, features), model
    rows = train[train[CUTOFF].isin(regime_cutoffs(cutoffs, regime))]
    folds = list(GroupKFold(5).split(rows, rows[WILL_BUY], groups=rows[CUSTOMER_ID]))
    y, out = test[WILL_BUY].to_numpy(), []
    for method in ("raw", "sigmoid", "isotonic"):
        model = MODELS[model_name] if method == "raw" else CalibratedClassifierCV(
            MODELS[model_name], method=method, cv=folds)
        _, p, seconds = fit_predict(model, rows, columns, test)
        # Out-of-fold over the training rows (customer-grouped): is the raw model calibrated
        # when the period does not change? (The calibrated ones are, by construction.)
        oof_ece = float("nan")
        if method == "raw":
            oof = cross_val_predict(model, rows[columns], rows[WILL_BUY], cv=folds,
                                    method="predict_proba")[:, 1]
            oof_ece = expected_calibration_error(rows[WILL_BUY], oof)
        out.append({"calibration": method, "training_oof_ece": oof_ece, "roc_auc": roc_auc_score(y, p),
                    "brier": brier_score_loss(y, p), "ece": expected_calibration_error(y, p),
                    "mean_p": float(p.mean()), "base_rate": float(y.mean()), "fit_seconds": seconds,
                    "reliability": reliability_table(y, p).round(4).to_dict("records")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REAL_FILE))
    parser.add_argument("--cache-dir", default=str(ROOT / "outputs" / "cache"))
    parser.add_argument("--json", help="also write every row as JSON here")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()
    start = perf_counter()
    transactions = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(),
                                cache_dir=args.cache_dir).transactions
    train, test, cutoffs, eval_cutoff, counts, test_counts, build_s = build_frames(transactions)
    validation = validation_windows(train, cutoffs[-1])
    print(f"eval cutoff {eval_cutoff.date()}: {len(test)} customers, base rate "
          f"{test[WILL_BUY].mean():.3f}; {len(cutoffs)} training cutoffs {cutoffs[0].date()} .. "
          f"{cutoffs[-1].date()}, {len(train)} rows, pooled frame built in {build_s:.1f} s; "
          f"dropped as inactive: {counts['dropped_inactive'].sum()} train, "
          f"{test_counts['dropped_inactive'].sum()} eval; validation rows {len(validation)} "
          f"({validation[CUSTOMER_ID].nunique()} customers, base rate "
          f"{validation[WILL_BUY].mean():.3f})", flush=True)
    rows, predictions = run_grid(train, test, cutoffs, validation, args.boot)
    table = pd.DataFrame(rows)
    chosen, steps = choose(table, predictions, validation, args.boot)
    by_auc = table[table["features"] != "rfm_baseline"].sort_values("validation_roc_auc").iloc[-1]
    print(markdown(table))
    for step in steps:
        print(step)
    print(f"chosen by the validation rule: {chosen}; highest validation AUC alone: "
          f"{by_auc['features']} / {by_auc['model']} / {by_auc['regime']}")
    report = {"rows": table.to_dict("records"), "chosen": chosen, "steps": steps,
              "counts": counts.assign(cutoff=counts[CUTOFF].astype(str)).to_dict("records"),
              "frame_seconds": build_s}
    report["calibration"] = calibration(train, test, cutoffs, **chosen)
    for entry in report["calibration"]:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()
               if k != "reliability"})
    report["population"] = population_check(transactions, chosen, args.boot)
    print(pd.DataFrame(report["population"]).round(4).to_string(index=False))
    report["seconds"] = perf_counter() - start
    print(f"{report['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))


def run_grid(train, test, cutoffs, validation, n_boot) -> tuple[list[dict], dict]:
    """Every feature set × model × regime (RFM-logreg: logistic regression only)."""
    base_cols = columns_of(train, "rfm_baseline")
    _, baseline, _ = fit_predict(RFM_LOGREG, train[train[CUTOFF] == cutoffs[-1]], base_cols, test)
    rows, predictions = [], {}
    for set_name in SETS:
        for model_name in (["logreg"] if set_name == "rfm_baseline" else MODELS):
            for regime in REGIMES:
                row, val = evaluate(train, test, cutoffs, baseline, set_name, model_name, regime,
                                    n_boot, validation)
                rows.append(row)
                predictions[set_name, model_name, regime] = val
                print(f"{set_name:<31} {model_name:<22} {regime:<8} auc {row['roc_auc']:.4f} "
                      f"gain {row['gain_vs_rfm_logreg']:+.4f} [{row['gain_vs_rfm_logreg_ci_low']:+.4f},"
                      f" {row['gain_vs_rfm_logreg_ci_high']:+.4f}] val {row['validation_roc_auc']:.4f}"
                      f" fit {row['fit_seconds']:.1f}s", flush=True)
    return rows, predictions


def markdown(table: pd.DataFrame) -> str:
    """The README's results table."""
    lines = ["| features | model | training | eval ROC AUC (95 % CI) | gain vs RFM-logreg (95 % CI) "
             "| validation ROC AUC | validation gain vs default (95 % CI) | PR AUC | Brier | ECE "
             "| fit s |", "|" + "---|" * 11]
    for r in table.to_dict("records"):
        lines.append(
            f"| {r['features']} | {r['model']} | {r['regime']} | {r['roc_auc']:.4f} "
            f"({r['roc_auc_ci_low']:.3f}–{r['roc_auc_ci_high']:.3f}) | {r['gain_vs_rfm_logreg']:+.4f} "
            f"({r['gain_vs_rfm_logreg_ci_low']:+.4f}, {r['gain_vs_rfm_logreg_ci_high']:+.4f}) | "
            f"{r['validation_roc_auc']:.4f} | {r['validation_gain_vs_default']:+.4f} "
            f"({r['validation_gain_ci_low']:+.4f}, {r['validation_gain_ci_high']:+.4f}) | "
            f"{r['pr_auc']:.4f} | {r['brier']:.4f} | {r['ece']:.3f} | {r['fit_seconds']:.1f} |")
    return "\n".join(lines)


def population_check(transactions: pd.DataFrame, chosen: dict, n_boot: int) -> list[dict]:
    """The chosen configuration and RFM-logreg for populations all, active 365 and active 180."""
    out = []
    for population, days in [("all", 365), ("active", 365), ("active", 180)]:
        train, test, cutoffs, *_ = build_frames(transactions, population, days)
        base_cols = columns_of(train, "rfm_baseline")
        _, baseline, _ = fit_predict(RFM_LOGREG, train[train[CUTOFF] == cutoffs[-1]], base_cols, test)
        row, _ = evaluate(train, test, cutoffs, baseline, chosen["features"], chosen["model"],
                          chosen["regime"], n_boot, validation_windows(train, cutoffs[-1]))
        out.append({"population": population, "active_days": days, "eval_customers": len(test),
                    "train_rows": row["rows"], "eval_base_rate": float(test[WILL_BUY].mean()),
                    "roc_auc": row["roc_auc"], "rfm_logreg_roc_auc": row["rfm_logreg_roc_auc"],
                    "gain_ci_low": row["gain_vs_rfm_logreg_ci_low"],
                    "gain_ci_high": row["gain_vs_rfm_logreg_ci_high"]})
    return out


if __name__ == "__main__":
    main()
