"""Exclusive locks around a champion move: a file lock on one machine, PostgreSQL across many.

The embedded profile runs every job on one host, where `flock` on a file in the state folder
excludes every process. In production, runs are pods on different nodes, and `flock` over a
network volume is not to be trusted; a PostgreSQL advisory lock on the MLflow database is
held by exactly one session cluster-wide and is released by the server if its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops_assets.profile import PostgresSettings

POLL_S = 0.05


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than the timeout."""


@contextmanager
def file_lock(
    path: Path,
    timeout_s: float,
    holder: str = "another promotion",
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive `flock` on `path`; `on_wait` is called once if it must wait."""
    with path.open("a+") as handle:
        _wait_for(lambda: _try_flock(handle.fileno()), timeout_s, f"{holder} holds {path}", on_wait)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def advisory_lock(
    settings: PostgresSettings,
    name: str,
    timeout_s: float,
    holder: str = "another promotion",
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold a session-level PostgreSQL advisory lock keyed by `name`."""
    import psycopg2

    key = zlib.crc32(name.encode())  # stable across processes, unlike hash()
    connection = psycopg2.connect(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password,
        dbname=settings.mlflow_db,
        connect_timeout=10,
        # Notice a holder whose connection died half-open within a minute, not two hours.
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:

            def attempt() -> bool:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                return bool(cursor.fetchone()[0])

            _wait_for(attempt, timeout_s, f"{holder} holds the lock {name!r}", on_wait)
            try:
                yield
            finally:
                # If the session is gone, the server has released the lock already.
                with contextlib.suppress(psycopg2.Error):
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_for(
    attempt: Callable[[], bool],
    timeout_s: float,
    message: str,
    on_wait: Callable[[], None] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    if attempt():
        return
    if on_wait is not None:
        on_wait()
    while not attempt():
        if time.monotonic() > deadline:
            raise LockTimeout(message)
        time.sleep(POLL_S)
