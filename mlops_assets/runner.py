"""Headless execution of the platform's jobs against its persistent Dagster instance.

The CLI and the tests go through here, so a run started from a terminal shows up in the Dagster
UI exactly like one launched there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from mlops_assets.automation.sensors import REASON_TAG
from mlops_assets.dead_runs import IN_FLIGHT, fail_dead_runs, process_tags
from mlops_assets.disk_space import keep_reserve, release_reserve
from mlops_assets.model_registry.state_setup import setup_lock
from mlops_assets.paths import HOME_ENV, PlatformPaths
from mlops_assets.profile import active_profile
from mlops_assets.run_failures import failure_message
from mlops_assets.sources import (
    SourceError,
    archive_landed,
    batch_key_for,
    scan_landing,
    validate_batch_key,
)


@dataclass(frozen=True)
class BatchRun:
    """The outcome of ingesting one batch."""

    batch: str
    success: bool
    run_id: str
    error: str = ""


@dataclass(frozen=True)
class PipelineRun:
    """The outcome of the pipeline job, with each asset's metadata for reporting."""

    success: bool
    run_id: str
    metadata: dict[str, dict[str, Any]]
    error: str = ""


def open_instance(paths: PlatformPaths) -> dg.DagsterInstance:
    """Open the platform's Dagster instance under `MLOPS_HOME`.

    Both env vars are pointed there, so in-process runs and later `dagster dev` sessions see
    the same state. Runs whose process was killed are marked failed first (`dead_runs.py`),
    so no command shows or waits on a run that can no longer end.
    """
    os.environ[HOME_ENV] = str(paths.root)
    os.environ["DAGSTER_HOME"] = str(paths.ensure_dagster_home())
    keep_reserve(paths.root)  # room to record a stop on a full disk (`disk_space.py`)
    with setup_lock(paths, "dagster"):  # one process creates the SQLite storages
        instance = dg.DagsterInstance.from_config(str(paths.dagster_home))
        instance.get_run_records(limit=1)
        instance.all_instigator_state()
    fail_dead_runs(instance)
    return instance


def fail_own_runs(paths: PlatformPaths, reason: str) -> list[str]:
    """Mark failed the runs this process leaves in flight, saying why; their ids.

    A process that stops on an error Dagster could not record (a full disk) would otherwise
    leave its runs `STARTED`, and the next command would call them killed. Best effort: when
    not even that fits on the disk, the runs stay as they are.
    """
    release_reserve(paths.root)
    try:
        instance = dg.DagsterInstance.from_config(str(paths.dagster_home))
        mine = dg.RunsFilter(statuses=IN_FLIGHT, tags=process_tags())
        runs = [record.dagster_run for record in instance.get_run_records(filters=mine)]
        for run in runs:
            instance.report_run_failed(run, message=reason)
    except Exception:
        return []
    return [run.run_id for run in runs]


def ingest_batch(
    instance: dg.DagsterInstance,
    batch: str,
    source: dict[str, Any] | None = None,
    log_level: str = "WARNING",
) -> BatchRun:
    """Register `batch` as a partition and run the ingestion job for it."""
    from mlops_assets.definitions import defs  # deferred: loading the code location is slow

    validate_batch_key(batch)
    instance.add_dynamic_partitions("batches", [batch])
    job = defs.resolve_job_def("ingestion_job")
    result = job.execute_in_process(
        instance=instance,
        partition_key=batch,
        run_config={
            "ops": {"raw_data": {"config": source or {}}},
            "loggers": {"console": {"config": {"log_level": log_level}}},
        },
        tags=process_tags(),
        raise_on_error=False,
    )
    return BatchRun(
        batch, result.success, result.run_id, "" if result.success else failure_message(result)
    )


def run_pipeline(
    instance: dg.DagsterInstance,
    log_level: str = "WARNING",
    job: str = "pipeline_job",
    *,
    parallel: bool = False,
    model_config: dict[str, Any] | None = None,
    full_online_rewrite: bool = False,
    reason: str = "",
) -> PipelineRun:
    """Run an unpartitioned job; by default everything after ingestion, over all batches.

    `model_config` overrides the `model` asset's run config (training settings) for this run;
    `full_online_rewrite` rewrites every entity online, not only those that changed.
    `reason` is tagged on the run (`mlops/reason`) and names its MLflow run.

    `parallel` runs independent steps in their own processes (the multiprocess executor). That
    needs instance storage several processes can write at once: PostgreSQL, the production
    profile. On the embedded SQLite instance it is the known "database is locked" failure.
    """
    from mlops_assets.definitions import defs

    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    ops: dict[str, Any] = {}
    if model_config:
        ops["model"] = {"config": model_config}
    if full_online_rewrite:
        ops["online_features"] = {"config": {"full_rewrite": True}}
    if ops:
        run_config["ops"] = ops
    tags = {**process_tags(), **({REASON_TAG: reason} if reason else {})}
    if not parallel:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, run_config=run_config, tags=tags, raise_on_error=False
        )
        return _pipeline_outcome(result)
    if job != "pipeline_job":
        raise ValueError(f"parallel execution is set up for pipeline_job only, not {job!r}")
    if not active_profile().is_production:
        raise ValueError(
            "parallel steps need the production profile (MLOPS_PROFILE=production): the "
            "embedded SQLite instance fails with 'database is locked' under parallel writers"
        )
    with dg.execute_job(
        dg.reconstructable(parallel_pipeline_job),
        instance=instance,
        run_config=run_config,
        tags=tags,
        raise_on_error=False,
    ) as result:
        return _pipeline_outcome(result)


def parallel_pipeline_job() -> dg.JobDefinition:
    """`pipeline_job` on the multiprocess executor (module level, so steps can rebuild it)."""
    from mlops_assets.definitions import defs
    from mlops_assets.execution import parallel_executor

    return defs.resolve_job_def("pipeline_job").with_executor_def(parallel_executor)


def _pipeline_outcome(result: Any) -> PipelineRun:
    metadata = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata[materialization.asset_key.to_user_string()] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    error = "" if result.success else failure_message(result)
    return PipelineRun(result.success, result.run_id, metadata, error)


def ingest_landed(
    instance: dg.DagsterInstance,
    paths: PlatformPaths,
    *,
    replace: bool = False,
    log_level: str = "WARNING",
    allow_repeat: bool = False,
) -> list[BatchRun]:
    """Ingest every ready landed file as its own batch, then archive it by outcome.

    Each file stands alone: one that is refused (not a regular file, not a valid batch key) or
    fails goes to `failed/` with its error, and the files after it are still ingested.
    """
    scan = scan_landing(paths.landing)
    runs = [_refuse_landed(path, reason) for path, reason in scan.refused]
    for path in scan.ready:
        source = {"kind": "landing", "replace": replace, "allow_repeat": allow_repeat}
        try:
            run = ingest_batch(instance, batch_key_for(path), source, log_level)
        except (ValueError, OSError) as exc:
            run = BatchRun(batch_key_for(path), False, "", f"{path.name}: {exc}")
        archive_landed(path, succeeded=run.success, error=run.error)
        runs.append(run)
    return runs


def _refuse_landed(path: Path, reason: str) -> BatchRun:
    """A landed entry that is never read: moved to `failed/` as it is, with the reason."""
    try:
        archive_landed(path, succeeded=False, error=reason)
    except (SourceError, OSError) as exc:
        reason = f"{reason}; it could not be moved to failed/ either: {exc}"
    return BatchRun(path.name, False, "", reason)


def table_rows(path: os.PathLike[str] | str) -> int | None:
    """Row count of a Parquet table from its footer, without loading it."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (FileNotFoundError, OSError):
        return None
