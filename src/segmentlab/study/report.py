"""The study report of an MLflow experiment: runs fetched back and handed to `reports.study`."""

from __future__ import annotations

import pandas as pd

from segmentlab import vocabulary
from segmentlab.study.tracking import TrackingError


def study_html(experiment: str, tracking_uri: str, run_id: str | None = None,
               model_name: str = "segmentlab", objective: str = "cluster/silhouette") -> str:
    """The study report of an experiment.

    The run detailed is ``run_id``, else the run behind the registered model ``model_name``,
    else the best non-degenerate run by ``objective`` (in its declared direction).
    """
    from segmentlab.reports.html import Section
    from segmentlab.reports.study import RunDetails, study_report
    from segmentlab.study.store import fetch_study, fetch_tables, registered_run

    runs = fetch_study(experiment, tracking_uri)
    if runs.empty:
        raise TrackingError(f"experiment '{experiment}' in {tracking_uri} has no finished runs")
    best_id = run_id or registered_run(model_name, tracking_uri)
    if best_id is None or best_id not in set(runs["run_id"]):
        best_id = best_run(runs, objective)
    row = runs.set_index("run_id").loc[best_id]
    metrics = {k: float(v) for k, v in row.items() if "/" in str(k) and pd.notna(v)}
    tables = fetch_tables(best_id, vocabulary.report_artifacts())
    profile = tables.get("profile", pd.DataFrame({"segment": []})).set_index("segment")
    details = RunDetails(
        run_id=best_id, run_name=str(row.get("run_name", best_id)), metrics=metrics, profile=profile,
        map_points=tables.get("customer_map"), importance=tables.get("predict_importance"),
        prediction={k: v for k, v in metrics.items() if k.startswith("predict/")} or None,
        ledger=tables.get("cleaning_ledger"),
        sections=[Section(**tables[a.name]) for a in vocabulary.report_artifacts()
                  if a.kind == "section" and a.name in tables])
    return study_report(runs, details, title=f"segmentlab study: {experiment}")


def best_run(runs: pd.DataFrame, objective: str) -> str:
    """The run id best by ``objective`` among non-degenerate runs (any run when none has it)."""
    ok = runs[runs.get("degenerate", pd.Series(index=runs.index, dtype=str)).isna()]
    if objective not in ok or not ok[objective].notna().any():
        ok = runs
    if objective not in ok or not ok[objective].notna().any():
        return str(ok.iloc[0]["run_id"])
    ascending = vocabulary.direction(objective) == vocabulary.MIN
    return str(ok.sort_values(objective, ascending=ascending, na_position="last").iloc[0]["run_id"])
