"""A full disk is named as such, and the run it stopped is not later called killed."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from mlops_assets.disk_space import is_disk_full, names_full_disk

MOUNT_SIZE = "4m"  # the batch fits, the pipeline does not


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, where this machine lets a test mount one (as root)."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={MOUNT_SIZE}", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        problem = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if os.environ.get("MLOPS_REQUIRE_SERVERS") == "1":  # CI runs as root: it must run
            pytest.fail(problem)
        pytest.skip(problem)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def _mlops(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    return subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *args],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_a_full_disk_is_named_and_its_run_failed_for_that_reason(small_disk):
    home = small_disk / "home"
    stopped = _mlops(home, "run", "--rows", "2000", "--search-trials", "2")
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    said = stopped.stdout.strip().splitlines()[-1]
    assert said.startswith(f"error: The disk holding the state folder {home} is full (")
    assert said.endswith(
        " free of 4.0 MiB): free some space there or point MLOPS_HOME at a larger disk, then "
        "run the command again; what was published before is kept as it was."
    )
    assert "Traceback" not in stopped.stdout + stopped.stderr
    assert "Batch 'initial': 2,000 raw rows -> 2,000 cleaned" in stopped.stdout

    grown = subprocess.run(["mount", "-o", "remount,size=300m", str(small_disk)], check=False)
    assert grown.returncode == 0
    status = _mlops(home, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "killed" not in status.stdout
    assert "pipeline_job         FAILURE" in status.stdout
    assert f"The disk holding the state folder {home} is full (" in status.stdout
    assert "ingestion_job        SUCCESS    initial" in status.stdout, "the batch is kept"

    again = _mlops(home, "run", "--rows", "2000", "--search-trials", "2")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "champion is v1 of 'house_prices'" in again.stdout


def test_enospc_is_found_under_the_wrappers_that_carry_it(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "features.parquet")
        except OSError as exc:
            raise RuntimeError("step failed") from exc
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped, tmp_path)
    sqlite_full = sqlalchemy.exc.OperationalError(
        "INSERT", {}, sqlite3.OperationalError("database or disk is full")
    )
    assert is_disk_full(sqlite_full, tmp_path)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"), tmp_path)
    assert not is_disk_full(RuntimeError("database is locked"), tmp_path)


def test_a_bare_disk_io_error_counts_only_when_space_is_low(tmp_path):
    """SQLite says `disk I/O error` when not even its journal fits: with space left, it is not."""
    assert not names_full_disk("(sqlite3.OperationalError) disk I/O error", tmp_path)
    assert names_full_disk("OSError: [Errno 28] No space left on device", tmp_path)
