"""Live performance joins: a label judges only predictions made before it was known."""

import pandas as pd
import pytest

from mlops_assets.core.live_performance import join_labels, live_metrics
from mlops_assets.spec import TaskType


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(f"2026-11-{text}", tz="UTC")


PREDICTIONS = pd.DataFrame(
    {
        "key": [1, 2, 3, 4, 4],
        "predicted_at": [
            at("01 10:00"),
            at("03 10:00"),
            at("02 12:00"),
            at("01 09:00"),
            at("02 09:00"),
        ],
        "model_version": ["1", "1", "2", "2", "2"],
        "prediction": [100.0, 200.0, 300.0, 390.0, 410.0],
    }
)
LABELS = pd.DataFrame(
    {
        "key": [1, 2, 3, 4, 5],
        "known_at": [
            at("02 10:00"),
            at("02 10:00"),
            at("02 12:00"),
            at("03 00:00"),
            at("03 00:00"),
        ],
        "label": [110.0, 210.0, 300.0, 400.0, 500.0],
    }
)


def test_labels_judge_only_earlier_predictions_and_nothing_is_silently_dropped():
    joined = join_labels(PREDICTIONS, LABELS)

    pairs = sorted(zip(joined.matched["key"], joined.matched["label"], strict=True))
    assert pairs == [(1, 110.0), (4, 400.0), (4, 400.0)]
    # key 2: its label was known before the prediction; key 3: known at the same instant.
    assert joined.pending_predictions == 2
    # labels of keys 2, 3 (too early) and 5 (never predicted) judge nothing.
    assert joined.unmatched_labels == 3


def test_metrics_per_version_and_day_with_row_counts():
    joined = join_labels(PREDICTIONS, LABELS)
    table = live_metrics(joined.matched, TaskType.REGRESSION, "rmse").set_index(
        ["model_version", "day"]
    )
    assert table.loc[("2", "all"), "rows"] == 2
    assert table.loc[("2", "all"), "rmse"] == pytest.approx(10.0)  # errors -10 and +10
    assert table.loc[("2", "2026-11-01"), "rows"] == 1
    assert table.loc[("1", "all"), "rows"] == 1


def test_a_live_gate_on_another_metric_than_the_primary_one_is_judged():
    from mlops_assets.core.live_performance import live_verdict
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    gate = {"live_gate": {"metric": "r2", "min": 0.9}, "min_live_labels": 2}
    document = load_spec(HOUSE_PRICES_SPEC).model_dump(mode="json")  # a dump validates again
    spec = type(load_spec(HOUSE_PRICES_SPEC)).model_validate({**document, "monitoring": gate})
    assert spec.gates.primary_metric == "rmse"
    matched = join_labels(PREDICTIONS, LABELS).matched  # key 4: 390 and 410 for 400
    table = live_metrics(matched, TaskType.REGRESSION, "rmse")
    verdict = live_verdict(table, spec, "2")
    assert verdict.value == pytest.approx(0.0) and verdict.below_gate, verdict.reason
    assert "live r2 0 on 2 labels breaks the live gate (min 0.9)" in verdict.reason


GOOD_LINE = {
    "timestamp": "2026-11-01T10:00:00+00:00",
    "model_version": "1",
    "output": 100.0,
    "request_id": "r1",
    "row": 0,
    "inputs": {"house_id": 5},
}


@pytest.mark.parametrize(
    "bad",
    [
        {"timestamp": "yesterday"},
        {"timestamp": "9999-12-31"},
        {"timestamp": "0001-01-01"},
        {"timestamp": 12345},
        {"timestamp": 1.5e18},
        {"inputs": {"house_id": 2**70}},
        {"inputs": {"house_id": -(2**63) - 1}},
        {"inputs": {"house_id": "abc"}},
        {"inputs": {"house_id": 5.5}},
        {"row": 2**64},
    ],
)
def test_a_well_formed_line_with_a_bad_value_is_counted_unreadable(tmp_path, bad):
    """The line is one record of valid JSON; only its value is wrong: it alone is set aside."""
    import json

    from mlops_assets.monitoring.live import keyed_predictions
    from mlops_assets.paths import PlatformPaths
    from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec

    paths = PlatformPaths(tmp_path)
    paths.predictions.mkdir(parents=True)
    lines = [GOOD_LINE, {**GOOD_LINE, **bad}, {**GOOD_LINE, "row": 1, "inputs": {"house_id": 6}}]
    (paths.predictions / "worker.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    logged = keyed_predictions(paths, load_spec(HOUSE_PRICES_SPEC))
    assert logged.unreadable == 1
    assert logged.frame["key"].tolist() == [5, 6]
    assert logged.frame["predicted_at"].tolist() == [at("01 10:00")] * 2
