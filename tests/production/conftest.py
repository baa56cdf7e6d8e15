"""Real PostgreSQL and Redis for the production profile, one pair of servers per session.

Where the binaries are missing the tests are skipped with the reason, except when
`MLOPS_REQUIRE_SERVERS=1` (CI sets it), where a missing server is a failure.
"""

from __future__ import annotations

import itertools
import multiprocessing.forkserver
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import PostgresServer, RedisServer, ServerUnavailable, production_environment

_TAGS = itertools.count()


@dataclass
class Servers:
    """The running servers of the session."""

    postgres: PostgresServer
    redis: RedisServer


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    postgres, redis = PostgresServer(), RedisServer()
    try:
        postgres.start()
        redis.start()
    except BaseException as exc:
        postgres.remove()
        redis.remove()
        if not isinstance(exc, ServerUnavailable):
            raise
        if os.environ.get("MLOPS_REQUIRE_SERVERS") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield Servers(postgres, redis)
    finally:
        redis.remove()
        postgres.remove()


def fresh_production_env(servers: Servers) -> dict[str, str]:
    """Empty databases and an empty Redis, and the environment that points at them."""
    tag = f"{os.getpid()}_{next(_TAGS)}"
    servers.postgres.create_databases(f"dagster_{tag}", f"mlflow_{tag}", f"feast_{tag}")
    servers.redis.client().flushall()
    return production_environment(servers.postgres, servers.redis, tag)


def restart_forkserver() -> None:
    """Stop the fork server, so the next one starts with the environment set now.

    The parallel executor's step processes fork from Python's one fork server per process,
    with the environment it had when it started. A test that sets the production profile's
    variables after another test started it (federated sites fork from it too) would otherwise
    run its steps without them. `_stop` is the standard library's own hook for tests.
    """
    multiprocessing.forkserver._forkserver._stop()
