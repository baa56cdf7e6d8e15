from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import yaml

from mlops_assets.features.store_resource import FeatureStoreResource
from mlops_assets.ingestion.assets import cleaned_data, raw_data
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.resources import (
    DatasetSpecResource,
    MetricsPush,
    MlopsHome,
)
from mlops_assets.spec import HOUSE_PRICES_SPEC
from mlops_assets.training.engine import TrainingEngine


@pytest.fixture
def instance(mlops_home) -> Iterator[dg.DagsterInstance]:
    dagster_home = mlops_home / "dagster"
    dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        yield instance


@pytest.fixture
def ingest(instance):
    """Materialize raw and cleaned data for one batch; returns the result (never raises)."""

    def run(batch: str, source: dict[str, Any] | None = None, spec_path: str = ""):
        instance.add_dynamic_partitions("batches", [batch])
        home = MlopsHome()
        return dg.materialize(
            [raw_data, cleaned_data],
            instance=instance,
            partition_key=batch,
            resources={
                "home": home,
                "dataset": DatasetSpecResource(home=home, spec_path=spec_path),
            },
            run_config={"ops": {"raw_data": {"config": source or {"rows": 2_000}}}},
            raise_on_error=False,
        )

    return run


def batch_set(paths, batch: str) -> dict[str, bytes]:
    """The four published files of a batch (raw, cleaned, quarantine, manifest), byte for byte."""
    files = (paths.raw(batch), paths.cleaned(batch), paths.quarantine(batch), paths.manifest(batch))
    return {f.parent.name: f.read_bytes() for f in files}


def check_evaluations(result) -> dict[tuple[str, str], Any]:
    """(asset, check) -> evaluation, for every check the run evaluated."""
    evaluations = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluations[(data.asset_key.to_user_string(), data.check_name)] = data
    return evaluations


def failure_text(result) -> str:
    from mlops_assets.runner import failure_message

    return failure_message(result)


FEATURE_ASSETS = ("features", "feast_registry", "online_features", "training_set")


@pytest.fixture
def materialize_features(instance):
    """Materialize the feature stage (all four assets, or a selection) with real Feast."""
    from mlops_assets.definitions import defs

    def run(selection=FEATURE_ASSETS, spec_path: str = "", run_config=None, tracking_uri: str = ""):
        home = MlopsHome()
        resources = {
            "home": home,
            "dataset": DatasetSpecResource(home=home, spec_path=spec_path),
            "feature_store": FeatureStoreResource(home=home),
            "mlflow_tracking": MlflowTracking(home=home, tracking_uri=tracking_uri),
            "metrics_push": MetricsPush(),
            "training_engine": TrainingEngine(),
        }
        assets = [a for a in defs.assets if not isinstance(a, dg.AssetSpec)]
        return dg.materialize(
            assets,
            selection=list(selection),
            instance=instance,
            resources=resources,
            run_config=run_config or {},
            raise_on_error=False,
        )

    return run


def save_linear_reach_spec(paths, **training: Any) -> None:
    """Save the house spec with an R² gate of 0.8 as the state folder's spec.

    A linear model (R² about 0.88 here) then passes its gates, and any XGBoost challenger
    (about 0.93) truly beats it: a test knows in advance that the challenger is promoted.
    `training` overrides keys of the spec's `training:` section (`families`, for instance).
    """
    spec = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    spec["training"] = {**spec.get("training", {}), **training}
    spec["gates"]["rules"] = [{"metric": "r2", "min": 0.8}]
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.saved_spec.write_text(yaml.safe_dump(spec))
