"""The closed loop on a real Dagster instance, sensors evaluated with build_sensor_context:
a drifted batch lands -> ingestion -> drift detected -> retraining -> a new champion -> a new
bento; a batch without drift triggers no retraining.

The first champion is a linear model (the spec's R² gate lowered to its reach), so the
retrained XGBoost challenger truly beats it: the test knows the retraining promotes."""

import os
import time

import dagster as dg
import pytest

from mlops_assets.automation.sensors import drift_sensor, ingested_sensor, landing_sensor
from mlops_assets.definitions import defs
from mlops_assets.runner import ingest_batch, open_instance, run_pipeline
from mlops_assets.sources import SyntheticConfig, drop_batch, generate_house_sales
from tests.integration.conftest import save_linear_reach_spec
from tests.materializations import metadata


def _land(paths, key: str, scenario: str, seed: int):
    config = SyntheticConfig(
        rows=3_000, seed=seed, scenario=scenario, first_house_id=seed * 10_000_000 + 1
    )
    path = drop_batch(generate_house_sales(config), paths.landing, key)
    old = time.time() - 60
    os.utime(path, (old, old))  # settled: not being written any more
    return path


def _execute(instance, job_name: str, request: dg.RunRequest):
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        run_config=request.run_config,
        tags=request.tags,
        raise_on_error=False,
    )
    assert result.success, job_name
    return result


def _ingest_landed(instance, paths, key):
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    result = landing_sensor(context)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    [request] = result.run_requests
    assert request.partition_key == key
    instance.add_dynamic_partitions("batches", [key])
    ingestion = _execute(instance, "ingestion_job", request)
    success = ingestion.get_run_success_event()
    status_context = dg.build_run_status_sensor_context(
        sensor_name="ingested_sensor",
        dagster_event=success,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(ingestion.run_id),
    )
    drift_request = ingested_sensor(status_context)
    assert isinstance(drift_request, dg.RunRequest)
    assert (paths.landing_processed / f"{key}.parquet").exists(), "landed file archived"
    return _execute(instance, "monitoring_job", drift_request)


@pytest.mark.slow
def test_drift_retrains_through_the_gates_and_no_drift_does_not(paths):
    save_linear_reach_spec(paths)
    instance = open_instance(paths)
    assert ingest_batch(instance, "initial", {"rows": 4_000}).success
    first = run_pipeline(instance, model_config={"families": ["linear"]})
    assert first.success and first.metadata["promoted_model"]["champion_version"] == "1"
    assert first.metadata["model"]["family"] == "linear"
    first_bento = first.metadata["bento"]["bento_tag"]
    assert first.metadata["bento"]["build"] == "built"
    assert first.metadata["feast_registry"]["apply"] == "applied"

    # A batch like the training data: no drift, no retraining.
    calm = _ingest_landed(instance, paths, "calm")
    assert metadata(calm, "drift_report")["drifted"] is False
    cursor = None
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    skipped = drift_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and "no drift" in skipped.skip_message
    cursor = context.cursor

    # A drifted batch: detected, and the drift sensor asks for retraining with a reason.
    _land(paths, "shifted", "covariate_shift", seed=7)
    shifted = _ingest_landed(instance, paths, "shifted")
    assert metadata(shifted, "drift_report")["drifted"] is True
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    request = drift_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["mlops/reason"].startswith("drift: batch shifted")
    again = drift_sensor(
        dg.build_sensor_context(instance=instance, definitions=defs, cursor=context.cursor)
    )
    assert isinstance(again, dg.SkipReason), "the same report never retrains twice"

    retrained = _execute(instance, "pipeline_job", request)
    promotion = metadata(retrained, "promoted_model")
    assert metadata(retrained, "feast_registry")["apply"] == "skipped: unchanged"
    assert promotion["candidate_version"] == "2"
    assert promotion["promoted"] is True, promotion
    assert promotion["champion_version"] == "2"
    assert metadata(retrained, "model")["family"] == "xgboost"
    assert metadata(retrained, "bento")["bento_tag"] != first_bento, "a new bento"
    assert metadata(retrained, "bento")["build"] == "built"
    # Packaging the same champion again (a kept champion, a rollback) reuses its bento.
    deployed = run_pipeline(instance, job="deploy_job")
    assert deployed.success, deployed.error
    assert deployed.metadata["bento"]["model_version"] == "2"
    assert deployed.metadata["bento_model"]["created"] is False
    assert deployed.metadata["bento"]["build"] == "skipped: unchanged"


@pytest.fixture(autouse=True)
def _calm_batch(paths):
    """The calm batch is landed before the test's first sensor tick."""
    _land(paths, "calm", "none", seed=5)
