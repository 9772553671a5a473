"""Everything segmentlab sends to MLflow goes through here. ``NullTracker`` records nothing."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import mlflow.pyfunc
import pandas as pd
import yaml

from segmentlab.pipeline import FeatureResult, RunResult
from segmentlab.schema import Dataset

#: Packages whose versions every run records.
PACKAGES = ["segmentlab", "scikit-learn", "pandas", "numpy", "hydra-core", "mlflow", "optuna",
            "hdbscan", "umap-learn", "gensim", "xgboost-cpu", "pyarrow"]
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per artifact read
_MAX_PARAM_CHARS = 6000  # MLflow's limit for a param value
_BATCH = 100             # MLflow's limit for params per log_batch


class FramePredictor(mlflow.pyfunc.PythonModel):
    """An MLflow pyfunc around a plain segmentlab model: a DataFrame in, a DataFrame out.

    ``method`` names the model's method (``predict`` for a ``SegmentAssigner``: customer feature
    frame → segment, segment_name; ``score`` for a ``RepurchaseModel``: predictor frame →
    repurchase_probability).
    """

    def __init__(self, model: Any, method: str):
        self.model = model
        self.method = method

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        out = getattr(self.model, self.method)(model_input)
        return out.to_frame() if isinstance(out, pd.Series) else out


class TrackingError(Exception):
    """The tracking store cannot be used; the message says which store and why."""


class NullTracker:
    """The tracker interface, doing nothing (``tracking=none``)."""

    ui_command: str | None = None

    def check(self) -> None:
        """Nothing to check."""

    @contextmanager
    def run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
            config: dict, overrides: list[str], resume_run_id: str | None = None) -> Iterator[str | None]:
        yield None

    def log_data(self, dataset: Dataset) -> None:
        """Nothing to log."""

    def log_features(self, features: FeatureResult) -> None:
        """Nothing to log."""

    def log_result(self, result: RunResult, config: dict | None = None) -> None:
        """Nothing to log."""

    def register_model(self, name: str, model: Any, example: pd.DataFrame, config: dict,
                       data_hash: str) -> str | None:
        """Nothing to register."""
        return None

    def parent_of(self, study) -> str | None:
        """No earlier parent run to resume."""
        return None

    def link_study(self, study) -> None:
        """Nothing to link."""

    def log_trial(self, trial, outcome, config: dict) -> str | None:
        """Nothing to log."""
        return None

    def log_progress(self, n_finished: int) -> None:
        """Nothing to log."""

    def log_study(self, study, best, metric_names: list[str], ran: int) -> None:
        """Nothing to log."""


class MlflowTracker(NullTracker):
    """Logs runs to an MLflow tracking store.

    Parameters
    ----------
    tracking_uri : str
        The store, e.g. ``sqlite:///outputs/mlflow.db`` or ``http://127.0.0.1:5000``.
    experiment : str
        Experiment name; created on first use.
    artifact_location : str
        Where a newly created experiment stores artifacts (a local folder is made absolute so the
        UI finds it from any working directory).
    """

    def __init__(self, tracking_uri: str = "sqlite:///outputs/mlflow.db", experiment: str = "segmentlab",
                 artifact_location: str = "outputs/mlartifacts"):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location

    @property
    def ui_command(self) -> str:
        return f"mlflow ui --backend-store-uri {self.tracking_uri} --host 127.0.0.1"

    def check(self) -> None:
        """Fail fast, before any long work, when the store cannot be reached or written."""
        if self.tracking_uri.startswith("sqlite:///"):
            folder = Path(self.tracking_uri.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise TrackingError(
                    f"tracking store {self.tracking_uri}: cannot create {folder}: {e.strerror}"
                ) from e
            if not os.access(folder, os.W_OK):
                raise TrackingError(f"tracking store {self.tracking_uri}: folder {folder} is not writable")
        if self.tracking_uri.startswith(("http://", "https://")):
            _probe_server(self.tracking_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            if mlflow.get_experiment_by_name(self.experiment) is None:
                location = self.artifact_location
                if "://" not in location:
                    location = Path(location).resolve().as_uri()
                mlflow.create_experiment(self.experiment, artifact_location=location)
            mlflow.set_experiment(self.experiment)
        except Exception as e:  # MLflow raises many types for an unreachable or broken store
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TrackingError(f"tracking store {self.tracking_uri} is not usable: {first_line}") from e

    @contextmanager
    def run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
            config: dict, overrides: list[str], resume_run_id: str | None = None) -> Iterator[str]:
        """A run (a study's parent run when tuning); ``resume_run_id`` continues an earlier one."""
        self.check()
        all_tags = {**tags, **provenance_tags()}
        with mlflow.start_run(run_id=resume_run_id, run_name=None if resume_run_id else name,
                              tags=None if resume_run_id else all_tags) as active:
            if resume_run_id:  # params are immutable in MLflow: log only the new ones
                known = mlflow.get_run(resume_run_id).data.params
                params = {k: v for k, v in params.items() if k not in known}
                mlflow.set_tags(all_tags)
            _log_params(params)
            mlflow.log_dict(config, "config.yaml")
            mlflow.log_text("\n".join(overrides) + "\n", "overrides.txt")
            mlflow.log_dict(package_versions(), "packages.json")
            yield active.info.run_id

    def log_data(self, dataset: Dataset) -> None:
        mlflow.set_tags({"data_hash": dataset.data_hash, "data_source": dataset.source,
                         "data_cache_hit": str(dataset.cache_hit).lower()})
        ledger = dataset.ledger
        mlflow.log_metrics({"data/rows_in": ledger.rows_in, "data/rows_kept": ledger.rows_kept,
                            **{f"data/dropped_{k}": v for k, v in ledger.dropped.items()}})
        mlflow.log_dict(ledger.to_dict(), "data/cleaning_ledger.json")
        mlflow.log_text(ledger.to_frame().to_csv(index=False), "data/cleaning_ledger.csv")

    def log_features(self, features: FeatureResult) -> None:
        mlflow.set_tag("features_cache_hit", str(features.cache_hit).lower())
        mlflow.log_metrics({**_finite(features.metrics), "features/n_columns": features.frame.shape[1],
                            "features/n_customers": features.frame.shape[0]})
        for name, table in features.tables.items():
            mlflow.log_text(table.to_csv(index=True), f"features/{name}.csv")

    def log_result(self, result: RunResult, config: dict | None = None) -> None:
        """Metrics, segment profile and labels, tables, plots; ``config`` is the effective config
        (after tuning, the best trial's), what ``segmentlab reproduce`` rebuilds."""
        if config is not None:
            mlflow.log_dict(config, "config.yaml")
        mlflow.set_tags(result.tags)
        mlflow.log_metrics(_finite_or_nan(result.metrics))
        mlflow.log_text(result.profile.to_csv(index=True), "segments/profile.csv")
        mlflow.log_text(result.labels.to_csv(header=True), "segments/labels.csv")
        for name, table in result.tables.items():
            mlflow.log_text(table.to_csv(index=True), f"tables/{name}.csv")
        for name, figure in result.figures.items():
            mlflow.log_figure(figure, f"plots/{name}.png")
            plt.close(figure)
        for name, (model, method, example) in model_examples(result).items():
            log_pyfunc(name, FramePredictor(model, method), example)


    def register_model(self, name: str, model: Any, example: pd.DataFrame, config: dict,
                       data_hash: str) -> str:
        """Log the deployable model (transactions in) and register it as a new version of ``name``,
        tagged with its config, git commit, data hash and package versions; return the version."""
        info = log_pyfunc("model", FramePredictor(model, "predict"), example, registered_name=name)
        client = mlflow.MlflowClient()
        version = str(info.registered_model_version)
        tags = {**provenance_tags(), "data_hash": data_hash, "run_id": mlflow.active_run().info.run_id,
                "packages": json.dumps(package_versions()), "config": yaml.safe_dump(config)[:7500]}
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        return version

    def log_report(self, html: str) -> None:
        """The study report as an artifact of the active run."""
        mlflow.log_text(html, "report.html")

    def parent_of(self, study) -> str | None:
        """The parent run an earlier invocation of this study logged to this store, if any."""
        run_id = study.user_attrs.get(f"mlflow_parent_run:{mask_url(self.tracking_uri)}")
        if not run_id:
            return None
        try:
            mlflow.set_tracking_uri(self.tracking_uri)
            return run_id if mlflow.get_run(run_id).info.lifecycle_stage == "active" else None
        except Exception:  # deleted or from another store: start a new parent
            return None

    def link_study(self, study) -> None:
        active = mlflow.active_run()
        study.set_user_attr(f"mlflow_parent_run:{mask_url(self.tracking_uri)}", active.info.run_id)
        mlflow.set_tags({"study_name": study.study_name, "run_kind": "study"})

    def log_trial(self, trial, outcome, config: dict) -> str:
        """One nested child run per trial: params, metrics, state, failure reason, config, labels."""
        failed = outcome.failure is not None
        tags = {"run_kind": "trial", "trial_number": str(trial.number),
                "trial_state": "FAIL" if failed else "COMPLETE",
                **({"fail_reason": outcome.failure[:5000]} if failed else {})}
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, tags=tags) as child:
            _log_params(trial.params)
            mlflow.log_metrics(_finite_or_nan(outcome.metrics))
            mlflow.log_dict(config, "config.yaml")
            if outcome.labels is not None:
                mlflow.log_text(outcome.labels.to_csv(header=True), "segments/labels.csv")
            if failed:
                mlflow.end_run("FAILED")
            return child.info.run_id

    def log_progress(self, n_finished: int) -> None:
        mlflow.log_metric("tuning/n_finished_trials", n_finished, step=n_finished)

    def log_study(self, study, best, metric_names: list[str], ran: int) -> None:
        """The best trial, the Pareto set and Optuna's plots on the parent run."""
        import optuna.visualization as vis

        mlflow.log_metrics({f"best/{m}": v for m, v in zip(metric_names, best.values, strict=True)})
        mlflow.log_metrics({"tuning/best_trial_number": best.number, "tuning/trials_this_invocation": ran})
        mlflow.set_tags({"best_trial_number": str(best.number),
                         "best_trial_run_id": best.user_attrs.get("mlflow_run_id", "")})
        trials = study.trials_dataframe(attrs=("number", "state", "values", "params", "user_attrs"))
        mlflow.log_text(trials.to_csv(index=False), "tuning/trials.csv")
        if len(metric_names) > 1:
            pareto = [{"number": t.number, **dict(zip(metric_names, t.values, strict=True)), **t.params}
                      for t in study.best_trials]
            mlflow.log_text(pd.DataFrame(pareto).to_csv(index=False), "tuning/pareto.csv")
        for i, metric in enumerate(metric_names):
            target = (lambda t, i=i: t.values[i]) if len(metric_names) > 1 else None
            stem = metric.replace("/", "_")
            mlflow.log_figure(vis.plot_optimization_history(study, target=target, target_name=metric),
                              f"tuning/optimization_history_{stem}.html")
            complete = [t for t in study.trials if t.state.name == "COMPLETE"]
            if len(complete) >= 2 and len(best.params) >= 2:
                mlflow.log_figure(vis.plot_param_importances(study, target=target, target_name=metric),
                                  f"tuning/param_importances_{stem}.html")


def _probe_server(uri: str, timeout: float = 5.0) -> None:
    """A tracking server must answer its health check now (MLflow itself retries for minutes)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            if response.status != 200:
                raise TrackingError(f"tracking server {mask_url(uri)} answered HTTP {response.status}")
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingError(f"tracking server {mask_url(uri)} is unreachable ({reason}); start it or "
                            "pass tracking.tracking_uri=sqlite:///outputs/mlflow.db") from None


def mask_url(text: str) -> str:
    """Hide the password in a database or server URL: ``postgresql://u:***@host/db``."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


def _log_params(params: Mapping[str, Any]) -> None:
    items = [(k, _param_value(v)) for k, v in params.items()]
    for i in range(0, len(items), _BATCH):
        mlflow.log_params(dict(items[i:i + _BATCH]))


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return mask_url(text)[:_MAX_PARAM_CHARS]


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def _finite_or_nan(metrics: Mapping[str, float]) -> dict[str, float]:
    """MLflow stores NaN (an undefined metric) as such; None becomes NaN."""
    return {k: float("nan") if v is None else float(v) for k, v in metrics.items()}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's results."""
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance_tags() -> dict[str, str]:
    """Git commit (and whether the work tree had uncommitted changes) of the code that ran."""
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                 cwd=Path(__file__).resolve().parent)
            return out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


@dataclass(frozen=True)
class LoggedRun:
    """What ``segmentlab reproduce`` needs from a logged run."""

    name: str
    config: dict
    labels: pd.Series
    metrics: dict[str, float]
    data_hash: str | None


def load_model(uri: str, tracking_uri: str) -> Any:
    """The plain segmentlab model inside a logged pyfunc (``models:/segmentlab/latest``, ``runs:/…``).

    Models load only from the store named by ``tracking_uri``.
    """
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        return mlflow.pyfunc.load_model(uri).unwrap_python_model().model
    except (MlflowException, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrackingError(f"model {uri} in {tracking_uri}: {first}") from e


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


def model_examples(result: RunResult) -> dict[str, tuple[Any, str, pd.DataFrame]]:
    """The run's deployable models with the method pyfunc calls and an input frame for each."""
    examples = {}
    if "segment_assigner" in result.models:
        examples["segment_model"] = (result.models["segment_assigner"], "predict", result.features)
    if "repurchase" in result.models and "repurchase_features" in result.tables:
        examples["repurchase_model"] = (result.models["repurchase"], "score",
                                        result.tables["repurchase_features"])
    return examples


def log_pyfunc(name: str, python_model: Any, frame: pd.DataFrame, registered_name: str | None = None):
    """Log a pyfunc model with a signature and a five-row input example; return its model info."""
    from mlflow.models import infer_signature

    example = frame.head(5)
    with warnings.catch_warnings():  # integer columns: our ids and counts are never missing
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(frame, python_model.predict(None, frame))
    requirements = [f"{n}=={v}" for n, v in package_versions().items()
                    if n not in ("python", "segmentlab") and v != "not installed"]
    return mlflow.pyfunc.log_model(name=name, python_model=python_model, input_example=example,
                                   signature=signature, pip_requirements=requirements,
                                   registered_model_name=registered_name)



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
                                                   ("data", "features", "reducer", "clusterer", "classifier",
                                                    "tuning", "degenerate")]
    return runs.loc[:, [c for c in dict.fromkeys(keep) if c in runs.columns]].reset_index(drop=True)


def registered_run(name: str, tracking_uri: str) -> str | None:
    """The run id behind the latest version of a registered model, if there is one."""
    mlflow.set_registry_uri(tracking_uri)
    try:
        versions = mlflow.MlflowClient().search_model_versions(f"name = '{name}'")
    except Exception:  # no registry tables yet, or no such model
        return None
    return max(versions, key=lambda v: int(v.version)).run_id if versions else None


def fetch_tables(run_id: str, names: list[str]) -> dict[str, pd.DataFrame]:
    """The CSV artifacts of a run that exist, by artifact path without ``.csv``."""
    run = mlflow.get_run(run_id)
    tables = {}
    for name in names:
        try:
            text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{name}.csv")
        except Exception:  # the artifact is optional (e.g. no prediction stage in this run)
            continue
        tables[name] = pd.read_csv(io.StringIO(text))
    return tables
