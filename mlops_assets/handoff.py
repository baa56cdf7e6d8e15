"""How an asset learns what the asset before it produced: from that asset's own record.

The candidate model travels from `model` to `validation_report` to `promoted_model` in the
metadata each one records, read back from the run that is executing, never from a "latest"
pointer file that any run may overwrite. Two pipeline runs in flight therefore each judge and
promote their own candidate.

Where the upstream asset was not part of this run (a re-execution of a failed step, or one
asset materialized on its own from the UI), the run it re-executes is read next, and then the
asset's latest materialization: the value Dagster itself shows as the asset's current one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg


def upstream_metadata(context: dg.AssetExecutionContext, asset: str) -> dict[str, Any]:
    """The metadata `asset` recorded for this run (see the module's docstring for the order)."""
    instance, key = context.instance, dg.AssetKey(asset)
    for run_id in _lineage(instance, context.run):
        found = _materialized_in(instance, run_id, key)
        if found is not None:
            return found
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise dg.Failure(
            description=f"{asset} has not been materialized yet: materialize it first",
            allow_retries=False,
        )
    return _values(event.asset_materialization.metadata)


def _lineage(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Iterator[str]:
    """The run itself, then the run it re-executes, and so on back to the first."""
    current: dg.DagsterRun | None = run
    while current is not None:
        yield current.run_id
        parent = current.parent_run_id
        current = instance.get_run_by_id(parent) if parent else None


def _materialized_in(
    instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey
) -> dict[str, Any] | None:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, ascending=False
    ).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key == key:
            return _values(materialization.metadata)
    return None


def _values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in metadata.items()}
