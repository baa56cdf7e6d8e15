"""Assets of the `training` group: the model (tracked in MLflow) and its validation report."""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from mlops_assets.automation.freshness import freshness_policy
from mlops_assets.core.baselines import baseline_predictions, fit_baselines
from mlops_assets.core.evaluation import compute_metrics, decide, slice_metrics
from mlops_assets.core.features import feature_types, to_matrix
from mlops_assets.core.report import ReportInputs, render_markdown, render_plots
from mlops_assets.core.storage import read_json, write_json_atomic
from mlops_assets.core.training import (
    TrainingDataError,
    TrainParams,
    predict,
    train,
    validate_training_data,
)
from mlops_assets.deployment.registry import ChampionRegistry
from mlops_assets.features.assets import SPLIT_COLUMN, training_set
from mlops_assets.features.feast_repo import FeastNames
from mlops_assets.monitoring.inputs import save_statistics
from mlops_assets.paths import PlatformPaths
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.spec import DatasetSpec
from mlops_assets.training.model_store import (
    ModelManifest,
    candidate_id,
    code_version,
    load_booster,
    load_manifest,
    models_dir,
    save_model,
)
from mlops_assets.training.tracking import MlflowTracking


class ModelConfig(dg.Config):
    """Hyperparameters (defaults suit tabular data of this size) and the optional search."""

    learning_rate: float = Field(default=0.05, gt=0, le=1)
    max_depth: int = Field(default=6, ge=1, le=16)
    min_child_weight: float = Field(default=5.0, ge=0)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    max_rounds: int = Field(default=3_000, ge=1, le=20_000)
    early_stopping_rounds: int = Field(default=100, ge=1)
    seed: int = 42
    search_trials: int = Field(default=0, ge=0, le=50, description="Random-search trials (0: off).")
    min_train_rows: int = Field(default=50, ge=2, description="Refuse to train on fewer rows.")

    def params(self) -> TrainParams:
        """The core's parameter object."""
        fields = TrainParams.__dataclass_fields__
        return TrainParams(**{k: v for k, v in self.model_dump().items() if k in fields})


@dg.asset(
    group_name="training",
    deps=[training_set],
    kinds={"xgboost", "mlflow"},
    freshness_policy=freshness_policy("model"),
)
def model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    mlflow_tracking: MlflowTracking,
    dataset: DatasetSpecResource,
    home: MlopsHome,
) -> dg.MaterializeResult:
    """An XGBoost model trained with early stopping, tracked and logged in MLflow."""
    spec, paths = dataset.load(), home.paths()
    table, data_hash = _training_table(paths)
    splits = {name: _split(table, spec, name) for name in ("train", "validation", "test")}
    try:
        validate_training_data(
            splits["train"][1], splits["validation"][1], spec, config.min_train_rows
        )
    except TrainingDataError as exc:
        raise dg.Failure(description=f"training refused: {exc}", allow_retries=False) from exc
    service = FeastNames.for_spec(spec).service
    tags = {"dataset": spec.name, "data_hash": data_hash, "feature_service": service}
    with mlflow_tracking.run(context, experiment=spec.name, tags=tags) as tracker:
        trained = train(
            *splits["train"], *splits["validation"], spec, config.params(), config.search_trials
        )
        baselines = fit_baselines(*splits["train"], spec)
        x_test, y_test = splits["test"]
        baseline_metrics = {
            name: compute_metrics(y_test, predicted, spec.task, spec.threshold)
            for name, predicted in baseline_predictions(baselines, x_test, spec).items()
        }
        version = code_version()
        tracker.log_params(
            {
                **config.model_dump(),
                "code_version": version,
                "data_hash": data_hash,
                "feature_service": service,
            }
        )
        tracker.log_metrics(
            {"validation_score": trained.validation_score, "best_iteration": trained.best_iteration}
        )
        for trial, result in enumerate(trained.search):
            tracker.log_metric("search_validation_score", result["validation_score"], step=trial)
        info = _log_booster(tracker, trained.booster, spec)
        run_id = tracker.active_run().info.run_id
    manifest = ModelManifest(
        model_id=run_id,
        mlflow_run_id=run_id,
        mlflow_model_uri=info.model_uri,
        dataset=spec.name,
        spec_version=spec.version,
        task=str(spec.task),
        target=spec.target,
        features=list(spec.model_features),
        feature_types=feature_types(spec),
        categories={c: list(spec.column(c).categories or ()) for c in spec.categorical_columns},
        feature_service=service,
        data_hash=data_hash,
        code_version=version,
        params=dict(trained.params.__dict__),
        best_iteration=trained.best_iteration,
        validation_score=trained.validation_score,
        baseline_test_metrics=baseline_metrics,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        imputation=read_json(paths.root / "training" / "feature_statistics.json").get(
            "imputation", {}
        ),
    )
    folder = save_model(paths, trained.booster, manifest, dataset.resolved_path())
    save_statistics(paths.root / "training" / "feature_statistics.json", folder)
    return dg.MaterializeResult(
        metadata={
            "model_id": run_id,
            "mlflow_run_id": run_id,
            "path": dg.MetadataValue.path(str(folder)),
            "best_iteration": trained.best_iteration,
            "validation_score": trained.validation_score,
            "search_trials": config.search_trials,
            "data_hash": data_hash,
            "code_version": version,
            "feature_service": service,
            "train_rows": len(splits["train"][1]),
        }
    )


@dg.asset(group_name="training", deps=[model], kinds={"mlflow", "markdown"})
def validation_report(
    mlflow_tracking: MlflowTracking, dataset: DatasetSpecResource, home: MlopsHome
) -> dg.MaterializeResult:
    """Test metrics against baselines and the champion, gates, slices and plots."""
    spec, paths = dataset.load(), home.paths()
    model_id = candidate_id(paths)
    manifest = load_manifest(paths, model_id)
    table, _ = _training_table(paths)
    test = table.loc[table[SPLIT_COLUMN] == "test"].reset_index(drop=True)
    x_test, y_test = to_matrix(test, spec), test[spec.target].to_numpy(dtype=np.float64)
    booster = load_booster(paths, model_id)
    predicted = predict(booster, x_test)
    metrics = {
        "model": compute_metrics(y_test, predicted, spec.task, spec.threshold),
        **manifest.baseline_test_metrics,
    }
    client = mlflow_tracking.client()
    registry = ChampionRegistry(client, spec.name, paths)
    champion = registry.champion()
    champion_metrics = None
    if champion is not None and champion.run_id != model_id:
        champion_metrics = compute_metrics(
            y_test,
            _champion_predictions(paths, champion.run_id, client, test, spec),
            spec.task,
            spec.threshold,
        )
        metrics[f"champion v{champion.version}"] = champion_metrics
    decision = decide(
        metrics["model"],
        champion_metrics,
        spec,
        champion.version if champion and champion_metrics else None,
    )
    folder = models_dir(paths) / model_id / "report"
    importance = booster.get_score(importance_type="total_gain")
    plots = render_plots(folder, y_test, predicted, importance, spec.task)
    report = ReportInputs(
        spec=spec,
        model_id=model_id,
        mlflow_run_id=manifest.mlflow_run_id,
        data_hash=manifest.data_hash,
        test_rows=len(test),
        metrics=metrics,
        decision=decision,
        slices=slice_metrics(test, y_test, predicted, spec),
        plots=[str(p) for p in plots],
    )
    markdown = render_markdown(report)
    (folder / "validation_report.md").write_text(markdown)
    write_json_atomic(
        {"model_id": model_id, "metrics": metrics, "decision": decision.to_dict()},
        folder / "decision.json",
    )
    for name, value in metrics["model"].items():
        client.log_metric(manifest.mlflow_run_id, f"test_{name}", value)
    client.log_artifacts(manifest.mlflow_run_id, str(folder), artifact_path="validation_report")
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(markdown),
            "model_id": model_id,
            "promote": decision.promote,
            "reason": decision.reason,
            "gates_passed": decision.gates_passed,
            "test_metrics": dg.MetadataValue.json(metrics["model"]),
            "plots": dg.MetadataValue.json([str(p) for p in plots]),
            **{f"test_{k}": v for k, v in metrics["model"].items()},
        }
    )


def read_decision(paths: PlatformPaths, model_id: str) -> dict:
    """The report's decision for a model (written by `validation_report`)."""
    path = models_dir(paths) / model_id / "report" / "decision.json"
    if not path.exists():
        raise FileNotFoundError(
            f"model {model_id} has no validation report yet: materialize validation_report"
        )
    return read_json(path)


def _training_table(paths: PlatformPaths) -> tuple[pd.DataFrame, str]:
    path = paths.root / "training" / "training_set.parquet"
    if not path.exists():
        raise dg.Failure(description=f"no training set at {path}: materialize training_set first")
    statistics = read_json(paths.root / "training" / "feature_statistics.json")
    return pd.read_parquet(path), str(statistics["content_hash"])


def _split(table: pd.DataFrame, spec: DatasetSpec, name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = table.loc[table[SPLIT_COLUMN] == name]
    return to_matrix(rows, spec), rows[spec.target].to_numpy(dtype=np.float64)


def _log_booster(tracker, booster, spec: DatasetSpec):
    """Log in XGBoost's own format with an explicit signature and pinned requirements.

    Inferring either costs seconds, and signature inference fails on categorical features.
    """
    import mlflow
    import xgboost
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in spec.model_features]),
        outputs=Schema([ColSpec("double")]),
    )
    return mlflow.xgboost.log_model(
        booster,
        name="model",
        signature=signature,
        pip_requirements=[f"xgboost=={xgboost.__version__}"],
        model_format="ubj",
    )


def _champion_predictions(
    paths, run_id: str, client, test: pd.DataFrame, spec: DatasetSpec
) -> np.ndarray:
    """The champion's predictions on the same test rows (its own feature order)."""
    if (models_dir(paths) / run_id).exists():
        booster, features = load_booster(paths, run_id), load_manifest(paths, run_id).features
    else:
        import mlflow

        booster = mlflow.xgboost.load_model(f"models:/{spec.name}@champion")
        features = list(booster.feature_names or spec.model_features)
    missing = [f for f in features if f not in test.columns]
    if missing:
        raise dg.Failure(
            description=f"champion needs features {missing} that the training set lacks"
        )
    return predict(booster, to_matrix(test, spec, columns=features))
