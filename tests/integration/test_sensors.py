"""The sensors driven for real: each tick reads a real Dagster instance, the settings come from
a real settings file with short windows, and the webhook is a real HTTP server."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops_assets.automation import sensors
from mlops_assets.automation.settings import load_settings
from mlops_assets.definitions import defs
from mlops_assets.model_registry.rollout import Rollout, write_rollout
from mlops_assets.runner import ingest_batch, open_instance
from mlops_assets.sources import SyntheticConfig, drop_batch, generate_house_sales
from mlops_assets.spec import HOUSE_PRICES_SPEC


@pytest.fixture
def webhook() -> Iterator[dict]:
    """A loopback HTTP server that records every JSON body POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/hook", "received": received}
    server.shutdown()


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Write a settings file and make the sensors read it (through the real loader)."""

    def use(**values):
        document = {"freshness": {"raw_data": {"warn_hours": 1.0, "fail_hours": 2.0}}, **values}
        path = tmp_path / "automation.yaml"
        path.write_text(yaml.safe_dump(document))
        loaded = load_settings(path)
        monkeypatch.setattr(sensors, "load_settings", lambda: loaded)
        return loaded

    return use


def _tick(sensor, instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    return sensor(context), context.cursor


def _hours(seconds: float) -> float:
    return seconds / 3600


def test_freshness_walks_pass_warn_fail_and_alerts_once_per_change(paths, settings, webhook):
    settings(
        freshness={"raw_data": {"warn_hours": _hours(2), "fail_hours": _hours(5)}},
        webhook_url=webhook["url"],
    )
    instance = open_instance(paths)
    instance.report_runless_asset_event(dg.AssetMaterialization("raw_data"))
    started = time.monotonic()

    result, cursor = _tick(sensors.freshness_sensor, instance)
    assert json.loads(cursor) == {"raw_data": "PASS"}
    assert isinstance(result, dg.SkipReason) and not webhook["received"], "fresh: no alert"

    time.sleep(max(0.0, 2.5 - (time.monotonic() - started)))
    result, cursor = _tick(sensors.freshness_sensor, instance, cursor)
    assert json.loads(cursor) == {"raw_data": "WARN"}
    assert webhook["received"] == [
        {"event": "freshness", "changed": {"raw_data": "WARN"}, "stale": {"raw_data": "WARN"}}
    ]
    result, cursor = _tick(sensors.freshness_sensor, instance, cursor)
    assert len(webhook["received"]) == 1, "no new alert while the state holds"

    time.sleep(max(0.0, 5.5 - (time.monotonic() - started)))
    result, cursor = _tick(sensors.freshness_sensor, instance, cursor)
    assert json.loads(cursor) == {"raw_data": "FAIL"}
    assert webhook["received"][-1]["changed"] == {"raw_data": "FAIL"}
    assert len(webhook["received"]) == 2
    # No batch came from a file, so there is nothing to pull again.
    assert isinstance(result, dg.SkipReason)


def test_stale_raw_data_from_a_file_is_ingested_again_as_a_new_batch(paths, settings, tmp_path):
    settings(freshness={"raw_data": {"warn_hours": 24, "fail_hours": 48}})
    delivery = tmp_path / "sales.csv"
    generate_house_sales(SyntheticConfig(rows=500, seed=3)).to_csv(delivery, index=False)
    instance = open_instance(paths)
    assert ingest_batch(instance, "from_file", {"kind": "file", "path": str(delivery)}).success
    _, cursor = _tick(sensors.freshness_sensor, instance)
    assert json.loads(cursor) == {"raw_data": "PASS"}
    # Windows shorter than the batch's age: it is stale now.
    settings(freshness={"raw_data": {"warn_hours": _hours(0.1), "fail_hours": _hours(0.2)}})
    time.sleep(0.3)

    result, _ = _tick(sensors.freshness_sensor, instance, cursor)
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests
    assert request.partition_key.startswith("refresh-")
    assert request.run_config["ops"]["raw_data"]["config"] == {
        "kind": "file",
        "path": str(delivery),
    }
    [partitions] = result.dynamic_partitions_requests
    assert list(partitions.partition_keys) == [request.partition_key]


def _drift_report(instance, drifted: bool, reason: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization("drift_report", metadata={"drifted": drifted, "reason": reason})
    )


def test_drift_sensor_cooldown_and_daily_cap_through_real_reports(paths, settings):
    settings(retrain_cooldown_hours=_hours(2), max_retrains_per_day=2)
    instance = open_instance(paths)

    _drift_report(instance, True, "batch a drifted")
    first, cursor = _tick(sensors.drift_sensor, instance)
    assert isinstance(first, dg.RunRequest)
    assert first.tags[sensors.REASON_TAG] == "drift: batch a drifted"

    _drift_report(instance, True, "batch b drifted")
    cooled, cursor = _tick(sensors.drift_sensor, instance, cursor)
    assert isinstance(cooled, dg.SkipReason) and "cooldown" in cooled.skip_message

    time.sleep(2.2)
    _drift_report(instance, True, "batch c drifted")
    second, cursor = _tick(sensors.drift_sensor, instance, cursor)
    assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key

    time.sleep(2.2)
    _drift_report(instance, True, "batch d drifted")
    capped, cursor = _tick(sensors.drift_sensor, instance, cursor)
    assert isinstance(capped, dg.SkipReason) and "2 retrains today" in capped.skip_message

    _drift_report(instance, False, "batch e calm")
    calm, cursor = _tick(sensors.drift_sensor, instance, cursor)
    assert isinstance(calm, dg.SkipReason) and "no drift" in calm.skip_message


def test_drift_sensor_reads_cursors_of_earlier_releases(paths, settings):
    """`after` held the report's storage id before it had its own name; `handled` held a time."""
    settings(retrain_cooldown_hours=0, max_retrains_per_day=10)
    instance = open_instance(paths)
    _drift_report(instance, True, "batch a drifted")
    [first] = instance.fetch_materializations(dg.AssetKey("drift_report"), limit=1).records
    _drift_report(instance, True, "batch b drifted")
    [second] = instance.fetch_materializations(dg.AssetKey("drift_report"), limit=1).records

    old = json.dumps({"after": first.storage_id, "retrains": []})
    request, cursor = _tick(sensors.drift_sensor, instance, old)
    assert isinstance(request, dg.RunRequest), "the report after `after` is new"
    assert request.tags[sensors.REASON_TAG] == "drift: batch b drifted"
    assert request.run_key == f"retrain:drift-report-{second.storage_id}"
    assert json.loads(cursor)[sensors.LAST_REPORT] == second.storage_id

    oldest = json.dumps({"handled": "2026-01-01T00:00:00+00:00", "retrains": []})
    skipped, cursor = _tick(sensors.drift_sensor, instance, oldest)
    assert isinstance(skipped, dg.SkipReason), "reports from before the upgrade were handled"
    assert json.loads(cursor)[sensors.LAST_REPORT] == second.storage_id
    _drift_report(instance, True, "batch c drifted")
    after_upgrade, _ = _tick(sensors.drift_sensor, instance, cursor)
    assert isinstance(after_upgrade, dg.RunRequest)
    assert after_upgrade.tags[sensors.REASON_TAG] == "drift: batch c drifted"


def test_run_failure_sensor_records_the_failed_run(paths):
    instance = open_instance(paths)
    missing = paths.root / "nowhere.csv"
    failed = ingest_batch(instance, "missing_file", {"kind": "file", "path": str(missing)})
    assert not failed.success
    run = instance.get_run_by_id(failed.run_id)
    [failure] = instance.get_records_for_run(
        failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_sensor",
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
    sensors.run_failure_sensor(context)
    [entry] = [
        json.loads(line)
        for line in (paths.root / "monitoring" / "failures.jsonl").read_text().splitlines()
    ]
    assert entry["run_id"] == failed.run_id
    assert entry["job"] == "ingestion_job" and entry["partition"] == "missing_file"
    assert entry["error"], "the failure's message is kept"


def _landed(paths, key: str, rows: int = 300, **config) -> Path:
    sales = generate_house_sales(SyntheticConfig(rows=rows, seed=11, **config))
    return drop_batch(sales, paths.landing, key)


def test_a_file_still_being_written_is_not_ingested_until_it_settles(paths, settings):
    settings(landing_settle_seconds=1.0)
    instance = open_instance(paths)
    path = _landed(paths, "growing")

    waiting, _ = _tick(sensors.landing_sensor, instance)
    assert isinstance(waiting, dg.SkipReason) and "nothing ready" in waiting.skip_message

    time.sleep(0.6)
    with path.open("ab") as handle:  # the writer is still appending: its mtime moves on
        handle.write(b"\0" * 16)
    still, _ = _tick(sensors.landing_sensor, instance)
    assert isinstance(still, dg.SkipReason), "changed 0.6 s ago: not settled yet"

    time.sleep(1.1)
    ready, _ = _tick(sensors.landing_sensor, instance)
    assert isinstance(ready, dg.SensorResult)
    [request] = ready.run_requests
    assert request.partition_key == "growing"
    assert request.run_key.startswith(f"growing.parquet:{path.stat().st_size}:"), "final size"


def test_ingestion_failed_sensor_moves_the_landed_file_to_failed_with_the_error(paths, settings):
    settings(landing_settle_seconds=0.0)
    instance = open_instance(paths)
    path = _landed(paths, "broken", rows=500, faults=("nulls",), fault_rate=0.5)
    tick, _ = _tick(sensors.landing_sensor, instance)
    [request] = tick.run_requests
    instance.add_dynamic_partitions("batches", [request.partition_key])
    failed = defs.resolve_job_def("ingestion_job").execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        run_config=request.run_config,
        tags=request.tags,
        raise_on_error=False,
    )
    assert not failed.success, "half the rows are null: the quarantine share blocks"
    assert path.exists(), "the landed file stays until the sensor has seen the failure"
    [failure] = instance.get_records_for_run(
        failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    context = dg.build_run_status_sensor_context(
        sensor_name="ingestion_failed_sensor",
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(failed.run_id),
    ).for_run_failure()
    sensors.ingestion_failed_sensor(context)
    assert not path.exists()
    assert (paths.landing_failed / "broken.parquet").exists()
    error = (paths.landing_failed / "broken.parquet.error.txt").read_text()
    assert "quarantine_share" in error, error
    assert not (paths.landing_processed / "broken.parquet").exists()


def test_an_unreadable_rollout_file_holds_the_retrain_naming_the_file(paths, settings):
    settings(retrain_cooldown_hours=0.0, max_retrains_per_day=10)
    _save_spec(paths, promotion={"policy": "live", "stage": "shadow"})
    paths.rollout.parent.mkdir(parents=True, exist_ok=True)
    paths.rollout.write_text("[" * 100_000)
    instance = open_instance(paths)
    _live_report(instance, True, "v1: live rmse 250000 breaks the live gate")
    held, _ = _tick(sensors.live_performance_sensor, instance)
    assert isinstance(held, dg.SkipReason)
    assert "the rollout file cannot be read, so a trial may be under way: " in held.skip_message
    assert "(nested too deeply to read)" in held.skip_message


def _live_report(instance, below: bool, reason: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "live_performance", metadata={"below_gate": below, "reason": reason}
        )
    )


def test_live_performance_sensor_retrains_below_the_gate_with_the_cooldown(paths, settings):
    settings(retrain_cooldown_hours=_hours(2), max_retrains_per_day=5)
    instance = open_instance(paths)

    _live_report(instance, False, "v1: live rmse 90000 holds the live gate")
    holds, cursor = _tick(sensors.live_performance_sensor, instance)
    assert isinstance(holds, dg.SkipReason) and "live gate holds" in holds.skip_message

    _live_report(instance, True, "v1: live rmse 250000 breaks the live gate")
    first, cursor = _tick(sensors.live_performance_sensor, instance, cursor)
    assert isinstance(first, dg.RunRequest)
    assert first.tags[sensors.REASON_TAG] == (
        "live performance: v1: live rmse 250000 breaks the live gate"
    )

    _live_report(instance, True, "v1: still broken")
    cooled, cursor = _tick(sensors.live_performance_sensor, instance, cursor)
    assert isinstance(cooled, dg.SkipReason) and "cooldown" in cooled.skip_message

    nothing, cursor = _tick(sensors.live_performance_sensor, instance, cursor)
    assert isinstance(nothing, dg.SkipReason) and "no new" in nothing.skip_message


def _save_spec(paths, **sections) -> None:
    """The built-in house-price spec with `sections` merged in, saved as the state's spec."""
    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    for name, values in sections.items():
        document[name] = {**document.get(name, {}), **values}
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.saved_spec.write_text(yaml.safe_dump(document))


def test_retrains_of_a_federated_spec_run_the_sites_job(paths, settings):
    settings(retrain_cooldown_hours=0.0, max_retrains_per_day=10)
    instance = open_instance(paths)
    _drift_report(instance, True, "batch a drifted")
    central, cursor = _tick(sensors.drift_sensor, instance)
    assert isinstance(central, dg.RunRequest) and central.job_name == "pipeline_job"

    _save_spec(paths, training={"federated": {"sites": {"north": "/n", "south": "/s"}}})
    _drift_report(instance, True, "batch b drifted")
    federated, cursor = _tick(sensors.drift_sensor, instance, cursor)
    assert isinstance(federated, dg.RunRequest) and federated.job_name == "federated_job"
    _live_report(instance, True, "v1: live rmse 250000 breaks the live gate")
    live, _ = _tick(sensors.live_performance_sensor, instance)
    assert isinstance(live, dg.RunRequest) and live.job_name == "federated_job"


def test_no_retrain_while_a_staged_challenger_gathers_live_evidence(paths, settings):
    settings(retrain_cooldown_hours=0.0, max_retrains_per_day=10)
    _save_spec(paths, promotion={"policy": "live", "stage": "shadow"})
    write_rollout(
        paths.rollout, Rollout(mode="shadow", challenger_tag="m:v2", challenger_version="2")
    )
    instance = open_instance(paths)

    _live_report(instance, True, "v1: live rmse 250000 breaks the live gate")
    held, cursor = _tick(sensors.live_performance_sensor, instance)
    assert isinstance(held, dg.SkipReason)
    assert "challenger version 2 is in shadow gathering live evidence" in held.skip_message
    _drift_report(instance, True, "batch a drifted")
    drift_held, _ = _tick(sensors.drift_sensor, instance)
    assert isinstance(drift_held, dg.SkipReason) and "live_decision" in drift_held.skip_message

    write_rollout(paths.rollout, Rollout())  # live_decision ended the trial
    _live_report(instance, True, "v1: still broken")
    after, _ = _tick(sensors.live_performance_sensor, instance, cursor)
    assert isinstance(after, dg.RunRequest)
