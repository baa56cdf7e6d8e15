"""Assets of the `ingestion` group: each batch as delivered, then cleaned.

Thin wrappers: load inputs, call the functional core, check, stage, publish, attach metadata.
Write-audit-publish for the whole set: `raw_data` stages the delivery under this run's own
folder; `cleaned_data` cleans and checks it and only then publishes raw, quarantine, cleaned
and manifest together (`publication.py`). A blocked or killed run leaves the previous set of
all four in place, and downstream assets keep reading it.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlops_assets.asset_checks import blocking_failures, reject, to_check_result
from mlops_assets.core.cleaning import CleaningResult, clean
from mlops_assets.core.metadata_bounds import bounded, message, sample_markdown, truncate
from mlops_assets.core.quality import check_cleaned, check_raw
from mlops_assets.core.raw import RawBatch, missing_columns, prepare_raw
from mlops_assets.core.storage import (
    content_hash,
    read_json,
    write_json_atomic,
    write_parquet_atomic,
)
from mlops_assets.ingestion.checks import CLEANED_CHECK_SPECS, RAW_CHECK_SPECS
from mlops_assets.ingestion.delivery import (
    DeliveryRefused,
    judge_delivery,
    manifest_history,
    repeated_delivery,
    unreadable_source,
)
from mlops_assets.ingestion.partitions import batches
from mlops_assets.ingestion.publication import (
    StagedSet,
    publish,
    recover,
    staged_set,
    sweep_stale_staging,
)
from mlops_assets.ingestion.source_config import (
    SourceConfig,
    SourceKind,
    build_source,
    recorded_form,
    resolve_source,
)
from mlops_assets.paths import PlatformPaths
from mlops_assets.progress import reporter
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.sources import DataSource, SourceError
from mlops_assets.spec import DatasetSpec

IO_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)
MAX_SCHEMA_COLUMNS = 200


@dg.asset(
    partitions_def=batches,
    group_name="ingestion",
    kinds={"pandas", "parquet"},
    check_specs=RAW_CHECK_SPECS,
    retry_policy=IO_RETRY,
)
def raw_data(
    context: dg.AssetExecutionContext,
    config: SourceConfig,
    home: MlopsHome,
    dataset: DatasetSpecResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """One batch as delivered, typed by the spec; staged here, published with cleaned_data."""
    spec, paths, batch, run = dataset.load(), home.paths(), context.partition_key, _run_key(context)
    recover(paths, batch)
    sweep_stale_staging(paths, batch, keep=run)
    published = _published_manifest(paths, batch)
    chosen, source, delivered = _read_delivery(config, paths, batch, published, spec)
    say = reporter(context)
    say(f"raw_data: {len(delivered):,} rows read from {truncate(source.describe())}")
    delivered_hash = content_hash(delivered)
    delivery = _refusing(
        lambda: judge_delivery(
            batch,
            published,
            delivered_hash,
            source.describe(),
            replace=config.replace,
            same_elsewhere=repeated_delivery(_other_manifests(paths, batch), batch, delivered_hash),
            allow_repeat=config.allow_repeat,
        )
    )
    what = f"raw_data for batch {batch!r} ({truncate(source.describe())})"
    if missing_columns(delivered, spec):
        yield from reject(check_raw(delivered, spec), what)
    prepared = prepare_raw(delivered, spec, source.describe(), delivery.ingested_at)
    outcomes = check_raw(prepared.frame, spec)
    if blocking_failures(outcomes):
        yield from reject(outcomes, what)
    staged = staged_set(paths, batch, run)
    write_parquet_atomic(prepared.frame, staged.raw)
    manifest = {
        "batch": batch,
        "source": source.describe(),
        "source_config": recorded_form(chosen),
        "ingested_at": delivery.ingested_at.isoformat(),
        "delivered_hash": delivered_hash,
        "content_hash": content_hash(prepared.frame),
        "rows": len(prepared.frame),
        "spec": f"{spec.name} v{spec.version}",
    }
    manifest["replacements"] = manifest_history(published, delivery, manifest)
    if delivery.repeats is not None:
        manifest["repeats_batch"] = delivery.repeats
    write_json_atomic(manifest, staged.manifest)
    metadata = _raw_metadata(prepared, spec, manifest, str(paths.raw(batch)))
    metadata["staged_at"] = dg.MetadataValue.path(str(staged.raw))
    metadata["replaces"] = dg.MetadataValue.json(delivery.replaces or {})
    metadata["repeats_batch"] = delivery.repeats or "-"
    yield dg.MaterializeResult(
        metadata=metadata,
        check_results=[to_check_result(o) for o in outcomes],
        data_version=dg.DataVersion(manifest["content_hash"]),
    )


@dg.asset(
    partitions_def=batches,
    group_name="ingestion",
    deps=[raw_data],
    kinds={"pandas", "parquet"},
    check_specs=CLEANED_CHECK_SPECS,
)
def cleaned_data(
    context: dg.AssetExecutionContext, home: MlopsHome, dataset: DatasetSpecResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The batch with types coerced, exact duplicates removed and bad rows quarantined.

    Cleans the delivery this run staged (or, run alone, the published raw table), and
    publishes the whole set only when every blocking check passed.
    """
    spec, paths, batch = dataset.load(), home.paths(), context.partition_key
    recover(paths, batch)
    staged = staged_set(paths, batch, _run_key(context))
    raw, manifest = _raw_to_clean(paths, batch, staged)
    result = clean(raw, spec)
    reporter(context)(
        f"cleaned_data: {result.raw_rows:,} rows checked: {len(result.cleaned):,} clean, "
        f"{len(result.quarantine):,} quarantined, {result.duplicates_removed:,} duplicates removed"
    )
    outcomes = check_cleaned(result, spec)
    if blocking_failures(outcomes):
        rejected = write_parquet_atomic(result.quarantine, paths.quarantine(batch, rejected=True))
        staged.discard()
        yield from reject(
            outcomes,
            f"cleaned_data for batch {batch!r} (quarantined rows of this attempt: {rejected}; "
            "the previous raw, cleaned and quarantine tables and manifest are kept)",
        )
    digest = content_hash(result.cleaned)
    write_parquet_atomic(result.quarantine, staged.quarantine)
    write_parquet_atomic(result.cleaned, staged.cleaned)
    manifest["cleaned"] = _cleaned_summary(result, digest)
    write_json_atomic(manifest, staged.manifest)
    publish(paths, batch, staged)
    paths.quarantine(batch, rejected=True).unlink(missing_ok=True)
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(paths.cleaned(batch))),
            "quarantine_path": dg.MetadataValue.path(str(paths.quarantine(batch))),
            "dagster/row_count": len(result.cleaned),
            "dagster/column_schema": _table_schema(result.cleaned),
            "raw_rows": result.raw_rows,
            "quarantined_rows": len(result.quarantine),
            "duplicates_removed": result.duplicates_removed,
            "quarantine_share": round(result.quarantine_share, 6),
            "rows_per_rule": dg.MetadataValue.json(bounded(result.rule_counts)),
            "nulls_to_impute": dg.MetadataValue.json(bounded(result.to_impute)),
            "content_hash": digest,
            "delivered_hash": manifest["delivered_hash"],
            "quarantine_sample": dg.MetadataValue.md(
                sample_markdown(result.quarantine, empty="No rows quarantined.")
            ),
        },
        check_results=[to_check_result(o) for o in outcomes],
        data_version=dg.DataVersion(digest),
    )


def _run_key(context: dg.AssetExecutionContext) -> str:
    """The staging key: a re-execution from failure finds the raw table its root run staged."""
    return context.run.root_run_id or context.run.run_id


def _published_manifest(paths: PlatformPaths, batch: str) -> dict | None:
    path = paths.manifest(batch)
    return read_json(path) if path.exists() else None


def _other_manifests(paths: PlatformPaths, batch: str) -> Iterator[dict]:
    """The published manifests of the other batches (an unreadable one is skipped)."""
    folder = paths.batch_manifests
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.name.startswith(".") or path == paths.manifest(batch):
            continue
        try:
            yield read_json(path)
        except (OSError, ValueError):
            continue  # a manifest being replaced, or damaged: it names no delivery to compare


def _raw_to_clean(paths: PlatformPaths, batch: str, staged: StagedSet) -> tuple[pd.DataFrame, dict]:
    """The delivery staged by this run, else (cleaned_data run alone) the published one."""
    if staged.raw.exists():
        return pd.read_parquet(staged.raw), read_json(staged.manifest)
    if not paths.raw(batch).exists():
        raise dg.Failure(
            description=f"batch {batch!r} has no raw table: materialize raw_data for it first",
            allow_retries=False,
        )
    return pd.read_parquet(paths.raw(batch)), read_json(paths.manifest(batch))


def _cleaned_summary(result: CleaningResult, digest: str) -> dict:
    """The cleaned side of the manifest: `raw = cleaned + quarantined + duplicates`."""
    return {
        "content_hash": digest,
        "rows": len(result.cleaned),
        "quarantined_rows": len(result.quarantine),
        "duplicates_removed": result.duplicates_removed,
        "raw_rows": result.raw_rows,
    }


def _refusing(decide):
    """Run a delivery decision; a refusal ends the run with its message, never retried."""
    try:
        return decide()
    except (DeliveryRefused, ValueError) as exc:
        raise dg.Failure(description=message(str(exc)), allow_retries=False) from exc


def _read_delivery(
    config: SourceConfig,
    paths: PlatformPaths,
    batch: str,
    published: dict | None,
    spec: DatasetSpec,
) -> tuple[SourceConfig, DataSource, pd.DataFrame]:
    """Read this run's delivery; a re-run whose recorded source is gone is refused, not fed."""
    chosen = _refusing(lambda: resolve_source(config, paths, batch, published))
    text_key = (spec.entity_key,) if spec.text_entity_key else ()
    source = build_source(chosen, paths, batch, text_key)
    try:
        return chosen, source, source.load()
    except SourceError as exc:
        rerun = config.kind == SourceKind.AUTO and published is not None
        error = unreadable_source(batch, source.describe(), str(exc)) if rerun else exc
        raise dg.Failure(description=message(str(error)), allow_retries=False) from exc


def _raw_metadata(prepared: RawBatch, spec: DatasetSpec, manifest: dict, path: str) -> dict:
    frame = prepared.frame
    timestamps = frame.get(spec.event_timestamp)
    time_range = "unknown"
    if timestamps is not None and isinstance(timestamps.dtype, pd.DatetimeTZDtype) and len(frame):
        time_range = f"{timestamps.min().isoformat()} .. {timestamps.max().isoformat()}"
    return {
        "path": dg.MetadataValue.path(path),
        "source": truncate(manifest["source"]),
        "dagster/row_count": len(frame),
        "dagster/column_schema": _table_schema(frame),
        "content_hash": manifest["content_hash"],
        "time_range": time_range,
        "ingested_at": manifest["ingested_at"],
        "derived_entity_key": prepared.derived_entity_key,
        "derived_event_timestamp": prepared.derived_event_timestamp,
        "extra_columns": dg.MetadataValue.json(bounded(list(prepared.extra_columns))),
        "columns_kept_as_text": dg.MetadataValue.json(bounded(list(prepared.untyped_columns))),
    }


def _table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    """Column names come from the delivery: cut long ones, and list at most a few hundred."""
    columns = [
        dg.TableColumn(name=truncate(str(c)), type=str(t))
        for c, t in list(frame.dtypes.items())[:MAX_SCHEMA_COLUMNS]
    ]
    if frame.shape[1] > MAX_SCHEMA_COLUMNS:
        hidden = frame.shape[1] - MAX_SCHEMA_COLUMNS
        columns.append(dg.TableColumn(name=f"…[{hidden} more columns]", type="-"))
    return dg.TableSchema(columns=columns)
