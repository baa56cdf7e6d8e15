"""The scoring landing folder driven through the real sensor on a real Dagster instance."""

import os
import time

import dagster as dg

from mlops_assets.automation.scoring_sensors import SCORED_FILE_TAG, scoring_landing_sensor
from mlops_assets.definitions import defs
from mlops_assets.sources import SyntheticConfig, generate_house_sales


def test_a_settled_file_becomes_one_scoring_run_and_a_link_is_refused(paths, tmp_path):
    landing = paths.scoring_landing
    landing.mkdir(parents=True)
    rows = generate_house_sales(SyntheticConfig(rows=50)).drop(columns=["price"])
    settled = landing / "monday.csv"
    rows.to_csv(settled, index=False)
    past = time.time() - 60
    os.utime(settled, (past, past))
    writing = landing / "still_writing.csv"
    rows.to_csv(writing, index=False)
    os.utime(writing, (time.time() + 60, time.time() + 60))  # changing as the tick runs
    (tmp_path / "elsewhere.csv").write_text("secret")
    (landing / "sneaky.csv").symlink_to(tmp_path / "elsewhere.csv")

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        result = scoring_landing_sensor(context)

    [request] = result.run_requests
    assert request.partition_key == "monday"
    assert request.tags[SCORED_FILE_TAG] == str(settled)
    [added] = result.dynamic_partitions_requests
    assert list(added.partition_keys) == ["monday"]
    assert (landing / "failed" / "sneaky.csv").is_symlink()
    assert "symbolic link" in (landing / "failed" / "sneaky.csv.error.txt").read_text()


def test_a_file_missing_a_column_goes_to_failed_naming_the_column(paths):
    from mlops_assets.automation.scoring_sensors import scoring_failed_sensor
    from mlops_assets.runner import open_instance

    landing = paths.scoring_landing
    landing.mkdir(parents=True)
    rows = generate_house_sales(SyntheticConfig(rows=50)).drop(columns=["price", "bedrooms"])
    landed = landing / "short.csv"
    rows.to_csv(landed, index=False)
    past = time.time() - 60
    os.utime(landed, (past, past))
    instance = open_instance(paths)
    tick = scoring_landing_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    [request] = tick.run_requests
    instance.add_dynamic_partitions("scoring_batches", [request.partition_key])
    failed = defs.resolve_job_def("scoring_job").execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        raise_on_error=False,
    )
    assert not failed.success
    [failure] = instance.get_records_for_run(
        failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    context = dg.build_run_status_sensor_context(
        sensor_name="scoring_failed_sensor",
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(failed.run_id),
    ).for_run_failure()
    scoring_failed_sensor(context)
    assert not landed.exists()
    assert (landing / "failed" / "short.csv.error.txt").read_text() == (
        "batch_predictions: the file to score lacks feature columns ['bedrooms']: add them "
        "(the target 'price' may be left out; the key and time columns are optional)"
    )
