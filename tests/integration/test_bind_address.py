"""Every server `mlops` starts listens on 127.0.0.1 unless `--host` says otherwise, and answers.

The address is read from the listening socket of the real process, not from its arguments;
each server then answers over HTTP (the UI with the platform's jobs loaded) and is stopped.
(`mlops serve` is tested the same way beside the service tests, which have a champion.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from mlops_assets.cli import feast_arguments, main
from tests.servers import free_port

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def _mlflow_answers(url: str, deadline: float) -> None:
    """The MLflow UI's page, and its REST API on this state folder's (empty) store."""
    page = _get_when_up(f"{url}/", deadline)
    assert page.status_code == 200 and "<title>MLflow</title>" in page.text
    found = httpx.get(f"{url}/api/2.0/mlflow/experiments/search?max_results=10", timeout=30)
    assert [e["name"] for e in found.json()["experiments"]] == ["Default"]


REPOSITORIES = "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"


def _ui_answers(url: str, deadline: float) -> None:
    """The Dagster UI's page, and its GraphQL API with the platform's code location loaded."""
    page = _get_when_up(f"{url}/", deadline)
    assert page.status_code == 200 and 'id="initialization-data"' in page.text  # its shell
    while True:
        answer = httpx.post(f"{url}/graphql", json={"query": REPOSITORIES}, timeout=30).json()
        nodes = answer["data"]["repositoriesOrError"].get("nodes")
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(1)  # the code location is still loading
    assert nodes, answer
    jobs = {job["name"] for node in nodes for job in node["jobs"]}
    assert {"ingestion_job", "pipeline_job", "deploy_job", "monitoring_job"} <= jobs


def _get_when_up(url: str, deadline: float) -> httpx.Response:
    while True:
        try:
            return httpx.get(url, timeout=30)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.5)


ANSWERS = {"mlflow": _mlflow_answers, "ui": _ui_answers}


@pytest.mark.parametrize(("command", "name"), [("mlflow", "MLflow"), ("ui", "Dagster UI")])
def test_servers_listen_on_loopback_answer_and_say_so(mlops_home, tmp_path, command, name):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    with (tmp_path / "stderr").open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlops_assets.cli", command, "--port", str(port)],
            cwd=ROOT, env={**env, "MLOPS_HOME": str(mlops_home)},
            stdout=subprocess.PIPE, stderr=stderr, text=True,
            start_new_session=True,  # its own process group: dagster dev starts children
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (bound := _listening(port)):
            assert server.poll() is None, f"mlops {command} exited while starting"
            assert time.monotonic() < deadline, f"mlops {command} did not listen within 300 s"
            time.sleep(0.5)
        said = [server.stdout.readline()]  # the address is said once the server answers
        while said[-1] and "ready at" not in said[-1]:
            said.append(server.stdout.readline())
        ANSWERS[command](f"http://127.0.0.1:{port}", deadline)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            output, _ = server.communicate(timeout=30)
    assert bound == {"127.0.0.1"}
    said_all = "".join(said) + output
    assert f"Starting {name} on http://127.0.0.1:{port} ..." in said_all
    assert said[-1].startswith(f"{name} ready at http://127.0.0.1:{port}")
    errors = (tmp_path / "stderr").read_text()
    assert not [line for line in errors.splitlines() if "Warning" in line or " INFO" in line], (
        errors
    )


def test_feast_servers_are_bound_to_loopback_unless_told():
    assert feast_arguments(["ui"]) == ["ui", "--host", "127.0.0.1"]
    assert feast_arguments(["--log-level", "INFO", "serve_lineage", "-p", "9"]) == [
        "--log-level", "INFO", "serve_lineage", "--host", "127.0.0.1", "-p", "9",
    ]  # fmt: skip
    assert feast_arguments(["ui", "--host", "0.0.0.0"]) == ["ui", "--host", "0.0.0.0"]
    assert feast_arguments(["feature-views", "list"]) == ["feature-views", "list"]
    assert feast_arguments(["serve_registry", "--no-grpc", "-r"]) == [
        "serve_registry", "--host", "127.0.0.1", "--no-grpc", "-r",
    ]  # fmt: skip


@pytest.mark.parametrize("arguments", [["serve_transformations"], ["serve_registry"]])
def test_feast_servers_that_bind_every_interface_are_refused(mlops_home, capsys, arguments):
    assert main(["feast", *arguments]) == 2
    output = capsys.readouterr().out
    assert f"feast {arguments[0]}` listens on every network interface" in output
