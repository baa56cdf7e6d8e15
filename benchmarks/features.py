"""Benchmark: the feature stage on N synthetic rows (default 1,000,000).

Prints, from one run on one machine:
  - materialization into the SQLite online store, like with like: the platform's path (newest
    row per entity, batched upserts) and Feast's shipped `materialize`, each from the same
    Parquet file of the same N rows into its own store, as entities found in the store
    afterwards per second (both must hold the same entities) and their ratio;
  - online lookup of one entity in process: p50/p99 of the platform's lookup helper and of
    Feast's `get_online_features`, over the same keys;
  - the point-in-time join (`get_historical_features`, file offline store) for N label rows.
Targets: >= 20,000 entities/s; lookup p99 <= 1 ms; join of 1M labels < 60 s.
Feast's `materialize` takes minutes on a million rows; `--rows 50000` compares in seconds.

    uv run python benchmarks/features.py [--rows 1000000] [--lookups 5000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np


def _store(root: Path, spec, features):
    from mlops_assets.features.feast_repo import build_definitions, feature_store, offline_path
    from mlops_assets.paths import PlatformPaths

    paths = PlatformPaths(root)
    store = feature_store(paths)
    stored = features.astype({name: "string" for name in spec.categorical_columns})
    stored.to_parquet(offline_path(paths, spec), index=False)
    definitions = build_definitions(spec, paths)
    store.apply(definitions.in_apply_order())
    return store, definitions


def _percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def _entities_in_store(store, view) -> int:
    """Entities the SQLite online store holds for `view` (one row per entity and feature)."""
    from mlops_assets.features.feast_internals import sqlite_connection, sqlite_table

    table = sqlite_table(store, view)
    query = f"SELECT COUNT(DISTINCT entity_key) FROM {table}"
    return int(sqlite_connection(store).execute(query).fetchone()[0])


def _platform_write(root: Path, spec, features) -> tuple[object, object, int, float]:
    """The platform's write, timed from reading the offline Parquet file to the last upsert."""
    import pandas as pd

    from mlops_assets.features.feast_repo import offline_path
    from mlops_assets.features.online_write import materialize_newest
    from mlops_assets.paths import PlatformPaths

    store, definitions = _store(root, spec, features)
    began = time.perf_counter()
    table = pd.read_parquet(offline_path(PlatformPaths(root), spec))
    materialize_newest(store, definitions.view, table, spec.entity_key, spec.event_timestamp)
    seconds = time.perf_counter() - began
    return store, definitions, _entities_in_store(store, definitions.view), seconds


def _feast_write(root: Path, spec, features) -> tuple[int, float]:
    """Feast's shipped `materialize` over the same rows, read from the same kind of file."""
    store, definitions = _store(root, spec, features)
    ts = spec.event_timestamp
    start, end = features[ts].min().to_pydatetime(), features[ts].max().to_pydatetime()
    began = time.perf_counter()
    store.materialize(start, end + timedelta(seconds=1), [definitions.view.name])
    seconds = time.perf_counter() - began
    return _entities_in_store(store, definitions.view), seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    args = parser.parse_args()

    from mlops_assets.core.features import engineer
    from mlops_assets.features.online_lookup import OnlineFeatureLookup
    from mlops_assets.sources import SyntheticConfig, generate_house_sales
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    spec = load_spec(HOUSE_PRICES_SPEC)
    sales = generate_house_sales(SyntheticConfig(rows=args.rows, seed=42))
    features = engineer(sales, spec)
    key, ts = spec.entity_key, spec.event_timestamp
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        root = Path(tmp)
        store, definitions, ours, our_seconds = _platform_write(root / "platform", spec, features)
        theirs, their_seconds = _feast_write(root / "feast", spec, features)
        if ours != theirs:
            raise SystemExit(f"the stores differ: platform {ours:,} entities, Feast {theirs:,}")
        rows = len(features)
        for name, seconds in (("platform", our_seconds), ("Feast", their_seconds)):
            print(
                f"materialize ({name + ')':<9} {rows:>9,} rows from Parquet -> {ours:,} entities "
                f"in {seconds:6.2f} s = {ours / seconds:>8,.0f} entities/s"
            )
        print(f"platform/Feast {their_seconds / our_seconds:.1f}x on the same rows and entities")

        keys = np.random.default_rng(0).choice(features[key].to_numpy(), args.lookups).tolist()
        lookup = OnlineFeatureLookup(store, spec)
        lookup.lookup(keys[:10])
        samples = []
        for k in keys:
            began = time.perf_counter()
            lookup.lookup([k])
            samples.append(time.perf_counter() - began)
        p50, p99 = _percentiles(samples)
        service = store.get_feature_service(definitions.service.name)
        feast_samples = []
        for k in keys[: min(len(keys), 1_000)]:
            began = time.perf_counter()
            store.get_online_features(features=service, entity_rows=[{key: k}])
            feast_samples.append(time.perf_counter() - began)
        f50, f99 = _percentiles(feast_samples)
        print(
            f"online lookup (platform)   p50 {p50:.3f} ms  p99 {p99:.3f} ms  "
            f"over {len(samples):,} keys"
        )
        print(
            f"online lookup (Feast API)  p50 {f50:.3f} ms  p99 {f99:.3f} ms  "
            f"over {len(feast_samples):,} keys"
        )

        labels = sales[[key, ts, spec.target]]
        runs = []
        for _ in range(1):
            began = time.perf_counter()
            joined = store.get_historical_features(entity_df=labels, features=service).to_df()
            runs.append(time.perf_counter() - began)
        join_seconds = statistics.median(runs)
        print(
            f"point-in-time join       {len(labels):>9,} labels -> {len(joined):,} rows "
            f"in {join_seconds:6.2f} s = {len(labels) / join_seconds:,.0f} rows/s"
        )
    print(
        "targets: >= 20,000 entities/s materialized; lookup p99 <= 1 ms; join of 1M labels < 60 s"
    )


if __name__ == "__main__":
    main()
