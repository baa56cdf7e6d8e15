"""Shared fixtures: every test gets its own state folder, nothing touches the project's."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import BREAST_CANCER_SPEC, HOUSE_PRICES_SPEC, DatasetSpec, load_spec


@pytest.fixture(autouse=True)
def mlops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "mlops_home"
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.delenv("MLOPS_SPEC", raising=False)
    monkeypatch.delenv("MLOPS_DASK_SCHEDULER", raising=False)  # a test names its own cluster
    return home


@pytest.fixture
def paths(mlops_home: Path) -> PlatformPaths:
    return PlatformPaths(mlops_home)


@pytest.fixture(scope="session")
def house_spec() -> DatasetSpec:
    return load_spec(HOUSE_PRICES_SPEC)


@pytest.fixture(scope="session")
def cancer_spec() -> DatasetSpec:
    return load_spec(BREAST_CANCER_SPEC)
