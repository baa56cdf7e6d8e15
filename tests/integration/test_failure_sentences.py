"""Expected failures end `mlops` with the summary, one sentence and a non-zero exit code.

Each case runs the CLI as a user does, in its own process: what it prints is the whole terminal,
so a traceback anywhere in it fails the test. The tracebacks go to a log file under the state
folder, named in the sentence; the Dagster run records the same sentence the UI shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops_assets.run_failures import run_failure_message
from mlops_assets.spec import DIABETES_SPEC
from tests.servers import free_port

TRACEBACK_MARKS = ("Traceback", "Stack Trace", 'File "')


def mlops(*args: str, env: dict[str, str] | None = None, timeout: int = 600):
    """`mlops ARGS` in a fresh process, as typed in a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def assert_no_traceback(completed: subprocess.CompletedProcess) -> None:
    terminal = completed.stdout + completed.stderr
    for mark in TRACEBACK_MARKS:
        assert mark not in terminal, terminal


def named_log(stdout: str) -> Path:
    """The log file the failure's sentence names; it must exist and hold the traceback."""
    found = re.search(r"full log: (\S+\.log)", stdout)
    assert found, stdout
    return Path(found.group(1))


def gate_spec(tmp_path: Path, r2_min: float) -> Path:
    document = yaml.safe_load(DIABETES_SPEC.read_text())
    document["gates"]["rules"] = [{"metric": "r2", "min": r2_min}]
    path = tmp_path / "diabetes_strict.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_first_model_that_fails_its_gate_ends_with_the_estimate_and_the_reason(
    mlops_home, tmp_path
):
    spec = gate_spec(tmp_path, 0.999)  # no model explains 99.9 % of this target's variance
    completed = mlops("run", "--spec", str(spec), "--source", "sklearn", "--dataset", "diabetes")

    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert_no_traceback(completed)
    out = completed.stdout
    assert re.search(r"^Model \w{12} \((xgboost|linear)\): rmse [\d.]+, mae ", out, re.M), out
    assert "Estimate: rmse " in out and "5-fold cross-validation on 442 rows" in out
    failure = next(line for line in out.splitlines() if line.startswith("Pipeline FAILED"))
    assert re.fullmatch(
        r"Pipeline FAILED \(run \w{8}\): promoted_model: no model serves yet, because none has "
        r"passed the gates: candidate v1 was not promoted \(failed gates: r2 = 0\.\d+ \(needs "
        r">= 0\.999\)\); read its report in \S+/report, then improve the data or its features, "
        r"or relax the spec's `gates:` rules, and run again \(full log: \S+\.log; add --debug "
        r"to see it here\)",
        failure,
    ), failure
    log = named_log(out)
    assert log.parent == mlops_home / "logs"
    assert "Stack Trace:" in log.read_text() and "promoted_model" in log.read_text()
    # The Dagster run (what the UI shows) carries the same sentence as its step's failure.
    instance = dg.DagsterInstance.from_config(str(mlops_home / "dagster"))
    (record,) = instance.get_run_records(dg.RunsFilter(job_name="pipeline_job"))
    sentence = failure.split(": ", 1)[1].rsplit(" (full log", 1)[0]
    assert run_failure_message(instance, record.dagster_run.run_id) == sentence
    # The terminal follows the protocol: cross-validated, so no holdout split; Feast is quiet.
    assert "train /" not in out and "cross-validated" in out
    assert "as the event timestamp" not in completed.stdout + completed.stderr
    (report,) = (mlops_home / "models").glob("*/report/validation_report.md")
    assert "5-fold cross-validation (grouped by entity)" in report.read_text()


def test_a_refused_spec_names_each_problem_before_anything_runs(mlops_home, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: shop\ntask: regression\ncolumns:\n"
        "  - {name: region, dtype: str}\n"
        "  - {name: sales, dtype: float, role: target, colour: red}\n"
    )
    completed = mlops("run", "--spec", str(spec))

    assert completed.returncode == 2
    assert_no_traceback(completed)
    assert completed.stdout.startswith(f"error: dataset spec {spec} is invalid: ")
    assert (
        "column 'region': dtype: Input should be 'int', 'float', 'category', 'string', "
        "'datetime' or 'bool'" in completed.stdout
    )
    assert "column 'sales': unknown field 'colour'; allowed fields: name, dtype," in (
        completed.stdout
    )
    assert not mlops_home.exists(), "nothing is written for a refused spec"


def test_an_unreachable_dask_scheduler_ends_in_its_sentence(mlops_home):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    completed = mlops(
        "run",
        "--spec",
        str(DIABETES_SPEC),
        "--source",
        "sklearn",
        "--dataset",
        "diabetes",
        env={"MLOPS_DASK_SCHEDULER": address},
    )

    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert_no_traceback(completed)
    lines = completed.stdout.splitlines()
    failure = next(line for line in lines if line.startswith("Pipeline FAILED"))
    assert (
        f"model: the Dask scheduler at {address} did not answer within 30 s (set by "
        "$MLOPS_DASK_SCHEDULER): start the cluster, correct the address, or leave the setting "
        "empty to train in the step's own process (full log: "
    ) in failure
    assert "Features: 442 rows" in completed.stdout, "the summary of what did run"
    assert "Stack Trace:" in named_log(completed.stdout).read_text()


def _can_mount_a_small_disk() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = [unshare, "--user", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(
    not _can_mount_a_small_disk() and os.environ.get("MLOPS_REQUIRE_SERVERS") != "1",
    reason="needs user and mount namespaces (required, and so run, in CI)",
)
def test_a_full_disk_ends_in_its_sentence_and_debug_shows_the_traceback(tmp_path):
    """A real full disk: a 256 KiB tmpfs in a private mount namespace holds the state folder."""
    disk = tmp_path / "disk"
    disk.mkdir()
    home = disk / "home"

    def run_on_full_disk(*flags: str) -> subprocess.CompletedProcess:
        command = " ".join(
            [
                f"mount -t tmpfs -o size=256k tmpfs {disk} &&",
                f"exec {sys.executable} -m mlops_assets.cli --home {home} {' '.join(flags)}",
                f"run --spec {DIABETES_SPEC} --source sklearn --dataset diabetes",
            ]
        )
        return subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    completed = run_on_full_disk()
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert_no_traceback(completed)
    assert re.search(
        rf"^error: The disk holding the state folder {home} is full \([^)]* free of 256\.0 KiB\): "
        r"free some space there or point MLOPS_HOME at a larger disk, then run the command "
        r"again; what was published before is kept as it was\.$",
        completed.stdout,
        re.M,
    ), completed.stdout

    debug = run_on_full_disk("--debug")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "OperationalError" in debug.stderr
    assert f"error: The disk holding the state folder {home} is full" in debug.stdout
