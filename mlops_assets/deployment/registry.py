"""Champion and challenger in the MLflow model registry, with durable history and rollback.

The aliases `champion` and `challenger` on the registered model are the truth about which
version serves. Every move of `champion` (promotion or rollback) is a compare-and-set under an
exclusive lock: it names the champion it expects to replace, and refuses if another promotion
moved it first, so two promotions at once cannot both win. The lock is a file lock in the
state folder on one machine, and a PostgreSQL advisory lock in the production profile, where
runs are pods on many machines (see `locks.py`). The history is an append-only JSON lines file
in the state folder (and the same facts are written as tags on the model version).

Each step is idempotent, so a promotion that dies half-way converges when it is run again:
registering finds the version already created for the run, and moving an alias to where it
already points records the history entry if it is missing.
"""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_assets.core.storage import write_json_atomic
from mlops_assets.deployment.locks import advisory_lock, file_lock
from mlops_assets.paths import PlatformPaths
from mlops_assets.profile import active_profile

CHAMPION = "champion"
CHALLENGER = "challenger"
LOCK_TIMEOUT_S = 60.0
# What MLflow answers for a missing model and a missing alias (any other error propagates).
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


class PromotionConflict(RuntimeError):
    """The champion changed since the challenger was evaluated against it."""


class NothingToRollBack(RuntimeError):
    """There is no earlier champion to go back to."""


@dataclass(frozen=True)
class ChampionInfo:
    """The version an alias points at, with the run it came from."""

    version: str
    run_id: str
    tags: dict[str, str]


def deployment_dir(paths: PlatformPaths) -> Path:
    """Promotion history, lock and the champion pointer live here."""
    folder = paths.root / "deployment"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class ChampionRegistry:
    """Registry operations for one registered model (named after the dataset)."""

    def __init__(self, client: Any, name: str, paths: PlatformPaths) -> None:
        self.client, self.name, self.paths = client, name, paths
        self.history_path = deployment_dir(paths) / "promotions.jsonl"
        self.pointer_path = deployment_dir(paths) / "champion.json"
        self.lock_path = deployment_dir(paths) / ".promotion.lock"

    def alias(self, alias: str) -> ChampionInfo | None:
        """The version behind an alias, or None if the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            if exc.error_code in _ABSENT:  # a database error is not "no champion"
                return None
            raise
        return ChampionInfo(str(version.version), version.run_id, dict(version.tags or {}))

    def champion(self) -> ChampionInfo | None:
        """The serving version, if any."""
        return self.alias(CHAMPION)

    def register(self, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
        """The registered version of `run_id`'s model, created only if it does not exist yet."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name, description="Champion/challenger of the platform."
            )
        existing = self.client.search_model_versions(f"name='{self.name}' and run_id='{run_id}'")
        if existing:
            return str(existing[0].version)
        version = self.client.create_model_version(self.name, model_uri, run_id=run_id, tags=tags)
        return str(version.version)

    def set_challenger(self, version: str) -> None:
        """Point `challenger` at the newest candidate, whether or not it is promoted."""
        self.client.set_registered_model_alias(self.name, CHALLENGER, version)

    def promote(
        self, version: str, expected_champion: str | None, record: dict[str, Any]
    ) -> dict[str, Any]:
        """Move `champion` to `version` if it still points where the evaluation saw it."""
        with self._locked():
            current = self.champion()
            current_version = current.version if current else None
            if current_version == version:
                return self._ensure_recorded("promote", version, expected_champion, record)
            if current_version != expected_champion:
                raise PromotionConflict(
                    f"champion is v{current_version}, but v{version} was evaluated against "
                    f"v{expected_champion}: re-run validation_report before promoting"
                )
            self._move_champion_alias(version)
            return self._record("promote", version, current_version, record)

    def rollback(self, reason: str = "manual rollback") -> dict[str, Any]:
        """Restore the champion that the current one replaced, and record it."""
        with self._locked():
            current = self.champion()
            if current is None:
                raise NothingToRollBack(f"model {self.name!r} has no champion")
            previous = self._previous_of(current.version)
            if previous is None:
                raise NothingToRollBack(
                    f"champion v{current.version} has no earlier champion to restore"
                )
            self._move_champion_alias(previous)
            return self._record("rollback", previous, current.version, {"reason": reason})

    def history(self) -> list[dict[str, Any]]:
        """Every promotion and rollback of this model, oldest first."""
        if not self.history_path.exists():
            return []
        lines = self.history_path.read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        return [e for e in entries if e.get("model") == self.name]

    def _move_champion_alias(self, version: str) -> None:
        self.client.set_registered_model_alias(self.name, CHAMPION, version)

    def _previous_of(self, version: str) -> str | None:
        """The champion that `version` replaced when it was promoted.

        Rollbacks step back through promotions, so two rollbacks go two promotions back.
        """
        for entry in reversed(self.history()):
            if entry["action"] == "promote" and entry["version"] == version:
                return entry.get("previous")
        return None

    def _ensure_recorded(
        self, action: str, version: str, previous: str | None, record: dict[str, Any]
    ) -> dict[str, Any]:
        entries = self.history()
        if entries and entries[-1]["version"] == version:
            self._write_pointer(entries[-1])
            return entries[-1]
        return self._record(action, version, previous, record)

    def _record(
        self, action: str, version: str, previous: str | None, record: dict[str, Any]
    ) -> dict[str, Any]:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "action": action,
            "model": self.name,
            "version": version,
            "previous": previous,
            **record,
        }
        with self.history_path.open("a") as handle:
            handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        tag = {"promote": "promoted_at", "rollback": "rolled_back_at"}[action]
        self.client.set_model_version_tag(self.name, version, tag, entry["at"])
        self._write_pointer(entry)
        return entry

    def _write_pointer(self, entry: dict[str, Any]) -> None:
        info = self.champion()
        run_id = info.run_id if info else None
        write_json_atomic({**entry, "run_id": run_id}, self.pointer_path)

    def _locked(self) -> AbstractContextManager[None]:
        profile = active_profile()
        if profile.is_production:
            lock_name = f"mlops-promotion:{self.name}"
            return advisory_lock(profile.require_postgres(), lock_name, LOCK_TIMEOUT_S)
        return file_lock(self.lock_path, LOCK_TIMEOUT_S)
