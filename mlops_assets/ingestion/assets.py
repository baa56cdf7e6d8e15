"""Assets of the `ingestion` group: each batch as delivered, then cleaned.

Thin wrappers: load inputs, call the functional core, check, publish atomically, attach
metadata. A blocking check failure raises before publication, so downstream assets keep reading
the previous good table.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from mlops_assets.automation.freshness import freshness_policy
from mlops_assets.core.cleaning import clean
from mlops_assets.core.quality import check_cleaned, check_raw
from mlops_assets.core.raw import RawBatch, missing_columns, prepare_raw
from mlops_assets.core.storage import (
    content_hash,
    read_json,
    write_json_atomic,
    write_parquet_atomic,
)
from mlops_assets.ingestion.checks import (
    CLEANED_CHECK_SPECS,
    RAW_CHECK_SPECS,
    blocking_failures,
    reject,
    to_check_result,
)
from mlops_assets.ingestion.partitions import batches
from mlops_assets.ingestion.source_config import SourceConfig, build_source
from mlops_assets.paths import PlatformPaths
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.sources import SourceError
from mlops_assets.spec import DatasetSpec

IO_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)


@dg.asset(
    partitions_def=batches,
    group_name="ingestion",
    kinds={"pandas", "parquet"},
    check_specs=RAW_CHECK_SPECS,
    retry_policy=IO_RETRY,
    freshness_policy=freshness_policy("raw_data"),
)
def raw_data(
    context: dg.AssetExecutionContext,
    config: SourceConfig,
    home: MlopsHome,
    dataset: DatasetSpecResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """One batch as delivered, typed by the dataset spec, content unchanged."""
    spec, paths, batch = dataset.load(), home.paths(), context.partition_key
    source = build_source(config, paths, batch)
    delivered = _load(source)
    delivered_hash = content_hash(delivered)
    if missing_columns(delivered, spec):
        yield from reject(
            check_raw(delivered, spec), f"raw_data for batch {batch!r} ({source.describe()})"
        )
    ingested_at = _first_ingestion_time(paths, batch, delivered_hash)
    prepared = prepare_raw(delivered, spec, source.describe(), ingested_at)
    outcomes = check_raw(prepared.frame, spec)
    if blocking_failures(outcomes):
        yield from reject(outcomes, f"raw_data for batch {batch!r} ({source.describe()})")
    path = write_parquet_atomic(prepared.frame, paths.raw(batch))
    manifest = {
        "batch": batch,
        "source": source.describe(),
        "ingested_at": ingested_at.isoformat(),
        "delivered_hash": delivered_hash,
        "content_hash": content_hash(prepared.frame),
        "rows": len(prepared.frame),
        "spec": f"{spec.name} v{spec.version}",
    }
    write_json_atomic(manifest, paths.manifest(batch))
    yield dg.MaterializeResult(
        metadata=_raw_metadata(prepared, spec, manifest, str(path)),
        check_results=[to_check_result(o) for o in outcomes],
        data_version=dg.DataVersion(manifest["content_hash"]),
    )


@dg.asset(
    partitions_def=batches,
    group_name="ingestion",
    deps=[raw_data],
    kinds={"pandas", "parquet"},
    check_specs=CLEANED_CHECK_SPECS,
    freshness_policy=freshness_policy("cleaned_data"),
)
def cleaned_data(
    context: dg.AssetExecutionContext, home: MlopsHome, dataset: DatasetSpecResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The batch with types coerced, exact duplicates removed and bad rows quarantined."""
    spec, paths, batch = dataset.load(), home.paths(), context.partition_key
    raw = pd.read_parquet(paths.raw(batch))
    result = clean(raw, spec)
    outcomes = check_cleaned(result, spec)
    if blocking_failures(outcomes):
        rejected = write_parquet_atomic(result.quarantine, paths.quarantine(batch, rejected=True))
        yield from reject(
            outcomes,
            f"cleaned_data for batch {batch!r} (quarantined rows of this attempt: {rejected}; "
            "the previous cleaned table is kept)",
        )
    write_parquet_atomic(result.quarantine, paths.quarantine(batch))
    path = write_parquet_atomic(result.cleaned, paths.cleaned(batch))
    paths.quarantine(batch, rejected=True).unlink(missing_ok=True)
    digest = content_hash(result.cleaned)
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "quarantine_path": dg.MetadataValue.path(str(paths.quarantine(batch))),
            "dagster/row_count": len(result.cleaned),
            "dagster/column_schema": _table_schema(result.cleaned),
            "raw_rows": result.raw_rows,
            "quarantined_rows": len(result.quarantine),
            "duplicates_removed": result.duplicates_removed,
            "quarantine_share": round(result.quarantine_share, 6),
            "rows_per_rule": dg.MetadataValue.json(result.rule_counts),
            "nulls_to_impute": dg.MetadataValue.json(result.to_impute),
            "content_hash": digest,
            "quarantine_sample": dg.MetadataValue.md(_sample_markdown(result.quarantine)),
        },
        check_results=[to_check_result(o) for o in outcomes],
        data_version=dg.DataVersion(digest),
    )


def _load(source: object) -> pd.DataFrame:
    try:
        return source.load()  # type: ignore[attr-defined]
    except SourceError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def _first_ingestion_time(paths: PlatformPaths, batch: str, delivered_hash: str) -> datetime:
    """Reuse the recorded ingestion time when the same content is ingested again.

    Derived timestamps (and everything downstream of them) then stay the same on a rerun.
    """
    manifest_path = paths.manifest(batch)
    if manifest_path.exists():
        manifest = read_json(manifest_path)
        if manifest.get("delivered_hash") == delivered_hash:
            return datetime.fromisoformat(manifest["ingested_at"])
    return datetime.now(UTC).replace(microsecond=0)


def _raw_metadata(prepared: RawBatch, spec: DatasetSpec, manifest: dict, path: str) -> dict:
    frame = prepared.frame
    timestamps = frame.get(spec.event_timestamp)
    time_range = "unknown"
    if timestamps is not None and isinstance(timestamps.dtype, pd.DatetimeTZDtype) and len(frame):
        time_range = f"{timestamps.min().isoformat()} .. {timestamps.max().isoformat()}"
    return {
        "path": dg.MetadataValue.path(path),
        "source": manifest["source"],
        "dagster/row_count": len(frame),
        "dagster/column_schema": _table_schema(frame),
        "content_hash": manifest["content_hash"],
        "time_range": time_range,
        "ingested_at": manifest["ingested_at"],
        "derived_entity_key": prepared.derived_entity_key,
        "derived_event_timestamp": prepared.derived_event_timestamp,
        "extra_columns": dg.MetadataValue.json(list(prepared.extra_columns)),
        "columns_kept_as_text": dg.MetadataValue.json(list(prepared.untyped_columns)),
    }


def _table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in frame.dtypes.items()]
    )


def _sample_markdown(quarantine: pd.DataFrame, rows: int = 10) -> str:
    if quarantine.empty:
        return "No rows quarantined."
    return quarantine.head(rows).to_markdown(index=False)
