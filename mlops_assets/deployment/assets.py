"""Assets of the `deployment` group: the gated promotion of the candidate model."""

import subprocess
from collections.abc import Iterator
from typing import Any

import dagster as dg

from mlops_assets.asset_checks import blocking_failures, check_specs, to_check_result
from mlops_assets.core.quality import CheckOutcome
from mlops_assets.core.storage import read_json
from mlops_assets.deployment.bento_export import build_bento, reconcile_export
from mlops_assets.deployment.live_rollout import STAGED, stage_challenger
from mlops_assets.deployment.promotion import (
    PROMOTION_CHECKS,
    SUPERSEDED,
    no_gated_champion,
    promotion_outcomes,
    register_and_promote,
    superseded_reason,
)
from mlops_assets.errors import failing_clearly
from mlops_assets.handoff import upstream_metadata
from mlops_assets.model_registry.audit import AuditChainBroken, acting_as
from mlops_assets.model_registry.champion import (
    CHALLENGER,
    ChampionInfo,
    ChampionRegistry,
    PromotionConflict,
)
from mlops_assets.model_registry.model_store import load_manifest
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.paths import PlatformPaths
from mlops_assets.progress import reporter
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.spec import DatasetSpec


@dg.asset(
    group_name="deployment",
    # The online store must hold the features a new champion is served with (by key) first.
    deps=["validation_report", "online_features"],
    kinds={"mlflow"},
    check_specs=check_specs("promoted_model", PROMOTION_CHECKS, {"champion_passed_gates"}),
)
def promoted_model(
    context: dg.AssetExecutionContext,
    mlflow_tracking: MlflowTracking,
    dataset: DatasetSpecResource,
    home: MlopsHome,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The champion: the candidate if it passed its gates and the champion comparison."""
    spec, paths = dataset.load(), home.paths()
    report = upstream_metadata(context, "validation_report")
    model_id, decision = str(report["model_id"]), report["decision"]
    manifest = load_manifest(paths, model_id)
    registry = ChampionRegistry(mlflow_tracking.client(), spec.name, paths)
    with failing_clearly(
        f"promoting {model_id}",
        f"the model registry at {mlflow_tracking.redacted_uri()}",
        "The champion alias moves last and only under the promotion lock, so it still names "
        "a complete model; re-run promoted_model (each step is idempotent) once it is back.",
    ):
        try:
            with acting_as(f"dagster run {context.run.run_id} (promoted_model)"):
                version, outcome = register_and_promote(
                    registry,
                    manifest,
                    decision,
                    report["estimate_metrics"],
                    wait_for_live_evidence=spec.promotion.live,
                )
                staging = {}
                if outcome == "staged":
                    staging = _stage(registry, version, decision, report, spec, paths, dataset)
        except (PromotionConflict, AuditChainBroken) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
    champion = registry.champion()
    reason = f"{STAGED}: {decision['reason']}" if staging else decision["reason"]
    if outcome == SUPERSEDED and champion is not None:
        reason = superseded_reason(version, decision["champion_version"], champion.version)
    outcomes = promotion_outcomes(champion, version, reason, staging.get("mode", ""))
    if blocking_failures(outcomes):  # the run ends with the reason, not the check's name
        yield from reject_promotion(outcomes, champion, version, decision, paths, model_id)
    yield dg.MaterializeResult(
        metadata={
            "promoted": champion is not None and champion.version == version,
            "staged": bool(staging),
            "candidate_version": version,
            "champion_version": champion.version if champion else "none",
            "reason": reason,
            "model_id": model_id,
            "registered_model": spec.name,
            **staging,
        },
        check_results=[to_check_result(o) for o in outcomes],
    )


def reject_promotion(
    outcomes: list[CheckOutcome],
    champion: ChampionInfo | None,
    version: str,
    decision: dict[str, Any],
    paths: PlatformPaths,
    model_id: str,
) -> Iterator[dg.AssetCheckResult]:
    """Record the checks, then fail the step saying why nothing can be deployed."""
    for outcome in outcomes:
        yield to_check_result(outcome)
    report = str(paths.model_report(model_id))
    sentence = no_gated_champion(champion, version, decision["reason"], report)
    raise dg.Failure(description=sentence, allow_retries=False)


def _stage(
    registry: ChampionRegistry,
    version: str,
    decision: dict[str, Any],
    report: dict[str, Any],
    spec: DatasetSpec,
    paths: PlatformPaths,
    dataset: DatasetSpecResource,
) -> dict[str, Any]:
    """Stage the winner for live evidence; its rollout facts for the metadata."""
    challenger = registry.alias(CHALLENGER)
    if challenger is None or challenger.version != version:
        raise dg.Failure(description=f"challenger alias does not name v{version}: re-run")
    record = {
        "model_id": str(report["model_id"]),
        "reason": f"{STAGED} ({spec.promotion.stage}): {decision['reason']}",
        "metrics": report["estimate_metrics"],
    }
    exported, rollout = stage_challenger(
        registry,
        challenger,
        str(decision["champion_version"]),
        spec.promotion,
        paths,
        dataset.resolved_path(),
        record,
    )
    return {
        "mode": rollout.mode,
        "share": rollout.share,
        "challenger_tag": exported.tag,
        "rollout": dg.MetadataValue.path(str(paths.rollout)),
        "min_live_labels": spec.promotion.min_live_labels,
    }


@dg.asset(group_name="deployment", deps=[promoted_model], kinds={"bentoml"})
def bento_model(
    mlflow_tracking: MlflowTracking, dataset: DatasetSpecResource, home: MlopsHome
) -> dg.MaterializeResult:
    """The champion exported into BentoML's model store, labelled with its lineage."""
    spec, paths = dataset.load(), home.paths()
    registry = ChampionRegistry(mlflow_tracking.client(), spec.name, paths)
    champion, exported = reconcile_export(registry, paths, dataset.resolved_path(), always=True)
    if champion is None or exported is None:
        raise dg.Failure(description="no champion to export: no model has passed the gates yet")
    manifest = load_manifest(paths, champion.run_id)
    return dg.MaterializeResult(
        metadata={
            "model_tag": exported.tag,
            "created": exported.created,
            "path": dg.MetadataValue.path(exported.path),
            "mlflow_version": champion.version,
            "data_hash": manifest.data_hash[:16],
            "feature_service": manifest.feature_service,
        }
    )


@dg.asset(group_name="deployment", deps=[bento_model], kinds={"bentoml"})
def bento(context: dg.AssetExecutionContext, home: MlopsHome) -> dg.MaterializeResult:
    """`bentoml build` of bentos/, pinned to the exported champion; skipped when unchanged."""
    paths = home.paths()
    pointer = read_json(paths.bento_pointer)
    reporter(context)(f"bento: bentoml build of the service with model {pointer['model_tag']}")
    try:
        bento_built = build_bento(paths, pointer["model_tag"])
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        raise dg.Failure(description=str(exc)) from exc
    tag = bento_built.tag
    return dg.MaterializeResult(
        metadata={
            "bento_tag": tag,
            "build": "built" if bento_built.built else "skipped: unchanged",
            "model_tag": pointer["model_tag"],
            "model_version": pointer["model_version"],
            "bentoml_home": dg.MetadataValue.path(str(paths.bentoml_home)),
            "serve": f"BENTOML_HOME={paths.bentoml_home} bentoml serve {tag}",
        }
    )
