"""Smoke test: the code location loads and every job and check resolves."""

from pathlib import Path

import dagster as dg
import yaml

from mlops_assets.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def _job_assets(name: str) -> set[str]:
    return {
        k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.executable_asset_keys
    }


def test_every_job_resolves_to_its_stage_on_one_process():
    graph = defs.resolve_asset_graph()
    by_group: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        by_group.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    assert _job_assets("ingestion_job") == {"raw_data", "cleaned_data"}
    assert _job_assets("deploy_job") == {"bento_model", "bento"}
    assert _job_assets("federated_job") == {
        "model",
        "validation_report",
        "promoted_model",
        "bento_model",
        "bento",
    }
    assert _job_assets("monitoring_job") == {"drift_report", "live_performance", "live_decision"}
    assert _job_assets("scoring_job") == {"batch_predictions"}
    scoring = defs.resolve_job_def("scoring_job")
    assert scoring.partitions_def is not None and scoring.partitions_def.name == "scoring_batches"
    pipeline = _job_assets("pipeline_job")
    assert pipeline == by_group["features"] | by_group["training"] | by_group["deployment"]
    stages = {"feast_registry", "online_features", "training_set", "model", "validation_report"}
    assert stages | {"promoted_model", "bento_model", "bento"} <= pipeline
    ingestion = defs.resolve_job_def("ingestion_job")
    assert ingestion.partitions_def is not None and ingestion.partitions_def.name == "batches"
    for job in defs.jobs or []:
        resolved = defs.resolve_job_def(job.name)
        assert resolved.executor_def.name == "in_process", f"{job.name}: see execution.py"


def test_assets_groups_and_checks():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"raw_data", "cleaned_data"} <= keys
    for key in ("raw_data", "cleaned_data"):
        assert graph.get(dg.AssetKey(key)).group_name == "ingestion"
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("cleaned_data", "quarantine_share") in checks
    assert ("raw_data", "required_columns") in checks


def test_workspace_and_pyproject_point_at_the_code_location():
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "mlops_assets.definitions"
    assert 'module_name = "mlops_assets.definitions"' in (ROOT / "pyproject.toml").read_text()


def test_only_correctness_checks_block():
    graph = defs.resolve_asset_graph()
    blocking = {
        (key.asset_key.to_user_string(), key.name)
        for key in graph.asset_check_keys
        if graph.get_check_spec(key).blocking
    }
    assert ("raw_data", "values_valid") not in blocking, "raw values are quarantined, not blocked"
    assert ("raw_data", "null_rates") not in blocking
    assert ("cleaned_data", "values_valid") in blocking
    assert ("cleaned_data", "quarantine_share") in blocking


def test_automation_is_declared():
    sensors = {s.name for s in defs.sensors or []}
    assert sensors == {
        "landing_sensor",
        "ingested_sensor",
        "ingestion_failed_sensor",
        "drift_sensor",
        "live_performance_sensor",
        "live_decision_sensor",
        "freshness_sensor",
        "run_failure_sensor",
        "scoring_landing_sensor",
        "scored_sensor",
        "scoring_failed_sensor",
    }
    [schedule] = defs.schedules or []
    assert schedule.name == "retrain_schedule"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    graph = defs.resolve_asset_graph()
    for name in ("raw_data", "cleaned_data", "model"):
        assert graph.get(dg.AssetKey(name)).freshness_policy is not None, name
    assert {j.name for j in defs.jobs or []} == {
        "ingestion_job",
        "pipeline_job",
        "federated_job",
        "deploy_job",
        "monitoring_job",
        "scoring_job",
    }
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"ingestion", "features", "training", "deployment", "monitoring", "scoring"}


def test_the_uis_rebuild_job_needs_no_partition_and_no_config():
    """`pipeline_job` is the UI's first step (docs/getting-started.md, *First steps in the UI*):
    Materialize all must launch as it is, without a partition to pick or config to write."""
    job = defs.resolve_job_def("pipeline_job")
    assert job.partitions_def is None
    graph = defs.resolve_asset_graph()
    selected = job.asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in selected} >= {"training_set", "model", "bento"}
    assert all(graph.get(key).partitions_def is None for key in selected)
    assert dg.validate_run_config(job, {}) is not None


def test_lineage_shows_what_each_asset_reads():
    """Every asset names what it reads, the champion included: the UI's graph is the truth."""
    graph = defs.resolve_asset_graph()
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents == {
        "raw_data": set(),
        "cleaned_data": {"raw_data"},
        "features": {"cleaned_data"},
        "feast_registry": {"features"},
        "online_features": {"feast_registry"},
        "training_set": {"cleaned_data", "feast_registry"},
        "model": {"training_set"},
        "validation_report": {"model"},
        "promoted_model": {"validation_report", "online_features"},
        "bento_model": {"promoted_model"},
        "bento": {"bento_model"},
        "batch_predictions": {"promoted_model"},
        "drift_report": {"cleaned_data", "promoted_model"},
        "live_performance": {"cleaned_data", "promoted_model"},
        "live_decision": {"live_performance"},
    }
