"""The audit trail: every decision about a model, in a hash-chained, append-only log.

`promotions.jsonl` says what happened; this log proves it was not rewritten afterwards. Each
line is one decision (promote, stage, keep, rollback, acknowledge) with who or which run made
it, the evidence it rested on (metrics, data hash, code version) and the SHA-256 of the line
before it; its own `hash` covers all of that. Editing a line breaks its hash, removing or
reordering lines breaks the next line's link, and cutting lines off the end no longer matches
the head file (`audit.head.json`, rewritten after each append), so `verify` names the first
entry that is not what was written.

A broken chain stops promotions (`require_intact`) until a person acknowledges the break
(`acknowledge`): that is itself an entry, signed into the chain, that records the break it
accepts and the SHA-256 of every byte before it. The break stays visible in `verify`'s
answer; it no longer blocks, and any later change to those bytes blocks again.

The log proves tampering to anyone who did not also rewrite every hash and the head file
after the edit. Against a person with write access to the whole state folder, copy the head
hash somewhere they cannot write (each decision's hash is also tagged on its MLflow version).

Appends are serialised by the same kind of lock the champion moves take (`locks.py`).
"""

from __future__ import annotations

import contextvars
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_assets.core.storage import read_json, write_json_atomic
from mlops_assets.model_registry.locks import advisory_lock, file_lock
from mlops_assets.profile import active_profile

GENESIS = "0" * 64
LOCK_TIMEOUT_S = 60.0
ACKNOWLEDGE = "acknowledge"
ACTOR_ENV = "MLOPS_ACTOR"
_ACTOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_actor", default=None)


class AuditChainBroken(RuntimeError):
    """The audit log was changed after it was written, and nobody acknowledged it yet."""


@dataclass(frozen=True)
class Verification:
    """What `verify` found: the first unacknowledged problem, and acknowledged ones."""

    entries: int
    problem: str | None
    bad_line: int | None
    acknowledged: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        """Whether every entry is as written (or every break was acknowledged)."""
        return self.problem is None


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record decisions made inside the block as made by `actor` (a run, a person)."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def current_actor() -> str:
    """Who decides: `acting_as`, else `$MLOPS_ACTOR`, else the OS user at this host."""
    return _ACTOR.get() or os.environ.get(ACTOR_ENV) or f"{_user()}@{socket.gethostname()}"


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of the entry's canonical JSON, without its own `hash` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    """The audit log of one state folder's deployment folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "audit.jsonl"
        self.head_path = folder / "audit.head.json"
        self.lock_path = folder / ".audit.lock"

    def append(
        self, action: str, subject: dict[str, Any], evidence: dict[str, Any], by: str = ""
    ) -> dict[str, Any]:
        """Append one decision, chained to the last line; returns the entry written."""
        with self.locked():
            return self._append_locked(action, subject, evidence, by or current_actor())

    def entries(self) -> list[dict[str, Any]]:
        """Every entry that reads as JSON, oldest first (`verify` judges them)."""
        found = []
        for line in self._lines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def verify(self) -> Verification:
        """Walk the chain; name the first entry that was edited, removed or moved."""
        lines = self._lines()
        start, acknowledged = 0, []
        while True:
            bad = _first_break(lines, start)
            if bad is None:
                problem = self._head_problem(lines)
                line = len(lines) if problem else None
                return Verification(len(lines), problem, line, tuple(acknowledged))
            index, problem = bad
            ack = _acknowledgement_after(lines, index)
            if ack is None:
                return Verification(len(lines), problem, index + 1, tuple(acknowledged))
            acknowledged.append(f"{problem} (acknowledged in entry {ack + 1})")
            start = ack

    def require_intact(self) -> None:
        """Raise `AuditChainBroken` with the first problem, unless the chain verifies."""
        found = self.verify()
        if not found.intact:
            raise AuditChainBroken(
                f"the audit log {self.path} is broken: {found.problem}; nothing is promoted "
                "onto it until a person checks it and runs `mlops audit acknowledge --by NAME "
                "--reason ...`"
            )

    def acknowledge(self, by: str, reason: str) -> dict[str, Any]:
        """Accept the chain as it stands, naming the problem accepted; itself an entry."""
        if not by.strip() or not reason.strip():
            raise ValueError("an acknowledgement needs a name (--by) and a reason (--reason)")
        with self.locked():
            found = self.verify()
            if found.intact:
                raise ValueError(f"the audit log {self.path} verifies: nothing to acknowledge")
            lines = self._lines()
            covers = _prefix_digest(lines, len(lines))
            evidence = {"problem": found.problem, "bad_line": found.bad_line, "covers": covers}
            return self._append_locked(ACKNOWLEDGE, {"reason": reason}, evidence, by)

    def has(self, action: str, model: str, version: str, at: str) -> bool:
        """Whether a decision recorded in the history at `at` is in the log already."""
        return any(
            e.get("action") == action
            and e.get("model") == model
            and e.get("version") == version
            and e.get("history_at") == at
            for e in self.entries()
        )

    def locked(self) -> AbstractContextManager[None]:
        """Appends one at a time: a file lock here, an advisory lock in production."""
        profile = active_profile()
        if profile.is_production:
            return advisory_lock(profile.require_postgres(), "mlops-audit", LOCK_TIMEOUT_S)
        self.folder.mkdir(parents=True, exist_ok=True)
        return file_lock(self.lock_path, LOCK_TIMEOUT_S)

    def _append_locked(
        self, action: str, subject: dict[str, Any], evidence: dict[str, Any], by: str
    ) -> dict[str, Any]:
        lines = self._lines()
        previous = _link(lines[-1]) if lines else GENESIS
        entry: dict[str, Any] = json.loads(
            json.dumps(
                {
                    "seq": len(lines) + 1,
                    "at": datetime.now(UTC).isoformat(timespec="microseconds"),
                    "action": action,
                    "by": by,
                    **subject,
                    "evidence": evidence,
                    "previous_hash": previous,
                },
                default=str,
            )
        )  # through JSON once, so the hash covers exactly what a reader will parse
        entry["hash"] = entry_hash(entry)
        prefix = b"" if not lines or self._bytes().endswith(b"\n") else b"\n"
        with self.path.open("ab") as handle:
            handle.write(prefix + json.dumps(entry, sort_keys=True).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        # A head that disagrees with the file is evidence of a cut: only a person's
        # acknowledgement may replace it.
        if action == ACKNOWLEDGE or self._head_problem(lines) is None:
            write_json_atomic({"entries": entry["seq"], "hash": entry["hash"]}, self.head_path)
        return entry

    def _head_problem(self, lines: list[str]) -> str | None:
        """Lines cut off the end: the head file remembers more, or another last hash."""
        if not self.head_path.exists():
            return "the head file audit.head.json is missing" if lines else None
        try:
            head = read_json(self.head_path)
            count, digest = int(head["entries"]), str(head["hash"])
        except Exception:  # any damage to the head file is a finding, not a crash
            return "the head file audit.head.json is unreadable"
        if len(lines) < count:
            return f"entry {len(lines) + 1} was removed: the log ends at entry {len(lines)}, " + (
                f"the head records {count} entries"
            )
        if count and _link(lines[count - 1]) != digest:
            return f"entry {count} does not match the head's hash: it was edited"
        return None

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line for line in self._bytes().decode(errors="replace").split("\n") if line]

    def _bytes(self) -> bytes:
        return self.path.read_bytes() if self.path.exists() else b""


def _first_break(lines: list[str], start: int) -> tuple[int, str] | None:
    """(index, problem) of the first line from `start` that is not a faithful link."""
    for index in range(start, len(lines)):
        try:
            entry = json.loads(lines[index])
        except ValueError:
            return index, f"entry {index + 1} is not valid JSON: it was edited"
        if not isinstance(entry, dict) or entry.get("hash") != entry_hash(entry):
            return index, f"entry {index + 1} was edited: its content no longer matches its hash"
        expected = _link(lines[index - 1]) if index else GENESIS
        if entry.get("previous_hash") != expected:
            return index, (
                f"entry {index + 1} (seq {entry.get('seq')}) does not follow entry {index}: "
                "an entry before it was removed, moved or rewritten"
            )
        if entry.get("seq") != index + 1:
            return index, f"entry {index + 1} carries seq {entry.get('seq')}: entries were moved"
    return None


def _acknowledgement_after(lines: list[str], index: int) -> int | None:
    """The last valid acknowledgement after `index` that covers the bytes before it."""
    for candidate in range(len(lines) - 1, index, -1):
        try:
            entry = json.loads(lines[candidate])
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("action") != ACKNOWLEDGE:
            continue
        covers = (entry.get("evidence") or {}).get("covers")
        if covers == _prefix_digest(lines, candidate) and entry.get("hash") == entry_hash(entry):
            return candidate
    return None


def _prefix_digest(lines: list[str], count: int) -> str:
    """SHA-256 of the first `count` lines, each ending in a newline (what an ack covers)."""
    return hashlib.sha256("".join(f"{line}\n" for line in lines[:count]).encode()).hexdigest()


def _link(line: str) -> str:
    """The hash the next entry chains to: the line's `hash`, or the line's bytes' SHA-256."""
    try:
        entry = json.loads(line)
        if isinstance(entry, dict) and isinstance(entry.get("hash"), str):
            return entry["hash"]
    except ValueError:
        pass
    return hashlib.sha256(line.encode()).hexdigest()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
