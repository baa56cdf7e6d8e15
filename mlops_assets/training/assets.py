"""Assets of the `training` group: the competing models (tracked in MLflow) and their report.

Thin shells: the work is in `candidate.py` (train) and `validation.py` (evaluate, decide).
The candidate travels between the assets in their own metadata (`handoff.py`).
"""

from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from mlops_assets.core.candidates import Competition
from mlops_assets.core.explanations import sampled_importance
from mlops_assets.core.families import Model
from mlops_assets.core.features import to_matrix
from mlops_assets.core.splits import ENTITY_HASH
from mlops_assets.core.storage import read_json
from mlops_assets.core.training import Hyperparameters, TrainParams
from mlops_assets.features.feast_repo import FeastNames
from mlops_assets.handoff import upstream_metadata
from mlops_assets.model_registry.champion import ChampionRegistry
from mlops_assets.model_registry.model_store import (
    ModelManifest,
    code_version,
    load_evaluation,
    load_json,
    load_manifest,
    load_model,
    save_model,
    save_statistics,
)
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.paths import PlatformPaths
from mlops_assets.progress import reporter
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.spec import DatasetSpec, Protocol
from mlops_assets.training.candidate import (
    Prepared,
    TrainingFacts,
    TrainingRefused,
    build_manifest,
    evaluation_frame,
    prepare,
    train_candidate,
)
from mlops_assets.training.engine import (
    IN_PROCESS,
    Engine,
    EngineUnreachable,
    TrainingEngine,
)
from mlops_assets.training.federated import (
    SITES_FILE,
    champion_for_sites,
    federated_booster,
    federated_manifest,
    model_documents,
    no_rows,
)
from mlops_assets.training.run_logging import log_model, log_report, log_training
from mlops_assets.training.validation import (
    ChampionNotComparable,
    ChampionSource,
    evaluate_candidate,
    evaluate_federated,
    is_federated,
    save_report,
)


class ModelConfig(dg.Config, Hyperparameters):
    """XGBoost hyperparameters and one-run overrides of the spec's `training:` settings.

    The hyperparameters are inherited from `Hyperparameters`, their one definition. The
    overrides default to None, meaning the spec's value: the spec is where training settings
    live; run config changes them for one run only.
    """

    protocol: str | None = Field(
        default=None,
        description="auto, time_ordered, backtest, latest_period, cross_validation or holdout.",
    )
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
        """The core's XGBoost parameters: these hyperparameters and the seed in force."""
        return TrainParams(**self.model_dump(include=set(Hyperparameters.model_fields)), seed=seed)


@dg.asset(group_name="training", deps=["training_set"], kinds={"xgboost", "scikitlearn", "mlflow"})
def model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    mlflow_tracking: MlflowTracking,
    dataset: DatasetSpecResource,
    home: MlopsHome,
    training_engine: TrainingEngine,
) -> dg.MaterializeResult:
    """Candidate families compete on the same folds or split; the best is the challenger.

    With `training.federated` in the spec, the sites train one XGBoost model instead, each in
    its own process on its own rows (see `_federated_model`).
    """
    spec, paths = dataset.load(), home.paths()
    if spec.training.federated is not None:
        return _federated_model(context, config, mlflow_tracking, dataset, paths)
    table, data_hash = _training_table(paths)
    split_method = str(read_json(paths.feature_statistics).get("split_method", ENTITY_HASH))
    try:
        prepared = prepare(table, spec, config.overrides(), dataset.resolved_path(), split_method)
    except TrainingRefused as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    plan, service = prepared.plan, FeastNames.for_spec(spec).service
    tags = {"dataset": spec.name, "data_hash": data_hash, "feature_service": service}
    say = reporter(context)
    say(f"model: {len(prepared.rows.y):,} labelled rows, {plan.protocol} ({plan.why})")
    try:
        with training_engine.connect() as engine:
            if engine.fit is not None:
                say(f"model: XGBoost trains {_where(engine.description, plan.protocol)}")
            competition, run_id, model_uri = _train_tracked(
                context, config, mlflow_tracking, prepared, spec, tags, engine
            )
    except EngineUnreachable as exc:  # raised before anything is tracked: nothing to undo
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    challenger, version = competition.challenger, code_version()
    imputation = read_json(paths.feature_statistics).get("imputation", {})
    facts = TrainingFacts(run_id, model_uri, data_hash, version, service, imputation)
    manifest = build_manifest(spec, prepared, competition, facts)
    frame = evaluation_frame(competition)
    folder = save_model(paths, challenger.model, manifest, spec, dataset.resolved_path(), frame)
    save_statistics(paths.feature_statistics, folder)
    return dg.MaterializeResult(
        metadata={
            "model_id": run_id,
            "mlflow_run_id": run_id,
            "path": dg.MetadataValue.path(str(folder)),
            "family": manifest.family,
            "protocol": str(plan.protocol),
            "protocol_reason": plan.why,
            "training_engine": engine.description,
            "candidate_scores": dg.MetadataValue.json(
                {n: c.score for n, c in competition.candidates.items()}
            ),
            "primary_metric": spec.gates.primary_metric,
            "settings": dg.MetadataValue.json(challenger.settings),
            "search_trials": plan.settings.search_trials,
            "data_hash": data_hash,
            "code_version": version,
            "feature_service": service,
            "rows": len(prepared.rows.y),
        }
    )


def _federated_model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    mlflow_tracking: MlflowTracking,
    dataset: DatasetSpecResource,
    paths: PlatformPaths,
) -> dg.MaterializeResult:
    """Train across the spec's sites; save the model as central training would, with their metrics.

    The current champion goes to the sites too, so they score both on the same test rows; if
    any site refuses its data or fails, the step fails naming it and nothing is saved.
    """
    from mlops_assets.federated.coordinator import FederatedRunFailed, train_federated

    spec = dataset.load()
    settings = spec.training.federated
    assert settings is not None
    params = config.params(config.seed if config.seed is not None else spec.training.seed)
    client, say = mlflow_tracking.client(), reporter(context)
    service = FeastNames.for_spec(spec).service
    say(f"model: federated training across sites {', '.join(settings.sites)}")
    try:
        champion = champion_for_sites(ChampionRegistry(client, spec.name, paths).champion(), paths)
        result = train_federated(spec, settings, params, paths.federated_run, say, champion)
    except (FederatedRunFailed, TrainingRefused) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    booster, version = federated_booster(result), code_version()
    tags = {"dataset": spec.name, "data_hash": result.data_hash, "feature_service": service}
    with mlflow_tracking.run(context, experiment=spec.name, tags=tags) as tracker:
        tracker.log_params(
            {**params.model_dump(), "protocol_used": "federated", "sites": ",".join(settings.sites)}
        )
        tracker.log_metrics({f"federated_{k}": v for k, v in result.pooled.items()})
        model_uri = log_model(tracker, booster, spec)
        run_id = tracker.active_run().info.run_id
    facts = TrainingFacts(run_id, model_uri, result.data_hash, version, service, result.imputation)
    manifest = federated_manifest(spec, result, facts, params.model_dump())
    documents = model_documents(spec, result, champion, service)
    folder = save_model(
        paths, booster, manifest, spec, dataset.resolved_path(), no_rows(), documents
    )
    return dg.MaterializeResult(
        metadata={
            "model_id": run_id,
            "mlflow_run_id": run_id,
            "path": dg.MetadataValue.path(str(folder)),
            "family": manifest.family,
            "protocol": "federated",
            "protocol_reason": manifest.evaluation["why"],
            "sites": dg.MetadataValue.json(manifest.evaluation["sites"]),
            "pooled_metrics": dg.MetadataValue.json(result.pooled),
            "primary_metric": spec.gates.primary_metric,
            "seconds": round(result.seconds, 1),
            "data_hash": result.data_hash,
            "code_version": version,
            "feature_service": service,
            "rows": manifest.evaluation["rows"],
        }
    )


@dg.asset(group_name="training", deps=[model], kinds={"mlflow", "markdown"})
def validation_report(
    context: dg.AssetExecutionContext,
    mlflow_tracking: MlflowTracking,
    dataset: DatasetSpecResource,
    home: MlopsHome,
) -> dg.MaterializeResult:
    """The estimate and its uncertainty; candidates, baselines and champion; the decision."""
    spec, paths = dataset.load(), home.paths()
    model_id = str(upstream_metadata(context, "model")["model_id"])
    manifest = load_manifest(paths, model_id)
    evaluation = load_evaluation(paths, model_id)
    client = mlflow_tracking.client()
    champion = ChampionRegistry(client, spec.name, paths).champion()
    try:
        if is_federated(manifest):  # the sites scored it; no row is here to score again
            record = load_json(paths, model_id, SITES_FILE)
            validation = evaluate_federated(manifest, record, spec, champion)
            rows = evaluation.iloc[:0]
        else:
            table, data_hash = _training_table(paths)
            if data_hash != manifest.data_hash:
                raise dg.Failure(
                    description="the training set changed since the model was trained: "
                    "materialize model again so the report scores the rows the model was "
                    "evaluated on",
                    allow_retries=False,
                )
            source = ChampionSource(champion, paths, client) if champion else None
            validation = evaluate_candidate(manifest, evaluation, table, spec, source)
            rows = table.iloc[evaluation["row"].to_numpy()].reset_index(drop=True)
    except ChampionNotComparable as exc:
        raise dg.Failure(description=str(exc)) from exc
    metrics, decision = validation.metrics, validation.decision
    folder = paths.model_report(model_id)
    importance, title = _importance(load_model(paths, model_id), rows, manifest, spec)
    markdown, plots = save_report(folder, validation, manifest, rows, importance, spec, title)
    log_report(client, manifest.mlflow_run_id, folder, metrics["model"])
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(markdown),
            "model_id": model_id,
            "family": manifest.family,
            "promote": decision.promote,
            "reason": decision.reason,
            "gates_passed": decision.gates_passed,
            "decision": dg.MetadataValue.json(decision.to_dict()),
            "estimate": dg.MetadataValue.json(validation.estimate),
            "estimate_metrics": dg.MetadataValue.json(metrics["model"]),
            "plots": dg.MetadataValue.json([str(p) for p in plots]),
            "importance": dg.MetadataValue.json({k: round(v, 6) for k, v in importance.items()}),
            **{f"estimate_{k}": v for k, v in metrics["model"].items()},
        }
    )


def _importance(
    model: Model, rows: pd.DataFrame, manifest: ModelManifest, spec: DatasetSpec
) -> tuple[dict[str, float], str]:
    """Mean |contribution| over the evaluation rows, else the model's own measure.

    The model's own measure (gain, or coefficient size) when no rows are here (federated) or
    the contributions would be per class (multiclass).
    """
    if rows.empty or spec.task.is_multiclass:
        return model.importance(), "Feature importance (the model's own measure)"
    matrix = to_matrix(rows, spec, list(manifest.features))
    importance, used = sampled_importance(model, matrix, list(manifest.features))
    return importance, f"Global importance: mean |contribution| over {used:,} evaluation rows"


def _train_tracked(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    mlflow_tracking: MlflowTracking,
    prepared: Prepared,
    spec: DatasetSpec,
    tags: dict[str, str],
    engine: Engine,
) -> tuple[Competition, str, str]:
    """The competition inside its MLflow run: settings, scores and the winner logged there."""
    plan = prepared.plan
    with mlflow_tracking.run(context, experiment=spec.name, tags=tags) as tracker:
        params = config.params(plan.settings.seed)
        competition = train_candidate(prepared, spec, params, reporter(context), engine.fit)
        settings = {
            **config.model_dump(),
            **plan.settings.model_dump(mode="json"),
            "protocol_used": str(plan.protocol),
            "training_engine": engine.description,
            "code_version": code_version(),
            "data_hash": tags["data_hash"],
            "feature_service": tags["feature_service"],
        }
        log_training(tracker, settings, competition)
        model_uri = log_model(tracker, competition.challenger.model, spec)
        return competition, tracker.active_run().info.run_id, model_uri


def _where(engine: str, protocol: Protocol) -> str:
    """Where the boosters train: cross-validation's small fits always stay in this process."""
    if protocol.folded:
        return f"{IN_PROCESS} ({protocol}'s small fits; the {engine} trains holdout fits)"
    return f"on the {engine}"


def _training_table(paths: PlatformPaths) -> tuple[pd.DataFrame, str]:
    path = paths.training_set
    if not path.exists():
        raise dg.Failure(description=f"no training set at {path}: materialize training_set first")
    statistics = read_json(paths.feature_statistics)
    return pd.read_parquet(path), str(statistics["content_hash"])
