"""Runs whose process died are marked failed, with a reason that says so.

A run killed with SIGKILL (by hand, by the out-of-memory killer, by a lost machine) writes no
last event, so Dagster would show it `STARTED` forever. Every platform command first looks at
the runs still in flight, finds the process that runs each one (the `mlops/pid` tag the CLI
sets, else the pid in the run's first engine event, which Dagster writes for every executor
and launcher), and fails the run when that process is gone. A pid reused by a later process
does not count: a process that started after the run did is not the run's.

Only processes on this machine can be checked. In the embedded profile every run is local;
in production a run counts only if it carries this host's name (runs on other pods are left to
Dagster's own run monitoring, which `dagster.yaml` enables).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg
import psutil

from mlops_assets.profile import active_profile

PID_TAG = "mlops/pid"
HOST_TAG = "mlops/host"
IN_FLIGHT = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
CLOCK_SLACK_S = 2.0  # process and run times come from two clocks' roundings


@dataclass(frozen=True)
class Owner:
    """The process that runs a run."""

    pid: int
    host: str


def process_tags() -> dict[str, str]:
    """Tags naming this process, for runs it executes itself."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-flight run whose process on this machine is gone; their ids."""
    failed = []
    here = socket.gethostname()
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        run = record.dagster_run
        owner = _owner(instance, run)
        if owner is None or owner.host != here:
            continue
        started = record.start_time or record.create_timestamp.timestamp()
        if _alive(owner.pid, started):
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


def _owner(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Owner | None:
    if PID_TAG in run.tags and run.tags[PID_TAG].isdigit():
        return Owner(int(run.tags[PID_TAG]), run.tags.get(HOST_TAG, ""))
    if active_profile().is_production:
        return None  # no host known: the run may be on another machine
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None and str(pid.value).isdigit():
            return Owner(int(pid.value), socket.gethostname())
    return None


def _alive(pid: int, run_started: float) -> bool:
    """Whether `pid` is a live process that was already running when the run started."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= run_started + CLOCK_SLACK_S
    except psutil.Error:
        return False
