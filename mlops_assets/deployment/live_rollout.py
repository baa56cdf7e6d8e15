"""Promotion on live evidence: stage a challenger, then promote or reject it.

With the spec's `promotion: {policy: live}`, a challenger that passed the offline gates is not
made champion. It is registered, given the `challenger` alias, exported into BentoML's store
(beside the champion, which `bento.json` keeps naming) and the rollout file is written, so the
service shadows it (or gives it a canary share). The history records it as `stage`.

The decision comes later from the labels (`core/live_evidence.py`, asset `live_decision`):

- promote: the `champion` alias moves through the registry's usual compare-and-set under the
  promotion lock, `bento.json` follows it, and the rollout goes back to champion-only (the new
  bento is then built by `deploy_job`);
- reject: the rollout goes back to champion-only first (the service stops scoring the
  challenger), the `challenger` alias is removed and the history records the champion as kept.

Each step is idempotent: a decision that dies half-way converges when it runs again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_assets.deployment.bento_export import (
    ExportedModel,
    export_champion,
    reconcile_export,
)
from mlops_assets.model_registry.champion import ChampionInfo, ChampionRegistry
from mlops_assets.model_registry.rollout import Rollout, RolloutError, read_rollout, write_rollout
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import PromotionPolicy

STAGED = "staged for live evidence"


def stage_challenger(
    registry: ChampionRegistry,
    challenger: ChampionInfo,
    champion_version: str,
    policy: PromotionPolicy,
    paths: PlatformPaths,
    spec_path: Path,
    record: dict[str, Any],
) -> tuple[ExportedModel, Rollout]:
    """Export `challenger` (the champion keeps `bento.json`), write the rollout, record it."""
    exported = export_champion(registry, challenger, paths, spec_path, pointer=False)
    canary = policy.stage == "canary"
    rollout = Rollout(
        mode=str(policy.stage),  # type: ignore[arg-type]  # validated: shadow or canary
        challenger_tag=exported.tag,
        challenger_version=challenger.version,
        share=policy.canary_share if canary else 0.0,
        reason=f"v{challenger.version} {STAGED} against champion v{champion_version}",
    )
    write_rollout(paths.rollout, rollout)
    registry.record_decision("stage", challenger.version, champion_version, record)
    return exported, rollout


def promote_on_evidence(
    registry: ChampionRegistry,
    paths: PlatformPaths,
    spec_path: Path,
    challenger: str,
    champion: str,
    record: dict[str, Any],
) -> ChampionInfo | None:
    """Make `challenger` champion (if `champion` still is), then serve it alone."""
    registry.promote(challenger, champion, record)
    new_champion, _ = reconcile_export(registry, paths, spec_path, always=True)
    _champion_only(paths, f"v{challenger} promoted on live evidence")
    return new_champion


def reject_on_evidence(
    registry: ChampionRegistry,
    paths: PlatformPaths,
    challenger: str,
    champion: str,
    record: dict[str, Any],
) -> None:
    """Stop serving `challenger`, drop its alias and record the champion as kept."""
    _champion_only(paths, f"v{challenger} rejected on live evidence")
    current = registry.challenger()
    if current is not None and current.version == challenger:
        registry.clear_challenger()
    registry.record_kept(challenger, champion, record)


def end_stale_rollout(paths: PlatformPaths, reason: str) -> None:
    """Serve the champion alone when the staged challenger is no longer one to judge."""
    _champion_only(paths, reason)


def _champion_only(paths: PlatformPaths, reason: str) -> None:
    try:
        serving_alone = read_rollout(paths.rollout).mode == "champion"
    except RolloutError:  # an unreadable file is replaced by the setting it should hold
        serving_alone = False
    if not serving_alone:
        write_rollout(paths.rollout, Rollout(reason=reason))
