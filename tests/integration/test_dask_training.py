"""Training on a real Dask cluster: two worker processes on loopback (`distributed.LocalCluster`).

The cluster's booster must be as good as the one trained in process on the same rows, served
identically offline and over HTTP, and an unreachable cluster must fail `model` at once,
naming its address and setting, with the champion left where it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import numpy as np
import pytest
import xgboost as xgb

from mlops_assets.core.dask_training import DaskFit
from mlops_assets.core.evaluation import compute_metrics
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.imputation import learn_imputation
from mlops_assets.core.splits import entity_split
from mlops_assets.core.training import TrainParams, booster_bytes, predict, train
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.sources.synthetic import SyntheticConfig, generate_house_sales
from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec
from mlops_assets.training.assets import model
from mlops_assets.training.engine import SCHEDULER_ENV, TrainingEngine
from tests.servers import bento_service, free_port
from tests.service_checks import assert_every_path_agrees

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(HOUSE_PRICES_SPEC)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two worker processes, one thread each; yields the scheduler's address."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as local:
        yield local.scheduler_address


def test_the_cluster_trains_as_well_as_one_process(cluster):
    """Same rows, split and parameters: test R² within 0.01 of in-process training."""
    from distributed import Client

    sales = generate_house_sales(SyntheticConfig(rows=20_000, seed=7))
    x = to_matrix(engineer(sales, SPEC, learn_imputation(sales, SPEC)), SPEC)
    y = sales[SPEC.target].to_numpy(dtype=np.float64)
    split = entity_split(sales[SPEC.entity_key].to_numpy(), SPEC.training.split.as_tuple())
    part = {name: np.flatnonzero(split == name) for name in ("train", "validation", "test")}
    rows = (x[part["train"]], y[part["train"]], x[part["validation"]], y[part["validation"]])
    params = TrainParams()
    local = train(*rows, SPEC, params)
    said: list[str] = []
    with Client(cluster, set_as_default=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        on_cluster = train(*rows, SPEC, params, progress=said.append, fit=DaskFit(client))

    def r2(booster: xgb.Booster) -> float:
        return compute_metrics(y[part["test"]], predict(booster, x[part["test"]]), SPEC.task)["r2"]

    assert r2(local.booster) > 0.8, "the synthetic prices follow their features"
    assert abs(r2(on_cluster.booster) - r2(local.booster)) < 0.01
    # What is saved: a plain booster in XGBoost's own format, cut to its best iteration.
    assert isinstance(on_cluster.booster, xgb.Booster)
    assert booster_bytes(on_cluster.booster)[:1] == b"{"
    assert on_cluster.booster.num_boosted_rounds() == on_cluster.best_iteration + 1
    # Round progress crosses from the workers to the step's own progress.
    assert any(line.startswith("xgboost: round 250 of at most 3,000") for line in said), said


@pytest.fixture(scope="module")
def dask_served(cluster, tmp_path_factory) -> Iterator[dict]:
    """The whole platform with `$MLOPS_DASK_SCHEDULER` set, its champion served over HTTP."""
    home = tmp_path_factory.mktemp("dask_served") / "mlops_home"
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    env[SCHEDULER_ENV] = cluster
    command = ["run", "--rows", "5000", "--protocol", "holdout"]
    built = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"client": client, "url": url, "home": home, "stdout": built.stdout}


def test_a_cluster_trained_champion_is_served_identically(dask_served, cluster):
    stdout = dask_served["stdout"]
    assert f"XGBoost trains on the Dask cluster at {cluster} (2 workers)" in stdout, stdout
    assert "Promotion: promoted" in stdout
    info = dask_served["client"].get("/v1/model_info").json()
    assert info["family"] == "xgboost"
    folder = dask_served["home"] / "models" / info["mlflow_run_id"]
    assert (folder / "model.ubj").exists()
    assert_every_path_agrees(dask_served, SPEC)


def test_an_unreachable_cluster_fails_model_and_keeps_the_champion(dask_served, tmp_path):
    import mlflow

    home = MlopsHome(path=str(dask_served["home"]))
    paths = home.paths()
    uri = f"sqlite:///{paths.root / 'mlflow' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    def state() -> tuple[str, bytes, int, list[str]]:
        champion = client.get_model_version_by_alias("house_prices", "champion").version
        runs = client.search_runs([client.get_experiment_by_name("house_prices").experiment_id])
        models = sorted(p.name for p in (paths.root / "models").iterdir())
        return str(champion), paths.champion_pointer.read_bytes(), len(runs), models

    before = state()
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            [model],
            instance=instance,
            resources={
                "home": home,
                "dataset": DatasetSpecResource(home=home),
                "mlflow_tracking": MlflowTracking(home=home),
                "training_engine": TrainingEngine(
                    dask_scheduler=address, connect_timeout_seconds=3
                ),
            },
            raise_on_error=False,
        )
    elapsed = time.monotonic() - started
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert message.count(". ") == 0, message  # one sentence
    assert f"the Dask scheduler at {address} did not answer within 3 s" in message
    assert "set by resource training_engine.dask_scheduler" in message
    assert elapsed < 60
    assert state() == before
    assert json.loads(paths.champion_pointer.read_text())["version"] == before[0]


def test_a_scheduler_without_workers_fails_naming_it():
    from distributed import LocalCluster

    from mlops_assets.training.engine import EngineUnreachable

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        resource = TrainingEngine(dask_scheduler=empty.scheduler_address, connect_timeout_seconds=2)
        with pytest.raises(EngineUnreachable, match=r"has no worker after 2 s"), resource.connect():
            pass
