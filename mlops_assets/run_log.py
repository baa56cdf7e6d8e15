"""The log a failed command leaves under the state folder: every event, and the tracebacks.

The terminal gets the sentence that says what went wrong and what to do; the tracebacks a
developer needs go to a file named in that sentence, `logs/` under the state folder (the
Dagster UI shows the same events for a run). `--debug` puts them on the terminal as well.
Writing the log never raises: on a full disk the sentence is still said, without the file.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_assets.paths import PlatformPaths

LOGS_DIRNAME = "logs"


def logs_folder(paths: PlatformPaths) -> Path:
    """Where the CLI's logs of failed runs and commands are kept."""
    return paths.root / LOGS_DIRNAME


def write_run_log(instance: Any, run_id: str, paths: PlatformPaths) -> Path | None:
    """Every event of a Dagster run, with each error's full traceback; None if unwritable."""
    lines = []
    for entry in instance.all_logs(run_id):
        stamp = datetime.fromtimestamp(entry.timestamp, UTC).isoformat(timespec="milliseconds")
        step = entry.step_key or "-"
        lines.append(f"{stamp} {_level_name(entry.level)} {step} {entry.message}")
        error = _error_of(entry)
        if error is not None:
            lines.append(_indented(error.to_string()))
    return _write(logs_folder(paths) / f"run-{run_id}.log", "\n".join(lines) + "\n")


def write_error_log(exc: BaseException, paths: PlatformPaths, command: str) -> Path | None:
    """The traceback of an error that ended a command outside any run; None if unwritable."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    text = f"mlops {command}\n" + "".join(traceback.format_exception(exc))
    return _write(logs_folder(paths) / f"error-{stamp}-{_safe(command)}.log", text)


def _error_of(entry: Any) -> Any:
    """The error an event carries (a failed step or run), if any."""
    if entry.error_info is not None:
        return entry.error_info
    event = entry.dagster_event
    data = getattr(event, "event_specific_data", None) if event else None
    return getattr(data, "error", None)


def _level_name(level: int | str) -> str:
    return level if isinstance(level, str) else logging.getLevelName(level)


def _indented(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.rstrip().splitlines())


def _safe(command: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in command)[:40] or "command"


def _write(path: Path, text: str) -> Path | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError:
        return None
    return path
