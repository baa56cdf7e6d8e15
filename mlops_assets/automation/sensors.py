"""Sensors: landing folder, ingestion outcome, drift, freshness and run failures.

Each keeps its own trail in the Dagster UI (tick logs, run tags with the reason) and is
idempotent through run keys.
"""

import contextlib
import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import dagster as dg

from mlops_assets.automation.settings import load_settings
from mlops_assets.core.storage import read_json
from mlops_assets.ingestion.partitions import batches
from mlops_assets.jobs import ingestion_job, monitoring_job, pipeline_job
from mlops_assets.monitoring.assets import drift_state_path
from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.sources import archive_landed, batch_key_for, ready_files

LANDED_FILE_TAG = "mlops/landed_file"
REASON_TAG = "mlops/reason"


def _paths() -> PlatformPaths:
    return PlatformPaths(resolve_home())


@dg.sensor(
    job=ingestion_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """One ingestion run per new file in the landing folder (once it has stopped changing)."""
    settings, paths = load_settings(), _paths()
    now = time.time()
    requests, keys = [], []
    for path in ready_files(paths.landing):
        stat = path.stat()
        if now - stat.st_mtime < settings.landing_settle_seconds:
            continue  # still being written (or just renamed into place): next tick
        key = batch_key_for(path)
        keys.append(key)
        requests.append(
            dg.RunRequest(
                run_key=f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}",
                partition_key=key,
                run_config={"ops": {"raw_data": {"config": {"kind": "landing"}}}},
                tags={LANDED_FILE_TAG: str(path)},
            )
        )
    if not requests:
        return dg.SkipReason(f"nothing ready in {paths.landing}")
    context.log.info(f"ingesting {len(requests)} landed files: {keys}")
    return dg.SensorResult(
        run_requests=requests, dynamic_partitions_requests=[batches.build_add_request(keys)]
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingestion_job],
    request_job=monitoring_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def ingested_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """After a batch is ingested: archive its landed file and measure its drift."""
    run = context.dagster_run
    landed = run.tags.get(LANDED_FILE_TAG)
    if landed:
        _archive(landed, succeeded=True, error="")
    batch = run.tags.get("dagster/partition", "")
    return dg.RunRequest(
        run_key=f"drift:{run.run_id}",
        run_config={"ops": {"drift_report": {"config": {"batch": batch}}}},
        tags={REASON_TAG: f"batch {batch} ingested"},
    )


@dg.run_failure_sensor(
    monitored_jobs=[ingestion_job], default_status=dg.DefaultSensorStatus.RUNNING
)
def ingestion_failed_sensor(context: dg.RunFailureSensorContext) -> None:
    """A landed file whose ingestion failed moves to `failed/`, with the error beside it."""
    landed = context.dagster_run.tags.get(LANDED_FILE_TAG)
    if landed:
        _archive(landed, succeeded=False, error=context.failure_event.message or "ingestion failed")


@dg.sensor(
    job=pipeline_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def drift_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Retrain when the newest batch drifted, at most once per cooldown and N times a day."""
    settings, paths = load_settings(), _paths()
    state_path = drift_state_path(paths)
    if not state_path.exists():
        return dg.SkipReason("no drift report yet")
    state = read_json(state_path)
    cursor = json.loads(context.cursor) if context.cursor else {"handled": "", "retrains": []}
    if state["evaluated_at"] == cursor["handled"]:
        return dg.SkipReason(f"drift report of {state['evaluated_at']} already handled")
    cursor["handled"] = state["evaluated_at"]
    decision = _retrain_decision(state, cursor, settings)
    if isinstance(decision, dg.SkipReason):
        context.update_cursor(json.dumps(cursor))
        return decision
    cursor["retrains"].append(datetime.now(UTC).isoformat())
    context.update_cursor(json.dumps(cursor))
    return decision


def _retrain_decision(state: dict, cursor: dict, settings) -> dg.RunRequest | dg.SkipReason:
    if not state["drifted"]:
        return dg.SkipReason(f"no drift: {state['reason']}")
    now = datetime.now(UTC)
    recent = [datetime.fromisoformat(t) for t in cursor["retrains"]]
    if recent and now - max(recent) < timedelta(hours=settings.retrain_cooldown_hours):
        return dg.SkipReason(
            f"drift ({state['reason']}) but within the {settings.retrain_cooldown_hours} h cooldown"
        )
    if sum(now - t < timedelta(days=1) for t in recent) >= settings.max_retrains_per_day:
        return dg.SkipReason(
            f"drift ({state['reason']}) but {settings.max_retrains_per_day} retrains today already"
        )
    return dg.RunRequest(
        run_key=f"retrain:{state['evaluated_at']}",
        tags={REASON_TAG: f"drift: {state['reason']}"[:200]},
    )


FRESHNESS_ASSETS = ("raw_data", "cleaned_data", "model")


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def freshness_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Act on staleness: record it in the tick log and POST it to the configured webhook.

    Open-source Dagster evaluates freshness policies but sends no alerts itself.
    """
    settings = load_settings()
    stale = []
    for name in FRESHNESS_ASSETS:
        windows = settings.freshness.get(name)
        if windows is None:
            continue
        event = context.instance.get_latest_materialization_event(dg.AssetKey(name))
        age = (
            None
            if event is None
            else datetime.now(UTC) - datetime.fromtimestamp(event.timestamp, UTC)
        )
        if age is None or age > windows.fail:
            stale.append(
                {
                    "asset": name,
                    "state": "FAIL",
                    "age_hours": None if age is None else round(age.total_seconds() / 3600, 1),
                }
            )
        elif age > windows.warn:
            stale.append(
                {"asset": name, "state": "WARN", "age_hours": round(age.total_seconds() / 3600, 1)}
            )
    if not stale:
        return dg.SkipReason("every watched asset is fresh")
    context.log.warning(f"stale assets: {stale}")
    if settings.webhook_url:
        _post(settings.webhook_url, {"event": "stale_assets", "assets": stale})
    webhook = "called" if settings.webhook_url else "not configured"
    return dg.SkipReason(f"stale: {stale} (see the tick log; webhook {webhook})")


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING)
def run_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    """Every failed run, recorded in the tick log and in `$MLOPS_HOME/monitoring/failures.jsonl`."""
    run = context.dagster_run
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "error": (context.failure_event.message or "")[:2000],
    }
    context.log.error(f"run {run.run_id} of {run.job_name} failed: {entry['error'][:500]}")
    folder = _paths().root / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "failures.jsonl").open("a") as handle:
        handle.write(json.dumps(entry) + "\n")


def _archive(landed: str, succeeded: bool, error: str) -> None:
    from pathlib import Path

    path = Path(landed)
    if path.exists():
        archive_landed(path, succeeded=succeeded, error=error)


def _post(url: str, payload: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    # An unreachable webhook must not stop the sensor; the tick log has the event anyway.
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=5).close()
