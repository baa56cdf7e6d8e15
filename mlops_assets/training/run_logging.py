"""What a training run records on its MLflow run: settings, candidates' scores, report, model.

The MLflow resource that opens the run is shared by every stage (`model_registry/tracking.py`);
what is logged on it is training's own business.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlops_assets.core.candidates import Competition
from mlops_assets.core.families import BoosterModel, Model, save_model_file
from mlops_assets.spec import DatasetSpec


def log_training(tracker: Any, settings: dict[str, Any], competition: Competition) -> None:
    """The run's settings, the winner's family, every candidate's score and the search."""
    challenger = competition.challenger
    tracker.log_params({**settings, "family": str(challenger.family)})
    tracker.log_metrics({f"score_{n}": c.score for n, c in competition.candidates.items()})
    for trial, result in enumerate(challenger.search):
        score = result.get("oof_score", result.get("validation_score"))
        tracker.log_metric("search_score", score, step=trial)


def log_report(client: Any, run_id: str, folder: Path, estimate: dict[str, float]) -> None:
    """The estimate's metrics and the report's files, on the candidate's own MLflow run."""
    for name, value in estimate.items():
        client.log_metric(run_id, f"estimate_{name}", value)
    client.log_artifacts(run_id, str(folder), artifact_path="validation_report")


def log_model(tracker: Any, model: Model, spec: DatasetSpec) -> str:
    """Log the winner in the active MLflow run; returns the URI the registry version points at.

    XGBoost: its MLflow flavour in XGBoost's own format, with an explicit signature and pinned
    requirements (inferring either costs seconds, and signature inference fails on categorical
    features). Linear: the JSON coefficients as a plain run artifact (no flavour, no pickle).
    """
    import mlflow

    if not isinstance(model, BoosterModel):
        with tempfile.TemporaryDirectory() as folder:
            path = save_model_file(model, Path(folder), spec)
            tracker.log_artifact(str(path), artifact_path="model")
        return str(mlflow.get_artifact_uri("model"))
    import xgboost
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in spec.model_features]),
        # One probability per class for a multiclass model, named as the spec's categories.
        outputs=Schema([ColSpec("double", str(c)) for c in spec.classes] or [ColSpec("double")]),
    )
    info = mlflow.xgboost.log_model(
        model.booster,
        name="model",
        signature=signature,
        pip_requirements=[f"xgboost=={xgboost.__version__}"],
        model_format="ubj",
    )
    return str(info.model_uri)
