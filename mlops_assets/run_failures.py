"""The user-facing reason of a failed run: the `Failure` description, else the root error.

Its own module because both sides need it: the runner (runs it starts) and the sensors (runs
they only see by id), and the runner loads the definitions that hold the sensors.
"""

import os
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.disk_space import disk_full_sentence, names_full_disk
from mlops_assets.known_errors import explain
from mlops_assets.paths import HOME_ENV, resolve_home


def failure_message(result: Any) -> str:
    """The user-facing reason of a failed run (the `Failure` description, else the error)."""
    return _step_failures(result.all_events)


def run_failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    """`failure_message` of a run read back from the instance (a sensor sees only its id)."""
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return _step_failures([r.dagster_event for r in records if r.dagster_event])


def _step_failures(events: Any) -> str:
    messages = []
    for event in events:
        if event.event_type_value != "STEP_FAILURE" or event.step_failure_data is None:
            continue
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            messages.append(f"{event.step_key}: {_named(data.user_failure_data.description)}")
        elif data.error:
            messages.append(f"{event.step_key}: {_named(_root_cause(data.error))}")
    return "\n".join(messages) or "run failed"


def _named(message: str) -> str:
    """A full disk said as such, whatever library's words reported it."""
    home = resolve_home()
    return disk_full_sentence(home) if names_full_disk(message, home) else message


def _root_cause(error: Any) -> str:
    """The innermost error's message, or what it means when it is a known machine error.

    Dagster wraps user exceptions in its own; a full disk or a locked state folder then reads
    as the sentence `known_errors.explain` gives it, not as a driver's exception.
    """
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = error.message.strip()
    return explain(message, _state_folder()) or message


def _state_folder() -> Path | None:
    """The state folder of this process (`MLOPS_HOME`), to name it and measure its disk."""
    home = os.environ.get(HOME_ENV)
    return Path(home) if home else None
