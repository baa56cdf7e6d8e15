"""Benchmark: the feature stage on N synthetic rows (default 1,000,000).

Prints, from one run on one machine (`--parts` picks `online`, `join` or both):
  - materialization into the SQLite online store, like with like: the platform's path (newest
    row per entity, batched upserts) and Feast's shipped `materialize`, each from the same
    Parquet file of the same N rows into its own store, as entities found in the store
    afterwards per second (both must hold the same entities) and their ratio;
  - the platform's requested full rewrite of every entity, and its incremental write after a
    new batch of `--batch-rows` sales (half known houses, half new), in entities written;
  - online lookup of one entity in process: p50/p99 of the platform's lookup helper and of
    Feast's `get_online_features`, over the same keys;
  - the point-in-time join (`get_historical_features`) for N label rows with each offline
    store named in `--offline-stores` (median of `--join-runs`);
  - the load average, since the machine may be shared.
Targets: >= 20,000 entities/s materialized, full rewrite >= 100,000 entities/s; lookup p99
<= 1 ms; join of 1M labels <= 5 s.
Feast's `materialize` takes minutes on a million rows; `--rows 50000` compares in seconds.

    .venv/bin/python benchmarks/features.py [--rows 1000000] [--lookups 5000] [--batch-rows 20000]
        [--offline-stores duckdb,file] [--join-runs 3] [--parts online,join]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd


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


def _with_offline_store(root: Path, kind: str):
    """The platform's store on `root` with another Feast offline store (`file` = Dask)."""
    from feast import FeatureStore, RepoConfig

    from mlops_assets.features.feast_repo import FEATURE_REPO, repo_config_dict
    from mlops_assets.paths import PlatformPaths

    settings = repo_config_dict(PlatformPaths(root))
    settings["offline_store"] = {"type": kind}
    config = RepoConfig(**settings)
    config.repo_path = FEATURE_REPO
    return FeatureStore(config=config)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def _entities_in_store(store, view) -> int:
    """Entities the SQLite online store holds for `view` (one row per entity and feature)."""
    from mlops_assets.features.feast_internals import sqlite_connection, sqlite_table
    from mlops_assets.features.sqlite_write import TOKEN_KEY

    table = sqlite_table(store, view)
    query = f"SELECT COUNT(DISTINCT entity_key) FROM {table} WHERE entity_key != ?"
    return int(sqlite_connection(store).execute(query, (TOKEN_KEY,)).fetchone()[0])


def _platform_write(root: Path, spec, features) -> tuple[object, object, int, float]:
    """The platform's write, timed from reading the offline Parquet file to the last upsert."""
    from mlops_assets.features.feast_repo import offline_path
    from mlops_assets.features.online_write import materialize_newest
    from mlops_assets.paths import PlatformPaths

    store, definitions = _store(root, spec, features)
    began = time.perf_counter()
    table = pd.read_parquet(offline_path(PlatformPaths(root), spec))
    materialize_newest(
        store,
        definitions.view,
        table,
        spec.entity_key,
        spec.event_timestamp,
        state_dir=root / "online_state",
    )
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


def _next_batch(spec, rows: int, features: pd.DataFrame) -> pd.DataFrame:
    """A later delivery: new sales of `rows` houses, half of them already known, half new."""
    from mlops_assets.core.features import engineer
    from mlops_assets.sources import SyntheticConfig, generate_house_sales

    later = features[spec.event_timestamp].max() + pd.Timedelta(days=1)
    sales = generate_house_sales(SyntheticConfig(rows=rows, seed=7))
    sales = sales.drop_duplicates(spec.entity_key).reset_index(drop=True)
    known = features[spec.entity_key].drop_duplicates().sample(len(sales) // 2, random_state=3)
    top = int(features[spec.entity_key].max())
    sales[spec.entity_key] = np.r_[known.to_numpy(), top + 1 + np.arange(len(sales) - len(known))]
    sales[spec.event_timestamp] = later + pd.to_timedelta(np.arange(len(sales)), unit="s")
    return engineer(sales, spec)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--batch-rows", type=int, default=20_000)
    parser.add_argument("--offline-stores", default="duckdb,file", help="comma-separated")
    parser.add_argument("--join-runs", type=int, default=3)
    parser.add_argument(
        "--parts", default="online,join", help="online (writes and lookups), join, or both"
    )
    args = parser.parse_args()

    from mlops_assets.core.features import engineer
    from mlops_assets.sources import SyntheticConfig, generate_house_sales
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    spec = load_spec(HOUSE_PRICES_SPEC)
    sales = generate_house_sales(SyntheticConfig(rows=args.rows, seed=42))
    features = engineer(sales, spec)
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        root = Path(tmp)
        if "online" in parts:
            _online(args, root, spec, features)
        else:
            _store(root / "platform", spec, features)
        if "join" in parts:
            _join(args, root / "platform", spec, sales)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        "targets: >= 20,000 entities/s materialized, full rewrite >= 100,000 entities/s; "
        "lookup p99 <= 1 ms; join of 1M labels <= 5 s"
    )


def _online(args, root: Path, spec, features: pd.DataFrame) -> None:
    """Like-for-like writes, the platform's full rewrite and incremental write, lookups."""
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
    _rewrite_and_increment(args, root / "platform", spec, store, definitions, features)
    _lookups(args, spec, store, definitions, features)


def _rewrite_and_increment(args, root: Path, spec, store, definitions, features) -> None:
    from mlops_assets.features.online_write import materialize_newest

    key, ts, state = spec.entity_key, spec.event_timestamp, root / "online_state"
    rewrite = materialize_newest(
        store, definitions.view, features, key, ts, state_dir=state, full=True
    )
    print(
        f"materialize (platform, full rewrite)  {rewrite.written:,} entities in "
        f"{rewrite.seconds:6.2f} s = {rewrite.written / rewrite.seconds:>8,.0f} entities/s"
    )
    batch = _next_batch(spec, args.batch_rows, features)
    grown = pd.concat([features, batch], ignore_index=True)
    step = materialize_newest(store, definitions.view, grown, key, ts, state_dir=state)
    print(
        f"materialize (platform, {step.mode}) a new batch of {len(batch):,} rows on "
        f"{len(features):,}: {step.written:,} entities written, "
        f"{step.skipped:,} skipped, in {step.seconds:6.2f} s"
    )


def _lookups(args, spec, store, definitions, features: pd.DataFrame) -> None:
    from mlops_assets.features.online_lookup import OnlineFeatureLookup

    key = spec.entity_key
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
        f"online lookup (platform)   p50 {p50:.3f} ms  p99 {p99:.3f} ms  over {len(samples):,} keys"
    )
    print(
        f"online lookup (Feast API)  p50 {f50:.3f} ms  p99 {f99:.3f} ms  "
        f"over {len(feast_samples):,} keys"
    )


def _join(args, root: Path, spec, sales: pd.DataFrame) -> None:
    """`get_historical_features` for every sale as a label, with each offline store."""
    from mlops_assets.features.feast_repo import FeastNames

    labels = sales[[spec.entity_key, spec.event_timestamp, spec.target]]
    for kind in args.offline_stores.split(","):
        joiner = _with_offline_store(root, kind)
        service = joiner.get_feature_service(FeastNames.for_spec(spec).service)
        runs = []
        for _ in range(args.join_runs):
            began = time.perf_counter()
            joined = joiner.get_historical_features(entity_df=labels, features=service).to_df()
            runs.append(time.perf_counter() - began)
        join_seconds = statistics.median(runs)
        print(
            f"point-in-time join ({kind:6s}) {len(labels):>9,} labels -> {len(joined):,} rows "
            f"in {join_seconds:6.2f} s (median of {len(runs)}) = "
            f"{len(labels) / join_seconds:,.0f} rows/s"
        )


if __name__ == "__main__":
    main()
