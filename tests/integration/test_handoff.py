"""What an asset reads of its upstream asset: its own run's record first, else the latest."""

import dagster as dg

from mlops_assets.handoff import upstream_metadata


class Given(dg.Config):
    value: str


@dg.asset
def up(config: Given) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"value": config.value})


@dg.asset(deps=[up])
def down(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"read": upstream_metadata(context, "up")["value"]})


def _read(result: dg.ExecuteInProcessResult) -> str:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["down"]]
    return event.materialization.metadata["read"].value


def _config(value: str) -> dict:
    return {"ops": {"up": {"config": {"value": value}}}}


def _materialize(instance, selection, value=None):
    config = _config(value) if value else {}
    return dg.materialize([up, down], selection=selection, instance=instance, run_config=config)


def test_a_reexecuted_run_reads_its_parent_runs_upstream_not_a_later_one():
    """Re-executing `down` of a run (the UI's "from failure") reads that run's `up`."""
    job = dg.reconstructable(_job)
    with dg.instance_for_test() as instance:
        with dg.execute_job(job, instance, run_config=_config("first")) as first:
            assert first.success
        later = dg.execute_job(
            job, instance, run_config=_config("later"), asset_selection=[dg.AssetKey("up")]
        )
        assert later.success
        options = dg.ReexecutionOptions(first.run_id, step_selection=["down"])
        with dg.execute_job(job, instance, reexecution_options=options) as again:
            assert again.success
            assert _read_run(instance, again.run_id) == "first"


def test_same_run_then_latest_when_the_upstream_is_not_in_the_run():
    with dg.instance_for_test() as instance:
        assert _read(_materialize(instance, ["up", "down"], "mine")) == "mine"
        _materialize(instance, ["up"], "newer")
        assert _read(_materialize(instance, ["down"])) == "newer"


def test_no_upstream_record_fails_naming_the_asset():
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [up, down], selection=["down"], instance=instance, raise_on_error=False
        )
        assert not result.success
        [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert "up has not been materialized yet" in failure.step_failure_data.error.message


def _job() -> dg.JobDefinition:
    job = dg.define_asset_job("handoff_job", selection=[up, down])
    definitions = dg.Definitions(assets=[up, down], jobs=[job], executor=dg.in_process_executor)
    return definitions.resolve_job_def("handoff_job")


def _read_run(instance, run_id: str) -> str:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    [down_event] = [
        r.event_log_entry.asset_materialization
        for r in records
        if r.event_log_entry.asset_materialization.asset_key.path == ["down"]
    ]
    return down_event.metadata["read"].value
