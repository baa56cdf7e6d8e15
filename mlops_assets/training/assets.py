"""Assets of the `training` group: the competing models (tracked in MLflow) and their report."""

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field, ValidationError

from mlops_assets.core.candidates import Competition, Rows, compete, cross_validate, with_rounds
from mlops_assets.core.evaluation import Comparison, compute_metrics, decide, slice_metrics
from mlops_assets.core.families import BoosterModel, Model, family_of, load_model_file
from mlops_assets.core.features import feature_types, to_matrix
from mlops_assets.core.protocols import (
    Plan,
    TrainingDataError,
    assign_folds,
    check_holdout,
    check_labels,
    plan_for,
    resolve_settings,
)
from mlops_assets.core.report import ReportInputs, render_markdown, render_plots
from mlops_assets.core.storage import read_json, write_json_atomic
from mlops_assets.core.training import TrainParams
from mlops_assets.core.uncertainty import bootstrap_interval, fold_spread, paired_improvement
from mlops_assets.features.assets import SPLIT_COLUMN, training_set
from mlops_assets.features.feast_repo import FeastNames
from mlops_assets.model_registry.champion import ChampionInfo, ChampionRegistry
from mlops_assets.paths import PlatformPaths
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.spec import DatasetSpec, Family, Protocol
from mlops_assets.training.model_store import (
    ModelManifest,
    candidate_id,
    code_version,
    load_evaluation,
    load_manifest,
    load_model,
    save_model,
    save_statistics,
)
from mlops_assets.training.tracking import MlflowTracking

CANDIDATE, BASELINE = "candidate:", "baseline:"


class ModelConfig(dg.Config):
    """XGBoost hyperparameters, and one-run overrides of the spec's `training:` settings.

    The overrides default to None, meaning the spec's value: the spec is where training
    settings live; run config changes them for one run only.
    """

    learning_rate: float = Field(default=0.05, gt=0, le=1)
    max_depth: int = Field(default=6, ge=1, le=16)
    min_child_weight: float = Field(default=5.0, ge=0)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    max_rounds: int = Field(default=3_000, ge=1, le=20_000)
    early_stopping_rounds: int = Field(default=100, ge=1)
    protocol: str | None = Field(default=None, description="auto, cross_validation or holdout.")
    folds: int | None = Field(default=None, description="Cross-validation folds.")
    search_trials: int | None = Field(default=None, description="Random-search trials (0: off).")
    seed: int | None = None
    families: list[str] | None = Field(default=None, description="Candidate model families.")
    min_rows: int | None = Field(default=None, description="Refuse to train on fewer rows.")

    def overrides(self) -> dict[str, Any]:
        """The `training:` fields this run overrides."""
        names = ("protocol", "folds", "search_trials", "seed", "families", "min_rows")
        return {name: getattr(self, name) for name in names}

    def params(self, seed: int) -> TrainParams:
        """The core's XGBoost parameter object."""
        fields = TrainParams.__dataclass_fields__
        given = {k: v for k, v in self.model_dump().items() if k in fields and v is not None}
        return TrainParams(**{**given, "seed": seed})


@dg.asset(
    group_name="training",
    deps=[training_set],
    kinds={"xgboost", "scikitlearn", "mlflow"},
)
def model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    mlflow_tracking: MlflowTracking,
    dataset: DatasetSpecResource,
    home: MlopsHome,
) -> dg.MaterializeResult:
    """Candidate families compete on the same folds or split; the best is the challenger."""
    spec, paths = dataset.load(), home.paths()
    table, data_hash = _training_table(paths)
    plan, rows, layout = _prepare(table, spec, config, dataset.resolved_path())
    params = config.params(plan.settings.seed)
    service = FeastNames.for_spec(spec).service
    tags = {"dataset": spec.name, "data_hash": data_hash, "feature_service": service}
    with mlflow_tracking.run(context, experiment=spec.name, tags=tags) as tracker:
        competition = compete(rows, spec, plan, params, **layout)
        challenger = competition.challenger
        version = code_version()
        tracker.log_params(
            {
                **config.model_dump(),
                **plan.settings.model_dump(mode="json"),
                "protocol_used": str(plan.protocol),
                "family": str(challenger.family),
                "code_version": version,
                "data_hash": data_hash,
                "feature_service": service,
            }
        )
        tracker.log_metrics({f"score_{n}": c.score for n, c in competition.candidates.items()})
        for trial, result in enumerate(challenger.search):
            score = result.get("oof_score", result.get("validation_score"))
            tracker.log_metric("search_score", score, step=trial)
        model_uri = _log_model(tracker, challenger.model, spec)
        run_id = tracker.active_run().info.run_id
    manifest = ModelManifest(
        model_id=run_id,
        mlflow_run_id=run_id,
        mlflow_model_uri=model_uri,
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
        params=challenger.settings,
        validation_score=challenger.score,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        family=str(challenger.family),
        model_file=_model_file(challenger.model),
        evaluation=_evaluation_facts(plan, competition, len(rows.y)),
        candidates={
            n: {"score": c.score, "settings": c.settings} for n, c in competition.candidates.items()
        },
        imputation=read_json(paths.feature_statistics).get("imputation", {}),
    )
    folder = save_model(
        paths, challenger.model, manifest, spec, dataset.resolved_path(), _frame(competition)
    )
    save_statistics(paths.feature_statistics, folder)
    return dg.MaterializeResult(
        metadata={
            "model_id": run_id,
            "mlflow_run_id": run_id,
            "path": dg.MetadataValue.path(str(folder)),
            "family": str(challenger.family),
            "protocol": str(plan.protocol),
            "protocol_reason": plan.why,
            "candidate_scores": dg.MetadataValue.json(
                {n: c.score for n, c in competition.candidates.items()}
            ),
            "primary_metric": spec.gates.primary_metric,
            "settings": dg.MetadataValue.json(challenger.settings),
            "search_trials": plan.settings.search_trials,
            "data_hash": data_hash,
            "code_version": version,
            "feature_service": service,
            "rows": len(rows.y),
        }
    )


def _prepare(
    table: pd.DataFrame, spec: DatasetSpec, config: ModelConfig, spec_path: Path
) -> tuple[Plan, Rows, dict[str, np.ndarray]]:
    """Settings in force, the labelled rows, and their folds or split; refusals name the fix."""
    try:
        settings = resolve_settings(spec, config.overrides())
    except ValidationError as exc:
        problems = "; ".join(
            f"training.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise dg.Failure(
            description=f"invalid run config: {problems}", allow_retries=False
        ) from exc
    plan = plan_for(len(table), settings, spec_path)
    y = table[spec.target].to_numpy(dtype=np.float64)
    rows = Rows(to_matrix(table, spec), y, table[spec.entity_key].to_numpy())
    try:
        check_labels(y, spec, plan)
        if plan.protocol == Protocol.CROSS_VALIDATION:
            return plan, rows, {"folds": assign_folds(y, rows.groups, spec, plan)}
        split = table[SPLIT_COLUMN].to_numpy()
        check_holdout({n: y[split == n] for n in ("train", "validation", "test")}, spec, plan)
        return plan, rows, {"split": split}
    except TrainingDataError as exc:
        raise dg.Failure(description=f"training refused: {exc}", allow_retries=False) from exc


def _evaluation_facts(plan: Plan, competition: Competition, rows: int) -> dict[str, Any]:
    return {
        "protocol": str(plan.protocol),
        "why": plan.why,
        "folds": plan.settings.folds if plan.protocol == Protocol.CROSS_VALIDATION else None,
        "rows": rows,
        "evaluation_rows": len(competition.rows),
        "seed": plan.settings.seed,
        "winner": competition.winner,
    }


def _frame(competition: Competition) -> pd.DataFrame:
    """One row per evaluation row: position, fold, label, each candidate's and baseline's value."""
    columns: dict[str, Any] = {
        "row": competition.rows,
        "fold": competition.folds,
        "y": competition.y,
    }
    for name, candidate in competition.candidates.items():
        columns[CANDIDATE + name] = candidate.predictions
    for name, values in competition.baselines.items():
        columns[BASELINE + name] = values
    return pd.DataFrame(columns)


def _model_file(model: Model) -> str:
    from mlops_assets.core.families import MODEL_FILES

    return MODEL_FILES[family_of(model)]


@dg.asset(group_name="training", deps=[model], kinds={"mlflow", "markdown"})
def validation_report(
    mlflow_tracking: MlflowTracking, dataset: DatasetSpecResource, home: MlopsHome
) -> dg.MaterializeResult:
    """The estimate and its uncertainty; candidates, baselines and champion; the decision."""
    spec, paths = dataset.load(), home.paths()
    model_id = candidate_id(paths)
    manifest = load_manifest(paths, model_id)
    evaluation = load_evaluation(paths, model_id)
    table, data_hash = _training_table(paths)
    if data_hash != manifest.data_hash:
        raise dg.Failure(
            description="the training set changed since the model was trained: materialize model "
            "again so the report scores the rows the model was evaluated on",
            allow_retries=False,
        )
    y, folds = evaluation["y"].to_numpy(), evaluation["fold"].to_numpy()
    predicted = evaluation[CANDIDATE + manifest.family].to_numpy()
    metrics = {"model": compute_metrics(y, predicted, spec.task, spec.threshold)}
    for column in evaluation.columns:
        if column.startswith(CANDIDATE) and column != CANDIDATE + manifest.family:
            name = f"candidate {column.removeprefix(CANDIDATE)}"
            metrics[name] = compute_metrics(
                y, evaluation[column].to_numpy(), spec.task, spec.threshold
            )
    baselines = {
        c.removeprefix(BASELINE): compute_metrics(
            y, evaluation[c].to_numpy(), spec.task, spec.threshold
        )
        for c in evaluation.columns
        if c.startswith(BASELINE)
    }
    metrics.update(baselines)
    estimate = _estimate(y, predicted, folds, spec, manifest)
    client = mlflow_tracking.client()
    registry = ChampionRegistry(client, spec.name, paths)
    comparison = _champion_comparison(
        registry.champion(), model_id, table, evaluation, spec, paths, client, estimate
    )
    if comparison is not None:
        metrics[f"champion v{comparison.version}"] = comparison.champion
    decision = decide(
        metrics["model"], spec, baselines=_gate_baselines(metrics, baselines), champion=comparison
    )
    folder = paths.model_report(model_id)
    model_object = load_model(paths, model_id)
    plots = render_plots(folder, y, predicted, model_object.importance(), spec.task)
    rows = table.iloc[evaluation["row"].to_numpy()].reset_index(drop=True)
    report = ReportInputs(
        spec=spec,
        model_id=model_id,
        mlflow_run_id=manifest.mlflow_run_id,
        data_hash=manifest.data_hash,
        test_rows=len(evaluation),
        metrics=metrics,
        decision=decision,
        slices=slice_metrics(rows, y, predicted, spec),
        plots=[str(p) for p in plots],
        estimate=estimate,
    )
    markdown = render_markdown(report)
    (folder / "validation_report.md").write_text(markdown)
    write_json_atomic(
        {
            "model_id": model_id,
            "metrics": metrics,
            "estimate": estimate,
            "decision": decision.to_dict(),
        },
        folder / "decision.json",
    )
    for name, value in metrics["model"].items():
        client.log_metric(manifest.mlflow_run_id, f"estimate_{name}", value)
    client.log_artifacts(manifest.mlflow_run_id, str(folder), artifact_path="validation_report")
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(markdown),
            "model_id": model_id,
            "family": manifest.family,
            "promote": decision.promote,
            "reason": decision.reason,
            "gates_passed": decision.gates_passed,
            "estimate": dg.MetadataValue.json(estimate),
            "estimate_metrics": dg.MetadataValue.json(metrics["model"]),
            "plots": dg.MetadataValue.json([str(p) for p in plots]),
            **{f"estimate_{k}": v for k, v in metrics["model"].items()},
        }
    )


def _gate_baselines(
    metrics: dict[str, dict[str, float]], baselines: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """The baselines a challenger must beat: the constant one, and the linear model.

    A linear candidate that lost the ranking is still a baseline on the estimate's rows: on a
    holdout the ranking used the validation split, and the test split may disagree.
    """
    linear = metrics.get(f"candidate {Family.LINEAR}")
    return {**baselines, "linear": linear} if linear is not None else dict(baselines)


def _estimate(
    y: np.ndarray,
    predicted: np.ndarray,
    folds: np.ndarray,
    spec: DatasetSpec,
    manifest: ModelManifest,
) -> dict[str, Any]:
    """How the estimate was obtained and how sure it is."""
    facts = manifest.evaluation
    settings = spec.training
    primary = spec.gates.primary_metric
    interval = bootstrap_interval(
        y,
        predicted,
        primary,
        spec.task,
        settings.bootstrap_resamples,
        settings.confidence,
        int(facts.get("seed", settings.seed)),
        spec.threshold,
    )
    result = {
        **facts,
        "family": manifest.family,
        "primary_metric": primary,
        "value": interval.value,
        "interval": [interval.low, interval.high],
        "confidence": interval.level,
    }
    if facts.get("protocol") == Protocol.CROSS_VALIDATION:
        mean, spread = fold_spread(y, predicted, folds, primary, spec.task, spec.threshold)
        result.update(fold_mean=mean, fold_std=spread)
    return result


def _champion_comparison(
    champion: ChampionInfo | None,
    model_id: str,
    table: pd.DataFrame,
    evaluation: pd.DataFrame,
    spec: DatasetSpec,
    paths: PlatformPaths,
    client: Any,
    estimate: dict[str, Any],
) -> Comparison | None:
    """The champion scored on the challenger's evaluation rows, paired on small data."""
    if champion is None or champion.run_id == model_id:
        return None
    y = evaluation["y"].to_numpy()
    cross_validated = estimate.get("protocol") == Protocol.CROSS_VALIDATION
    predictions = _champion_predictions(
        champion, table, evaluation, spec, paths, client, cross_validated
    )
    metrics = compute_metrics(y, predictions, spec.task, spec.threshold)
    paired = None
    if cross_validated:
        mine = evaluation[CANDIDATE + estimate["family"]].to_numpy()
        interval = paired_improvement(
            y,
            mine,
            predictions,
            spec.gates.primary_metric,
            spec.task,
            spec.training.bootstrap_resamples,
            spec.training.confidence,
            int(estimate.get("seed", spec.training.seed)),
            spec.threshold,
        )
        paired = (interval.low, interval.high)
    return Comparison(metrics, champion.version, paired)


def _champion_predictions(
    champion: ChampionInfo,
    table: pd.DataFrame,
    evaluation: pd.DataFrame,
    spec: DatasetSpec,
    paths: PlatformPaths,
    client: Any,
    cross_validated: bool,
) -> np.ndarray:
    """What the champion gives on the same rows.

    Cross-validation: the champion's settings trained again on the same folds, so both are
    judged out-of-fold (its served model saw these rows). Holdout: the champion model itself on
    the test rows. A champion whose settings cannot be re-run here (no local copy, or other
    features) is scored with its model, which favours it: it can only make promotion harder.
    """
    local = paths.model(champion.run_id)
    manifest = load_manifest(paths, champion.run_id) if local.exists() else None
    if cross_validated and manifest is not None and manifest.features == spec.model_features:
        rows = Rows(
            to_matrix(table, spec),
            table[spec.target].to_numpy(dtype=np.float64),
            table[spec.entity_key].to_numpy(),
        )
        seed = int(manifest.evaluation.get("seed", spec.training.seed))
        settings = spec.training.model_copy(update={"seed": seed, "search_trials": 0})
        plan = Plan(Protocol.CROSS_VALIDATION, settings, "champion re-evaluated", "")
        params = with_rounds(TrainParams(), manifest.params)
        refit = cross_validate(
            manifest.family, rows, evaluation["fold"].to_numpy(), spec, plan, params, search=False
        )
        return refit.predictions
    features = manifest.features if manifest else list(spec.model_features)
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise dg.Failure(
            description=f"champion needs features {missing} that the training set lacks"
        )
    rows = table.iloc[evaluation["row"].to_numpy()]
    champion_model = _load_champion_model(paths, champion, client, spec, manifest)
    return champion_model.predict(to_matrix(rows, spec, columns=features))


def _load_champion_model(
    paths: PlatformPaths,
    champion: ChampionInfo,
    client: Any,
    spec: DatasetSpec,
    manifest: ModelManifest | None,
) -> Model:
    if manifest is not None:
        return load_model(paths, champion.run_id)
    if champion.tags.get("family") == Family.LINEAR:
        with tempfile.TemporaryDirectory() as folder:
            client.download_artifacts(champion.run_id, "model", folder)
            return load_model_file(Path(folder) / "model", Family.LINEAR)
    import mlflow

    return BoosterModel(mlflow.xgboost.load_model(f"models:/{spec.name}@champion"))


def read_decision(paths: PlatformPaths, model_id: str) -> dict:
    """The report's decision for a model (written by `validation_report`)."""
    path = paths.model_report(model_id) / "decision.json"
    if not path.exists():
        raise FileNotFoundError(
            f"model {model_id} has no validation report yet: materialize validation_report"
        )
    return read_json(path)


def _training_table(paths: PlatformPaths) -> tuple[pd.DataFrame, str]:
    path = paths.training_set
    if not path.exists():
        raise dg.Failure(description=f"no training set at {path}: materialize training_set first")
    statistics = read_json(paths.feature_statistics)
    return pd.read_parquet(path), str(statistics["content_hash"])


def _split(table: pd.DataFrame, spec: DatasetSpec, name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = table.loc[table[SPLIT_COLUMN] == name]
    return to_matrix(rows, spec), rows[spec.target].to_numpy(dtype=np.float64)


def _log_model(tracker: Any, model: Model, spec: DatasetSpec) -> str:
    """Log the winner; returns the URI the registry version points at.

    XGBoost: its MLflow flavour in XGBoost's own format, with an explicit signature and pinned
    requirements (inferring either costs seconds, and signature inference fails on categorical
    features). Linear: the JSON coefficients as a plain run artifact (no flavour, no pickle).
    """
    import mlflow

    if not isinstance(model, BoosterModel):
        from mlops_assets.core.families import save_model_file

        with tempfile.TemporaryDirectory() as folder:
            path = save_model_file(model, Path(folder), spec)
            tracker.log_artifact(str(path), artifact_path="model")
        return str(mlflow.get_artifact_uri("model"))
    import xgboost
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in spec.model_features]),
        outputs=Schema([ColSpec("double")]),
    )
    info = mlflow.xgboost.log_model(
        model.booster,
        name="model",
        signature=signature,
        pip_requirements=[f"xgboost=={xgboost.__version__}"],
        model_format="ubj",
    )
    return str(info.model_uri)
