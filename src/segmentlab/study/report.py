"""The study report of an MLflow experiment: runs fetched back and handed to `reports.study`.

A report is about one study on one data set. The run it details is, in this order, the one
asked for, the run behind the registered model's alias, or the best run by the objective; the
runs it compares are those on the same data (same data hash) as that run, unless all data are
asked for. Without a run or a registered model on them, the data are those of the latest run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from segmentlab import vocabulary
from segmentlab.study.tracking import TrackingError


@dataclass(frozen=True)
class Choice:
    """Which run the report details, why, and which runs it compares."""

    run_id: str
    reason: str
    data_hash: str | None
    runs: pd.DataFrame          # the runs compared
    other_data: int             # finished runs of the experiment on other data
    all_data: bool              # whether those are among the runs compared


def study_html(experiment: str, tracking_uri: str, run_id: str | None = None,
               model_name: str | None = "segmentlab", alias: str | None = "champion",
               objective: str = "cluster/silhouette", all_data: bool = False,
               data_hash: str | None = None) -> str:
    """The study report of an experiment.

    Parameters
    ----------
    experiment, tracking_uri : str
        Where the runs are.
    run_id : str, optional
        The run to detail; default the registered model's (``model_name``/``alias``, the latest
        version without an alias), else the best non-degenerate run by ``objective``.
    all_data : bool
        Compare every run of the experiment, not only those on the detailed run's data.
    data_hash : str, optional
        Report on runs over these data (a data file's fingerprint).
    """
    from segmentlab.reports.html import Section
    from segmentlab.reports.study import RunDetails, study_report
    from segmentlab.study.store import fetch_study, fetch_tables, registered_run

    runs = fetch_study(experiment, tracking_uri)
    if runs.empty:
        raise TrackingError(f"experiment '{experiment}' in {tracking_uri} has no finished runs")
    registered = registered_run(model_name, tracking_uri, alias) if model_name else None
    label = f"{model_name}@{alias}" if alias else f"{model_name} (latest version)"
    choice = choose_run(runs, run_id, registered, label, objective, data_hash, all_data)
    row = runs.set_index("run_id").loc[choice.run_id]
    metrics = {k: float(v) for k, v in row.items() if "/" in str(k) and pd.notna(v)}
    tables = fetch_tables(choice.run_id, vocabulary.report_artifacts())
    profile = tables.get("profile", pd.DataFrame({"segment": []})).set_index("segment")
    details = RunDetails(
        run_id=choice.run_id, run_name=str(row.get("run_name", choice.run_id)), metrics=metrics,
        profile=profile, map_points=tables.get("customer_map"),
        importance=tables.get("predict_importance"),
        prediction={k: v for k, v in metrics.items() if k.startswith("predict/")} or None,
        ledger=tables.get("cleaning_ledger"), reason=choice.reason,
        classifier=_chosen_candidate(tables.get("predict_candidates")) or _text(row.get("classifier")),
        assigner=_text(row.get("assigner")),
        assignment={k: v for k, v in metrics.items() if k.startswith("assign/")} or None,
        history=tables.get("assign_history"), reliability=tables.get("assign_reliability"),
        products=tables.get("segment_products"),
        repurchase={k: tables[k] for k in ("predict_candidates", "predict_reliability", "segment_value")
                    if k in tables},
        sections=[Section(**tables[a.name]) for a in vocabulary.report_artifacts()
                  if a.kind == "section" and a.name in tables])
    return study_report(choice.runs, details, title=f"segmentlab study: {experiment}",
                        coverage=coverage(choice, row))


def _chosen_candidate(candidates: pd.DataFrame | None) -> str | None:
    """The repurchase classifier the run chose on validation, when it logged its candidates."""
    if candidates is None or "chosen" not in candidates or "candidate" not in candidates:
        return None
    chosen = candidates.loc[candidates["chosen"].astype(str).str.lower() == "true", "candidate"]
    return str(chosen.iloc[0]) if len(chosen) else None


def choose_run(runs: pd.DataFrame, run_id: str | None, registered: str | None, registered_label: str,
               objective: str, data_hash: str | None = None, all_data: bool = False) -> Choice:
    """The run to detail and the runs to compare (see the module docstring)."""
    by_id = runs.set_index("run_id")
    hashes = by_id.get("data_hash", pd.Series(index=by_id.index, dtype=object))
    if run_id is not None and run_id not in by_id.index:
        raise TrackingError(f"run {run_id} is not a finished run of this experiment")
    if run_id is not None:
        data, reason = hashes.get(run_id), "asked for with --run"
    elif data_hash is not None:
        data, reason = data_hash, None
        if not (hashes == data_hash).any():
            raise TrackingError(f"no run of this experiment is on data {data_hash[:12]}")
    elif registered in by_id.index:
        data, reason = hashes.get(registered), None
    else:
        latest = runs.sort_values("start_time", ascending=False, kind="stable").iloc[0]
        data, reason = latest.get("data_hash"), None
    same = runs[hashes.reindex(runs["run_id"]).to_numpy() == data] if pd.notna(data) else runs
    if reason is None and registered in set(same["run_id"]):
        run_id, reason = registered, f"the registered model {registered_label}"
    elif reason is None:
        run_id = best_run(same, objective)
        reason = (f"the best {vocabulary.label(objective)} ({objective}) among runs on these data; "
                  f"no registered model {registered_label} on them")
    compared = runs if all_data else same
    return Choice(run_id, reason, None if pd.isna(data) else str(data),
                  compared.reset_index(drop=True), len(runs) - len(same), all_data)


def coverage(choice: Choice, row: pd.Series) -> str:
    """One sentence: which data the report covers and what it left out."""
    source = _text(row.get("data_source")) or "unknown source"
    data = f"{source} (data hash {choice.data_hash[:12]})" if choice.data_hash else source
    text = f"Data: {data}. Detailed run: {choice.reason}."
    if not choice.other_data:
        return text + f" All {_runs(len(choice.runs))} of the experiment are on these data."
    if choice.all_data:
        return text + (f" All {_runs(len(choice.runs))} are compared, {choice.other_data} of them on "
                       "other data (--all-data): their metrics do not compare with this run's.")
    return text + (f" Compared: the {_runs(len(choice.runs))} on these data. Left out: "
                   f"{_runs(choice.other_data)} on other data (segmentlab report --all-data "
                   "includes them).")


def best_run(runs: pd.DataFrame, objective: str) -> str:
    """The run id best by ``objective`` among non-degenerate runs (any run when none has it)."""
    ok = runs[runs.get("degenerate", pd.Series(index=runs.index, dtype=str)).isna()]
    if objective not in ok or not ok[objective].notna().any():
        ok = runs
    if objective not in ok or not ok[objective].notna().any():
        return str(ok.iloc[0]["run_id"])
    ascending = vocabulary.direction(objective) == vocabulary.MIN
    return str(ok.sort_values(objective, ascending=ascending, na_position="last").iloc[0]["run_id"])


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _text(value) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
