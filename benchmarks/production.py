"""Benchmark: the whole graph on the production profile against the embedded default.

Starts throwaway PostgreSQL and Redis servers from Debian's binaries (as the tests do), then,
on the same synthetic data, times ingestion plus `pipeline_job` three ways:

- embedded: SQLite and files under MLOPS_HOME, steps in one process;
- production: Dagster, MLflow and the Feast registry on PostgreSQL, Feast's online store on
  Redis, steps in one process;
- production, parallel: the same stores, independent steps in parallel processes (the
  multiprocess executor, which only PostgreSQL storage supports).

Each measurement runs in a fresh process with a fresh state folder and fresh databases, and
the median of --repeats is printed with two ratios: production / embedded, and parallel /
in-process on PostgreSQL.

    .venv/bin/python benchmarks/production.py [--rows 50000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("embedded", "production", "parallel")


def _measure(mode: str, rows: int) -> None:
    """Child process: ingest and run the pipeline once, print the timings as JSON."""
    from mlops_assets.paths import PlatformPaths, resolve_home
    from mlops_assets.runner import ingest_batch, open_instance, run_pipeline

    instance = open_instance(PlatformPaths(resolve_home()))
    started = time.perf_counter()
    batch = ingest_batch(instance, "initial", {"kind": "synthetic", "rows": rows, "seed": 7})
    ingested = time.perf_counter()
    run = run_pipeline(instance, parallel=mode == "parallel")
    finished = time.perf_counter()
    if not (batch.success and run.success):
        raise SystemExit(f"{mode} failed: {batch.error or run.error}")
    print(  # the parent reads it
        json.dumps(
            {
                "ingest_s": ingested - started,
                "pipeline_s": finished - ingested,
                "online_s": run.metadata["online_features"]["seconds"],
                "entities": run.metadata["online_features"]["entities_written"],
            }
        )
    )


def _run_once(mode: str, rows: int, servers: tuple, tag: str) -> dict[str, float]:
    from tests.servers import production_environment

    postgres, redis = servers
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("MLOPS_PROFILE", None)
    if mode != "embedded":
        postgres.create_databases(f"dagster_{tag}", f"mlflow_{tag}", f"feast_{tag}")
        redis.client().flushall()
        env |= production_environment(postgres, redis, tag)
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as home:
        env |= {"MLOPS_HOME": home, "DAGSTER_HOME": f"{home}/dagster"}
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--rows", str(rows)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{mode}: {done.stdout[-2000:]}{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _measure(args.child, args.rows)
        return

    sys.path.insert(0, str(ROOT))
    from tests.servers import PostgresServer, RedisServer

    postgres, redis = PostgresServer(), RedisServer()
    try:
        postgres.start()
        redis.start()
        results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for repeat in range(args.repeats):
            for mode in MODES:  # interleaved, so drift in machine load hits every mode alike
                results[mode].append(
                    _run_once(mode, args.rows, (postgres, redis), f"{mode}_{repeat}")
                )
    finally:
        redis.remove()
        postgres.remove()
    _report(results, args.rows, args.repeats)


def _report(results: dict[str, list[dict[str, float]]], rows: int, repeats: int) -> None:
    keys = ("ingest_s", "pipeline_s", "online_s", "entities")
    median = {
        mode: {key: statistics.median(r[key] for r in runs) for key in keys}
        for mode, runs in results.items()
    }
    say = print
    say(f"Whole graph on {rows:,} synthetic rows, median of {repeats} (fresh state each run)")
    say(f"{'mode':<12}{'ingest s':>10}{'pipeline s':>12}{'total s':>10}{'online write':>22}")
    for mode in MODES:
        m = median[mode]
        online = f"{m['entities'] / m['online_s']:,.0f} entities/s"
        say(
            f"{mode:<12}{m['ingest_s']:>10.2f}{m['pipeline_s']:>12.2f}"
            f"{m['ingest_s'] + m['pipeline_s']:>10.2f}{online:>22}"
        )
    total = {m: median[m]["ingest_s"] + median[m]["pipeline_s"] for m in MODES}
    ratio = total["production"] / total["embedded"]
    say(f"production / embedded (whole graph):                {ratio:.2f}")
    say(f"parallel / in-process on PostgreSQL (pipeline_job): "
        f"{median['parallel']['pipeline_s'] / median['production']['pipeline_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
