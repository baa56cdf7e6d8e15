"""Benchmark: XGBoost trained in process against the same training on a Dask cluster.

Generates N synthetic house sales (default 1,000,000), builds the platform's model matrix and
entity split, and trains the same booster (same spec, rows, parameters and fixed number of
rounds) two ways, interleaved round by round:
  * in process: `core.training.train`, every core of the machine in one process;
  * Dask: the same call with the `model` step's Dask engine, on a `distributed.LocalCluster` of
    two worker processes with one thread each (the same cores, split across processes).
Prints the median wall time, the median peak memory (summed RSS of this process and every
process it started, above what they held idle before the fit; the step's own process; the
largest worker: what each machine must hold), and the test R², plus the fixed
cost of one small fit (a cross-validation fold's size) on each engine. One untimed small fit
on each engine first: a worker imports XGBoost on its first task.

    .venv/bin/python benchmarks/dask_training.py [--rows 1000000] [--repeats 3] [--rounds 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

SAMPLE_SECONDS = 0.05


def _rss() -> list[int]:
    """RSS of this process and of each process it started (the cluster's workers), in bytes."""
    me = psutil.Process()
    sizes = [me.memory_info().rss]
    for child in me.children(recursive=True):
        try:
            sizes.append(child.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return sizes


def _measured(call: Callable[[], Any]) -> tuple[Any, float, float, float, float]:
    """The call's result, its wall seconds, and in MB: its peak summed RSS above idle, the peak
    of this (the step's) process, and the peak of the largest worker: what the fit costs in
    all, and what the step's machine and each worker's machine must hold.
    """
    idle = sum(_rss())
    peak_sum, peak_step, peak_worker, done = [0], [0], [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            step, *workers = _rss()
            peak_sum[0] = max(peak_sum[0], step + sum(workers))
            peak_step[0], peak_worker[0] = max(peak_step[0], step), max(peak_worker[0], *workers)
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    peaks = (max(peak_sum[0] - idle, 0), peak_step[0], peak_worker[0])
    return result, seconds, *(peak / 1e6 for peak in peaks)


def _rows(spec, rows: int) -> dict[str, Any]:
    from mlops_assets.core.features import engineer, to_matrix
    from mlops_assets.core.imputation import learn_imputation
    from mlops_assets.core.splits import entity_split
    from mlops_assets.sources import SyntheticConfig, generate_house_sales

    sales = generate_house_sales(SyntheticConfig(rows=rows, seed=11))
    x = to_matrix(engineer(sales, spec, learn_imputation(sales, spec)), spec)
    y = sales[spec.target].to_numpy(dtype=np.float64)
    split = entity_split(sales[spec.entity_key].to_numpy(), spec.training.split.as_tuple())
    part = {name: np.flatnonzero(split == name) for name in ("train", "validation", "test")}
    return {"x": x, "y": y, "part": part}


def _fit(spec, data: dict[str, Any], params, fit) -> Any:
    from mlops_assets.core.training import train

    x, y, part = data["x"], data["y"], data["part"]
    return train(
        x[part["train"]],
        y[part["train"]],
        x[part["validation"]],
        y[part["validation"]],
        spec,
        params,
        fit=fit,
    )


def _r2(spec, data: dict[str, Any], booster) -> float:
    from mlops_assets.core.evaluation import compute_metrics
    from mlops_assets.core.training import predict

    test = data["part"]["test"]
    return compute_metrics(data["y"][test], predict(booster, data["x"][test]), spec.task)["r2"]


def main() -> None:
    from distributed import Client, LocalCluster

    from mlops_assets.core.dask_training import DaskFit
    from mlops_assets.core.training import TrainParams
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per engine")
    parser.add_argument("--rounds", type=int, default=200, help="boosting rounds, both engines")
    parser.add_argument("--small-rows", type=int, default=4_000, help="one CV fold's fit")
    args = parser.parse_args()
    spec = load_spec(HOUSE_PRICES_SPEC)
    # A fixed number of rounds (early stopping never triggers) so both engines do the same work.
    params = TrainParams(
        learning_rate=0.1,
        max_rounds=args.rounds,
        early_stopping_rounds=args.rounds + 1,
        threads=os.cpu_count() or 1,
    )
    data, small = _rows(spec, args.rows), _rows(spec, args.small_rows)
    print(
        f"{args.rows:,} rows ({len(data['part']['train']):,} train), {args.rounds} rounds, "
        f"{args.repeats} interleaved repeats, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        engines = {"in process": None, "Dask, 2 workers": DaskFit(client)}
        for fit in engines.values():  # untimed: the workers import XGBoost on their first fit
            _fit(spec, small, params, fit)
        results: dict[str, list[tuple[float, ...]]] = {name: [] for name in engines}
        for _ in range(args.repeats):
            for name, fit in engines.items():
                model, *figures = _measured(lambda f=fit: _fit(spec, data, params, f))
                results[name].append((*figures, _r2(spec, data, model.booster)))
        small_seconds = {
            name: statistics.median(
                _measured(lambda f=fit: _fit(spec, small, params, f))[1]
                for _ in range(args.repeats)
            )
            for name, fit in engines.items()
        }
    for name, runs in results.items():
        seconds, added, step, worker = (statistics.median(r[i] for r in runs) for i in range(4))
        workers = f"largest worker {worker:5.0f} MB" if engines[name] else "(workers idle)"
        print(
            f"{name:>16}: {seconds:7.1f} s  all processes +{added:5.0f} MB  step process "
            f"{step:5.0f} MB  {workers}  R² {runs[0][4]:.4f}  | {args.small_rows:,}-row fit "
            f"{small_seconds[name]:5.2f} s"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
