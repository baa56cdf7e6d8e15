"""Benchmark: the platform's Redis online write against Feast's own, on the same server.

Starts throwaway PostgreSQL (the Feast registry of the production profile) and Redis servers
from Debian's binaries, as the tests do. Both writers get the same frame (the newest row of
each of the entities of N synthetic sales) and the same empty Redis; the speed is the entities
found in Redis afterwards (its key count, one hash per entity) per second. The platform's
write leaves the same bytes as Feast's (`tests/production/test_redis_write.py`).

    .venv/bin/python benchmarks/redis_write.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _write_both(rows: int, redis_client) -> list[tuple[str, int, float]]:
    """(writer, entities in Redis afterwards, seconds) for Feast's write, then the platform's."""
    from mlops_assets.core.features import engineer
    from mlops_assets.features.feast_repo import build_definitions, feature_store
    from mlops_assets.features.online_write import materialize_newest, newest_per_entity
    from mlops_assets.features.redis_write import supports_fast_write
    from mlops_assets.paths import PlatformPaths
    from mlops_assets.profile import active_profile
    from mlops_assets.sources import SyntheticConfig, generate_house_sales
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    spec = load_spec(HOUSE_PRICES_SPEC)
    key, ts = spec.entity_key, spec.event_timestamp
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as home:
        paths = PlatformPaths(Path(home))
        store = feature_store(paths, active_profile())
        definitions = build_definitions(spec, paths)
        store.apply(definitions.in_apply_order())
        if not supports_fast_write(store):
            raise SystemExit("the platform's Redis write does not apply to this store")
        sales = generate_house_sales(SyntheticConfig(rows=rows, seed=42))
        newest = newest_per_entity(engineer(sales, spec), key, ts)
        results = []
        for name in ("Feast", "platform"):
            redis_client.flushall()
            began = time.perf_counter()
            if name == "Feast":
                store.write_to_online_store(definitions.view.name, newest)
            else:
                state = Path(home) / "online_state"
                materialize_newest(store, definitions.view, newest, key, ts, state_dir=state)
            seconds = time.perf_counter() - began
            token = 1 if name == "platform" else 0  # the platform's write leaves its token key
            results.append((name, redis_client.dbsize() - token, seconds))
        return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.servers import PostgresServer, RedisServer, production_environment

    postgres, redis = PostgresServer(), RedisServer()
    try:
        postgres.start()
        redis.start()
        postgres.create_databases("dagster_bench", "mlflow_bench", "feast_bench")
        os.environ.update(production_environment(postgres, redis, "bench"))
        results = _write_both(args.rows, redis.client())
    finally:
        redis.remove()
        postgres.remove()
    (_, theirs, their_seconds), (_, ours, our_seconds) = results
    if ours != theirs:
        raise SystemExit(f"Redis differs: Feast left {theirs:,} entities, the platform {ours:,}")
    for name, entities, seconds in results:
        print(
            f"redis write ({name + ')':<9} {args.rows:>9,} rows -> {entities:,} entities "
            f"in {seconds:6.2f} s = {entities / seconds:>8,.0f} entities/s"
        )
    print(f"platform/Feast {their_seconds / our_seconds:.1f}x on the same entities and server")


if __name__ == "__main__":
    main()
