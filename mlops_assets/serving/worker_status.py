"""Each service worker's status, as a small file `mlops rollout status` can read.

The counts a worker keeps (which champion answers, the rollout it applies, the requests its
challenger scored and could not score) live in its memory and in its Prometheus metrics,
which a command cannot reach without knowing the service's address. So each worker also
writes them, once a second when they changed, to `$MLOPS_HOME/deployment/serving/worker-<pid>.json`
(replaced in one step) and removes the file when it stops. A reader keeps only the files of
processes still running with the start time the file records, so a worker killed without
cleaning up, or its pid reused by another process, is never reported as serving.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from mlops_assets.core.storage import write_json_atomic


class WorkerStatus:
    """Writes this process's status file whenever what it says changes."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"worker-{os.getpid()}.json"
        self._identity = {"pid": os.getpid(), "started": _start_time(os.getpid())}
        self._last: dict[str, Any] | None = None

    def __call__(self, status: dict[str, Any]) -> None:
        """Record `status` (an OSError, say a full disk, must not stop the service)."""
        if status == self._last:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic({**self._identity, **status}, self.path)
            self._last = status

    def remove(self) -> None:
        """The worker stops: its file goes."""
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def read_statuses(folder: Path) -> list[dict[str, Any]]:
    """The status of every worker still running, by pid."""
    found = []
    for path in sorted(folder.glob("worker-*.json")):
        try:
            status = json.loads(path.read_text())
            pid, started = int(status["pid"]), status["started"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if started is not None and _start_time(pid) == started:
            found.append(status)
    return found


def describe_service(statuses: list[dict[str, Any]]) -> list[str]:
    """Lines for `mlops rollout status`: what the running workers serve and count."""
    if not statuses:
        return ["Service: no running `mlops serve` worker reports to this state folder"]
    versions = sorted({str(s["champion"]["version"]) for s in statuses})
    lines = [f"Service: {len(statuses)} worker(s); champion answering: v{', v'.join(versions)}"]
    errors = sorted({s["champion"].get("error") for s in statuses} - {None, ""})
    lines += [f"  champion not swapped: {e}" for e in errors]
    rollout_errors = sorted(
        {s["rollout"].get(k) for s in statuses for k in ("error", "by_key_error")} - {None, ""}
    )
    lines += [f"  challenger: {e}" for e in rollout_errors]
    counts: dict[str, int] = {}
    for status in statuses:
        for outcome, number in status.get("challenger_requests", {}).items():
            counts[outcome] = counts.get(outcome, 0) + int(number)
    challenger = {s["rollout"].get("challenger_version") for s in statuses} - {None}
    if challenger or counts:
        unscored = {k.split(":", 1)[1]: n for k, n in counts.items() if k.startswith("unscored:")}
        detail = ", ".join(f"{reason} {n}" for reason, n in sorted(unscored.items()))
        lines.append(
            f"  challenger v{', v'.join(sorted(challenger)) or '-'}: "
            f"{counts.get('scored', 0)} requests scored, {sum(unscored.values())} not scored"
            + (f" ({detail})" if detail else "")
        )
    return lines


def _start_time(pid: int) -> float | None:
    """The process's start time, or None when no such process runs."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
