"""Processes killed with SIGKILL at chosen instants: one champion, and no run left `STARTED`.

Each kill is real: the process running the promotion is started with `MLOPS_CRASH_AT` naming
an instant and kills itself there with SIGKILL (`mlops_assets/crash_points.py`), or the test
kills a running `mlops run` from outside. Afterwards every reader must give the registry's
answer: `mlops history`, `mlops status`, `champion.json`, `bento.json`, the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops_assets.spec import HOUSE_PRICES_SPEC

ROOT = Path(__file__).resolve().parents[2]
CANDIDATE = ["model", "validation_report", "promoted_model", "bento_model"]


# Every killed run trains a challenger that truly beats the champion (a tie is never
# promoted): champion v1 is a linear model, each challenger XGBoost on the same rows, both on
# shuffled folds, where XGBoost is known to win (on later sales the two are within noise).
XGBOOST_ONLY = json.dumps(
    {"ops": {"model": {"config": {"families": ["xgboost"], "protocol": "cross_validation"}}}}
)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A state folder with a linear champion v1 exported, after one `mlops run`."""
    folder = tmp_path_factory.mktemp("crash") / "mlops_home"
    spec = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    spec["training"] = {
        **spec.get("training", {}),
        "families": ["linear"],
        "protocol": "cross_validation",
    }
    spec["gates"]["rules"] = [{"metric": "r2", "min": 0.8}]  # the linear model's reach
    linear = folder.parent / "house_prices_linear.yaml"
    linear.write_text(yaml.safe_dump(spec))
    done = _mlops(folder, "run", "--rows", "3000", "--spec", str(linear), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return folder


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MLOPS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    env.pop("MLOPS_SPEC", None)
    env.pop("MLOPS_CRASH_AT", None)
    return {**env, **extra}


def _mlops(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *args],
        capture_output=True, text=True, env=_env(home), cwd=ROOT, timeout=timeout, check=False,
    )  # fmt: skip


def _run_assets(home: Path, selection: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run `selection` in a process of its own group; helpers a killed run leaves are ended."""
    command = [sys.executable, "-m", "tests.integration.run_assets", *selection]
    process = subprocess.Popen(
        command, env=_env(home, **env), cwd=ROOT, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=600)
    finally:
        _end_group(process.pid)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _end_group(pgid: int) -> None:
    """SIGKILL what is left of a process group this test started (log tailers of a dead run)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _alias(home: Path, alias: str) -> str:
    import mlflow

    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    return str(client.get_model_version_by_alias("house_prices", alias).version)


def _files(home: Path) -> dict[str, str]:
    deployment = home / "deployment"
    lines = (deployment / "promotions.jsonl").read_text().splitlines()
    return {
        "history": json.loads(lines[-1])["version"],
        "champion.json": json.loads((deployment / "champion.json").read_text())["version"],
        "bento.json": json.loads((deployment / "bento.json").read_text())["model_version"],
    }


def _in_flight(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        )
        return [r.dagster_run for r in records]


# (instant, whether the alias has moved when the process dies, the file still stale then)
INSTANTS = [
    ("promotion:before_alias", False, None),
    ("promotion:after_alias", True, "history"),
    ("promotion:after_pointer", True, "bento.json"),
]


@pytest.mark.parametrize(("instant", "moved", "stale"), INSTANTS, ids=[i[0] for i in INSTANTS])
def test_kill_at_each_promotion_instant_leaves_one_champion(home, instant, moved, stale):
    if _alias(home, "champion") != "1":  # an earlier instant promoted: back to the linear v1
        rolled = _mlops(home, "rollback", "--reason", "back to the linear champion")
        assert rolled.returncode == 0 and _alias(home, "champion") == "1", rolled.stderr[-2000:]
    before = _alias(home, "champion")
    killed = _run_assets(
        home, CANDIDATE, MLOPS_CRASH_AT=instant, MLOPS_TEST_RUN_CONFIG=XGBOOST_ONLY
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    candidate = _alias(home, "challenger")
    assert candidate != before, "a new candidate was registered before the kill"
    champion = candidate if moved else before
    assert _alias(home, "champion") == champion, "the alias is where the instant says"
    if stale:
        assert _files(home)[stale] == before, f"{stale} is behind the alias right after the kill"
    [dead] = _in_flight(home)

    history = _mlops(home, "history")
    assert history.returncode == 0, history.stderr[-2000:]
    assert history.stdout.strip().splitlines()[-1].startswith(f"Champion: v{champion} ")
    assert f" v{champion} " in history.stdout.strip().splitlines()[-2], "last entry"
    assert _files(home) == dict.fromkeys(("history", "champion.json", "bento.json"), champion)

    status = _mlops(home, "status")
    assert f"Champion: v{champion} " in status.stdout, status.stdout
    assert f"{dead.run_id[:8]} __ASSET_JOB" in status.stdout
    assert "FAILURE" in status.stdout and "is gone: it was killed" in status.stdout
    assert _in_flight(home) == []
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE

    following = _run_assets(home, ["bento_model"])
    assert following.returncode == 0, following.stdout[-2000:] + following.stderr[-2000:]
    assert _alias(home, "champion") == champion
    assert _files(home) == dict.fromkeys(("history", "champion.json", "bento.json"), champion)
    lines = (home / "deployment" / "promotions.jsonl").read_text().splitlines()
    versions = [json.loads(line)["version"] for line in lines]
    assert versions.count(champion) == 1, "each promotion is recorded once, never twice"
    audit = (home / "deployment" / "audit.jsonl").read_text().splitlines()
    promoted = [e["version"] for e in map(json.loads, audit) if e["action"] == "promote"]
    assert promoted.count(champion) == 1, "the audit trail records it once, recovered or not"
    verified = _mlops(home, "audit", "verify")
    assert verified.returncode == 0, verified.stdout


def test_a_cli_run_killed_from_outside_is_marked_failed(home):
    """`mlops run` gets SIGKILL while its ingestion runs; the next command fails the run."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_assets.cli", "run", "--batch", "big", "--rows", "400000"],
        env=_env(home), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (started := _in_flight(home)):
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run did not start within 120 s"
            time.sleep(0.1)
    finally:
        _end_group(process.pid)  # the run's process and its helpers, all at once
        process.wait(timeout=30)
    [run] = started
    status = _mlops(home, "status")
    assert f"{run.run_id[:8]} ingestion_job        FAILURE    big" in status.stdout, status.stdout
    assert f"(pid {process.pid} on " in status.stdout and "is gone" in status.stdout
    assert run.tags["mlops/pid"] == str(process.pid), "found by the tag the CLI sets"
