"""End to end through the `mlops` command, as a user runs it, against a real Dagster instance."""

import os
import subprocess
import sys

import dagster as dg
import pytest
import yaml

from mlops_assets.cli import main
from mlops_assets.spec import HOUSE_PRICES_SPEC

pytestmark = pytest.mark.slow


def test_main_job_runs_as_a_user_runs_it(mlops_home):
    completed = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "run", "--rows", "3000"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLOPS_HOME": str(mlops_home)},
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Batch 'initial': 3,000 raw rows -> 3,000 cleaned, 0 quarantined" in completed.stdout
    assert str(mlops_home / "data" / "cleaned") in completed.stdout
    instance = dg.DagsterInstance.from_config(str(mlops_home / "dagster"))
    runs = {r.dagster_run.job_name: r.dagster_run.status for r in instance.get_run_records()}
    assert runs == {
        "ingestion_job": dg.DagsterRunStatus.SUCCESS,
        "pipeline_job": dg.DagsterRunStatus.SUCCESS,
    }
    assert "Features: 3,000 rows; " in completed.stdout, "read from the `features` asset"
    assert "training set: " in completed.stdout
    assert instance.get_dynamic_partitions("batches") == ["initial"]


def test_landing_ingest_and_status(mlops_home, paths, capsys):
    assert main(["land", "--rows", "1500", "--seed", "3", "--key", "good"]) == 0
    assert (
        main(["land", "--rows", "1500", "--fault", "nulls", "--fault-rate", "0.3", "--key", "bad"])
        == 0
    )
    assert main(["land", "--rows", "1500", "--seed", "5", "--format", "csv", "--key", "more"]) == 0
    assert main(["ingest"]) == 1, "one batch fails its checks"
    output = capsys.readouterr().out
    assert "Batch 'bad' FAILED" in output and "quarantine_share" in output
    assert (paths.landing_processed / "good.parquet").exists()
    assert (paths.landing_processed / "more.csv").exists()
    assert (paths.landing_failed / "bad.parquet").exists()
    assert "quarantine_share" in (paths.landing_failed / "bad.parquet.error.txt").read_text()
    assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert "Batches: 3" in status and "FAILURE" in status and "SUCCESS" in status


def test_own_data_with_own_spec(mlops_home, paths, tmp_path, capsys):
    from mlops_assets.sources import SklearnSource
    from mlops_assets.spec import BREAST_CANCER_SPEC

    csv = tmp_path / "cancer.csv"
    SklearnSource("breast_cancer").load().to_csv(csv, index=False)
    code = main(
        [
            "run",
            "--spec",
            str(BREAST_CANCER_SPEC),
            "--source",
            "file",
            "--path",
            str(csv),
            "--batch",
            "c1",
        ]
    )
    assert code == 0, capsys.readouterr().out
    assert paths.saved_spec.read_text() == BREAST_CANCER_SPEC.read_text()
    assert "569 raw rows -> 569 cleaned" in capsys.readouterr().out
    # Unchanged data would write nothing online; the flag rewrites every entity.
    again = ["run", "--source", "file", "--path", str(csv), "--batch", "c1"]
    assert main([*again, "--full-online-rewrite"]) == 0
    assert "online store: 569 entities written (full), 0 unchanged" in capsys.readouterr().out


def test_invalid_spec_is_refused_before_anything_runs(tmp_path, paths, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: regression\ncolumns: []\n")
    assert main(["run", "--spec", str(bad)]) == 2
    assert "columns" in capsys.readouterr().out
    assert not paths.saved_spec.exists()


def test_run_with_a_federated_spec_trains_at_the_sites_not_centrally(
    mlops_home, paths, tmp_path, capsys
):
    """`mlops run` with sites in the spec runs federated_job: nothing is ingested centrally.

    `--parallel` (the central graph's executor) is refused before any run starts, which shows
    the route without training.
    """
    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    document["training"]["federated"] = {"sites": {"north": "/n", "south": "/s"}}
    spec = tmp_path / "federated.yaml"
    spec.write_text(yaml.safe_dump(document))

    assert main(["run", "--spec", str(spec), "--parallel"]) == 2
    assert "a federated spec runs federated_job" in capsys.readouterr().out
    assert not paths.raw("initial").exists()
    assert not dg.DagsterInstance.get().get_runs()
