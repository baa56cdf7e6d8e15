"""A batch is its delivery: re-runs, replacements, kills and the landing folder.

Each test reproduces a way a batch's data was once replaced, lost, blocked or read when it must
not be, through the paths a user takes: the launchpad's default config, `mlops ingest`, the
landing sensor and a process killed with SIGKILL.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._serdes import serialize_value

from mlops_assets.automation.sensors import landing_sensor
from mlops_assets.cli import main
from mlops_assets.core.storage import read_json
from mlops_assets.definitions import defs
from mlops_assets.features.inputs import cleaned_batch_paths
from mlops_assets.runner import ingest_batch, ingest_landed, open_instance
from mlops_assets.sources import SyntheticConfig, drop_batch, generate_house_sales
from tests.integration.conftest import batch_set, failure_text
from tests.materializations import metadata

CHILD = Path(__file__).with_name("ingest_process.py")


def _sales(rows: int, seed: int) -> pd.DataFrame:
    return generate_house_sales(
        SyntheticConfig(rows=rows, seed=seed, first_house_id=seed * 10_000_000 + 1)
    )


def _settled(path: Path) -> None:
    old = time.time() - 600
    os.utime(path, (old, old), follow_symlinks=False)


def test_ui_rerun_with_default_config_rereads_the_landed_file(paths):
    instance = open_instance(paths)
    landed = _sales(1_500, seed=7)
    drop_batch(landed, paths.landing, "landed-1", "csv")
    [first] = ingest_landed(instance, paths)
    assert first.success, first.error
    before = read_json(paths.manifest("landed-1"))

    # What the launchpad launches for a partition when nobody edits its config: the defaults.
    job = defs.resolve_job_def("ingestion_job")
    rerun = job.execute_in_process(
        instance=instance, partition_key="landed-1", raise_on_error=False
    )
    assert rerun.success, failure_text(rerun)
    after = read_json(paths.manifest("landed-1"))
    assert after["source"] == before["source"] and after["source"].startswith("landing:")
    assert (after["delivered_hash"], after["ingested_at"]) == (
        before["delivered_hash"],
        before["ingested_at"],
    )
    cleaned = pd.read_parquet(paths.cleaned("landed-1"))
    assert sorted(cleaned["house_id"].unique()) == sorted(landed["house_id"].unique())

    # With its recorded source gone, a re-run refuses instead of reading another one.
    (paths.landing_processed / "landed-1.csv").unlink()
    kept = batch_set(paths, "landed-1")
    refused = job.execute_in_process(
        instance=instance, partition_key="landed-1", raise_on_error=False
    )
    assert not refused.success
    text = failure_text(refused)
    assert "batch 'landed-1' was delivered by landing:" in text
    assert "cannot be read again" in text and "replace: true" in text
    assert batch_set(paths, "landed-1") == kept


def test_different_delivery_is_refused_without_replace_and_recorded_with_it(ingest, paths):
    assert ingest("b1", {"rows": 2_000, "seed": 1}).success
    old = read_json(paths.manifest("b1"))
    kept = batch_set(paths, "b1")
    other = {"rows": 2_000, "seed": 2, "first_house_id": 20_000_001}

    refused = ingest("b1", other)
    assert not refused.success
    text = failure_text(refused)
    assert "batch 'b1' already holds a different delivery" in text
    assert old["delivered_hash"][:16] in text and "replace: true" in text
    assert batch_set(paths, "b1") == kept, "nothing changed"

    replaced = ingest("b1", {**other, "replace": True})
    assert replaced.success, failure_text(replaced)
    new = read_json(paths.manifest("b1"))
    assert new["delivered_hash"][:16] in text, "the refusal named the new delivery's hash too"
    [record] = new["replacements"]
    assert record["previous"]["delivered_hash"] == old["delivered_hash"]
    assert record["previous"]["content_hash"] == old["content_hash"]
    assert record["new"]["delivered_hash"] == new["delivered_hash"] != old["delivered_hash"]
    assert record["new"]["content_hash"] == new["content_hash"] != old["content_hash"]
    assert pd.read_parquet(paths.cleaned("b1"))["house_id"].min() >= 20_000_001


def _wait_for_step(instance, step: str, child: subprocess.Popen, timeout: float) -> None:
    """Return as soon as the child's run has started `step` (read from the event log)."""
    deadline = time.monotonic() + timeout
    running = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()[0]
        for record in instance.get_run_records(filters=running):
            starts = instance.all_logs(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_START
            )
            if any(log.step_key == step for log in starts):
                return
        time.sleep(0.02)
    pytest.fail(f"{step} did not start within {timeout} s")


def test_kill_during_cleaned_data_keeps_the_previous_set(paths, mlops_home):
    instance = open_instance(paths)
    assert ingest_batch(instance, "b1", {"kind": "synthetic", "rows": 5_000, "seed": 1}).success
    kept = batch_set(paths, "b1")
    # Large enough that cleaning takes seconds, so the kill lands inside cleaned_data.
    source = {"kind": "synthetic", "rows": 400_000, "seed": 2, "replace": True}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "b1", json.dumps(source)],
        env={**os.environ, "MLOPS_HOME": str(mlops_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_step(instance, "cleaned_data", child, timeout=240)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert batch_set(paths, "b1") == kept, "raw, cleaned, quarantine and manifest untouched"
    [staged] = (paths.data / "staging" / "b1").iterdir()
    assert (staged / "raw.parquet").exists(), "the killed run's delivery was staged, not published"
    summary = read_json(paths.manifest("b1"))["cleaned"]
    assert (
        summary["raw_rows"]
        == summary["rows"] + summary["quarantined_rows"] + summary["duplicates_removed"]
    )
    assert [p.stem for p in cleaned_batch_paths(paths)] == ["b1"]
    # A re-run with the launchpad's defaults converges on the batch's own delivery.
    assert ingest_batch(instance, "b1").success
    assert batch_set(paths, "b1")["raw"] == kept["raw"]


def test_ingest_handles_every_landed_file_on_its_own(paths, capsys):
    paths.landing.mkdir(parents=True)
    bad = paths.landing / "bad name.csv"
    _sales(500, seed=2).to_csv(bad, index=False)
    _settled(bad)  # the oldest file: first in the queue
    for key, seed in (("good-1", 3), ("good-2", 4)):
        drop_batch(_sales(1_000, seed), paths.landing, key)

    assert main(["ingest"]) == 1, "one landed file was refused"
    output = capsys.readouterr().out
    assert "Landed 'bad name.csv' REFUSED" in output
    assert "Batch 'good-1': 1,000 raw rows" in output and "Batch 'good-2': 1,000 raw rows" in output
    assert (paths.landing_failed / "bad name.csv").exists()
    error = (paths.landing_failed / "bad name.csv.error.txt").read_text()
    assert "batch key 'bad name' must start with a letter or digit" in error
    assert (paths.landing_processed / "good-1.parquet").exists()
    assert (paths.landing_processed / "good-2.parquet").exists()
    assert sorted(open_instance(paths).get_dynamic_partitions("batches")) == ["good-1", "good-2"]


def test_a_link_in_landing_is_refused_and_its_target_never_read(paths, tmp_path):
    target = tmp_path / "outside.csv"
    _sales(500, seed=8).to_csv(target, index=False)
    content = target.read_bytes()
    paths.landing.mkdir(parents=True)
    (paths.landing / "linked.csv").symlink_to(target)

    runs = ingest_landed(open_instance(paths), paths)
    assert [(r.batch, r.success) for r in runs] == [("linked.csv", False)]
    assert "linked.csv is a symbolic link" in runs[0].error
    moved = paths.landing_failed / "linked.csv"
    assert moved.is_symlink() and os.readlink(moved) == str(target), "the link moved, as a link"
    assert target.read_bytes() == content
    assert not paths.raw("linked").exists()
    assert open_instance(paths).get_dynamic_partitions("batches") == []


def test_landing_sensor_refuses_bad_entries_before_registering_partitions(paths, tmp_path):
    paths.landing.mkdir(parents=True)
    good = drop_batch(_sales(500, seed=3), paths.landing, "good-1")
    bad = paths.landing / "bad name.csv"
    _sales(500, seed=2).to_csv(bad, index=False)
    target = tmp_path / "outside.csv"
    target.write_text("a,b\n1,2\n")
    link = paths.landing / "linked.csv"
    link.symlink_to(target)
    for path in (good, bad, target, link):
        _settled(path)

    instance = open_instance(paths)
    result = landing_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(result, dg.SensorResult)
    assert [r.partition_key for r in result.run_requests] == ["good-1"]
    [add] = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["good-1"]
    assert (paths.landing_failed / "bad name.csv").exists()
    assert (paths.landing_failed / "linked.csv").is_symlink()


def test_event_log_records_stay_small_with_a_megabyte_value(ingest, instance, tmp_path):
    frame = _sales(2_000, seed=5)
    frame["location"] = frame["location"].astype(object)
    frame.loc[7, "location"] = "x" * 1_048_576
    path = tmp_path / "big.parquet"
    frame.to_parquet(path, index=False)

    result = ingest("big", {"kind": "file", "path": str(path)})
    assert result.success, failure_text(result)
    sizes = [len(serialize_value(entry)) for entry in instance.all_logs(result.run_id)]
    assert max(sizes) < 64 * 1024, f"largest event record: {max(sizes):,} bytes"
    sample = metadata(result, "cleaned_data")["quarantine_sample"]
    assert "…[truncated, 1048576 chars]" in sample
    assert "unknown_category:location" in sample
