"""Promotion of a candidate: register it, point `challenger` at it, move `champion` if it won.

The decision was made by the validation report; this only carries it out, through the
registry's compare-and-set (see `model_registry/champion.py`), and says what happened as
check outcomes the `promoted_model` asset records.
"""

from __future__ import annotations

from typing import Any

from mlops_assets.core.quality import CheckOutcome, Severity
from mlops_assets.model_registry.champion import ChampionInfo, ChampionRegistry
from mlops_assets.training.model_store import ModelManifest

PROMOTION_CHECKS = {
    "champion_passed_gates": "The model serving as champion passed every gate when it was "
    "promoted; blocks deployment when there is no such model.",
    "candidate_promoted": "Whether this candidate became champion "
    "(WARN when the champion was kept).",
}


def version_tags(manifest: ModelManifest, decision: dict[str, Any]) -> dict[str, str]:
    """The lineage and verdict written on the registered version."""
    return {
        "data_hash": manifest.data_hash,
        "feature_service": manifest.feature_service,
        "code_version": manifest.code_version,
        "gates_passed": str(decision["gates_passed"]).lower(),
        "family": manifest.family,
        "decision": decision["reason"][:500],
    }


def register_and_promote(
    registry: ChampionRegistry,
    manifest: ModelManifest,
    decision: dict[str, Any],
    metrics: dict[str, float],
) -> str:
    """Register the candidate, point `challenger` at it, and promote it if it won.

    Raises `PromotionConflict` when the champion moved since the report judged against it.
    """
    tags = version_tags(manifest, decision)
    version = registry.register(manifest.mlflow_model_uri, manifest.mlflow_run_id, tags)
    registry.set_challenger(version)
    if not decision["promote"]:
        registry.record_kept(version, decision["champion_version"], {"reason": decision["reason"]})
        return version
    record = {"model_id": manifest.model_id, "reason": decision["reason"], "metrics": metrics}
    registry.promote(version, decision["champion_version"], record)
    return version


def promotion_outcomes(
    champion: ChampionInfo | None, version: str, reason: str
) -> list[CheckOutcome]:
    """Whether a gated model serves, and whether this candidate became it."""
    promoted = champion is not None and champion.version == version
    return [
        CheckOutcome(
            "champion_passed_gates",
            champion is not None and champion.tags.get("gates_passed") == "true",
            Severity.ERROR,
            f"champion v{champion.version} passed its gates"
            if champion
            else "no model has passed the gates yet",
        ),
        CheckOutcome(
            "candidate_promoted",
            promoted,
            Severity.WARN,
            f"v{version} is champion" if promoted else f"champion kept; v{version}: {reason}",
        ),
    ]
