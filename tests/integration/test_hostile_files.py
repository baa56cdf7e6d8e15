"""Files anyone can write into the state folder: each reader takes a bad one as its own error."""

import json

import dagster as dg

from mlops_assets.cli import main


def test_rollout_status_names_a_file_nested_beyond_the_stack(paths, capsys):
    paths.rollout.parent.mkdir(parents=True)
    paths.rollout.write_text("[" * 100_000)
    assert main(["rollout", "status"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "Champion: none (no model trained yet)",
        "Service: no running `mlops serve` worker reports to this state folder",
        f"Rollout: the service serves the champion alone: {paths.rollout} is not a valid "
        "rollout setting (nested too deeply to read); fix it with `mlops rollout ...` or delete "
        "it to serve the champion alone",
    ]


def test_live_performance_counts_bad_lines_and_survives_a_bad_rollout_file(paths, tmp_path):
    from mlops_assets.model_registry.tracking import MlflowTracking
    from mlops_assets.monitoring.assets import live_performance
    from mlops_assets.resources import DatasetSpecResource, MlopsHome

    paths.rollout.parent.mkdir(parents=True)
    paths.rollout.write_text("[" * 100_000)
    good = {
        "timestamp": "2026-11-01T10:00:00+00:00",
        "model_version": "1",
        "output": 1.0,
        "request_id": "r",
        "row": 0,
        "inputs": {"house_id": 5},
    }
    bad = [{"timestamp": "yesterday"}, {"timestamp": "9999-12-31"}, {"timestamp": 7}]
    bad.append({"inputs": {"house_id": 2**70}})
    lines = [good, *({**good, **b} for b in bad), {**good, "inputs": {"house_id": 6}}]
    paths.predictions.mkdir(parents=True)
    (paths.predictions / "worker.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    home = MlopsHome()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            [live_performance],
            instance=instance,
            resources={
                "home": home,
                "dataset": DatasetSpecResource(home=home),
                "mlflow_tracking": MlflowTracking(home=home),
            },
        )
    metadata = result.asset_materializations_for_node("live_performance")[0].metadata
    assert metadata["unreadable_log_lines"].value == 4
    assert metadata["pending_predictions"].value == 2 and metadata["judged"].value == 0
    assert metadata["challenger_evidence"].value == {}
