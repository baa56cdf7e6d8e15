"""Shared fixtures: every test gets its own state folder, nothing touches the project's.

Also the two tiers: `./scripts/test.sh` runs everything; `./scripts/test.sh --fast` runs the
unit tests and the integration tests that start no server and are not slow (markers `server`
and `slow`), for the edit-test loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import BREAST_CANCER_SPEC, HOUSE_PRICES_SPEC, DatasetSpec, load_spec

UNIT_TIMEOUT_S = 300  # pure functions on small data: minutes only on a very busy machine
SLOW_TIMEOUT_S = 1_800  # the whole graph, more than once (the default is pyproject's 900)
OUTSIDE_FAST_TIER = ("server", "slow")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the fast tier: leave out tests marked server or slow",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tighter deadlines for unit tests, longer ones for slow tests; `--fast` drops the rest."""
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        if item.nodeid.startswith("tests/unit/"):
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT_S))
        elif item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
    if not config.getoption("--fast"):
        return
    left_out = [i for i in items if any(i.get_closest_marker(m) for m in OUTSIDE_FAST_TIER)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [i for i in items if i not in left_out]


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
