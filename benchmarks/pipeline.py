"""Benchmark: the whole graph at given sizes, per step, as `mlops run` runs it.

For each size, in a fresh process with a fresh state folder (embedded profile): ingest N
synthetic rows and run `pipeline_job`, then ingest a second batch of N/50 rows (new sales of
known and new houses) and run `pipeline_job` again, as a retrain after a delivery does. Prints
each step's wall time from the Dagster event log (step start to step success), the whole
run's, the online write's mode and entities written, whether `feast apply` and `bentoml build`
ran, the child process's peak RSS, and the load average (the machine may be shared).

    .venv/bin/python benchmarks/pipeline.py [--rows 100000 1000000] [--second-share 0.02]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _step_seconds(instance: Any, run_id: str) -> dict[str, float]:
    """Each step's wall time, from its STEP_START to its STEP_SUCCESS event."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or record.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[record.step_key] = record.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[record.step_key] = record.timestamp - started[record.step_key]
    return seconds


def _measure(rows: int, second_share: float) -> None:
    """Child process: two runs on a fresh state folder; prints the figures as JSON."""
    from mlops_assets.paths import PlatformPaths, resolve_home
    from mlops_assets.runner import ingest_batch, open_instance, run_pipeline

    instance = open_instance(PlatformPaths(resolve_home()))
    runs = []
    batches = [
        ("initial", {"rows": rows, "seed": 42}),
        ("second", {"rows": max(1, int(rows * second_share)), "seed": 43, "first_house_id": 1}),
    ]
    for batch, source in batches:
        began = time.perf_counter()
        ingested = ingest_batch(instance, batch, {"kind": "synthetic", **source})
        middle = time.perf_counter()
        pipeline = run_pipeline(instance)
        ended = time.perf_counter()
        if not (ingested.success and pipeline.success):
            raise SystemExit(f"{batch}: {ingested.error or pipeline.error}")
        online = pipeline.metadata["online_features"]
        runs.append(
            {
                "batch": batch,
                "rows": source["rows"],
                "ingest_s": middle - began,
                "pipeline_s": ended - middle,
                "steps": {
                    **_step_seconds(instance, ingested.run_id),
                    **_step_seconds(instance, pipeline.run_id),
                },
                "online": f"{online['mode']}: {online['entities_written']:,} written, "
                f"{online['entities_skipped']:,} unchanged",
                "feast_apply": pipeline.metadata["feast_registry"]["apply"],
                "bento_build": pipeline.metadata["bento"]["build"],
            }
        )
    print(json.dumps(runs))


def _run_size(rows: int, second_share: float) -> tuple[list[dict], float]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("MLOPS_PROFILE", None)
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as home:
        env |= {"MLOPS_HOME": home, "DAGSTER_HOME": f"{home}/dagster"}
        command = [sys.executable, __file__, "--child", "--rows", str(rows)]
        command += ["--second-share", str(second_share)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{rows} rows: {done.stdout[-2000:]}{done.stderr[-3000:]}")
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return json.loads(done.stdout.strip().splitlines()[-1]), peak_gb


def _report(rows: int, runs: list[dict], peak_gb: float) -> None:
    say = print
    second = runs[1]["rows"]
    say(f"\nWhole graph, {rows:,} rows then a batch of {second:,}; peak RSS {peak_gb:.2f} GB")
    steps = list(dict.fromkeys(step for run in runs for step in run["steps"]))
    say(f"{'step':<22}" + "".join(f"{run['batch'] + ' s':>12}" for run in runs))
    for step in steps:
        say(f"{step:<22}" + "".join(f"{run['steps'].get(step, 0.0):>12.2f}" for run in runs))
    for label in ("ingest_s", "pipeline_s"):
        say(f"{label:<22}" + "".join(f"{run[label]:>12.2f}" for run in runs))
    for run in runs:
        say(
            f"{run['batch']}: online write {run['online']}; feast apply {run['feast_apply']}; "
            f"bentoml build {run['bento_build']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--second-share", type=float, default=0.02)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _measure(args.rows[0], args.second_share)
        return
    for rows in args.rows:
        runs, peak_gb = _run_size(rows, args.second_share)
        _report(rows, runs, peak_gb)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
