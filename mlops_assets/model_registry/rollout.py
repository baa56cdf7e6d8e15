"""The rollout setting: how the service shares traffic between the champion and a challenger.

One small JSON file in the deployment folder (`paths.rollout`), written by `mlops rollout ...`
and by the live-evidence promotion policy, and reread by the running service when it changes,
so a share can move (or fall back to champion-only) without a rebuild or a restart. A missing
file means champion-only. The modes:

- `champion`: the champion answers every request (the default; also what a rollback sets);
- `shadow`: the champion answers; the challenger scores the same request off the response's
  path, and both predictions are logged with their versions;
- `canary`: a `share` of traffic (sticky by entity key where the request has one) is answered
  by the challenger.

The challenger is named by its BentoML model tag (what the service loads) and its registry
version (what the history and the live-performance report speak of).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops_assets.core.storage import write_json_atomic

Mode = Literal["champion", "shadow", "canary"]


class RolloutError(ValueError):
    """A rollout setting that cannot be applied; the message says what to change."""


class Rollout(BaseModel):
    """One rollout setting, validated so an out-of-range share never reaches the service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "champion"
    challenger_tag: str | None = None
    challenger_version: str | None = None
    share: float = Field(default=0.0, ge=0.0, le=1.0)
    updated_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    reason: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Rollout:
        if self.mode != "champion" and not self.challenger_tag:
            raise ValueError(f"mode {self.mode!r} needs a challenger_tag (a BentoML model tag)")
        if self.mode == "canary" and not 0.0 < self.share < 1.0:
            raise ValueError(
                f"a canary share must be above 0 and below 1, got {self.share}: use mode "
                "'champion' for none and promote the challenger for all"
            )
        if self.mode != "canary" and self.share != 0.0:
            raise ValueError(f"share applies to mode 'canary' only, not {self.mode!r}")
        return self


CHAMPION_ONLY = Rollout()


def read_rollout(path: Path) -> Rollout:
    """The rollout in force: champion-only when the file does not exist.

    Anyone with access to the folder can write this file, so whatever its content does to the
    parser (bad JSON, wrong fields, nesting deep enough to exhaust the stack, bytes that are not
    text, a folder in its place) comes back as one `RolloutError` naming the file, never as a
    surprise in the caller.
    """
    try:
        return Rollout.model_validate(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return CHAMPION_ONLY
    except Exception as error:  # any content must end as the file's error
        raise RolloutError(
            f"{path} is not a valid rollout setting ({_summary(error)}); fix it with "
            "`mlops rollout ...` or delete it to serve the champion alone"
        ) from None


def _summary(error: Exception) -> str:
    """The parser's complaint in one bounded line (a RecursionError's text is not useful)."""
    if isinstance(error, RecursionError):
        return "nested too deeply to read"
    return " ".join(str(error).split())[:500] or type(error).__name__


def write_rollout(path: Path, rollout: Rollout) -> None:
    """Replace the setting in one step, so the service never reads half a file."""
    write_json_atomic(rollout.model_dump(), path)
