"""Files dropped in `MLOPS_HOME/scoring/landing` are scored, then archived like landed batches.

The same rules as the training landing folder: a file is taken once it has stopped changing,
links and odd names are refused into `failed/` with the reason, a scored file moves to
`processed/` and a file that could not be scored to `failed/` with the error beside it.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg

from mlops_assets.automation.settings import load_settings
from mlops_assets.jobs import scoring_job
from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.run_failures import run_failure_message
from mlops_assets.scoring.partitions import scoring_batches
from mlops_assets.sources.landing import archive_landed, batch_key_for, scan_landing

SCORED_FILE_TAG = "mlops/file_to_score"


@dg.sensor(
    job=scoring_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def scoring_landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """One scoring run per settled file in the scoring landing folder."""
    folder = PlatformPaths(resolve_home()).scoring_landing
    scan = scan_landing(folder)
    for path, reason in scan.refused:
        context.log.warning(f"refused {path.name!r}: {reason}")
        archive_landed(path, succeeded=False, error=reason)
    settle, now = load_settings().landing_settle_seconds, time.time()
    requests, keys = [], []
    for path in scan.ready:
        stat = path.lstat()
        if now - stat.st_mtime < settle:
            continue
        keys.append(batch_key_for(path))
        requests.append(
            dg.RunRequest(
                run_key=f"score:{path.name}:{stat.st_size}:{stat.st_mtime_ns}",
                partition_key=keys[-1],
                tags={SCORED_FILE_TAG: str(path)},
            )
        )
    if not requests:
        return dg.SkipReason(f"nothing to score in {folder}")
    return dg.SensorResult(
        run_requests=requests, dynamic_partitions_requests=[scoring_batches.build_add_request(keys)]
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[scoring_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def scored_sensor(context: dg.RunStatusSensorContext) -> None:
    """A scored file moves to `processed/`."""
    landed = context.dagster_run.tags.get(SCORED_FILE_TAG)
    if landed and Path(landed).exists():
        archive_landed(Path(landed), succeeded=True)


@dg.run_failure_sensor(monitored_jobs=[scoring_job], default_status=dg.DefaultSensorStatus.RUNNING)
def scoring_failed_sensor(context: dg.RunFailureSensorContext) -> None:
    """A file that could not be scored moves to `failed/`, with the error beside it."""
    landed = context.dagster_run.tags.get(SCORED_FILE_TAG)
    if landed and Path(landed).exists():
        # The step's own reason (the missing column, the unreadable file), not "Steps failed".
        error = run_failure_message(context.instance, context.dagster_run.run_id)
        archive_landed(Path(landed), succeeded=False, error=error)
