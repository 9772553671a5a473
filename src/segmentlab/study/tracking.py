"""Everything segmentlab sends to MLflow goes through here; `NullTracker` records nothing.

Both trackers implement the `Tracker` protocol, so a method missing from one is an error a test
catches, not a silent no-op. MLflow is imported on first use (`_mlflow`), so a run with
``tracking=none`` never loads it; the pyfunc wrappers (`segmentlab.study.pyfunc`) and the
readers of logged runs (`segmentlab.study.store`) are the only other modules that import it.
Artifact paths come from `segmentlab.vocabulary`.

Tags go through ``mlflow.set_tags``, never ``mlflow.set_tag``: workers joining one parent run
write the same tags at the same moment, and on a SQL store only the batch call retries when
another worker inserted the key first (``set_tag`` fails with a unique-key violation).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from segmentlab import vocabulary
from segmentlab.study.provenance import package_versions, provenance_tags

if TYPE_CHECKING:
    from segmentlab.features.matrix import FeatureResult
    from segmentlab.schema import Dataset
    from segmentlab.study.results import RunResult

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per artifact read
# With a tracking server MLflow prints two URLs for every run that ends (one per trial); the
# summary gives the runs page once.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
_MAX_PARAM_CHARS = 6000  # MLflow's limit for a param value
# MLflow 3's UI opens an experiment without this tag on its GenAI pages; this value files it
# under machine learning, where runs, metrics and charts are (values from MLflow's UI source).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
_BATCH = 100             # MLflow's limit for params per log_batch
#: ``cluster/size_<label>``: one metric per segment, left out of trial runs. Segment 3 of one
#: trial is not segment 3 of another, so across trials these columns compare nothing (the
#: smallest and largest shares and the size balance do); each costs ~0.5 ms to log on SQLite,
#: and the sizes are in the trial's segments/labels.csv.
_SEGMENT_SIZE = re.compile(r"cluster/size_\d+")


def _mlflow():
    """The mlflow module, imported on first use (it costs about a second)."""
    import mlflow

    return mlflow


class TrackingError(Exception):
    """The tracking store cannot be used; the message says which store and why."""


@runtime_checkable
class Tracker(Protocol):
    """What the run asks of a tracker; `MlflowTracker` records it, `NullTracker` does not."""

    @property
    def records(self) -> bool: ...          # whether anything is kept (figures are drawn only then)
    @property
    def ui_command(self) -> str | None: ...  # how to look at the runs, printed at the end
    def check(self) -> None: ...
    def run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str], config: dict,
            overrides: list[str], resume_run_id: str | None = None
            ) -> AbstractContextManager[str | None]: ...
    def log_data(self, dataset: Dataset) -> None: ...
    def log_features(self, features: FeatureResult) -> None: ...
    def log_result(self, result: RunResult, config: dict | None = None) -> None: ...
    def log_skipped(self, stage: str, reason: str) -> None: ...
    def register_model(self, name: str, model: Any, example: pd.DataFrame, config: dict,
                       data_hash: str, alias: str | None = None) -> str | None: ...
    def log_report(self, html: str) -> None: ...
    def parent_of(self, study, name: str) -> str | None: ...
    def link_study(self, study) -> None: ...
    def log_trial(self, trial, outcome, config: dict, replace: bool = False) -> str | None: ...
    def log_progress(self, n_finished: int) -> None: ...
    def log_study(self, study, best, metric_names: list[str], ran: int) -> None: ...


class NullTracker:
    """The `Tracker` protocol, recording nothing (``tracking=none``)."""

    records = False
    ui_command: str | None = None

    def check(self) -> None:
        """Nothing to check."""

    @contextmanager
    def run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
            config: dict, overrides: list[str], resume_run_id: str | None = None) -> Iterator[None]:
        yield None

    def log_data(self, dataset: Dataset) -> None:
        """Nothing to log."""

    def log_features(self, features: FeatureResult) -> None:
        """Nothing to log."""

    def log_result(self, result: RunResult, config: dict | None = None) -> None:
        """Nothing to log."""

    def log_skipped(self, stage: str, reason: str) -> None:
        """Nothing to log."""

    def register_model(self, name: str, model: Any, example: pd.DataFrame, config: dict,
                       data_hash: str, alias: str | None = None) -> str | None:
        """Nothing to register."""
        return None

    def log_report(self, html: str) -> None:
        """Nothing to log."""

    def parent_of(self, study, name: str) -> str | None:
        """No parent run to resume."""
        return None

    def link_study(self, study) -> None:
        """Nothing to link."""

    def log_trial(self, trial, outcome, config: dict, replace: bool = False) -> str | None:
        """Nothing to log."""
        return None

    def log_progress(self, n_finished: int) -> None:
        """Nothing to log."""

    def log_study(self, study, best, metric_names: list[str], ran: int) -> None:
        """Nothing to log."""


class MlflowTracker:
    """Logs runs to an MLflow tracking store.

    Parameters
    ----------
    tracking_uri : str
        The store, e.g. ``sqlite:///outputs/mlflow.db`` or ``http://127.0.0.1:5000``.
    experiment : str
        Experiment name; created on first use.
    artifact_location : str
        Where a newly created experiment stores artifacts (a local folder is made absolute so the
        UI finds it from any working directory). With an ``http(s)://`` tracking URI a local
        folder is ignored: the server stores the artifacts (``mlflow-artifacts:/``, under its
        ``--artifacts-destination``), so every worker's artifacts end up in one place; a URI
        with a scheme (``s3://…``) is used as given.
    """

    def __init__(self, tracking_uri: str = "sqlite:///outputs/mlflow.db", experiment: str = "segmentlab",
                 artifact_location: str = "outputs/mlartifacts"):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location

    records = True

    @property
    def served(self) -> bool:
        """Whether the store is a tracking server (which also serves the UI)."""
        return self.tracking_uri.startswith(("http://", "https://"))

    @property
    def ui_command(self) -> str:
        """The experiment's runs page on a server; for a local store, the command that serves it."""
        experiment_id = getattr(self, "experiment_id_", None)
        page = f"#/experiments/{experiment_id}/runs" if experiment_id else ""
        if self.served:
            return f"{mask_url(self.tracking_uri).rstrip('/')}/{page}"
        return (f"mlflow ui --backend-store-uri {mask_url(self.tracking_uri)} --host 127.0.0.1"
                f", then open http://127.0.0.1:5000/{page}")

    def check(self) -> None:
        """Fail fast, before any long work, when the store cannot be reached or written."""
        mlflow = _mlflow()
        if self.tracking_uri.startswith("sqlite:///"):
            from segmentlab.study.sqlite import use_write_ahead_log

            use_write_ahead_log()
            folder = Path(self.tracking_uri.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise TrackingError(
                    f"tracking store {self.tracking_uri}: cannot create {folder}: {e.strerror}"
                ) from e
            if not os.access(folder, os.W_OK):
                raise TrackingError(f"tracking store {self.tracking_uri}: folder {folder} is not writable")
        if self.served:
            _probe_server(self.tracking_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        # The registry URI is a separate global: a model loaded earlier in this process from
        # another store would otherwise receive this run's registrations.
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            experiment = mlflow.get_experiment_by_name(self.experiment) or self._create_experiment()
            if not EXPERIMENT_KIND.items() <= experiment.tags.items():
                for key, value in EXPERIMENT_KIND.items():
                    mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, key, value)
            mlflow.set_experiment(experiment_id=experiment.experiment_id)
        except Exception as e:  # MLflow raises many types for an unreachable or broken store
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TrackingError(f"tracking store {mask_url(self.tracking_uri)} is not usable: "
                                f"{first_line}") from e
        self.experiment_id_ = experiment.experiment_id
        if self.served and experiment.artifact_location.startswith("file:"):
            print(f"segmentlab: warning: experiment '{self.experiment}' on {mask_url(self.tracking_uri)} "
                  f"keeps artifacts at {experiment.artifact_location}, on the disk of whichever worker "
                  "logs them; name a new experiment (tracking.experiment=...) to keep them on the server",
                  file=sys.stderr)

    def new_artifact_location(self) -> str | None:
        """The artifact location a new experiment gets: None lets a server choose its own
        (``mlflow-artifacts:/``); a local folder becomes an absolute ``file://`` URI."""
        location = self.artifact_location
        if re.match(r"^[A-Za-z][\w+.-]+:", location or ""):  # a URI (s3://, mlflow-artifacts:/…)
            return location
        return None if self.served or not location else Path(location).resolve().as_uri()

    def _create_experiment(self):
        """Create the experiment; another worker creating it at the same moment is no error."""
        from mlflow.exceptions import MlflowException

        mlflow = _mlflow()
        try:
            mlflow.create_experiment(self.experiment, artifact_location=self.new_artifact_location(),
                                     tags=EXPERIMENT_KIND)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        return mlflow.get_experiment_by_name(self.experiment)

    @contextmanager
    def run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
            config: dict, overrides: list[str], resume_run_id: str | None = None) -> Iterator[str]:
        """A run (a study's parent run when tuning); ``resume_run_id`` continues an earlier one."""
        mlflow = _mlflow()
        self.check()
        all_tags = {**tags, **provenance_tags()}
        with mlflow.start_run(run_id=resume_run_id, run_name=None if resume_run_id else name,
                              tags=None if resume_run_id else all_tags) as active:
            if resume_run_id:
                mlflow.set_tags(all_tags)
                _log_new_params(resume_run_id, params)
            else:
                _log_params(params)
            mlflow.log_dict(config, "config.yaml")
            mlflow.log_text("\n".join(overrides) + "\n", "overrides.txt")
            mlflow.log_dict(package_versions(), "packages.json")
            yield active.info.run_id

    def log_data(self, dataset: Dataset) -> None:
        mlflow = _mlflow()
        mlflow.set_tags({"data_hash": dataset.data_hash, "data_source": dataset.source,
                         "data_cache_hit": str(dataset.cache_hit).lower()})
        ledger = dataset.ledger
        mlflow.log_metrics({"data/rows_in": ledger.rows_in, "data/rows_kept": ledger.rows_kept,
                            **{f"data/dropped_{k}": v for k, v in ledger.dropped.items()}})
        mlflow.log_dict(ledger.to_dict(), "data/cleaning_ledger.json")
        _log_table(mlflow, "cleaning_ledger", ledger.to_frame())
        if dataset.notes:
            mlflow.log_text("\n".join(dataset.notes) + "\n", "data/notes.txt")

    def log_features(self, features: FeatureResult) -> None:
        mlflow = _mlflow()
        mlflow.set_tags({"features_cache_hit": str(features.cache_hit).lower()})
        mlflow.log_metrics({**_finite(features.metrics), "features/n_columns": features.frame.shape[1],
                            "features/n_customers": features.frame.shape[0]})
        for name, table in features.tables.items():
            mlflow.log_text(table.to_csv(index=True), f"features/{name}.csv")

    def log_result(self, result: RunResult, config: dict | None = None) -> None:
        """Metrics, segment profile and labels, tables, plots; ``config`` is the effective config
        (after tuning, the best trial's), what ``segmentlab reproduce`` rebuilds."""
        mlflow = _mlflow()
        if config is not None:
            mlflow.log_dict(config, "config.yaml")
        mlflow.set_tags(result.tags)
        mlflow.log_metrics(_finite_or_nan(result.metrics))
        _log_table(mlflow, "profile", result.profile)
        mlflow.log_text(result.labels.to_csv(header=True), vocabulary.artifact("labels").path)
        for name, table in result.tables.items():
            _log_table(mlflow, name, table)
        for name, figure in result.figures.items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        for name, section in result.sections.items():
            mlflow.log_dict(dataclasses.asdict(section), vocabulary.artifact(name).path)
        from segmentlab.study.pyfunc import FramePredictor, log_pyfunc, model_examples

        for name, (model, method, example) in model_examples(result).items():
            log_pyfunc(name, FramePredictor(model, method), example)


    def register_model(self, name: str, model: Any, example: pd.DataFrame, config: dict,
                       data_hash: str, alias: str | None = None) -> str:
        """Log the deployable model (transactions in) and register it as a new version of ``name``,
        tagged with its config, git commit, data hash and package versions, and point ``alias``
        at it (``models:/name@alias``); return the version."""
        mlflow = _mlflow()
        from segmentlab.study.pyfunc import FramePredictor, log_pyfunc

        info = log_pyfunc("model", FramePredictor(model, "predict"), example, registered_name=name)
        client = mlflow.MlflowClient()
        version = str(info.registered_model_version)
        tags = {**provenance_tags(), "data_hash": data_hash, "run_id": mlflow.active_run().info.run_id,
                "packages": json.dumps(package_versions()), "config": _yaml(config)[:7500]}
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        if alias:
            client.set_registered_model_alias(name, alias, version)
        return version

    def log_skipped(self, stage: str, reason: str) -> None:
        """A stage that could not run on this data: a ``skipped/<stage>`` tag with the reason."""
        mlflow = _mlflow()
        mlflow.set_tags({f"skipped/{stage}": reason[:5000]})

    def log_report(self, html: str) -> None:
        """The study report as an artifact of the active run."""
        mlflow = _mlflow()
        mlflow.log_text(html, "report.html")

    def parent_of(self, study, name: str) -> str:
        """The study's one parent run in this store: the recorded one, or a new run named ``name``.

        Several workers starting together each create a candidate; the study user attribute
        ``mlflow_parent_run:<store>`` is claimed once (`workers.claim_study_attr`), and the
        losers delete their candidates and join the winner's run. A deleted parent is replaced
        the same way. Call `check` first.
        """
        from segmentlab.study.workers import claim_study_attr

        client = _mlflow().MlflowClient(self.tracking_uri)
        key = self._parent_key()
        current = study.user_attrs.get(key)
        if current and _active(client, current):
            return current
        candidate = client.create_run(self.experiment_id_, run_name=name,
                                      tags={"run_kind": "study", "study_name": study.study_name})
        holder = claim_study_attr(study, key, candidate.info.run_id, replace=current)
        if holder != candidate.info.run_id:
            client.delete_run(candidate.info.run_id)
        return holder

    def _parent_key(self) -> str:
        return f"mlflow_parent_run:{mask_url(self.tracking_uri)}"

    def link_study(self, study) -> None:
        """Mark the active run as the study's parent (unless the study has one already)."""
        from segmentlab.study.workers import claim_study_attr

        mlflow = _mlflow()
        claim_study_attr(study, self._parent_key(), mlflow.active_run().info.run_id)
        mlflow.set_tags({"study_name": study.study_name, "run_kind": "study"})

    def log_trial(self, trial, outcome, config: dict, replace: bool = False) -> str:
        """One child run of the active (study) run per trial: params, metrics (not the size of
        each segment, see `_SEGMENT_SIZE`), state, failure reason, config, labels.

        Written with the client in three store calls (create, one batch, end) and one upload of
        the texts to the run's artifact store: the fluent nested run took 0.25 s a trial on
        SQLite, a fifth of a K-means trial. (Writing it from a background thread was measured
        too: no more trials per minute on SQLite.)
        ``replace``: first delete the children already logged for this trial number — a worker
        killed while it logged a trial leaves a half-logged child run (RUNNING, tagged COMPLETE),
        and the worker that fails the trial as dead replaces it, so each trial has one child.
        """
        from mlflow.entities import Metric, Param
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        mlflow = _mlflow()
        parent = mlflow.active_run().info
        if replace:
            _delete_children_of_trial(parent.experiment_id, parent.run_id, trial.number)
        failed = outcome.failure is not None
        tags = {"run_kind": "trial", "trial_number": str(trial.number),
                "trial_state": "FAIL" if failed else "COMPLETE",
                **({"fail_reason": outcome.failure[:5000]} if failed else {}),
                MLFLOW_PARENT_RUN_ID: parent.run_id}
        client = mlflow.MlflowClient()
        child = client.create_run(parent.experiment_id, run_name=f"trial-{trial.number}", tags=tags)
        run_id, now = child.info.run_id, int(time.time() * 1000)
        params = [Param(k, _param_value(v)) for k, v in trial.params.items()]
        metrics = [Metric(k, v, now, 0) for k, v in _finite_or_nan(outcome.metrics).items()
                   if not _SEGMENT_SIZE.fullmatch(k)]
        for i in range(0, max(len(params), len(metrics), 1), _BATCH):  # MLflow's per-call limits
            client.log_batch(run_id, metrics=metrics[i:i + _BATCH], params=params[i:i + _BATCH])
        texts = {"config.yaml": _yaml(config)}
        if outcome.labels is not None:
            texts["segments/labels.csv"] = outcome.labels.to_csv(header=True)
        _write_artifacts(child.info.artifact_uri, client.tracking_uri, texts)
        client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        return run_id

    def log_progress(self, n_finished: int) -> None:
        mlflow = _mlflow()
        mlflow.log_metric("tuning/n_finished_trials", n_finished, step=n_finished)

    def log_study(self, study, best, metric_names: list[str], ran: int) -> None:
        """The best trial, the Pareto set and Optuna's plots on the parent run."""
        mlflow = _mlflow()
        import optuna.visualization as vis

        from segmentlab.study.tuning import counted

        mlflow.log_metrics({f"best/{m}": v for m, v in zip(metric_names, best.values, strict=True)})
        mlflow.log_metrics({"tuning/best_trial_number": best.number, "tuning/trials_this_invocation": ran})
        # Every worker ends on the same finished study, so these final counts agree whoever logs last.
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        n_counted = sum(counted(t) for t in finished)
        mlflow.log_metric("tuning/n_finished_trials", n_counted, step=n_counted)
        mlflow.log_metrics({"tuning/n_complete_trials": sum(t.state.name == "COMPLETE" for t in finished),
                            "tuning/n_interrupted_trials": sum(bool(t.user_attrs.get("interrupted"))
                                                               for t in finished)})
        mlflow.set_tags({"best_trial_number": str(best.number),
                         "best_trial_run_id": best.user_attrs.get("mlflow_run_id", "")})
        trials = study.trials_dataframe(attrs=("number", "state", "values", "params", "user_attrs"))
        _log_table(mlflow, "trials", trials)
        if len(metric_names) > 1:
            pareto = [{"number": t.number, **dict(zip(metric_names, t.values, strict=True)), **t.params}
                      for t in study.best_trials]
            _log_table(mlflow, "pareto", pd.DataFrame(pareto))
        for i, metric in enumerate(metric_names):
            target = (lambda t, i=i: t.values[i]) if len(metric_names) > 1 else None
            stem = metric.replace("/", "_")
            mlflow.log_figure(vis.plot_optimization_history(study, target=target, target_name=metric),
                              f"tuning/optimization_history_{stem}.html")
            complete = [t for t in study.trials if t.state.name == "COMPLETE"]
            if len(complete) >= 2 and len(best.params) >= 2:
                mlflow.log_figure(vis.plot_param_importances(study, target=target, target_name=metric),
                                  f"tuning/param_importances_{stem}.html")


def _write_artifacts(artifact_uri: str, tracking_uri: str, texts: Mapping[str, str]) -> None:
    """Upload ``{relative path: text}`` to a run's artifact location in one call (what
    ``log_text`` does per file, after reading the run back for its location)."""
    import tempfile

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    with tempfile.TemporaryDirectory(prefix="segmentlab-artifacts-") as folder:
        for name, text in texts.items():
            path = Path(folder, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        get_artifact_repository(artifact_uri, tracking_uri=tracking_uri).log_artifacts(folder)


def _delete_children_of_trial(experiment_id: str, parent_run_id: str, number: int) -> None:
    """Delete the child runs of ``parent_run_id`` already logged for trial ``number``."""
    client = _mlflow().MlflowClient()
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.trial_number = '{number}'")
    for run in found:
        client.delete_run(run.info.run_id)


def _active(client, run_id: str) -> bool:
    """Whether a run exists in this store and is not deleted."""
    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except Exception:  # deleted for good, or from another store
        return False


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
    mlflow = _mlflow()
    items = [(k, _param_value(v)) for k, v in params.items()]
    for i in range(0, len(items), _BATCH):
        mlflow.log_params(dict(items[i:i + _BATCH]))


def _log_new_params(run_id: str, params: Mapping[str, Any], attempts: int = 5) -> None:
    """Log the params a resumed run does not hold yet (MLflow params are immutable).

    Workers joining one parent run log at the same moment and may differ in a value or two that
    does not change the study (``cache_dir``): the first value logged stays. When another worker
    logs some of the params between our read and our write, the batch is refused; read again.
    """
    from mlflow.exceptions import MlflowException

    mlflow = _mlflow()
    for attempt in range(attempts):
        known = mlflow.get_run(run_id).data.params
        try:
            _log_params({k: v for k, v in params.items() if k not in known})
            return
        except MlflowException:
            if attempt == attempts - 1:
                raise


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return mask_url(text)[:_MAX_PARAM_CHARS]


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def _finite_or_nan(metrics: Mapping[str, float]) -> dict[str, float]:
    """MLflow stores NaN (an undefined metric) as such; None becomes NaN."""
    return {k: float("nan") if v is None else float(v) for k, v in metrics.items()}


def _log_table(mlflow, name: str, table: pd.DataFrame) -> None:
    """A table as CSV under its declared artifact path (`segmentlab.vocabulary.ARTIFACTS`)."""
    declared = vocabulary.artifact(name)
    mlflow.log_text(table.to_csv(index=declared.index), declared.path)


def _yaml(config: dict) -> str:
    """YAML text of a plain config, with libyaml's emitter when PyYAML has it (~10x faster)."""
    import yaml

    return yaml.dump(config, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
