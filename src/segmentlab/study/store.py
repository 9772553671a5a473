"""Reading logged runs back: configs, labels, metrics, tables, registered models."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import mlflow
import pandas as pd
import yaml

from segmentlab import vocabulary
from segmentlab.study.tracking import TrackingError


@dataclass(frozen=True)
class LoggedRun:
    """What ``segmentlab reproduce`` needs from a logged run."""

    name: str
    config: dict
    labels: pd.Series
    metrics: dict[str, float]
    data_hash: str | None


def fetch_run(run_id: str, tracking_uri: str) -> LoggedRun:
    """Read a run's effective config, labels and metrics back from the store."""
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    try:
        run = mlflow.get_run(run_id)
        config = yaml.safe_load(mlflow.artifacts.load_text(f"{run.info.artifact_uri}/config.yaml"))
        labels_text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/segments/labels.csv")
    except (MlflowException, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrackingError(f"run {run_id} in {tracking_uri}: {first}") from e
    labels = pd.read_csv(io.StringIO(labels_text), index_col=0).iloc[:, 0]
    return LoggedRun(run.info.run_name or run_id, config, labels, dict(run.data.metrics),
                     run.data.tags.get("data_hash"))


def fetch_study(experiment: str, tracking_uri: str) -> pd.DataFrame:
    """One row per run of an experiment (study parents and plain runs; trials left out): run_id,
    run_name, the group tags, and metrics under their own names (``cluster/silhouette``…)."""
    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        raise TrackingError(f"no experiment '{experiment}' in {tracking_uri}")
    runs = mlflow.search_runs(experiment_names=[experiment])
    runs = runs[runs["status"].isin(["FINISHED", "RUNNING"])]  # RUNNING: the final run logging it
    if "tags.run_kind" in runs:
        runs = runs[runs["tags.run_kind"].fillna("") != "trial"]
    renamed = {c: c.split(".", 1)[1] for c in runs.columns if c.startswith(("metrics.", "tags."))}
    runs = runs.rename(columns={**renamed, "tags.mlflow.runName": "run_name"})
    keep = ["run_id", "run_name", "start_time"] + [c for c in renamed.values() if "/" in c or c in
                                                   (*vocabulary.GROUPS, "degenerate", "data_hash",
                                                    "data_source")]
    return runs.loc[:, [c for c in dict.fromkeys(keep) if c in runs.columns]].reset_index(drop=True)


def registered_run(name: str, tracking_uri: str, alias: str | None = None) -> str | None:
    """The run id behind a registered model's ``alias`` (the latest version without one), if any."""
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient()
    try:
        if alias:
            return client.get_model_version_by_alias(name, alias).run_id
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception:  # no registry tables yet, no such model or no such alias
        return None
    return max(versions, key=lambda v: int(v.version)).run_id if versions else None


def fetch_tables(run_id: str, artifacts) -> dict:
    """The artifacts of a run that exist, by artifact name (`segmentlab.vocabulary.Artifact`):
    tables as DataFrames, sections as dicts (id, title, body, reading)."""
    run = mlflow.get_run(run_id)
    tables = {}
    for declared in artifacts:
        try:
            text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{declared.path}")
        except Exception:  # the artifact is optional (e.g. no prediction stage in this run)
            continue
        tables[declared.name] = (json.loads(text) if declared.kind == "section"
                                 else pd.read_csv(io.StringIO(text)))
    return tables
