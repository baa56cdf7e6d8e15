"""The Dagster internals the pipeline benchmark's plain mode relies on are still there.

`benchmarks/plain_graph.py` calls each asset's own function and gives direct invocation a run
record; if an upgrade moves either, this fails here rather than the benchmark printing a wrong
overhead figure.
"""

import importlib.util
import inspect
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.context.invocation import DirectAssetExecutionContext

from mlops_assets.definitions import defs
from mlops_assets.features.assets import features

PLAIN_GRAPH = Path(__file__).resolve().parents[2] / "benchmarks" / "plain_graph.py"


def _plain_graph():
    spec = importlib.util.spec_from_file_location("plain_graph", PLAIN_GRAPH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_asset_function_is_the_decorated_body() -> None:
    function = _plain_graph().asset_function(features)
    assert function.__name__ == "features"
    assert list(inspect.signature(function).parameters) == ["context", "home", "dataset"]


def test_direct_contexts_get_the_given_run(monkeypatch: pytest.MonkeyPatch) -> None:
    plain_graph = _plain_graph()
    for name in ("run", "run_id"):  # restored after the test: the patch is process-wide
        monkeypatch.setattr(
            DirectAssetExecutionContext, name, getattr(DirectAssetExecutionContext, name)
        )
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(job_def=defs.resolve_job_def("pipeline_job"))
        plain_graph._give_direct_contexts(run)
        context = dg.build_asset_context(instance=instance)
        assert context.run.run_id == run.run_id
        assert context.run_id == run.run_id


def test_peak_rss_restarts_after_a_reset() -> None:
    """Each step's own peak: after a reset the peak falls back below a freed allocation."""
    plain_graph = _plain_graph()
    held = bytearray(300 * 1024**2)
    held[::4096] = b"x" * len(held[::4096])  # touch every page so it is resident
    with_block = plain_graph.peak_rss_gb()
    del held
    plain_graph.reset_peak_rss()
    assert plain_graph.peak_rss_gb() < with_block - 0.2
