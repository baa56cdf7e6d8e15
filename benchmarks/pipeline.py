"""Benchmark: the whole graph at given sizes, per step, as `mlops run` runs it and without Dagster.

For each size, in a fresh process with a fresh state folder (embedded profile): ingest N
synthetic rows and run `pipeline_job`, then ingest a second batch of N/50 rows (new sales of
known and new houses) and run `pipeline_job` again, as a retrain after a delivery does. Prints
each step's wall time from the Dagster event log (step start to step success), the whole
run's, the online write's mode and entities written, whether `feast apply` and `bentoml build`
ran, the process's peak RSS, and the load average (the machine may be shared).

The same two batches then run again in another fresh process with the same asset functions
called as plain Python functions (`plain_graph.py`); the ratio of the two totals is the
orchestration overhead. With `--rounds` above 1 the two modes alternate which goes first and
the medians are printed.

    .venv/bin/python benchmarks/pipeline.py [--rows 100000 1000000] [--rounds 1]
        [--dagster-only] [--learning-rate 0.05]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
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


def _batches(rows: int, second_share: float) -> list[tuple[str, dict[str, Any]]]:
    second = {"rows": max(1, int(rows * second_share)), "seed": 43, "first_house_id": 1}
    return [("initial", {"rows": rows, "seed": 42}), ("second", second)]


def _measure(rows: int, second_share: float, mode: str, model: dict[str, Any]) -> None:
    """Child process: two batches on a fresh state folder; prints the figures as JSON."""
    from mlops_assets.paths import PlatformPaths, resolve_home
    from mlops_assets.runner import open_instance

    instance = open_instance(PlatformPaths(resolve_home()))
    measure = _dagster_batch if mode == "dagster" else _plain_batch
    batches = _batches(rows, second_share)
    runs = [measure(instance, batch, source, model) for batch, source in batches]
    print(json.dumps({"runs": runs, "peak_gb": _peak_gb()}))


def _dagster_batch(
    instance: Any, batch: str, source: dict[str, Any], model: dict[str, Any]
) -> dict[str, Any]:
    from mlops_assets.runner import ingest_batch, run_pipeline

    began = time.perf_counter()
    ingested = ingest_batch(instance, batch, {"kind": "synthetic", **source})
    middle = time.perf_counter()
    pipeline = run_pipeline(instance, model_config=model)
    ended = time.perf_counter()
    if not (ingested.success and pipeline.success):
        raise SystemExit(f"{batch}: {ingested.error or pipeline.error}")
    online = pipeline.metadata["online_features"]
    return {
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


def _plain_batch(
    instance: Any, batch: str, source: dict[str, Any], model: dict[str, Any]
) -> dict[str, Any]:
    from plain_graph import run_plain

    from mlops_assets.definitions import defs

    instance.add_dynamic_partitions("batches", [batch])
    raw = {"raw_data": {"kind": "synthetic", **source}}
    began = time.perf_counter()
    ingest, ingest_peaks = run_plain(defs, instance, "ingestion_job", batch, raw)
    middle = time.perf_counter()
    pipeline, pipeline_peaks = run_plain(defs, instance, "pipeline_job", configs={"model": model})
    ended = time.perf_counter()
    return {
        "batch": batch,
        "rows": source["rows"],
        "ingest_s": middle - began,
        "pipeline_s": ended - middle,
        "steps": {**ingest, **pipeline},
        "step_peaks_gb": {**ingest_peaks, **pipeline_peaks},
    }


def _peak_gb() -> float:
    """This process's peak RSS, or a child's if one (a build, say) went higher."""
    peaks = (
        resource.getrusage(who).ru_maxrss
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return max(peaks) / 1024**2


def _run_child(rows: int, second_share: float, mode: str, model: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("MLOPS_PROFILE", None)
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as home:
        env |= {"MLOPS_HOME": home, "DAGSTER_HOME": f"{home}/dagster"}
        command = [sys.executable, __file__, "--child", mode, "--rows", str(rows)]
        command += ["--second-share", str(second_share), "--model-config", json.dumps(model)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{rows} rows, {mode}: {done.stdout[-2000:]}{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_runs(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """Per batch, the median of each figure over the rounds (the first round's labels)."""
    first = measured[0]
    runs = []
    for index, run in enumerate(first["runs"]):
        rounds = [m["runs"][index] for m in measured]
        steps = {s: statistics.median(r["steps"].get(s, 0.0) for r in rounds) for s in run["steps"]}
        totals = {k: statistics.median(r[k] for r in rounds) for k in ("ingest_s", "pipeline_s")}
        peaks = {
            s: max(r["step_peaks_gb"][s] for r in rounds) for s in run.get("step_peaks_gb", {})
        }
        runs.append({**run, **totals, "steps": steps, "step_peaks_gb": peaks})
    return {"runs": runs, "peak_gb": max(m["peak_gb"] for m in measured)}


def _measure_size(
    rows: int, args: argparse.Namespace, model: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each mode in its own process, alternating which goes first, so load hits both alike."""
    modes = ("dagster",) if args.dagster_only else ("dagster", "plain")
    measured: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for index in range(args.rounds):
        for mode in modes if index % 2 == 0 else modes[::-1]:
            measured[mode].append(_run_child(rows, args.second_share, mode, model))
            print(f"  {rows:,} rows, round {index + 1}, {mode}: done", flush=True)
    return {mode: _median_runs(found) for mode, found in measured.items()}


def _report(rows: int, figures: dict[str, dict[str, Any]]) -> float:
    """Print one size's table; returns the Dagster run's total for the first batch."""
    say, dagster = print, figures["dagster"]
    peaks = ", ".join(f"{found['peak_gb']:.2f} GB ({mode})" for mode, found in figures.items())
    say(
        f"\nWhole graph, {rows:,} rows then a batch of {dagster['runs'][1]['rows']:,}; "
        f"peak RSS {peaks}"
    )
    columns = [(mode, found["runs"][index]) for index in (0, 1) for mode, found in figures.items()]
    say(f"{'step':<22}" + "".join(f"{run['batch'][:7] + ' ' + mode:>16}" for mode, run in columns))
    steps = list(dict.fromkeys(step for _, run in columns for step in run["steps"]))
    for step in steps:
        say(f"{step:<22}" + "".join(f"{run['steps'].get(step, 0.0):>16.2f}" for _, run in columns))
    for label in ("ingest_s", "pipeline_s"):
        say(f"{label:<22}" + "".join(f"{run[label]:>16.2f}" for _, run in columns))
    for _, run in columns:
        if run.get("step_peaks_gb"):
            peaks = ", ".join(f"{s} {gb:.2f}" for s, gb in run["step_peaks_gb"].items())
            say(f"{run['batch']}: peak RSS of each step, plain calls (GB): {peaks}")
    for index, run in enumerate(dagster["runs"]):
        total = run["ingest_s"] + run["pipeline_s"]
        say(
            f"{run['batch']}: Dagster {total:.1f} s{_overhead(total, figures, index)}; online "
            f"write {run['online']}; feast apply {run['feast_apply']}; "
            f"bentoml build {run['bento_build']}"
        )
    first = dagster["runs"][0]
    return first["ingest_s"] + first["pipeline_s"]


def _overhead(total: float, figures: dict[str, dict[str, Any]], index: int) -> str:
    if "plain" not in figures:
        return ""
    plain = figures["plain"]["runs"][index]
    plain_total = plain["ingest_s"] + plain["pipeline_s"]
    return f", plain calls {plain_total:.1f} s: overhead {total / plain_total:.3f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--second-share", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--dagster-only", action="store_true", help="skip the plain calls (no overhead figure)"
    )
    parser.add_argument(
        "--learning-rate", type=float, help="the model step's learning rate (run config)"
    )
    parser.add_argument("--model-config", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["dagster", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = json.loads(args.model_config)
    if args.child:
        _measure(args.rows[0], args.second_share, args.child, model)
        return
    if args.learning_rate:
        model["learning_rate"] = args.learning_rate
    print(f"model step's run config: {model or 'the defaults'}")
    totals = {rows: _report(rows, _measure_size(rows, args, model)) for rows in args.rows}
    for smaller, larger in itertools.pairwise(sorted(totals)):
        print(
            f"{larger:,} rows / {smaller:,} rows: {larger / smaller:.0f}x the data, "
            f"{totals[larger] / totals[smaller]:.2f}x the time (first batch, Dagster run)"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
