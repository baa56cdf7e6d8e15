"""A state folder's stores are set up once, whoever starts on it and however many at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from mlops_assets.cli import main
from mlops_assets.model_registry.state_setup import (
    StateSetupError,
    forget_ready,
    inspect_sqlite_store,
    setup_lock,
)
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.paths import PlatformPaths
from mlops_assets.resources import MlopsHome

RUN = [sys.executable, "-m", "mlops_assets.cli", "run", "--rows", "2000", "--search-trials", "2"]


def _mlflow_head() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


@pytest.mark.slow
@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_two_runs_started_together_on_a_new_folder_both_succeed(tmp_path, attempt):
    home = tmp_path / f"together-{attempt}"
    env = {**os.environ, "MLOPS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    runs = [
        subprocess.Popen(RUN, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "Traceback" not in output
        assert "champion is v1 of 'house_prices'" in output
    store = inspect_sqlite_store(home / "mlflow" / "mlflow.db")
    assert store.stray_tables == ()
    assert store.versions == (_mlflow_head(),)
    status = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "status"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Champion: v1 (run " in status.stdout
    assert status.stdout.count(" pipeline_job ") == 2
    assert " SUCCESS " in status.stdout and " FAILURE " not in status.stdout


def _tracking(paths: PlatformPaths) -> MlflowTracking:
    return MlflowTracking(home=MlopsHome(path=str(paths.root)))


def _half_migrate(database: Path) -> None:
    """What two colliding migrations left: a stray Alembic copy and no schema version."""
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE _alembic_tmp_metrics (key VARCHAR(250))")
        connection.execute("DELETE FROM alembic_version")
        connection.commit()


def test_a_half_migrated_store_holding_nothing_is_set_aside_and_made_anew(paths, capsys):
    _tracking(paths).client()
    _half_migrate(paths.mlflow_db)
    assert inspect_sqlite_store(paths.mlflow_db).half_migrated
    forget_ready()  # this process set the store up before it was broken
    client = _tracking(paths).client()
    assert client.search_experiments(max_results=5)[0].name == "Default"
    store = inspect_sqlite_store(paths.mlflow_db)
    assert (store.stray_tables, store.versions) == ((), (_mlflow_head(),))
    [aside] = paths.mlflow.glob("mlflow.db.half-migrated-*")
    assert inspect_sqlite_store(aside).stray_tables == ("_alembic_tmp_metrics",)
    said = capsys.readouterr().err
    assert f"The MLflow store {paths.mlflow_db} was left half-migrated" in said
    assert f"set aside as {aside.name} and created anew" in said


def test_a_half_migrated_store_with_history_is_refused_with_a_sentence(paths, capsys):
    client = _tracking(paths).client()
    client.create_run(client.create_experiment("kept"))
    _half_migrate(paths.mlflow_db)
    before = paths.mlflow_db.read_bytes()
    forget_ready()
    assert main(["history"]) == 2
    said = capsys.readouterr()
    assert said.out == (
        f"error: The MLflow store {paths.mlflow_db} was left half-migrated by an interrupted "
        "setup (schema version [], stray tables: _alembic_tmp_metrics) and holds 1 runs and "
        "registered models: restore it from a backup, or move it away to start a new store.\n"
    )
    assert "Traceback" not in said.err
    assert paths.mlflow_db.read_bytes() == before, "a store with history is never touched"


HOLDER = """
import sys
from pathlib import Path
from mlops_assets.paths import PlatformPaths
from mlops_assets.model_registry.state_setup import setup_lock
with setup_lock(PlatformPaths(Path(sys.argv[1])), "mlflow"):
    print("held", flush=True)
    sys.stdin.readline()
"""

WAITER = """
import sys
from pathlib import Path
from mlops_assets.resources import MlopsHome
from mlops_assets.model_registry.tracking import MlflowTracking
client = MlflowTracking(home=MlopsHome(path=sys.argv[1])).client()
print(client.search_experiments()[0].name, flush=True)
"""


def test_a_second_process_says_it_waits_for_the_setup_then_goes_on(paths):
    paths.root.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(paths.root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    waiter = subprocess.Popen(
        [sys.executable, "-c", WAITER, str(paths.root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert waiter.stderr is not None
        assert waiter.stderr.readline() == (
            f"Waiting for another process to finish setting up the mlflow store of "
            f"{paths.root} (at most 600 s) ...\n"
        )
        assert not paths.mlflow_db.exists(), "nothing is created while another sets it up"
        holder.communicate("go\n", timeout=60)
        out, _ = waiter.communicate(timeout=300)
        assert waiter.returncode == 0
        assert out == "Default\n"
    finally:
        for process in (holder, waiter):
            if process.poll() is None:
                process.kill()


def test_the_wait_for_a_setup_is_bounded(paths):
    paths.root.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(paths.root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(StateSetupError) as refused,
            setup_lock(paths, "mlflow", timeout_s=0.2),
        ):
            pass
    finally:
        holder.communicate("go\n", timeout=60)
    assert str(refused.value) == (
        f"another process setting up the mlflow store of {paths.root} holds "
        f"{paths.root}/.setup/mlflow.lock for more than 0 s (a lock is freed when its process "
        "ends): let that command finish or stop it, then run this one again."
    )
