"""Benchmark: drift statistics on N rows x 10 columns, and one landing-sensor tick.

Prints the median of --repeats runs of `detect_drift` (PSI on reference deciles and normalised
Wasserstein for 8 numeric columns, PSI on shares for 2 categorical ones) on a covariate-shifted
batch of N rows (default 1,000,000), and the time of one landing-sensor evaluation over a
landing folder of --files files against a real Dagster instance. Targets: drift < 2 s for
1M x 10; a sensor tick < 1 s. (Evidently's DataDriftPreset, not a dependency here, was seen
to take 35.6 s on a million rows on this kind of machine.)

    .venv/bin/python benchmarks/drift.py [--rows 1000000] [--files 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

COLUMNS = [
    "sqft",
    "bedrooms",
    "bathrooms",
    "year_built",
    "lot_size",
    "house_age",
    "sqft_per_bedroom",
    "log_lot_size",
    "location",
    "condition",
]


def _drift(rows: int, repeats: int) -> None:
    from mlops_assets.core.drift import detect_drift
    from mlops_assets.core.features import engineer
    from mlops_assets.core.statistics import feature_statistics
    from mlops_assets.sources import SyntheticConfig, generate_house_sales
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    spec = load_spec(HOUSE_PRICES_SPEC)
    reference = feature_statistics(
        engineer(generate_house_sales(SyntheticConfig(rows=50_000)), spec), spec
    )
    batch = engineer(
        generate_house_sales(SyntheticConfig(rows=rows, seed=3, scenario="covariate_shift")), spec
    )
    columns = {
        name: batch[name].astype("object").to_numpy()
        if name in spec.categorical_columns
        else batch[name].to_numpy()
        for name in COLUMNS
    }
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = detect_drift(reference, columns)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(
        f"drift on {rows:,} rows x {len(columns)} columns: median {median:.3f} s "
        f"over {repeats} runs ({rows * len(columns) / median / 1e6:.1f} M values/s); "
        f"drifted share {result.drifted_share:.0%}"
    )


def _sensor_tick(files: int) -> None:
    import dagster as dg

    from mlops_assets.automation.sensors import landing_sensor
    from mlops_assets.definitions import defs
    from mlops_assets.paths import PlatformPaths
    from mlops_assets.runner import open_instance
    from mlops_assets.sources import SyntheticConfig, drop_batch, generate_house_sales

    paths = PlatformPaths(Path(tempfile.mkdtemp(prefix="mlops-sensor-bench-")))
    instance = open_instance(paths)
    frame = generate_house_sales(SyntheticConfig(rows=200))
    old = time.time() - 60
    for i in range(files):
        path = drop_batch(frame, paths.landing, f"batch-{i:04d}")
        os.utime(path, (old, old))
    times = []
    for _ in range(5):
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        started = time.perf_counter()
        result = landing_sensor(context)
        times.append(time.perf_counter() - started)
    requests = len(result.run_requests) if isinstance(result, dg.SensorResult) else 0
    tick = statistics.median(times) * 1e3
    print(
        f"landing sensor tick over {files} landed files: median {tick:.1f} ms ({requests} requests)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--files", type=int, default=50)
    args = parser.parse_args()
    _drift(args.rows, args.repeats)
    _sensor_tick(args.files)
    print("targets: drift < 2 s for 1,000,000 x 10; sensor tick < 1 s")


if __name__ == "__main__":
    main()
