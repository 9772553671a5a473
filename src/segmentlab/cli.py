"""The command line: ``run.py`` (Hydra) calls `main`; the ``segmentlab`` command is `console`.

Thin by design: parse, assemble, call the study layer, turn known errors into one line and
exit status 2. Heavy modules are imported inside the commands that need them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from omegaconf import DictConfig

from segmentlab.config import ConfigError
from segmentlab.schema import DataError

DEFAULT_STORE = "sqlite:///outputs/mlflow.db"
DEFAULT_MODEL = "models:/segmentlab@champion"
#: What `segmentlab report` falls back to when ./configs cannot be read.
_REPORT_DEFAULTS = {"register_model": "segmentlab", "model_alias": "champion",
                    "objective": "cluster/silhouette"}


def main(cfg: DictConfig) -> float:
    """Run one experiment (one study with ``tuning=optuna``); bad input ends with exit status 2.

    The garbage collector is on during the run (``run.py`` turns it off while the libraries
    load); what start-up loaded is frozen out of its full passes, which would otherwise scan
    every module's objects again (``gc.freeze``). Only start-up: a sweep's later jobs freeze
    nothing of the jobs before them.
    """
    import gc

    from segmentlab.study.experiment import assemble
    from segmentlab.study.runner import run

    if not gc.isenabled():  # the first job of this process: start-up is over
        gc.freeze()
        gc.enable()

    logging.getLogger("gensim").setLevel(logging.WARNING)  # per-epoch INFO lines drown the summary
    try:
        return run(assemble(cfg, *_hydra_context()))
    except _known_errors() as e:
        print(f"segmentlab: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def exit_after(function: Callable[[], object]) -> NoReturn:
    """Call ``function``, then end the process with its exit status without Python's teardown.

    Freeing, one by one, the objects of a process that imported pandas, scikit-learn and SciPy
    takes ~0.6 s, a tenth of a warm run (median of 8 paired runs of the benchmark command).
    What a normal exit does first is still done, in its order: non-daemon threads are joined
    (with the executors' exit hooks), the ``atexit`` handlers run (logging flushes and closes its
    files, MLflow ends its runs, temporary folders are removed), stdout and stderr are flushed.
    Only the freeing, which the operating system does at once, is skipped. An exception other
    than ``SystemExit`` takes the normal way out (traceback, teardown).
    """
    import atexit
    import threading

    try:
        function()
        code = 0
    except SystemExit as e:
        code = e.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()  # private, what the interpreter itself calls first on exit (3.11-3.13)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head) or stream: nothing left to save
            pass
    os._exit(code)


def _known_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: printed as one line, exit status 2."""
    from segmentlab.study.tracking import TrackingError
    from segmentlab.study.tuning import TuningError

    return DataError, TrackingError, TuningError, ConfigError


def _hydra_context() -> tuple[dict[str, str], list[str]]:
    """Group choices and command-line overrides of the running Hydra job (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}, []
    hydra_cfg = HydraConfig.get()
    choices = {k: str(v) for k, v in hydra_cfg.runtime.choices.items() if v is not None}
    return choices, list(hydra_cfg.overrides.task)


def report(experiment: str, out: str, run_id: str | None, tracking_uri: str,
           model_name: str | None = None, alias: str | None = None, objective: str | None = None,
           all_data: bool = False, data: str | None = None) -> int:
    """Write the study report of an MLflow experiment as one self-contained HTML file.

    The model name, alias and objective default to the configured ones (`report_defaults`).
    """
    from segmentlab.study.report import study_html

    configured = report_defaults()
    data_hash = None
    if data is not None:
        from segmentlab.data.loading import OnlineRetailFile

        data_hash = OnlineRetailFile(data).fingerprint()
    html = study_html(experiment, tracking_uri, run_id,
                      model_name=model_name or configured["register_model"],
                      alias=configured["model_alias"] if alias is None else (alias or None),
                      objective=objective or configured["objective"], all_data=all_data,
                      data_hash=data_hash)
    _write(out, html)
    print(f"study report → {out} ({len(html) / 1e6:.1f} MB; open it in a browser, works offline)")
    return 0


def report_defaults(config_dir: str = "configs") -> dict[str, str]:
    """The registered model name and alias ``experiment=final`` uses and the run objective,
    read from the project's configs (``_REPORT_DEFAULTS`` when they cannot be read)."""
    from pathlib import Path

    folder = Path(config_dir).resolve()
    if not (folder / "experiment" / "final.yaml").exists():
        return dict(_REPORT_DEFAULTS)
    from hydra import compose, initialize_config_dir

    import segmentlab.config  # noqa: F401  (registers the typed settings with Hydra)

    try:
        with initialize_config_dir(config_dir=str(folder), version_base="1.3"):
            cfg = compose("config", overrides=["experiment=final"])
        found = {key: cfg.get(key) for key in _REPORT_DEFAULTS}
    except Exception:  # a config this command cannot compose: the documented defaults
        return dict(_REPORT_DEFAULTS)
    return {k: str(v) if v is not None else _REPORT_DEFAULTS[k] for k, v in found.items()}


def eda(data: str, out: str) -> int:
    """Write the exploratory report of a transactions file (default cleaning)."""
    from segmentlab.data.cleaning import TransactionCleaner
    from segmentlab.data.loading import OnlineRetailFile, load_dataset
    from segmentlab.reports.eda import eda_report

    source = OnlineRetailFile(data)
    dataset = load_dataset(source, TransactionCleaner(), cache_dir="outputs/cache")
    html = eda_report(dataset, raw=source.read())
    _write(out, html)
    print(f"EDA report → {out} ({len(html) / 1e6:.1f} MB; open it in a browser, works offline)")
    return 0


def _write(out: str, text: str) -> None:
    from pathlib import Path

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")


def console(argv: list[str] | None = None) -> int:
    """The ``segmentlab`` command."""
    import argparse

    parser = argparse.ArgumentParser(prog="segmentlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rep = commands.add_parser("reproduce", help="rebuild a logged run from its config and compare")
    rep.add_argument("run_id")
    pred = commands.add_parser("predict", help="segments for the customers in a transactions file")
    pred.add_argument("--model", default=DEFAULT_MODEL,
                      help=f"registered model or run model URI: {DEFAULT_MODEL} (default), "
                           "models:/segmentlab/latest, models:/segmentlab/3, runs:/ID/model")
    pred.add_argument("--transactions", required=True, help="a file in any supported layout")
    pred.add_argument("--out", required=True, help="CSV to write: one row per customer")
    dyn = commands.add_parser("dynamics", help="segment migrations and early warnings of a file")
    dyn.add_argument("--model", default="models:/segmentlab/latest",
                     help="registered model or run model URI (default models:/segmentlab/latest)")
    dyn.add_argument("--transactions", required=True, help="a file in any supported layout")
    dyn.add_argument("--out", required=True, help="CSV of early warnings: one row per warned customer")
    rec = commands.add_parser("recommend", help="product recommendations per customer of a file")
    rec.add_argument("--model", default="models:/segmentlab/latest",
                     help="registered model or run model URI (default models:/segmentlab/latest)")
    rec.add_argument("--transactions", required=True, help="a file in any supported layout")
    rec.add_argument("--k", type=int, default=10, help="products per customer (default 10)")
    rec.add_argument("--out", required=True, help="CSV: customer_id, rank, stock_code, description, "
                                                 "score, reason")
    rpt = commands.add_parser("report", help="interactive HTML report of a study (an MLflow experiment)")
    rpt.add_argument("--experiment", default="segmentlab")
    rpt.add_argument("--out", default="outputs/report.html")
    rpt.add_argument("--run", help="run to detail (default: the registered model's run, else the "
                                   "best by the objective among runs on the same data)")
    rpt.add_argument("--all-data", action="store_true",
                     help="compare runs on every data set, not only the detailed run's")
    rpt.add_argument("--data", help="report on the runs over this data file (by content hash)")
    rpt.add_argument("--model-name", help="registered model (default: register_model of "
                                          "experiment=final, segmentlab)")
    rpt.add_argument("--alias", help="registry alias of its run (default: model_alias, champion; "
                                     "'' for the latest version)")
    rpt.add_argument("--objective", help="metric that ranks runs when no registered model is on "
                                         "the data (default: the configured objective)")
    eda_cmd = commands.add_parser("eda", help="interactive HTML exploratory report of a data file")
    eda_cmd.add_argument("--data", required=True, help="a transactions file in any supported layout")
    eda_cmd.add_argument("--out", default="outputs/eda.html")
    for sub in (rep, pred, dyn, rec, rpt):
        sub.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_STORE),
                         help=f"MLflow store holding the run or model (default {DEFAULT_STORE})")
    args = parser.parse_args(argv)
    try:
        if args.command == "predict":
            from segmentlab.study.serving import predict

            return predict(args.model, args.transactions, args.out, args.tracking_uri)
        if args.command == "dynamics":
            from segmentlab.study.serving import dynamics

            return dynamics(args.model, args.transactions, args.out, args.tracking_uri)
        if args.command == "recommend":
            from segmentlab.study.serving import recommend

            return recommend(args.model, args.transactions, args.out, args.tracking_uri, args.k)
        if args.command == "report":
            return report(args.experiment, args.out, args.run, args.tracking_uri, args.model_name,
                          args.alias, args.objective, args.all_data, args.data)
        if args.command == "eda":
            return eda(args.data, args.out)
        from segmentlab.study.reproduce import reproduce

        return reproduce(args.run_id, args.tracking_uri)
    except _known_errors() as e:
        print(f"segmentlab: error: {e}", file=sys.stderr)
        return 2
