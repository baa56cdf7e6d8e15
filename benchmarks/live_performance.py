"""Benchmark: live performance over N logged predictions (default 1,000,000). Target: < 10 s.

Writes a prediction log as the service writes it in shadow mode (each request answered by the
champion and scored by the challenger: two lines with one request id, by-key inputs) spread
over four files, and a later batch of labels for the logged houses (one per house, some houses
never predicted). Then times what the `live_performance` asset does, step by step: read the
log, read the labels, the point-in-time join, the metric per version and day, and the
challenger's paired evidence. Prints each step, the total and the load average.

    .venv/bin/python benchmarks/live_performance.py [--predictions 1000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

FILES = 4
# (version, role, answered, relative error): the challenger is the better model here.
MODELS = (("1", "champion", True, 0.10), ("2", "challenger", False, 0.05))


def _write_log(
    folder: Path, predictions: int, prices: np.ndarray, rng: np.random.Generator
) -> None:
    """`predictions` lines: half champion answers, half challenger shadow scores."""
    folder.mkdir(parents=True, exist_ok=True)
    requests = predictions // 2
    keys = rng.integers(1, len(prices) + 1, requests)
    noise = rng.normal(0, 1, requests)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for part in range(FILES):
        lines = []
        for i in range(part * requests // FILES, (part + 1) * requests // FILES):
            common = {
                "request_id": f"{i:032x}",
                "endpoint": "predict_by_key",
                "row": 0,
                "timestamp": (start + timedelta(seconds=i * 0.05)).isoformat(),
                "inputs": {"house_id": int(keys[i])},
            }
            for version, role, answered, error in MODELS:
                lines.append(
                    orjson.dumps(
                        {
                            **common,
                            "model_version": version,
                            "latency_ms": 1.2,
                            "role": role,
                            "answered": answered,
                            "output": float(prices[keys[i] - 1] * (1 + error * noise[i])),
                        }
                    )
                )
        (folder / f"predictions-20261101-{part}.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def _write_labels(paths, prices: np.ndarray) -> None:
    """One cleaned batch with a label per house, ingested after every logged prediction."""
    from mlops_assets.core.storage import write_json_atomic

    labels = pd.DataFrame({"house_id": np.arange(1, len(prices) + 1), "price": prices})
    paths.cleaned_dir().mkdir(parents=True, exist_ok=True)
    labels.to_parquet(paths.cleaned("labels"), index=False)
    write_json_atomic({"ingested_at": "2026-12-01T00:00:00+00:00"}, paths.manifest("labels"))


def main() -> None:
    """Build the log and labels, then time each step of the live performance path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", type=int, default=1_000_000)
    args = parser.parse_args()

    from mlops_assets.core.live_evidence import gather_evidence
    from mlops_assets.core.live_performance import join_labels, live_metrics
    from mlops_assets.monitoring.live import keyed_predictions, known_labels
    from mlops_assets.paths import PlatformPaths
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    spec = load_spec(HOUSE_PRICES_SPEC)
    paths = PlatformPaths(Path(tempfile.mkdtemp(prefix="mlops-live-bench-")))
    rng = np.random.default_rng(7)
    houses = max(args.predictions // 4, 10)
    prices = rng.lognormal(13, 0.4, houses)  # each house's label
    started = time.perf_counter()
    _write_log(paths.predictions, args.predictions, prices, rng)
    _write_labels(paths, prices)
    size = sum(f.stat().st_size for f in paths.predictions.glob("*.jsonl"))
    print(
        f"wrote {args.predictions:,} logged predictions ({size / 1e6:.0f} MB in {FILES} files) "
        f"and {houses:,} labels in {time.perf_counter() - started:.1f} s"
    )

    steps: dict[str, float] = {}
    total = time.perf_counter()
    t = time.perf_counter()
    logged = keyed_predictions(paths, spec)
    steps["read log"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = known_labels(paths, spec)
    steps["read labels"] = time.perf_counter() - t
    t = time.perf_counter()
    joined = join_labels(logged.frame, labels)
    steps["point-in-time join"] = time.perf_counter() - t
    t = time.perf_counter()
    table = live_metrics(joined.matched, spec.task, "rmse")
    steps["metric per version and day"] = time.perf_counter() - t
    t = time.perf_counter()
    evidence = gather_evidence(joined.matched, "1", "2", spec.task, "rmse")
    steps["paired evidence"] = time.perf_counter() - t
    elapsed = time.perf_counter() - total

    for name, seconds in steps.items():
        print(f"  {name:<28} {seconds:6.2f} s")
    print(
        f"live_performance over {len(logged.frame):,} logged predictions: {elapsed:.2f} s "
        f"(target < 10 s); {len(joined.matched):,} judged, {joined.unmatched_labels:,} labels "
        f"matched no prediction; {len(table)} rows of metrics; {evidence.summary()}"
    )
    load = os.getloadavg()
    print(f"load average while measuring: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    shutil.rmtree(paths.root, ignore_errors=True)


if __name__ == "__main__":
    main()
