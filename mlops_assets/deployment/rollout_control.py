"""Starting, changing and ending a rollout of the challenger (`mlops rollout ...`).

A rollout names a registered version (by default the registry's `challenger` alias: the newest
candidate, promoted or not), exports it to BentoML's store beside the champion if it is not
there yet, and writes the rollout file the running service rereads within a second. Ending it
(`mlops rollout off`) writes champion-only: the rollback is one command and no restart.

Refused with a message: a version that does not exist, the champion itself (nothing to roll
out), a canary of a version that did not pass the offline gates (a shadow is harmless, an
answer is not), and a share outside (0, 1) (the `Rollout` model's own validation).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from mlops_assets.deployment.bento_export import export_champion
from mlops_assets.model_registry.champion import CHALLENGER, ChampionInfo, ChampionRegistry
from mlops_assets.model_registry.rollout import (
    Rollout,
    RolloutError,
    read_rollout,
    write_rollout,
)
from mlops_assets.paths import PlatformPaths


def start_rollout(
    registry: ChampionRegistry,
    paths: PlatformPaths,
    spec_path: Path,
    mode: str,
    *,
    share: float = 0.0,
    version: str | None = None,
    reason: str = "",
) -> Rollout:
    """Roll `version` (default: the challenger alias) out in `mode`; returns what was written."""
    challenger = _version(registry, version)
    champion = registry.champion()
    if champion is not None and champion.version == challenger.version:
        raise RolloutError(
            f"v{challenger.version} is the champion already: nothing to roll out (train a new "
            "candidate with `mlops run`, or name another with --version)"
        )
    if mode == "canary" and challenger.tags.get("gates_passed") != "true":
        raise RolloutError(
            f"v{challenger.version} did not pass the offline gates: it may shadow the champion "
            f"(`mlops rollout shadow --version {challenger.version}`) but not answer traffic"
        )
    try:
        rollout = Rollout(
            mode=mode,
            challenger_tag="pending",  # validated before the export, which writes to the store
            challenger_version=challenger.version,
            share=share,
            reason=reason,
        )
    except ValidationError as error:
        raise RolloutError(_problems(error)) from None
    exported = export_champion(registry, challenger, paths, spec_path, pointer=False)
    rollout = rollout.model_copy(update={"challenger_tag": exported.tag})
    write_rollout(paths.rollout, rollout)
    return rollout


def stop_rollout(paths: PlatformPaths, reason: str = "") -> Rollout:
    """Champion-only from now on (a rollback of the rollout)."""
    rollout = Rollout(reason=reason)
    write_rollout(paths.rollout, rollout)
    return rollout


def describe(rollout: Rollout) -> str:
    """One line saying what the service does with the challenger."""
    if rollout.mode == "champion":
        return "Rollout: champion only"
    what = (
        f"canary, {rollout.share:.0%} of traffic answered by"
        if rollout.mode == "canary"
        else "shadow: the champion answers, scored in shadow by"
    )
    return f"Rollout: {what} challenger v{rollout.challenger_version} ({rollout.challenger_tag})"


def current(paths: PlatformPaths) -> Rollout:
    """The rollout the file asks for (champion-only when there is none)."""
    return read_rollout(paths.rollout)


def _version(registry: ChampionRegistry, version: str | None) -> ChampionInfo:
    """The registered version to roll out: `version`, or the challenger alias's."""
    from mlflow.exceptions import MlflowException

    if version is None:
        found = registry.alias(CHALLENGER)
        if found is None:
            raise RolloutError("no challenger yet: train a candidate with `mlops run` first")
        return found
    try:
        model = registry.client.get_model_version(registry.name, str(version))
    except MlflowException:
        raise RolloutError(
            f"model {registry.name!r} has no version {version!r}: see `mlops history`"
        ) from None
    return ChampionInfo(str(model.version), model.run_id, dict(model.tags or {}))


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'rollout'}: "
        + e["msg"].removeprefix("Value error, ")
        for e in error.errors()
    )
