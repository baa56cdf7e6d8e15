"""Monitoring a team can deploy: the alert rules under promtool, and a real Prometheus that
scrapes a running service and a real Pushgateway fed by the drift report."""

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from mlops_assets.runner import ingest_batch, open_instance, run_pipeline
from tests.servers import PromServer, ServerUnavailable, bento_service
from tests.service_checks import GOOD as RECORD

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"
REQUIRED = os.environ.get("MLOPS_REQUIRE_SERVERS") == "1"


def _promtool() -> str:
    if Path("/usr/bin/promtool").exists():
        return "/usr/bin/promtool"
    if REQUIRED:
        pytest.fail("promtool is missing: apt-get install prometheus")
    pytest.skip("promtool is not installed (apt-get install prometheus)")


def test_alert_rules_and_scrape_config_are_valid():
    promtool = _promtool()
    for command in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        checked = subprocess.run(
            [promtool, *command], cwd=RULES, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alert_rules_fire_on_their_unit_series():
    """Each alert fires on a series built to break it and stays silent on healthy traffic."""
    checked = subprocess.run(
        [_promtool(), "test", "rules", "alerts_test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    tested = (RULES / "alerts_test.yml").read_text()
    assert alerts >= {
        "MlopsHighErrorRate",
        "MlopsLatencyP99High",
        "MlopsNoPredictions",
        "MlopsDriftDetected",
        "MlopsChampionStale",
    }
    assert all(f"alertname: {a}" in tested for a in alerts), "every alert has a unit test"


@pytest.fixture
def pushgateway() -> Iterator[PromServer]:
    server = PromServer("prometheus-pushgateway")
    try:
        server.start()
    except ServerUnavailable as exc:
        if REQUIRED:
            raise
        pytest.skip(str(exc))
    yield server
    server.remove()


def _prometheus(service: str, pushgateway: PromServer) -> PromServer:
    """A Prometheus with the project's rules, scraping every second."""
    server = PromServer("prometheus")
    config = yaml.safe_load((RULES / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES / "alerts.yml")]
    targets = {"mlops-predictions": service, "mlops-pushgateway": pushgateway.url}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]].split("//")[1]]}]
    (server.folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    server.arguments = [
        f"--config.file={server.folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={server.folder / 'data'}",
    ]
    return server.start()


def _query(prometheus: PromServer, expression: str) -> list[dict]:
    answer = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expression}, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]["result"]


def _wait_for(prometheus: PromServer, expression: str, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = _query(prometheus, expression)
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never returned {expression!r}:\n{prometheus.log()[-2000:]}")


def _dashboard_queries_answer(prometheus: PromServer) -> None:
    """Every panel of the Grafana dashboard is valid PromQL over metrics that exist."""
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "mlops-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expression = target["expr"].replace("[5m]", "[1m]")
            assert _wait_for(prometheus, expression), f"panel {panel['title']!r} shows nothing"


@pytest.mark.slow
def test_prometheus_scrapes_predictions_drift_and_champion_age(paths, pushgateway, monkeypatch):
    monkeypatch.setenv("MLOPS_PUSHGATEWAY_URL", pushgateway.url)
    instance = open_instance(paths)
    assert ingest_batch(instance, "initial", {"rows": 3_000}).success
    assert run_pipeline(instance).success
    shifted = {"rows": 3_000, "seed": 7, "scenario": "covariate_shift", "first_house_id": 7 * 10**7}
    assert ingest_batch(instance, "shifted", shifted).success
    drift = run_pipeline(instance, job="monitoring_job")
    assert drift.success and drift.metadata["drift_report"]["drifted"] is True

    env = {**os.environ, "BENTOML_HOME": str(paths.root / "bentoml")}
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        prometheus = _prometheus(url, pushgateway)
        try:
            _wait_for(prometheus, 'up{job="mlops-predictions"} == 1')
            assert client.post("/v1/predict", json=RECORD).status_code == 200
            [before] = _wait_for(prometheus, "sum(mlops_predictions_total)")
            for _ in range(5):
                assert client.post("/v1/predict", json=RECORD).status_code == 200
            expected = float(before["value"][1]) + 5
            _wait_for(prometheus, f"sum(mlops_predictions_total) >= {expected}")
            # The error-rate alerts read BentoML's request counter: it must carry our paths.
            assert client.post("/v1/predict", json={**RECORD, "sqft": -1}).status_code == 400
            refused = '{endpoint="/v1/predict", http_response_code="400"}'
            _wait_for(prometheus, f"bentoml_service_request_total{refused}")

            [age] = _wait_for(prometheus, "time() - mlops_model_promoted_timestamp_seconds")
            assert age["metric"]["model_version"] == "1"
            assert 0 <= float(age["value"][1]) < 3600, "promoted by this test, minutes ago"
            [detected] = _wait_for(prometheus, 'mlops_drift_detected{scope="batch"}')
            assert detected["metric"]["dataset"] == "house_prices"
            assert detected["value"][1] == "1"
            [alert] = _wait_for(prometheus, 'ALERTS{alertname="MlopsDriftDetected"}')
            assert alert["metric"]["alertstate"] == "firing"
            assert not _query(prometheus, 'ALERTS{alertname="MlopsChampionStale"}')
            _dashboard_queries_answer(prometheus)
        finally:
            prometheus.remove()
