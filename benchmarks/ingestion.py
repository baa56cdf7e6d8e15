"""Benchmark: ingestion + cleaning of N synthetic rows (default 1,000,000).

Measures two paths, each in a fresh child process so its peak memory is its own:
  core     the functional core exactly as the assets call it (read, type, check, write raw;
           read raw, clean, check, write cleaned + quarantine), stage by stage;
  dagster  the real `ingestion_job` for one landed batch against a real Dagster instance.
Prints medians over --repeats runs, rows per second and peak RSS. Targets: < 20 s, < 3 GB.

    .venv/bin/python benchmarks/ingestion.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _core(landed: Path, work: Path) -> dict:
    from datetime import UTC, datetime

    import pandas as pd

    from mlops_assets.core.cleaning import clean
    from mlops_assets.core.quality import check_cleaned, check_raw
    from mlops_assets.core.raw import prepare_raw
    from mlops_assets.core.storage import content_hash, write_parquet_atomic
    from mlops_assets.sources import FileSource
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    spec = load_spec(HOUSE_PRICES_SPEC)
    stages: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        stages[name] = now - since
        return now

    t = time.perf_counter()
    delivered = FileSource(str(landed)).load()
    content_hash(delivered)
    t = lap("read+hash", t)
    prepared = prepare_raw(delivered, spec, "bench", datetime.now(UTC))
    check_raw(prepared.frame, spec)
    t = lap("type+check raw", t)
    write_parquet_atomic(prepared.frame, work / "raw.parquet")
    content_hash(prepared.frame)
    t = lap("write raw", t)
    del delivered, prepared
    raw = pd.read_parquet(work / "raw.parquet")
    t = lap("read raw", t)
    result = clean(raw, spec)
    t = lap("clean", t)
    check_cleaned(result, spec)
    t = lap("check cleaned", t)
    write_parquet_atomic(result.quarantine, work / "quarantine.parquet")
    write_parquet_atomic(result.cleaned, work / "cleaned.parquet")
    content_hash(result.cleaned)
    lap("write cleaned", t)
    return {
        "seconds": time.perf_counter() - start,
        "stages": stages,
        "rows_out": len(result.cleaned),
        "quarantined": len(result.quarantine),
        "peak_mb": _peak_mb(),
    }


def _dagster(landed: Path, work: Path) -> dict:
    import shutil

    from mlops_assets.paths import PlatformPaths
    from mlops_assets.runner import ingest_batch, open_instance

    paths = PlatformPaths(work / "home")
    paths.landing.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(landed, paths.landing / "bench.parquet")
    instance = open_instance(paths)
    from mlops_assets.definitions import defs

    defs.resolve_job_def("ingestion_job")  # load the code location outside the timed part
    start = time.perf_counter()
    run = ingest_batch(instance, "bench", {"kind": "landing"})
    seconds = time.perf_counter() - start
    if not run.success:
        raise SystemExit(run.error)
    return {"seconds": seconds, "peak_mb": _peak_mb()}


def _child(mode: str, landed: str, work: str) -> None:
    result = (_core if mode == "core" else _dagster)(Path(landed), Path(work))
    sys.stdout.write(json.dumps(result) + "\n")


def _run_child(mode: str, landed: Path, root: Path, index: int) -> dict:
    work = root / f"{mode}-{index}"
    work.mkdir()
    command = [sys.executable, __file__, "--child", mode, str(landed), str(work)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "LANDED", "WORK"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from mlops_assets.sources import SyntheticConfig, generate_house_sales

    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        frame = generate_house_sales(SyntheticConfig(rows=args.rows, seed=42))
        landed = root / "landed.parquet"
        frame.to_parquet(landed, index=False)
        del frame
        elapsed = time.perf_counter() - start
        print(f"generated and landed {args.rows:,} rows in {elapsed:.2f} s (not timed below)")
        for mode in ("core", "dagster"):
            runs = [_run_child(mode, landed, root, i) for i in range(args.repeats)]
            seconds = statistics.median(r["seconds"] for r in runs)
            peak = max(r["peak_mb"] for r in runs)
            print(
                f"{mode:8s} median {seconds:6.2f} s over {args.repeats} runs | "
                f"{args.rows / seconds:>12,.0f} rows/s | peak RSS {peak:,.0f} MB"
            )
            if mode == "core":
                for stage in runs[0]["stages"]:
                    stage_median = statistics.median(r["stages"][stage] for r in runs)
                    print(f"           {stage:16s} {stage_median:6.2f} s")
        print("targets: < 20 s and < 3,000 MB peak for 1,000,000 rows")


if __name__ == "__main__":
    main()
