"""Promotion of a candidate: register it, point `challenger` at it, move `champion` if it won.

The decision was made by the validation report; this only carries it out, through the
registry's compare-and-set (see `model_registry/champion.py`), and says what happened as
check outcomes the `promoted_model` asset records.
"""

from __future__ import annotations

from typing import Any

from mlops_assets.core.quality import CheckOutcome, Severity
from mlops_assets.model_registry.champion import (
    ChampionInfo,
    ChampionRegistry,
    PromotionConflict,
)
from mlops_assets.model_registry.model_store import ModelManifest

SUPERSEDED = "superseded"
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
    *,
    wait_for_live_evidence: bool = False,
) -> tuple[str, str]:
    """Register the candidate, point `challenger` at it, and promote it if it won.

    Returns (version, outcome): `promoted`, `kept`, `staged` when it won but
    `wait_for_live_evidence` holds and there is a champion to be compared with live (the
    caller stages it; see `live_rollout.py`), or `superseded` when another run moved the
    champion after the report judged against it: the registry refuses the move, the refusal
    is recorded in the history, and the next run compares this version with the new champion.
    Two runs started together on one folder then both end, and exactly one of them promotes.
    """
    tags = version_tags(manifest, decision)
    version = registry.register(manifest.mlflow_model_uri, manifest.mlflow_run_id, tags)
    registry.set_challenger(version)
    if not decision["promote"]:
        registry.record_kept(version, decision["champion_version"], {"reason": decision["reason"]})
        return version, "kept"
    if wait_for_live_evidence and decision["champion_version"] is not None:
        return version, "staged"
    record = {"model_id": manifest.model_id, "reason": decision["reason"], "metrics": metrics}
    try:
        registry.promote(version, decision["champion_version"], record)
    except PromotionConflict as exc:
        champion = registry.champion()
        registry.record_kept(version, champion.version if champion else None, {"reason": str(exc)})
        return version, SUPERSEDED
    return version, "promoted"


def superseded_reason(version: str, evaluated_against: str | None, champion: str) -> str:
    """Why a winning candidate was not promoted: another run moved the champion first."""
    judged = f"v{evaluated_against}" if evaluated_against else "no champion"
    return (
        f"another run made v{champion} champion while v{version} was judged against {judged}; "
        f"a re-run judges its model against v{champion}"
    )


def promotion_outcomes(
    champion: ChampionInfo | None, version: str, reason: str, staged: str = ""
) -> list[CheckOutcome]:
    """Whether a gated model serves, and whether this candidate became it.

    `staged` names the rollout stage of a candidate that waits for live evidence.
    """
    promoted = champion is not None and champion.version == version
    if promoted:
        outcome = f"v{version} is champion"
    elif staged:
        outcome = f"v{version} staged for live evidence ({staged}); champion kept meanwhile"
    else:
        outcome = f"champion kept; v{version}: {reason}"
    return [
        CheckOutcome(
            "champion_passed_gates",
            champion is not None and champion.tags.get("gates_passed") == "true",
            Severity.ERROR,
            f"champion v{champion.version} passed its gates"
            if champion
            else "no model has passed the gates yet",
        ),
        CheckOutcome("candidate_promoted", promoted, Severity.WARN, outcome),
    ]


def no_gated_champion(champion: ChampionInfo | None, version: str, reason: str, report: str) -> str:
    """Why nothing can be deployed when no champion passed its gates, and what to do.

    The first model of a dataset that fails a gate (or its baselines) leaves nothing to serve:
    the run fails with this sentence rather than with the blocking check's bare name.
    """
    if champion is None:
        return (
            f"no model serves yet, because none has passed the gates: candidate v{version} was "
            f"not promoted ({reason}); read its report in {report}, then improve the data or "
            "its features, or relax the spec's `gates:` rules, and run again"
        )
    return (
        f"champion v{champion.version} carries no record of passing its gates, so it is not "
        "deployed: run again to train a model that passes them, or `mlops rollback` to the "
        "previous champion"
    )
