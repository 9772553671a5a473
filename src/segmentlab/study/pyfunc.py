"""Segmentlab models as MLflow pyfunc models: logging them with a signature, loading them back."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import pandas as pd

from segmentlab.study.provenance import package_versions
from segmentlab.study.tracking import TrackingError

if TYPE_CHECKING:
    from segmentlab.study.results import RunResult


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
