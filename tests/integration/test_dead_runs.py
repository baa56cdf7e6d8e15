"""A run is declared dead only on proof: its recorded worker is gone or was replaced.

The facts are recorded as Dagster and the CLI record them (run tags, the worker's engine
event, the run's start event), with the times a slow machine gives them, so no test sleeps.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import dagster as dg
import psutil
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData

from mlops_assets.dead_runs import (
    HOST_TAG,
    PID_START_TAG,
    PID_TAG,
    fail_dead_runs,
    process_tags,
    start_mark,
)

LATE_S = 60.0  # the worker starts this long after its run was created and started


@pytest.fixture
def worker() -> Iterator[subprocess.Popen]:
    """A live process standing for a run's worker; it ends when the test closes its stdin."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    yield process
    if process.poll() is None:
        process.communicate(timeout=30)


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str], started_at: float) -> str:
    """A STARTED run whose start event is dated `started_at`, as a slow launcher leaves it."""
    run = instance.add_run(dg.DagsterRun(job_name="scoring_job", tags=tags))
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name),
        run.run_id,
        timestamp=started_at,
    )
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    return run.run_id


def _worker_event(instance: dg.DagsterInstance, run_id: str, pid: int, at: float) -> None:
    """What Dagster's run worker writes about itself when it starts."""
    instance.report_dagster_event(
        DagsterEvent(
            DagsterEventType.ENGINE_EVENT.value,
            job_name="scoring_job",
            message=f"Started process for run (pid: {pid}).",
            event_specific_data=EngineEventData.in_process(pid),
        ),
        run_id,
        timestamp=at,
    )


def _status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_a_worker_that_started_late_is_not_taken_for_a_dead_one(instance, worker):
    """The run was created and started a minute before its worker process existed."""
    born = psutil.Process(worker.pid).create_time()
    run_id = _started_run(instance, {}, started_at=born - LATE_S)
    _worker_event(instance, run_id, worker.pid, at=born + 0.5)
    assert fail_dead_runs(instance) == []
    assert _status(instance, run_id) == dg.DagsterRunStatus.STARTED


def test_the_same_run_is_failed_once_its_late_worker_is_killed(instance, worker):
    born = psutil.Process(worker.pid).create_time()
    run_id = _started_run(instance, {}, started_at=born - LATE_S)
    _worker_event(instance, run_id, worker.pid, at=born + 0.5)
    worker.kill()
    worker.wait(timeout=30)
    assert fail_dead_runs(instance) == [run_id]
    assert _status(instance, run_id) == dg.DagsterRunStatus.FAILURE
    [failure] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    assert failure.dagster_event.message.startswith(
        f"The process running this run (pid {worker.pid} on "
    )


def test_a_pid_reused_after_the_worker_wrote_its_event_is_not_the_worker(instance, worker):
    """The recorded worker wrote its event a minute before the live process with its pid began."""
    born = psutil.Process(worker.pid).create_time()
    run_id = _started_run(instance, {}, started_at=born - 2 * LATE_S)
    _worker_event(instance, run_id, worker.pid, at=born - LATE_S)
    assert fail_dead_runs(instance) == [run_id]


def test_a_run_whose_worker_recorded_nothing_yet_is_left_alone(instance):
    run_id = _started_run(instance, {}, started_at=time.time() - 10 * LATE_S)
    assert fail_dead_runs(instance) == []
    assert _status(instance, run_id) == dg.DagsterRunStatus.STARTED


def test_a_cli_run_is_judged_by_the_start_mark_its_process_recorded(instance, worker):
    """The CLI tags its runs with its pid and start mark: a late start proves nothing."""
    mark = start_mark(worker.pid)
    assert mark.startswith("ticks:"), "Linux: the kernel's start time, not the wall clock"
    tags = {PID_TAG: str(worker.pid), PID_START_TAG: mark, HOST_TAG: process_tags()[HOST_TAG]}
    born = psutil.Process(worker.pid).create_time()
    alive = _started_run(instance, tags, started_at=born - LATE_S)
    reused = _started_run(
        instance, {**tags, PID_START_TAG: f"ticks:{int(mark[6:]) - 100}"}, started_at=born
    )
    assert fail_dead_runs(instance) == [reused]
    assert _status(instance, alive) == dg.DagsterRunStatus.STARTED
    worker.kill()
    worker.wait(timeout=30)
    assert fail_dead_runs(instance) == [alive]


def test_process_tags_name_this_process_and_its_start():
    tags = process_tags()
    assert tags[PID_TAG] == str(psutil.Process().pid)
    assert tags[PID_START_TAG] == start_mark(psutil.Process().pid)
