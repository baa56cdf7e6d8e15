"""The live decision: promote, reject or keep waiting for the staged challenger.

Runs after `live_performance` (asset `live_decision`), so each batch of labels that arrives
moves the decision on. The evidence is the one `live_performance` recorded; it counts only if
it speaks of the challenger the rollout file stages and of today's champion. The promotion
itself goes through the registry's compare-and-set under the promotion lock
(`live_rollout.promote_on_evidence`); a rejection ends the rollout and keeps the champion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.core.live_evidence import LiveEvidence, decide_on_evidence
from mlops_assets.deployment.live_rollout import (
    end_stale_rollout,
    promote_on_evidence,
    reject_on_evidence,
)
from mlops_assets.model_registry.audit import AuditChainBroken
from mlops_assets.model_registry.champion import ChampionRegistry, PromotionConflict
from mlops_assets.model_registry.rollout import read_rollout
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import DatasetSpec


@dataclass(frozen=True)
class LiveOutcome:
    """What the decision did: `promote`, `reject`, `wait` or `none` (nothing staged)."""

    action: str
    reason: str
    challenger: str | None = None
    champion: str | None = None


def decide_live(
    registry: ChampionRegistry,
    paths: PlatformPaths,
    spec_path: Path,
    spec: DatasetSpec,
    evidence: dict[str, Any],
) -> LiveOutcome:
    """Judge the staged challenger on `evidence` and carry the verdict out."""
    rollout = read_rollout(paths.rollout)
    staged = rollout.challenger_version
    if rollout.mode == "champion" or not staged:
        return LiveOutcome("none", "no challenger staged: the champion serves alone")
    champion = registry.reconcile()
    if champion is None:
        return LiveOutcome("none", "no champion to compare with", staged)
    if champion.version == staged:
        end_stale_rollout(paths, f"v{staged} is champion: serving it alone")
        return LiveOutcome("none", f"v{staged} is champion already", staged, champion.version)
    refusal = _undecidable(registry, spec, rollout.mode, staged, champion.version, evidence)
    if refusal is not None:
        return LiveOutcome(*refusal, staged, champion.version)
    found = LiveEvidence(**evidence)
    verdict = decide_on_evidence(found, spec.promotion)
    if verdict.action != "wait":
        record = {
            **_staged_facts(registry, staged),
            "reason": f"live evidence: {verdict.reason}",
            "evidence": found.as_record(),
        }
        _carry_out(verdict.action, registry, paths, spec_path, staged, champion.version, record)
    return LiveOutcome(verdict.action, verdict.reason, staged, champion.version)


def _undecidable(
    registry: ChampionRegistry,
    spec: DatasetSpec,
    mode: str,
    staged: str,
    champion: str,
    evidence: dict[str, Any],
) -> tuple[str, str] | None:
    """(action, reason) when the staged challenger cannot be decided on now, else None."""
    if not spec.promotion.live:
        return (
            "none",
            f"v{staged} in {mode} by hand; promotion.policy is offline, so nothing is decided "
            "on live evidence (set `promotion: {policy: live}` for that)",
        )
    if registry.version(staged).tags.get("gates_passed") != "true":
        return (
            "none",
            f"v{staged} did not pass the offline gates: it may be watched live, never promoted "
            "on live evidence",
        )
    if evidence.get("challenger") != staged or evidence.get("champion") != champion:
        return ("wait", f"no live evidence on v{staged} against champion v{champion} yet")
    return None


def _carry_out(
    action: str,
    registry: ChampionRegistry,
    paths: PlatformPaths,
    spec_path: Path,
    staged: str,
    champion: str,
    record: dict[str, Any],
) -> None:
    """Promote (under the promotion lock, compare-and-set) or reject the staged challenger."""
    if action == "reject":
        reject_on_evidence(registry, paths, staged, champion, record)
        return
    try:
        promote_on_evidence(registry, paths, spec_path, staged, champion, record)
    except (PromotionConflict, AuditChainBroken) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def _staged_facts(registry: ChampionRegistry, version: str) -> dict[str, Any]:
    """The model id and offline metrics recorded when `version` was staged."""
    for entry in reversed(registry.history()):
        if entry["action"] == "stage" and entry["version"] == version:
            return {k: entry[k] for k in ("model_id", "metrics") if k in entry}
    return {}  # staged by hand (`mlops rollout`), not by the pipeline
