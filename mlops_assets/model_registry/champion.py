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

The alias is the one truth; the history file and `champion.json` follow it. A process killed
between moving the alias and writing them (the files and the registry cannot change in one
step) leaves them behind, so every reader first calls `reconcile`, which records what the
alias says under the same lock; all readers then give the alias's answer.
"""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlops_assets.core.storage import read_json, write_json_atomic
from mlops_assets.crash_points import crash_point
from mlops_assets.model_registry.audit import AuditLog
from mlops_assets.model_registry.locks import advisory_lock, file_lock
from mlops_assets.paths import PlatformPaths
from mlops_assets.profile import active_profile

CHAMPION = "champion"
CHALLENGER = "challenger"
LOCK_TIMEOUT_S = 60.0
# What MLflow answers for a missing model and a missing alias (any other error propagates).
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}
_MOVE_TAGS = {"promote": "promoted_at", "rollback": "rolled_back_at"}
RECOVERED = "recorded on recovery: the run that moved the alias stopped before recording it"


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


class ChampionRegistry:
    """Registry operations for one registered model (named after the dataset)."""

    def __init__(self, client: Any, name: str, paths: PlatformPaths) -> None:
        self.client, self.name, self.paths = client, name, paths
        paths.deployment.mkdir(parents=True, exist_ok=True)
        self.history_path = paths.promotion_history
        self.pointer_path = paths.champion_pointer
        self.lock_path = paths.promotion_lock
        self.audit = AuditLog(paths.deployment)

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
        with self.locked():
            current = self.champion()
            current_version = current.version if current else None
            if current_version == version:  # a rerun after a crash: record it as itself
                return self._ensure_recorded("promote", version, expected_champion, record)
            self.reconcile_locked()  # an earlier move, unrecorded, goes into history first
            if current_version != expected_champion:
                raise PromotionConflict(
                    f"champion is v{current_version}, but v{version} was evaluated against "
                    f"v{expected_champion}: re-run validation_report before promoting"
                )
            self.audit.require_intact()  # no promotion onto a trail someone rewrote
            crash_point("promotion:before_alias")
            self._move_champion_alias(version)
            crash_point("promotion:after_alias")
            return self._record("promote", version, current_version, record)

    def record_kept(self, version: str, champion: str | None, record: dict[str, Any]) -> None:
        """Record that `version` was evaluated and the champion kept (once per version).

        The history then explains every decision, not only the moves of the alias.
        """
        self.record_decision("keep", version, champion, record)

    def record_decision(
        self, action: str, version: str, champion: str | None, record: dict[str, Any]
    ) -> None:
        """Record a decision that moves no alias (`keep`, `stage`), once per action and version.

        A rerun after a crash therefore never writes the same decision twice.
        """
        if action in _MOVE_TAGS:
            raise ValueError(f"{action!r} moves the champion alias: use promote or rollback")
        with self.locked():
            done = [e for e in self.history() if e["action"] == action and e["version"] == version]
            if done:
                if not self.audit.has(action, self.name, version, done[0]["at"]):
                    self._audit(done[0])  # a run that stopped before the audit log
                return
            entry = {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "action": action,
                "model": self.name,
                "version": version,
                "previous": champion,
                **record,
            }
            with self.history_path.open("a+") as handle:
                handle.seek(0, os.SEEK_END)
                line = json.dumps(entry, sort_keys=True, default=str) + "\n"
                if handle.tell() and not self._ends_with_newline():
                    line = "\n" + line
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self._audit(entry)

    def version(self, version: str) -> ChampionInfo:
        """A registered version by number (MLflow raises if there is none)."""
        found = self.client.get_model_version(self.name, version)
        return ChampionInfo(str(found.version), found.run_id, dict(found.tags or {}))

    def challenger(self) -> ChampionInfo | None:
        """The newest candidate (or the one staged for live evidence), if any."""
        return self.alias(CHALLENGER)

    def clear_challenger(self) -> None:
        """Remove the `challenger` alias (a challenger rejected on live evidence)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model_alias(self.name, CHALLENGER)
        except MlflowException as exc:
            if exc.error_code not in _ABSENT:
                raise

    def rollback(self, reason: str = "manual rollback") -> dict[str, Any]:
        """Restore the champion that the current one replaced, and record it."""
        with self.locked():
            current = self.reconcile_locked()
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
        """Every promotion, kept champion, staging and rollback of this model, oldest first.

        A last line cut short by a crash is skipped; `reconcile` records the move again.
        """
        if not self.history_path.exists():
            return []
        entries = []
        for line in self.history_path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return [e for e in entries if e.get("model") == self.name]

    def promotion_of(self, version: str) -> dict[str, Any]:
        """The history entry that made `version` champion ({} if there is none)."""
        for entry in reversed(self.history()):
            if entry["version"] == version and entry["action"] == "promote":
                return entry
        return {}

    def reconcile(self) -> ChampionInfo | None:
        """The champion, with history and `champion.json` brought in line with the alias."""
        with self.locked():
            return self.reconcile_locked()

    def reconcile_locked(self) -> ChampionInfo | None:
        """`reconcile` for a caller that holds `locked()` already."""
        champion = self.champion()
        if champion is None:
            return None
        entries = [e for e in self.history() if e["action"] in _MOVE_TAGS]  # moves only
        last = entries[-1] if entries else None
        if last is None or last["version"] != champion.version:
            self._record(*self._recovered_move(champion, last))
        else:
            self._follow(last, champion)
        return champion

    def locked(self) -> AbstractContextManager[None]:
        """The promotion lock: held while the alias moves and while its followers catch up."""
        profile = active_profile()
        if profile.is_production:
            lock_name = f"mlops-promotion:{self.name}"
            return advisory_lock(profile.require_postgres(), lock_name, LOCK_TIMEOUT_S)
        return file_lock(self.lock_path, LOCK_TIMEOUT_S)

    def _recovered_move(
        self, champion: ChampionInfo, last: dict[str, Any] | None
    ) -> tuple[str, str, str | None, dict[str, Any]]:
        """The history entry a move that was never recorded should have written."""
        previous = last["version"] if last else None
        if last and last["action"] == "promote" and last.get("previous") == champion.version:
            return "rollback", champion.version, previous, {"reason": RECOVERED}
        record: dict[str, Any] = {"reason": RECOVERED, "model_id": champion.run_id}
        decision = self.paths.model_report(champion.run_id) / "decision.json"
        if decision.exists():
            record["metrics"] = read_json(decision).get("metrics", {}).get("model", {})
        return "promote", champion.version, previous, record

    def _follow(self, entry: dict[str, Any], champion: ChampionInfo) -> None:
        """Write the version tag and `champion.json` of a recorded move, where missing."""
        tag = _MOVE_TAGS[entry["action"]]
        if not self.audit.has(entry["action"], self.name, entry["version"], entry["at"]):
            self._audit(entry)  # a run that stopped between the history and the audit log
        if champion.tags.get(tag) != entry["at"]:
            self.client.set_model_version_tag(self.name, champion.version, tag, entry["at"])
        if not self._pointer_names(champion):
            self._write_pointer(entry)

    def _pointer_names(self, champion: ChampionInfo) -> bool:
        if not self.pointer_path.exists():
            return False
        try:
            pointer = read_json(self.pointer_path)
        except (OSError, ValueError):
            return False
        return pointer.get("version") == champion.version and pointer.get("run_id") == (
            champion.run_id
        )

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
        entries = [e for e in self.history() if e["action"] in _MOVE_TAGS]
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
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        with self.history_path.open("a+") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() and not self._ends_with_newline():
                line = "\n" + line  # a line cut short by a crash stays on its own
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        crash_point("promotion:after_history")
        self._audit(entry)
        self.client.set_model_version_tag(self.name, version, _MOVE_TAGS[action], entry["at"])
        self._write_pointer(entry)
        crash_point("promotion:after_pointer")
        return entry

    def _audit(self, entry: dict[str, Any]) -> None:
        """Append a history entry's decision to the audit log, and tag it on the version."""
        info = self.version(entry["version"])
        tags = info.tags
        evidence = {
            "metrics": entry.get("metrics") or {},
            "live_evidence": entry.get("evidence") or {},
            "model_id": entry.get("model_id") or info.run_id,
            **{k: tags.get(k, "") for k in ("data_hash", "code_version", "family")},
            "gates_passed": tags.get("gates_passed", ""),
        }
        subject = {
            "model": self.name,
            "version": entry["version"],
            "previous": entry.get("previous"),
            "reason": entry.get("reason", ""),
            "history_at": entry["at"],
        }
        written = self.audit.append(entry["action"], subject, evidence)
        summary = f"entry {written['seq']} by {written['by']} at {written['at']}"
        self.client.set_model_version_tag(
            self.name, entry["version"], f"audit.{entry['action']}", f"{summary}; {written['hash']}"
        )

    def _ends_with_newline(self) -> bool:
        with self.history_path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def _write_pointer(self, entry: dict[str, Any]) -> None:
        info = self.champion()
        run_id = info.run_id if info else None
        write_json_atomic({**entry, "run_id": run_id}, self.pointer_path)
