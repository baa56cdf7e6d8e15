"""Setting up a state folder's stores once, however many processes start on it together.

Creating the MLflow store runs a chain of Alembic migrations; two processes that start on a
new folder at once both see an incomplete schema, both migrate, and collide half-way
(`table _alembic_tmp_metrics already exists`), which can leave the store half-migrated for
good. Dagster's SQLite storages and Feast's file registry have the same first-writer race. So
each store is created or migrated under its own lock: a file lock in the state folder on one
machine, a PostgreSQL advisory lock in the production profile. A second process says that it
waits, waits (bounded), then finds the store ready and goes on.

A store an older version or an interrupted setup left half-migrated (stray `_alembic_tmp_*`
tables, a schema version that does not match its tables) is set aside and made anew when it
holds no runs and no registered models; otherwise it is refused with a sentence saying what to
do, since migrating it blindly could lose the history it holds.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops_assets.model_registry.locks import LockTimeout, advisory_lock, file_lock
from mlops_assets.paths import PlatformPaths
from mlops_assets.profile import active_profile

SETUP_TIMEOUT_S = 600.0  # a migration on a loaded machine takes tens of seconds, not minutes
DATABASE_SCHEMES = ("sqlite:", "postgresql", "mysql", "mssql")
_READY: set[str] = set()  # stores this process has already seen set up


class StateSetupError(ValueError):
    """A store of the state folder is unusable and was not repaired (the message says why)."""


@contextmanager
def setup_lock(
    paths: PlatformPaths, store: str, timeout_s: float = SETUP_TIMEOUT_S
) -> Iterator[None]:
    """Held while `store` ("mlflow", "dagster", "feast", "bentoml") is created or changed."""
    holder = f"another process setting up the {store} store of {paths.root}"

    def say_waiting() -> None:
        sys.stderr.write(
            f"Waiting for another process to finish setting up the {store} store of "
            f"{paths.root} (at most {timeout_s:.0f} s) ...\n"
        )
        sys.stderr.flush()

    profile = active_profile()
    if profile.is_production:
        name = f"mlops-setup:{store}"
        lock = advisory_lock(profile.require_postgres(), name, timeout_s, holder, say_waiting)
    else:
        folder = paths.root / ".setup"
        folder.mkdir(parents=True, exist_ok=True)
        lock = file_lock(folder / f"{store}.lock", timeout_s, holder, say_waiting)
    with ExitStack() as stack:
        try:
            stack.enter_context(lock)
        except LockTimeout as exc:
            raise StateSetupError(
                f"{exc} for more than {timeout_s:.0f} s (a lock is freed when its process "
                "ends): let that command finish or stop it, then run this one again."
            ) from exc
        yield


def ensure_mlflow_store(paths: PlatformPaths, uri: str, artifact_root: str) -> None:
    """Create or check the MLflow tracking and registry store at `uri`, once per process."""
    if uri in _READY or not uri.startswith(DATABASE_SCHEMES):
        return  # a tracking server (http://...) sets up its own store
    with setup_lock(paths, "mlflow"):
        if uri.startswith("sqlite:///") and _repair_or_refuse(Path(uri.removeprefix("sqlite:///"))):
            _forget_connections(uri)
        _open_mlflow_stores(uri, artifact_root)
    _READY.add(uri)


def _open_mlflow_stores(uri: str, artifact_root: str) -> None:
    """MLflow creates a missing schema and checks an existing one when its stores open."""
    from mlflow.store.db.utils import _verify_schema
    from mlflow.store.model_registry.sqlalchemy_store import (
        SqlAlchemyStore as RegistryStore,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    tracking = TrackingStore(uri, artifact_root)
    registry = RegistryStore(uri)
    try:
        _verify_schema(tracking.engine)
    finally:
        tracking.engine.dispose()
        registry.engine.dispose()


@dataclass(frozen=True)
class SchemaState:
    """What a SQLite MLflow store's bookkeeping says about its migrations."""

    stray_tables: tuple[str, ...]
    versions: tuple[str, ...]
    has_tables: bool
    history_rows: int

    @property
    def half_migrated(self) -> bool:
        """Stray Alembic copies, or tables with no single recorded schema version."""
        return bool(self.stray_tables) or (self.has_tables and len(self.versions) != 1)

    def describe(self) -> str:
        """`alembic_version ['90e64c465722'], stray tables _alembic_tmp_metrics`."""
        stray = ", ".join(self.stray_tables) or "none"
        return f"schema version {list(self.versions)}, stray tables: {stray}"


def inspect_sqlite_store(database: Path) -> SchemaState:
    """The migration bookkeeping of a SQLite MLflow store, read without MLflow."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        versions: tuple[str, ...] = ()
        if "alembic_version" in tables:
            rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            versions = tuple(str(r[0]) for r in rows)
        history = sum(
            connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("runs", "registered_models")
            if table in tables
        )
    return SchemaState(
        stray_tables=tuple(sorted(t for t in tables if t.startswith("_alembic_tmp_"))),
        versions=versions,
        has_tables=bool(tables - {"alembic_version"}),
        history_rows=history,
    )


def _repair_or_refuse(database: Path) -> bool:
    """Set aside a half-migrated store that holds nothing (True); refuse one with history."""
    if not database.exists() or database.stat().st_size == 0:
        return False
    state = inspect_sqlite_store(database)
    if not state.half_migrated:
        return False
    if state.history_rows:
        raise StateSetupError(
            f"The MLflow store {database} was left half-migrated by an interrupted setup "
            f"({state.describe()}) and holds {state.history_rows} runs and registered models: "
            "restore it from a backup, or move it away to start a new store."
        )
    aside = database.with_name(f"{database.name}.half-migrated-{_stamp()}")
    for suffix in ("-journal", "-wal", "-shm"):  # a hot journal must not reach the new store
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    database.rename(aside)
    sys.stderr.write(
        f"The MLflow store {database} was left half-migrated ({state.describe()}) and held no "
        f"runs: set aside as {aside.name} and created anew.\n"
    )
    return True


def _forget_connections(uri: str) -> None:
    """MLflow keeps one engine per URI; its pooled connections still open the old file."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for store in (TrackingStore, RegistryStore):
        engine = store._engine_map.get(uri)
        if engine is not None:
            engine.dispose()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def forget_ready() -> None:
    """Check every store again on next use (a test that rebuilds a folder in-process)."""
    _READY.clear()
