"""The graph's assets called as plain Python functions, for `pipeline.py`'s overhead figure.

Orchestration overhead is what a Dagster run adds to the work of its steps: building the
run, the step plan, the event log, each step's start and end, check and materialization
events. To measure it, the same asset functions run here without a run: each asset's own
function (the body under `@dg.asset`) is called in topological order with the platform's
resources and a context from `dg.build_asset_context`, and its outcome is recorded with one
runless materialization, which is how the next asset finds the candidate it hands over
(`handoff.py` reads the latest materialization when its run holds none).

Two parts of Dagster that a plain call does not offer are reached through its internals, here
and only here: the decorated function (`op.compute_fn.decorated_fn`) and the `run` that
direct invocation leaves unset (the staging key and MLflow's run name read it); a Dagster run
record is created for it, with no events. `tests/unit/test_plain_graph.py` fails if an
upgrade moves either.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.execution.context.invocation import DirectAssetExecutionContext


def asset_function(assets_def: dg.AssetsDefinition) -> Any:
    """The function under `@dg.asset`, as written (Dagster internals)."""
    return assets_def.op.compute_fn.decorated_fn


def run_plain(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    partition: str | None = None,
    configs: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Call every asset of `job_name` in order, as plain functions.

    Returns the seconds and the peak RSS (GB) of each asset.
    """
    logging.getLogger("dagster").setLevel(logging.WARNING)  # as the runs' log level
    job = defs.resolve_job_def(job_name)
    graph = defs.resolve_asset_graph()
    run = instance.create_run_for_job(job_def=job, tags=_partition_tags(partition))
    _give_direct_contexts(run)
    seconds, peaks = {}, {}
    for key in graph.toposorted_asset_keys:
        if key not in job.asset_layer.executable_asset_keys:
            continue
        reset_peak_rss()
        began = time.perf_counter()
        assets_def = graph.get(key).assets_def
        context = dg.build_asset_context(instance=instance, partition_key=partition)
        outcome = _call(assets_def, context, defs.resources, (configs or {}).get(key.path[-1]))
        metadata = _materialized_metadata(outcome)
        event = dg.AssetMaterialization(key, partition=partition, metadata=metadata)
        instance.report_runless_asset_event(event)
        seconds[key.to_user_string()] = time.perf_counter() - began
        peaks[key.to_user_string()] = peak_rss_gb()
    return seconds, peaks


def reset_peak_rss() -> None:
    """Start this process's peak RSS afresh (Linux: VmHWM), so each step gets its own peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_gb() -> float:
    """This process's peak RSS since the last reset, in GB (0.0 where /proc is missing)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return 0.0


def _call(
    assets_def: dg.AssetsDefinition,
    context: Any,
    resources: dict[str, Any],
    config: dict[str, Any] | None,
) -> Any:
    function = asset_function(assets_def)
    parameters = inspect.signature(function).parameters
    arguments: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if name == "context":
            arguments[name] = context
        elif name == "config":
            arguments[name] = parameter.annotation(**(config or {}))
        else:
            arguments[name] = resources[name]
    return function(**arguments)


def _materialized_metadata(outcome: Any) -> dict[str, Any]:
    """Run the asset's generator to its end; the metadata of its MaterializeResult."""
    items: Iterable[Any] = outcome if inspect.isgenerator(outcome) else [outcome]
    metadata: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dg.MaterializeResult):
            metadata = dict(item.metadata or {})
    return metadata


def _give_direct_contexts(run: dg.DagsterRun) -> None:
    """Direct invocation has no run; give it one record (Dagster internals)."""
    DirectAssetExecutionContext.run = property(lambda self: run)  # type: ignore[method-assign,assignment]
    DirectAssetExecutionContext.run_id = property(lambda self: run.run_id)  # type: ignore[method-assign,assignment]


def _partition_tags(partition: str | None) -> dict[str, str]:
    return {"dagster/partition": partition} if partition else {}
