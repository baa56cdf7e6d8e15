"""A federated model through the real `model`, report, promotion, export and service assets.

Two sites on loopback, each a folder of synthetic sales that is mostly one kind of location,
named in the spec's `training.federated`. The model step trains through the sites' processes;
the report gates on their pooled metrics; the promoted model is served over HTTP and answers
exactly as it predicts offline; its drift reference comes from the sites' histograms. A site
whose data fails a blocking check stops the step, naming site and check, champion untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.splits import entity_split
from mlops_assets.core.statistics import feature_statistics
from mlops_assets.features.store_resource import FeatureStoreResource
from mlops_assets.federated.site_data import load_site_rows
from mlops_assets.model_registry.champion import ChampionRegistry
from mlops_assets.model_registry.model_store import load_manifest, load_model
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.monitoring.inputs import reference_statistics
from mlops_assets.paths import PlatformPaths
from mlops_assets.resources import DatasetSpecResource, MetricsPush, MlopsHome
from mlops_assets.sources.synthetic import SyntheticConfig, generate_house_sales
from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec
from mlops_assets.training.engine import TrainingEngine
from tests.integration.conftest import failure_text
from tests.servers import bento_service

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
MIXES = {"north": (0.9, 0.05, 0.05), "south": (0.05, 0.9, 0.05)}
TRAINED = ("model", "validation_report", "promoted_model", "bento_model", "bento")  # federated_job
FAST = {"learning_rate": 0.1, "max_rounds": 300, "early_stopping_rounds": 30}


def write_sites(root: Path, rows: int = 2_000) -> dict[str, str]:
    """One landing folder per site, disjoint houses, each mostly one location."""
    sites = {}
    for i, (site, mix) in enumerate(MIXES.items()):
        folder = root / site
        folder.mkdir(parents=True)
        config = SyntheticConfig(
            rows=rows, seed=300 + i, first_house_id=1 + i * 1_000_000, location_mix=mix
        )
        generate_house_sales(config).to_csv(folder / "sales.csv", index=False)
        sites[site] = str(folder)
    return sites


def save_federated_spec(paths: PlatformPaths, sites: dict[str, str]) -> None:
    """The house spec, its gate at R² 0.8, with the two sites named."""
    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    document["training"] = {**document.get("training", {}), "federated": {"sites": sites}}
    document["gates"]["rules"] = [{"metric": "r2", "min": 0.8}]
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.saved_spec.write_text(yaml.safe_dump(document))


class Platform:
    """One state folder, its Dagster instance, and a way to run the training assets on it."""

    def __init__(self, home: Path, instance: dg.DagsterInstance) -> None:
        self.home, self.paths, self.instance = home, PlatformPaths(home), instance

    def run(self, selection=TRAINED) -> dg.ExecuteInProcessResult:
        from mlops_assets.definitions import defs

        home = MlopsHome(path=str(self.home))  # not $MLOPS_HOME: each test sets its own
        resources = {
            "home": home,
            "dataset": DatasetSpecResource(home=home),
            "feature_store": FeatureStoreResource(home=home),
            "mlflow_tracking": MlflowTracking(home=home),
            "metrics_push": MetricsPush(),
            "training_engine": TrainingEngine(),
        }
        assets = [a for a in defs.assets if not isinstance(a, dg.AssetSpec)]
        return dg.materialize(
            assets,
            selection=list(selection),
            instance=self.instance,
            resources=resources,
            run_config={"ops": {"model": {"config": FAST}}},
            raise_on_error=False,
        )

    def registry(self) -> ChampionRegistry:
        tracking = MlflowTracking(home=MlopsHome(path=str(self.home)))
        return ChampionRegistry(tracking.client(), "house_prices", self.paths)


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("federated_pipeline")
    home = root / "mlops_home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.setenv("BENTOML_HOME", str(home / "bentoml"))
        patch.delenv("MLOPS_SPEC", raising=False)
        (home / "dagster").mkdir(parents=True)
        with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
            yield Platform(home, instance)


@pytest.fixture(scope="module")
def sites(platform, tmp_path_factory) -> dict[str, str]:
    sites = write_sites(tmp_path_factory.mktemp("sites"))
    save_federated_spec(platform.paths, sites)
    return sites


@pytest.fixture(scope="module")
def promoted(platform, sites) -> dict:
    result = platform.run()
    assert result.success, failure_text(result)
    report = result.asset_materializations_for_node("validation_report")[0].metadata
    champion = platform.registry().champion()
    assert champion is not None
    return {"report": report, "champion": champion}


def site_frames(sites: dict[str, str]) -> dict[str, pd.DataFrame]:
    spec = load_spec(HOUSE_PRICES_SPEC)
    return {site: load_site_rows(spec, site, location) for site, location in sites.items()}


def test_federated_model_is_gated_on_pooled_site_metrics_and_promoted(platform, sites, promoted):
    report, champion = promoted["report"], promoted["champion"]
    manifest = load_manifest(platform.paths, champion.run_id)
    assert manifest.evaluation["protocol"] == "federated"
    assert set(manifest.evaluation["sites"]) == set(sites)
    assert report["promote"].value is True
    report_folder = platform.paths.model_report(champion.run_id)
    record = json.loads((report_folder / "decision.json").read_text())
    metrics = record["metrics"]
    # The gate read the pooled metrics; each site's own are in the report beside them.
    assert metrics["model"]["r2"] > 0.85 and metrics["mean"]["r2"] < 0.01
    assert {"model at site north", "model at site south"} <= set(metrics)
    primary = load_spec(HOUSE_PRICES_SPEC).gates.primary_metric
    assert record["decision"]["challenger"] == metrics["model"][primary]
    # Pooled R² lies between the sites' own (it is one R² over all their test rows).
    each = [metrics[f"model at site {s}"]["r2"] for s in sites]
    assert min(each) - 0.02 <= metrics["model"]["r2"] <= max(each) + 0.02
    text = (report_folder / "validation_report.md").read_text()
    assert "Protocol: federated, 2 sites" in text and "model at site north" in text


def test_each_site_process_was_given_only_its_own_files(platform, sites, promoted):
    run = platform.paths.federated_run
    for site, location in sites.items():
        summary = json.loads((run / f"site-{site}.json").read_text())
        assert summary["files"] == [str(Path(location).resolve() / "sales.csv")]
        others = [loc for name, loc in sites.items() if name != site]
        written = (run / f"site-{site}.json").read_text() + (
            run / f"site-{site}.status"
        ).read_text()
        assert not any(other in written for other in others)
    # What reached the platform's own folder is aggregate: no site's rows.
    assert not list(run.glob("*.csv")) and not list(run.glob("*.parquet"))


def test_drift_reference_comes_from_the_sites_histograms(platform, sites, promoted):
    champion = promoted["champion"]
    reference, source = reference_statistics(platform.paths, champion.run_id)
    assert source == f"champion run {champion.run_id}"
    # What the same statistics are on the union of the sites' training rows, computed centrally.
    spec = load_spec(HOUSE_PRICES_SPEC)
    manifest = load_manifest(platform.paths, champion.run_id)
    train = []
    for frame in site_frames(sites).values():
        split = entity_split(frame[spec.entity_key].to_numpy(), spec.training.split.as_tuple())
        train.append(engineer(frame, spec, manifest.imputation)[split == "train"])
    central = feature_statistics(pd.concat(train, ignore_index=True), spec)
    assert reference["rows"] == central["rows"]
    for name, expected in central["numeric"].items():
        got = reference["numeric"][name]
        half_bin = (expected["quantiles"][-1] - expected["quantiles"][0]) / 10_000 / 2
        assert got["mean"] == pytest.approx(expected["mean"], rel=1e-9)
        assert got["std"] == pytest.approx(expected["std"], rel=1e-6)
        assert np.allclose(got["quantiles"], expected["quantiles"], atol=half_bin + 1e-9, rtol=0)
    for name, expected in central["categorical"].items():
        assert reference["categorical"][name]["shares"] == pytest.approx(expected["shares"])


def test_promoted_federated_model_serves_what_it_predicts_offline(platform, sites, promoted):
    champion = promoted["champion"]
    spec = load_spec(HOUSE_PRICES_SPEC)
    manifest = load_manifest(platform.paths, champion.run_id)
    model = load_model(platform.paths, champion.run_id)
    rows = pd.concat([f.head(40) for f in site_frames(sites).values()], ignore_index=True)
    offline = model.predict(to_matrix(engineer(rows, spec, manifest.imputation), spec))
    objects = rows.astype(dict.fromkeys(spec.categorical_columns, "object"))
    records = [
        {
            **{c: None if pd.isna(r[c]) else _plain(r[c]) for c in spec.feature_columns},
            spec.event_timestamp: r[spec.event_timestamp].isoformat(),
        }
        for _, r in objects.iterrows()
    ]
    env = {**os.environ, "MLOPS_HOME": str(platform.home)}
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        info = client.get("/v1/model_info").json()
        assert info["mlflow_run_id"] == champion.run_id and info["family"] == "xgboost"
        batch = client.post("/v1/predict_batch", json={"records": records}).json()
        single = client.post("/v1/predict", json=records[0]).json()
    np.testing.assert_allclose(batch["predictions"], offline, rtol=0, atol=1e-6)
    assert single["prediction"] == pytest.approx(offline[0], abs=1e-6)


def test_a_site_failing_a_check_stops_the_step_naming_it_and_keeps_the_champion(
    platform, sites, promoted
):
    before = platform.registry().champion()
    bad = Path(sites["south"]) / "sales.csv"
    good = bad.read_bytes()
    try:
        pd.read_csv(bad).head(5).to_csv(bad, index=False)  # below the spec's minimum rows
        result = platform.run()
    finally:
        bad.write_bytes(good)
    assert not result.success
    assert "site 'south'" in failure_text(result)
    assert "check 'row_count' failed" in failure_text(result)
    after = platform.registry().champion()
    assert after is not None and before is not None
    assert (after.version, after.run_id) == (before.version, before.run_id)


def test_a_retrain_is_compared_with_the_champion_at_every_site(platform, sites, promoted):
    """Same rows, same seed: the sites score an identical model and champion; a tie keeps it."""
    before = platform.registry().champion()
    result = platform.run(("model", "validation_report", "promoted_model"))
    assert result.success, failure_text(result)
    report = result.asset_materializations_for_node("validation_report")[0].metadata
    assert report["promote"].value is False
    assert "a tie keeps the champion" in report["reason"].value
    decision = report["decision"].value
    assert decision["champion_version"] == before.version
    assert decision["champion"] == decision["challenger"]
    after = platform.registry().champion()
    assert (after.version, after.run_id) == (before.version, before.run_id)


def _plain(value):
    return value.item() if hasattr(value, "item") else value
