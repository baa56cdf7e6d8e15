"""Runs whose process died are marked failed, with a reason that says so, and only on proof.

A run killed with SIGKILL (by hand, by the out-of-memory killer, by a lost machine) writes no
last event, so Dagster would show it `STARTED` forever. Every platform command first looks at
the runs still in flight, finds the process that runs each one, and fails the run when that
process is provably gone. The facts come from the process itself, never from a guess about
timing that a slow machine breaks (a worker a sensor launched may start a minute after its run
was created):

- the `mlops/pid` tag the CLI sets on its own runs, with `mlops/pid_start`, the process's start
  mark read by that same process; a live process with that pid but another start mark is a
  later process that reused the pid;
- else the pid in the last run-level engine event, which Dagster's run worker writes about
  itself ("Started process for run (pid: ...)"); the event proves that process was running
  when it was written, so a process with that pid created after the event is not it.

No fact, no verdict: a run whose worker has written nothing yet is left to Dagster's own run
monitoring (`start_timeout_seconds` in `dagster.yaml`). Only processes on this machine can be
checked. In the embedded profile every run is local; in production a run counts only if it
carries this host's name (runs on other pods are left to Dagster's run monitoring too).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psutil

from mlops_assets.profile import active_profile

PID_TAG = "mlops/pid"
PID_START_TAG = "mlops/pid_start"
HOST_TAG = "mlops/host"
IN_FLIGHT = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
CLOCK_SLACK_S = 2.0  # an event's wall-clock time against a process's start, both rounded
TIME_MARK_SLACK_S = 1.0  # start times derived from the wall clock move when it is adjusted


@dataclass(frozen=True)
class Owner:
    """The process that runs a run, and what it recorded about itself.

    `start_mark` is the start mark the process read of itself; `seen_at` a wall-clock moment
    at which it is known to have been running (the time of an event it wrote).
    """

    pid: int
    host: str
    start_mark: str = ""
    seen_at: float | None = None


def process_tags() -> dict[str, str]:
    """Tags naming this process, for runs it executes itself."""
    pid = os.getpid()
    return {PID_TAG: str(pid), PID_START_TAG: start_mark(pid), HOST_TAG: socket.gethostname()}


def start_mark(pid: int) -> str:
    """When process `pid` started, in a form a later process with the same pid cannot share.

    On Linux the kernel's start time in clock ticks since boot (`/proc/<pid>/stat`, field
    22), which no change of the wall clock moves; elsewhere psutil's start time in seconds.
    """
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"ticks:{after_name[19]}"  # field 22 of the line; fields 1-2 precede the split
    except (OSError, IndexError):
        return f"time:{psutil.Process(pid).create_time():.3f}"


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-flight run whose process on this machine is provably gone."""
    failed = []
    here = socket.gethostname()
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        run = record.dagster_run
        owner = _owner(instance, run, record.create_timestamp.timestamp())
        if owner is None or owner.host != here or not is_gone(owner):
            continue
        instance.report_run_failed(
            run,
            message=(
                f"The process running this run (pid {owner.pid} on {owner.host}) is gone: it "
                "was killed (kill -9, out of memory, a lost machine) before the run could end. "
                "Marked failed by the platform; re-run it to finish the work."
            ),
        )
        failed.append(run.run_id)
    return failed


def is_gone(owner: Owner) -> bool:
    """Whether the recorded facts prove the owner's process no longer runs."""
    try:
        process = psutil.Process(owner.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        if owner.start_mark:
            return not _same_start(owner.start_mark, start_mark(owner.pid))
        if owner.seen_at is not None:
            return process.create_time() > owner.seen_at + CLOCK_SLACK_S
        return False
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False  # not allowed to look: no proof


def _same_start(recorded: str, current: str) -> bool:
    kind = recorded.split(":", 1)[0]
    if kind != current.split(":", 1)[0]:
        return True  # marks of two kinds cannot be compared: no proof
    if kind == "ticks":
        return recorded == current
    try:
        then, now = (float(mark.split(":", 1)[1]) for mark in (recorded, current))
    except ValueError:
        return True  # a mark this version cannot read proves nothing
    return abs(then - now) <= TIME_MARK_SLACK_S


def _owner(instance: dg.DagsterInstance, run: dg.DagsterRun, created: float) -> Owner | None:
    if PID_TAG in run.tags and run.tags[PID_TAG].isdigit():
        # The tag is set by the process that creates and executes the run: it was running
        # when the run was created, whatever it recorded about its start.
        pid, host = int(run.tags[PID_TAG]), run.tags.get(HOST_TAG, "")
        return Owner(pid, host, run.tags.get(PID_START_TAG, ""), seen_at=created)
    if active_profile().is_production:
        return None  # no host known: the run may be on another machine
    worker = None
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data else None
        if entry.step_key is None and pid is not None and str(pid.value).isdigit():
            worker = Owner(int(pid.value), socket.gethostname(), seen_at=entry.timestamp)
    return worker  # the last one: a resumed run's worker is the newest
