"""Which engines hold the platform's state: embedded files, or PostgreSQL and Redis.

The `embedded` profile (the default) keeps everything under `MLOPS_HOME`: SQLite for Dagster,
MLflow and Feast's online store, a file for Feast's registry. That is right for one person on
one machine and wrong for a team: SQLite locks under parallel runs and a file registry cannot
serve several replicas. `MLOPS_PROFILE=production` moves the same state onto the engines a team
already runs (Dagster and MLflow on PostgreSQL, Feast's registry on PostgreSQL and its online
store on Redis) without a change of code. Every setting comes from the environment, so secrets
reach the processes from a secret store and never sit in a file of the repository; the files
the platform writes name the password variable, not its value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import yaml

PROFILE_ENV = "MLOPS_PROFILE"
EMBEDDED = "embedded"
PRODUCTION = "production"
PASSWORD_ENV = "MLOPS_POSTGRES_PASSWORD"
DAGSTER_YAML_MARKER = "# Dagster instance of this platform"
_URL_PASSWORD = re.compile(r"://([^:/@\s]+):[^@\s]*@")


class ProfileError(ValueError):
    """The profile is unknown or a setting it needs is missing or malformed."""


@dataclass(frozen=True)
class PostgresSettings:
    """One PostgreSQL server; Dagster, MLflow and Feast each get their own database.

    Separate databases because Dagster and MLflow both own a table called `runs`.
    """

    host: str
    port: int
    user: str
    password: str
    dagster_db: str
    mlflow_db: str
    feast_db: str

    def url(self, database: str) -> str:
        """SQLAlchemy URL of one database, with the credentials escaped."""
        user, password = quote(self.user, safe=""), quote(self.password, safe="")
        return f"postgresql+psycopg2://{user}:{password}@{self.host}:{self.port}/{database}"

    def redacted(self, database: str) -> str:
        """The URL as it may appear in logs and error messages."""
        return f"postgresql://{self.user}:***@{self.host}:{self.port}/{database}"


@dataclass(frozen=True)
class RedisSettings:
    """The Redis server of Feast's online store."""

    host: str
    port: int
    password: str
    db: int


@dataclass(frozen=True)
class Profile:
    """The engines in force; `postgres` and `redis` are set only in production."""

    name: str
    postgres: PostgresSettings | None = None
    redis: RedisSettings | None = None
    mlflow_artifacts: str = ""

    @property
    def is_production(self) -> bool:
        """True when state lives on PostgreSQL and Redis."""
        return self.name == PRODUCTION

    def require_postgres(self) -> PostgresSettings:
        """The PostgreSQL settings; only the production profile has them."""
        if self.postgres is None:
            raise ProfileError(f"the {self.name} profile has no PostgreSQL server")
        return self.postgres

    def feast_substitutions(self, home: Path) -> dict[str, str]:
        """Values for the `${VAR}` placeholders of the Feast configuration files."""
        values = {"MLOPS_HOME": str(home)}
        if self.postgres is not None:
            pg = self.postgres
            values |= {
                "MLOPS_POSTGRES_HOST": pg.host,
                "MLOPS_POSTGRES_PORT": str(pg.port),
                "MLOPS_POSTGRES_USER": quote(pg.user, safe=""),
                "MLOPS_POSTGRES_PASSWORD": quote(pg.password, safe=""),
                "MLOPS_POSTGRES_FEAST_DB": pg.feast_db,
            }
        if self.redis is not None:
            redis = self.redis
            values |= {
                "MLOPS_REDIS_HOST": redis.host,
                "MLOPS_REDIS_PORT": str(redis.port),
                "MLOPS_REDIS_DB": str(redis.db),
                "MLOPS_REDIS_PASSWORD": redis.password,
            }
        return values


def redact_url(text: str) -> str:
    """`text` with the password of any `scheme://user:password@host` URL in it masked."""
    return _URL_PASSWORD.sub(r"://\1:***@", text)


def active_profile(environ: Mapping[str, str] | None = None) -> Profile:
    """The profile named by `$MLOPS_PROFILE`, with its settings read from the environment."""
    env = os.environ if environ is None else environ
    name = env.get(PROFILE_ENV, "").strip().lower() or EMBEDDED
    if name == EMBEDDED:
        return Profile(EMBEDDED)
    if name != PRODUCTION:
        raise ProfileError(f"{PROFILE_ENV}={name!r}: expected {EMBEDDED!r} or {PRODUCTION!r}")
    return Profile(
        PRODUCTION,
        postgres=_postgres(env),
        redis=_redis(env),
        mlflow_artifacts=env.get("MLOPS_MLFLOW_ARTIFACTS", ""),
    )


def dagster_instance_yaml(profile: Profile) -> str:
    """`dagster.yaml` for the profile: SQLite under the folder, or PostgreSQL storage.

    The password is an `env:` reference, so the file carries no secret.
    """
    header = f"{DAGSTER_YAML_MARKER} ({profile.name} profile; rewritten by `mlops`).\n"
    config: dict[str, object] = {
        "telemetry": {"enabled": False},
        # The daemon (dagster dev, the Helm chart) fails runs stuck starting or whose worker
        # the launcher reports dead; `dead_runs.py` covers runs whose process was killed here.
        "run_monitoring": {"enabled": True, "start_timeout_seconds": 180},
    }
    if profile.is_production:
        pg = profile.require_postgres()
        database = {
            "hostname": pg.host,
            "port": pg.port,
            "username": pg.user,
            "password": {"env": PASSWORD_ENV},
            "db_name": pg.dagster_db,
            "scheme": "postgresql+psycopg2",  # SQLAlchemy 2.1 defaults to psycopg 3
        }
        config = {"storage": {"postgres": {"postgres_db": database}}, **config}
    return header + yaml.safe_dump(config, sort_keys=False)


def write_dagster_yaml(folder: Path, profile: Profile) -> None:
    """Write the instance config unless the user replaced it with their own."""
    config = folder / "dagster.yaml"
    wanted = dagster_instance_yaml(profile)
    if config.exists():
        current = config.read_text()
        if current == wanted or not current.startswith(DAGSTER_YAML_MARKER):
            return
    config.write_text(wanted)


def _postgres(env: Mapping[str, str]) -> PostgresSettings:
    return PostgresSettings(
        host=_required(env, "MLOPS_POSTGRES_HOST"),
        port=_port(env, "MLOPS_POSTGRES_PORT", 5432),
        user=_required(env, "MLOPS_POSTGRES_USER"),
        password=_required(env, PASSWORD_ENV, strip=False),
        dagster_db=env.get("MLOPS_POSTGRES_DAGSTER_DB", "dagster"),
        mlflow_db=env.get("MLOPS_POSTGRES_MLFLOW_DB", "mlflow"),
        feast_db=env.get("MLOPS_POSTGRES_FEAST_DB", "feast"),
    )


def _redis(env: Mapping[str, str]) -> RedisSettings:
    _check_feast_value("MLOPS_REDIS_PASSWORD", env.get("MLOPS_REDIS_PASSWORD", ""))
    return RedisSettings(
        host=_required(env, "MLOPS_REDIS_HOST"),
        port=_port(env, "MLOPS_REDIS_PORT", 6379),
        password=env.get("MLOPS_REDIS_PASSWORD", ""),
        db=_port(env, "MLOPS_REDIS_DB", 0),
    )


def _check_feast_value(name: str, value: str) -> None:
    """Feast splits its Redis connection string on commas and reads each value as JSON."""
    if "," in value:
        raise ProfileError(f"{name} must not contain a comma (Feast's Redis connection string)")
    try:
        decoded = json.loads(value)
    except ValueError:
        return
    if not isinstance(decoded, str):
        raise ProfileError(
            f"{name} must not be a bare number, true, false or null (Feast reads it as JSON)"
        )


def _required(env: Mapping[str, str], name: str, *, strip: bool = True) -> str:
    value = env.get(name, "")
    if not value.strip():
        raise ProfileError(f"{PROFILE_ENV}={PRODUCTION} needs {name} to be set")
    return value.strip() if strip else value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ProfileError(f"{name}={raw!r} is not a number")
    return int(raw)
