"""Benchmark: the feature stage on N synthetic rows (default 1,000,000).

Prints, from one run on one machine:
  - materialization into the SQLite online store by the platform's path: the first write
    (every entity), a requested full rewrite, and an incremental write after a new batch of
    `--batch-rows` sales (half known houses, half new) - entities written per second; and
    Feast's shipped `materialize` on a subset (it would take minutes on all of them);
  - online lookup of one entity in process: p50/p99 of the platform's lookup helper and of
    Feast's `get_online_features`, over the same keys;
  - the point-in-time join (`get_historical_features`) for N label rows with each offline
    store named in `--offline-stores` (median of `--join-runs`);
  - the load average, since the machine may be shared.
Targets: full rewrite >= 100,000 entities/s; lookup p99 <= 1 ms; join of 1M labels <= 5 s.

    uv run python benchmarks/features.py [--rows 1000000] [--feast-rows 50000] [--lookups 5000]
        [--batch-rows 20000] [--offline-stores duckdb,file] [--join-runs 3]
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
    batch = engineer(sales, spec)
    return batch.astype({name: "string" for name in spec.categorical_columns})


def _percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--feast-rows", type=int, default=50_000)
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
        store, definitions = _store(root / "platform", spec, features)
        if "online" in parts:
            _online(args, root, spec, store, definitions, features)
        if "join" in parts:
            _join(args, root, spec, definitions, sales)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        "targets: full rewrite >= 100,000 entities/s; lookup p99 <= 1 ms; join of 1M labels <= 5 s"
    )


def _online(args, root: Path, spec, store, definitions, features: pd.DataFrame) -> None:
    """Writes (first, full rewrite, incremental after a batch), Feast's write, lookups."""
    from mlops_assets.features.online_write import materialize_newest

    key, ts = spec.entity_key, spec.event_timestamp
    state = root / "platform" / "online_state"
    written = materialize_newest(store, definitions.view, features, key, ts, state_dir=state)
    print(
        f"materialize (platform, {written.mode})  {written.input_rows:>9,} rows -> "
        f"{written.written:,} entities in {written.seconds:6.2f} s = "
        f"{written.written / written.seconds:>8,.0f} entities/s"
    )
    rewrite = materialize_newest(
        store, definitions.view, features, key, ts, state_dir=state, full=True
    )
    print(
        f"materialize (platform, full rewrite)  {rewrite.written:,} entities in "
        f"{rewrite.seconds:6.2f} s = {rewrite.written / rewrite.seconds:>8,.0f} entities/s"
    )
    ours = written.input_rows / written.seconds
    batch = _next_batch(spec, args.batch_rows, features)
    features = pd.concat([features, batch], ignore_index=True)
    step = materialize_newest(store, definitions.view, features, key, ts, state_dir=state)
    print(
        f"materialize (platform, {step.mode}) a new batch of {len(batch):,} rows on "
        f"{len(features) - len(batch):,}: {step.written:,} entities written, "
        f"{step.skipped:,} skipped, in {step.seconds:6.2f} s"
    )

    subset = features.sort_values(ts).head(args.feast_rows)
    feast_store, feast_definitions = _store(root / "feast", spec, subset)
    start, end = subset[ts].min().to_pydatetime(), subset[ts].max().to_pydatetime()
    began = time.perf_counter()
    feast_store.materialize(start, end + timedelta(seconds=1), [feast_definitions.view.name])
    feast_seconds = time.perf_counter() - began
    theirs = len(subset) / feast_seconds
    print(
        f"materialize (Feast)    {len(subset):>9,} rows in {feast_seconds:6.2f} s = "
        f"{theirs:>8,.0f} rows/s   -> platform/Feast {ours / theirs:.1f}x"
    )
    _lookups(args, spec, store, definitions, features)


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


def _join(args, root: Path, spec, definitions, sales: pd.DataFrame) -> None:
    """`get_historical_features` for every sale as a label, with each offline store."""
    labels = sales[[spec.entity_key, spec.event_timestamp, spec.target]]
    for kind in args.offline_stores.split(","):
        joiner = _with_offline_store(root / "platform", kind)
        service = joiner.get_feature_service(definitions.service.name)
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
