"""Sensors: landing folder, ingestion outcome, drift, live truth, freshness, run failures.

Each keeps its own trail in the Dagster UI (tick logs, run tags with the reason) and is
idempotent through run keys.
"""

import contextlib
import json
import os
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from mlops_assets.automation.settings import load_settings
from mlops_assets.core.storage import read_json
from mlops_assets.ingestion.partitions import batches
from mlops_assets.jobs import (
    deploy_job,
    federated_job,
    ingestion_job,
    monitoring_job,
    pipeline_job,
    retraining_job,
)
from mlops_assets.model_registry.rollout import RolloutError, read_rollout
from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.resources import resolve_spec_path
from mlops_assets.run_failures import run_failure_message
from mlops_assets.sources import SourceError, archive_landed, batch_key_for, scan_landing
from mlops_assets.spec import DatasetSpec, load_spec
from mlops_assets.spec.model import PromotionMode

LANDED_FILE_TAG = "mlops/landed_file"
REASON_TAG = "mlops/reason"
LAST_REPORT = "last_report_storage_id"  # drift cursor: the event-log id of the last report read


def _paths() -> PlatformPaths:
    return PlatformPaths(resolve_home())


def _spec() -> DatasetSpec:
    """The spec in force, read as the `dataset` resource reads it (see `resolve_spec_path`)."""
    return load_spec(resolve_spec_path(_paths()))


@dg.sensor(
    job=ingestion_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """One ingestion run per new file in the landing folder (once it has stopped changing).

    Entries that can never be ingested (links, non-regular files, invalid batch keys) move to
    `failed/` with the reason, before any partition is registered for them.
    """
    settings, paths = load_settings(), _paths()
    scan = scan_landing(paths.landing)
    for path, reason in scan.refused:
        context.log.warning(f"refused {path.name!r}: {reason}")
        _archive(str(path), succeeded=False, error=reason)
    now = time.time()
    requests, keys = [], []
    for path in scan.ready:
        stat = path.lstat()
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
        refused = f"; refused {len(scan.refused)}" if scan.refused else ""
        return dg.SkipReason(f"nothing ready in {paths.landing}{refused}")
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
    run = context.dagster_run
    landed = run.tags.get(LANDED_FILE_TAG)
    if landed:
        # The step's own reason (the check that blocked, the column), not "Steps failed: [...]".
        error = run_failure_message(context.instance, run.run_id)
        _archive(landed, succeeded=False, error=error)


RETRAINING_JOBS = [pipeline_job, federated_job]


@dg.sensor(
    jobs=RETRAINING_JOBS,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def drift_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Retrain when a drift report says drifted, at most once per cooldown and N times a day.

    Reads every `drift_report` materialization since the last tick (by the event log's storage
    id), so no verdict is lost when several batches land between two ticks, and none is acted
    on twice.
    """
    settings = load_settings()
    cursor = _drift_cursor(context)
    records = _reports(context.instance, "drift_report", cursor[LAST_REPORT], limit=1_000)
    if not records:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason("no new drift report")
    cursor[LAST_REPORT] = records[-1].storage_id
    drifted = [r for r in records if _metadata(r).get("drifted")]
    if not drifted:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"no drift: {_metadata(records[-1]).get('reason', '')}")
    newest = drifted[-1]
    state = {
        "drifted": True,
        "reason": _metadata(newest).get("reason", ""),
        "report_storage_id": newest.storage_id,
    }
    decision = _retrain_decision(state, cursor, settings, _spec())
    if isinstance(decision, dg.RunRequest):
        cursor["retrains"].append(datetime.now(UTC).isoformat())
    context.update_cursor(json.dumps(cursor))
    return decision


def _drift_cursor(context: dg.SensorEvaluationContext) -> dict[str, Any]:
    """`{LAST_REPORT: storage id of the last report read, "retrains": [ISO times]}`.

    Cursors written before the storage id had its own name are read too: `after` held the
    same id; the oldest form (`handled`, a time) has no id, so every report already in the
    event log counts as read rather than acted on again.
    """
    stored = json.loads(context.cursor) if context.cursor else {}
    retrains = list(stored.get("retrains", []))
    if LAST_REPORT in stored or "after" in stored:
        return {
            LAST_REPORT: int(stored.get(LAST_REPORT, stored.get("after"))),
            "retrains": retrains,
        }
    if "handled" in stored:
        newest = _reports(context.instance, "drift_report", 0, limit=1, ascending=False)
        return {LAST_REPORT: newest[0].storage_id if newest else 0, "retrains": retrains}
    return {LAST_REPORT: 0, "retrains": retrains}


def _reports(
    instance: dg.DagsterInstance, asset: str, after: int, limit: int, ascending: bool = True
) -> list[Any]:
    """Materializations of `asset` after the event-log storage id `after`."""
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), after_storage_id=after),
        limit=limit,
        ascending=ascending,
    ).records


def _metadata(record: Any) -> dict[str, Any]:
    materialization = record.asset_materialization
    if materialization is None:
        return {}
    return {key: value.value for key, value in materialization.metadata.items()}


def _retrain_decision(
    state: dict, cursor: dict, settings, spec: DatasetSpec, trigger: str = "drift"
) -> dg.RunRequest | dg.SkipReason:
    """Retrain on `trigger`, in the spec's job, unless held back.

    Held back inside the cooldown, over the daily cap (both settings) or while a challenger is
    on trial; the retrain runs `retraining_job(spec)`.
    """
    if not state["drifted"]:
        return dg.SkipReason(f"no {trigger}: {state['reason']}")
    on_trial = _challenger_on_trial(spec)
    if on_trial:
        return dg.SkipReason(f"{trigger} ({state['reason']}) but {on_trial}")
    now = datetime.now(UTC)
    recent = [datetime.fromisoformat(t) for t in cursor["retrains"]]
    if recent and now - max(recent) < timedelta(hours=settings.retrain_cooldown_hours):
        return dg.SkipReason(
            f"{trigger} ({state['reason']}) but within the "
            f"{settings.retrain_cooldown_hours} h cooldown"
        )
    if sum(now - t < timedelta(days=1) for t in recent) >= settings.max_retrains_per_day:
        return dg.SkipReason(
            f"{trigger} ({state['reason']}) but {settings.max_retrains_per_day} retrains today "
            "already"
        )
    return dg.RunRequest(
        run_key=f"retrain:{trigger.replace(' ', '-')}-report-{state['report_storage_id']}",
        job_name=retraining_job(spec),
        tags={REASON_TAG: f"{trigger}: {state['reason']}"[:200]},
    )


def _challenger_on_trial(spec: DatasetSpec) -> str:
    """Why a retrain must wait: a staged challenger gathering live evidence, else "".

    Under `promotion.policy: live` a retrain would stage a newer winner in its place and throw
    away the labels gathered so far; `live_decision` ends the trial first.
    """
    if spec.promotion.policy != PromotionMode.LIVE:
        return ""
    try:
        rollout = read_rollout(_paths().rollout)
    except RolloutError as error:  # it may name a challenger on trial: wait until it is fixed
        return f"the rollout file cannot be read, so a trial may be under way: {error}"
    if rollout.mode == "champion":
        return ""
    return (
        f"challenger version {rollout.challenger_version} is in {rollout.mode} gathering live "
        "evidence: the retrain waits until live_decision promotes or rejects it"
    )


@dg.sensor(
    jobs=RETRAINING_JOBS,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def live_performance_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Retrain when the champion breaks the spec's live gate (`monitoring.live_gate`).

    Reads every `live_performance` materialization since the last tick, like the drift sensor,
    with the same cooldown and daily cap; the retrain goes through the usual gates.
    """
    settings = load_settings()
    cursor = json.loads(context.cursor) if context.cursor else {LAST_REPORT: 0, "retrains": []}
    records = _reports(context.instance, "live_performance", cursor[LAST_REPORT], limit=1_000)
    if not records:
        return dg.SkipReason("no new live performance report")
    cursor[LAST_REPORT] = records[-1].storage_id
    below = [r for r in records if _metadata(r).get("below_gate")]
    if not below:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"live gate holds: {_metadata(records[-1]).get('reason', '')}")
    state = {
        "drifted": True,
        "reason": _metadata(below[-1]).get("reason", ""),
        "report_storage_id": below[-1].storage_id,
    }
    decision = _retrain_decision(state, cursor, settings, _spec(), trigger="live performance")
    if isinstance(decision, dg.RunRequest):
        cursor["retrains"].append(datetime.now(UTC).isoformat())
    context.update_cursor(json.dumps(cursor))
    return decision


@dg.sensor(
    job=deploy_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def live_decision_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Package the new champion (deploy_job) after each promotion on live evidence.

    `live_decision` has already moved the alias and `bento.json`; the bento is built here, in
    a run of its own, like after a rollback.
    """
    after = int(context.cursor) if context.cursor else 0
    records = _reports(context.instance, "live_decision", after, limit=1_000)
    if not records:
        return dg.SkipReason("no new live decision")
    context.update_cursor(str(records[-1].storage_id))
    promoted = [r for r in records if _metadata(r).get("decision") == "promote"]
    if not promoted:
        return dg.SkipReason(f"no promotion: {_metadata(records[-1]).get('reason', '')}")
    newest = _metadata(promoted[-1])
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"deploy:live-decision-{promoted[-1].storage_id}",
                tags={
                    REASON_TAG: f"promoted on live evidence: v{newest.get('challenger_version')}"
                },
            )
        ]
    )


@dg.sensor(
    job=ingestion_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING
)
def freshness_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Act on staleness; open-source Dagster evaluates freshness policies but sends no alerts.

    A change of freshness state is logged in the tick log and POSTed to the configured webhook
    (once per change, not every tick). When raw data is stale and its last batch came from a
    file source that can be read again, a refresh ingestion of that source is requested.
    """
    settings, paths = load_settings(), _paths()
    states = {
        name: _freshness_state(context, name, windows)
        for name, windows in settings.freshness.items()
    }
    previous = json.loads(context.cursor) if context.cursor else {}
    changed = {name: state for name, state in states.items() if previous.get(name) != state}
    context.update_cursor(json.dumps(states))
    stale = {name: state for name, state in states.items() if state != "PASS"}
    if changed and stale:
        context.log.warning(f"freshness changed: {changed}; stale now: {stale}")
        if settings.webhook_url:
            _post(settings.webhook_url, {"event": "freshness", "changed": changed, "stale": stale})
    refresh = _refresh_request(paths) if "raw_data" in changed and stale.get("raw_data") else None
    if refresh is None:
        return dg.SkipReason(f"freshness: {states}")
    key, request = refresh
    return dg.SensorResult(
        run_requests=[request], dynamic_partitions_requests=[batches.build_add_request([key])]
    )


def _freshness_state(context: dg.SensorEvaluationContext, name: str, windows: Any) -> str:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(name))
    if event is None:
        return "FAIL"
    age = datetime.now(UTC) - datetime.fromtimestamp(event.timestamp, UTC)
    return "FAIL" if age > windows.fail else "WARN" if age > windows.warn else "PASS"


def _refresh_request(paths: PlatformPaths) -> tuple[str, dg.RunRequest] | None:
    """Re-read the file source of the newest batch, as a new batch."""
    manifests = sorted(paths.batch_manifests.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        return None
    source = str(read_json(manifests[-1]).get("source", ""))
    if not source.startswith("file:"):
        return None  # landing batches and generated data cannot be pulled again
    key = f"refresh-{datetime.now(UTC):%Y%m%d%H%M%S}"
    config = {"kind": "file", "path": source.removeprefix("file:")}
    request = dg.RunRequest(
        run_key=key,
        partition_key=key,
        run_config={"ops": {"raw_data": {"config": config}}},
        tags={REASON_TAG: "raw_data stale: refreshing from its file source"},
    )
    return key, request


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
    failures = _paths().failures
    failures.parent.mkdir(parents=True, exist_ok=True)
    with failures.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")


def _archive(landed: str, succeeded: bool, error: str) -> None:
    from pathlib import Path

    path = Path(landed)
    if os.path.lexists(path):
        try:
            archive_landed(path, succeeded=succeeded, error=error)
        except (SourceError, OSError):
            return  # e.g. an archive folder replaced by a link: leave the entry where it is


def _post(url: str, payload: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    # An unreachable webhook must not stop the sensor; the tick log has the event anyway.
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=5).close()
