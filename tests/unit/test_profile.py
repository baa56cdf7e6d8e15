"""The profile is read from the environment, with clear errors and no secret written out."""

from pathlib import Path

import pytest
import yaml

from mlops_assets.features.feast_repo import repo_config_dict
from mlops_assets.paths import PlatformPaths
from mlops_assets.profile import (
    ProfileError,
    active_profile,
    dagster_instance_yaml,
    redact_url,
    write_dagster_yaml,
)

PRODUCTION = {
    "MLOPS_PROFILE": "production",
    "MLOPS_POSTGRES_HOST": "db.internal",
    "MLOPS_POSTGRES_USER": "mlops",
    "MLOPS_POSTGRES_PASSWORD": "s3cr/t@pw",
    "MLOPS_REDIS_HOST": "cache.internal",
    "MLOPS_REDIS_PASSWORD": "r3dis",
}


def test_embedded_is_the_default() -> None:
    assert active_profile({}).name == "embedded"
    assert not active_profile({"MLOPS_PROFILE": " Embedded "}).is_production


def test_production_reads_every_setting_with_defaults() -> None:
    profile = active_profile(PRODUCTION)
    pg = profile.require_postgres()
    assert (pg.port, pg.dagster_db, pg.mlflow_db, pg.feast_db) == (
        5432,
        "dagster",
        "mlflow",
        "feast",
    )
    assert pg.url("mlflow") == "postgresql+psycopg2://mlops:s3cr%2Ft%40pw@db.internal:5432/mlflow"
    assert profile.redis is not None and profile.redis.port == 6379


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"MLOPS_PROFILE": "cluster"}, "MLOPS_PROFILE='cluster'"),
        ({"MLOPS_POSTGRES_HOST": ""}, "MLOPS_POSTGRES_HOST"),
        ({"MLOPS_POSTGRES_PASSWORD": " "}, "MLOPS_POSTGRES_PASSWORD"),
        ({"MLOPS_REDIS_HOST": ""}, "MLOPS_REDIS_HOST"),
        ({"MLOPS_POSTGRES_PORT": "54x"}, "MLOPS_POSTGRES_PORT='54x'"),
    ],
)
def test_a_bad_or_missing_setting_is_named(change: dict[str, str], named: str) -> None:
    with pytest.raises(ProfileError, match=named.replace("(", r"\(")):
        active_profile({**PRODUCTION, **change})


def test_dagster_yaml_names_the_password_variable_not_its_value(tmp_path: Path) -> None:
    text = dagster_instance_yaml(active_profile(PRODUCTION))
    config = yaml.safe_load(text)["storage"]["postgres"]["postgres_db"]
    assert config["password"] == {"env": "MLOPS_POSTGRES_PASSWORD"}
    assert config["hostname"] == "db.internal" and "s3cr" not in text
    write_dagster_yaml(tmp_path, active_profile({}))
    assert "storage" not in (tmp_path / "dagster.yaml").read_text()
    write_dagster_yaml(tmp_path, active_profile(PRODUCTION))  # the profile changed: rewritten
    assert "postgres" in (tmp_path / "dagster.yaml").read_text()
    (tmp_path / "dagster.yaml").write_text("# mine\ntelemetry: {enabled: true}\n")
    write_dagster_yaml(tmp_path, active_profile({}))  # a user's own file is left alone
    assert (tmp_path / "dagster.yaml").read_text().startswith("# mine")


def test_feast_config_of_each_profile(tmp_path: Path) -> None:
    paths = PlatformPaths(tmp_path)
    embedded = repo_config_dict(paths, active_profile({}))
    assert embedded["online_store"] == {
        "type": "sqlite",
        "path": f"{tmp_path}/feast/online_store.db",
    }
    production = repo_config_dict(paths, active_profile(PRODUCTION))
    assert production["registry"]["registry_type"] == "sql"
    assert production["registry"]["path"] == (
        "postgresql+psycopg2://mlops:s3cr%2Ft%40pw@db.internal:5432/feast"
    )
    assert production["online_store"]["connection_string"] == (
        "cache.internal:6379,db=0,password=r3dis,socket_timeout=5,socket_connect_timeout=5"
    )


def test_passwords_are_masked_in_messages() -> None:
    text = "could not reach postgresql+psycopg2://mlops:s3cr%2Ft@db:5432/mlflow (refused)"
    assert (
        redact_url(text)
        == "could not reach postgresql+psycopg2://mlops:***@db:5432/mlflow (refused)"
    )
