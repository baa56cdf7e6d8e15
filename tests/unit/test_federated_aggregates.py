"""Aggregates the sites share, computed in one process (no communicator: a sum of one site).

Outside a federated run `allreduce` returns its input, so these compare the aggregate
versions with the central functions on the same rows; the loopback tests check the sums.
"""

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets.core.features import engineer
from mlops_assets.core.imputation import learn_imputation
from mlops_assets.core.statistics import feature_statistics
from mlops_assets.federated.aggregates import QUANTILE_BINS, global_feature_statistics
from mlops_assets.federated.pooled import pooled_metrics
from mlops_assets.serving.schema import record_model
from mlops_assets.sources.synthetic import SyntheticConfig, generate_house_sales
from mlops_assets.spec import HOUSE_PRICES_SPEC, TaskType, load_spec

SPEC = load_spec(HOUSE_PRICES_SPEC)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    frame = generate_house_sales(SyntheticConfig(rows=3_000, seed=11))
    for name in SPEC.categorical_columns:
        frame[name] = pd.Categorical(frame[name], categories=list(SPEC.column(name).categories))
    frame[SPEC.event_timestamp] = pd.to_datetime(frame[SPEC.event_timestamp], utc=True)
    return engineer(frame, SPEC, learn_imputation(frame, SPEC))


def test_site_statistics_are_the_central_drift_reference(features):
    shared, central = global_feature_statistics(features, SPEC), feature_statistics(features, SPEC)
    assert shared["rows"] == central["rows"]
    assert shared["categorical"] == central["categorical"]  # shares of counts: exact
    assert set(shared["numeric"]) == set(central["numeric"])
    for name, expected in central["numeric"].items():
        got = shared["numeric"][name]
        quantiles = np.array(expected["quantiles"])
        half_bin = (quantiles[-1] - quantiles[0]) / QUANTILE_BINS / 2
        assert np.abs(np.array(got["quantiles"]) - quantiles).max() <= half_bin + 1e-9, name
        assert got["mean"] == pytest.approx(expected["mean"], rel=1e-12)
        assert got["std"] == pytest.approx(expected["std"], rel=1e-9)
        assert got["null_rate"] == expected["null_rate"]


def test_pooled_metrics_of_the_champion_come_from_its_own_sums():
    def site(y, model, champion):
        y, model, champion = (np.asarray(v, dtype=float) for v in (y, model, champion))
        sums = {"n": y.size, "y": y.sum(), "y2": (y**2).sum()}
        for prefix, p in (
            ("", model),
            ("baseline_", np.full(y.size, 2.0)),
            ("champion_", champion),
        ):
            sums |= {
                f"{prefix}squared_error": ((y - p) ** 2).sum(),
                f"{prefix}absolute_error": np.abs(y - p).sum(),
                f"{prefix}log_loss": 0.0,
            }
        return {"sums": sums, "metrics": {}, "baseline_metrics": {}, "champion_metrics": {}}

    summaries = {"a": site([1, 2], [1, 2], [2, 2]), "b": site([3, 4], [3, 4], [3, 3])}
    assert pooled_metrics(summaries, TaskType.REGRESSION, "metrics")["rmse"] == 0.0
    champion = pooled_metrics(summaries, TaskType.REGRESSION, "champion_metrics")
    assert champion["rmse"] == pytest.approx(np.sqrt(2 / 4))  # two of four rows off by one
    assert champion["r2"] == pytest.approx(1 - 2 / 5)  # total sum of squares about 2.5 is 5


def test_a_spec_naming_sites_is_a_cache_key_like_any_spec(tmp_path):
    """The service caches its request models by spec: equal specs share one, sites count."""
    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    paths = {}
    for name, sites in {
        "a": {"north": "/a", "south": "/b"},
        "b": {"north": "/a", "east": "/c"},
    }.items():
        document["training"]["federated"] = {"sites": sites}
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(document))
    first, again, other = load_spec(paths["a"]), load_spec(paths["a"]), load_spec(paths["b"])
    assert first is not again and first == again and first != other
    assert record_model(first) is record_model(again), "one cached request model per spec"
    assert record_model(other) is not record_model(first)
