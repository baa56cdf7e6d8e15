"""Live evidence and the decision on it, the promotion policy's validation, and the log reader."""

import json

import pandas as pd
import pytest

from mlops_assets.core.live_evidence import (
    PAIRED,
    SAME_PERIOD,
    decide_on_evidence,
    gather_evidence,
)
from mlops_assets.monitoring.live import keyed_predictions
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import HOUSE_PRICES_SPEC, PromotionPolicy, SpecError, TaskType, load_spec

LIVE = PromotionPolicy(policy="live", min_live_labels=4)


def _shadow(errors: dict[str, float], requests: int = 4, start: int = 0) -> pd.DataFrame:
    """Each request scored by every version in `errors`, off the label 100 by that error."""
    rows = []
    for i in range(start, start + requests):
        for version, error in errors.items():
            sign = 1 if i % 2 else -1  # errors of both signs: rmse = |error|
            rows.append(
                {
                    "key": i,
                    "predicted_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(hours=i),
                    "model_version": version,
                    "prediction": 100.0 + sign * error,
                    "label": 100.0,
                    "request_id": f"r{i}",
                    "row": 0,
                }
            )
    return pd.DataFrame(rows)


def test_shadow_pairs_judge_both_models_on_the_same_requests():
    matched = pd.concat([_shadow({"1": 10.0, "2": 5.0}), _shadow({"1": 50.0}, 3, start=10)])
    evidence = gather_evidence(matched, "1", "2", TaskType.REGRESSION, "rmse")
    assert evidence.basis == PAIRED
    # The champion's three unpaired predictions (error 50) are not part of the comparison.
    assert (evidence.challenger_labels, evidence.champion_labels) == (4, 4)
    assert evidence.challenger_value == pytest.approx(5.0)
    assert evidence.champion_value == pytest.approx(10.0)
    decision = decide_on_evidence(evidence, LIVE)
    assert decision.action == "promote", decision.reason
    assert "v2 5 vs champion v1 10 on 4 paired labels" in decision.reason


def test_too_few_labels_wait_and_a_worse_challenger_is_rejected():
    few = gather_evidence(_shadow({"1": 10.0, "2": 5.0}, 3), "1", "2", TaskType.REGRESSION, "rmse")
    waiting = decide_on_evidence(few, LIVE)
    assert waiting.action == "wait" and "3 of 4 labelled predictions" in waiting.reason
    worse = gather_evidence(_shadow({"1": 10.0, "2": 11.0}), "1", "2", TaskType.REGRESSION, "rmse")
    assert decide_on_evidence(worse, LIVE).action == "reject"
    # 10 % worse is within a 15 % tolerance, not within 5 %.
    lenient = PromotionPolicy(policy="live", min_live_labels=4, tolerance=0.15)
    assert decide_on_evidence(worse, lenient).action == "promote"
    strict = PromotionPolicy(policy="live", min_live_labels=4, tolerance=0.05)
    assert decide_on_evidence(worse, strict).action == "reject"


def test_canary_compares_each_model_on_its_own_requests_of_the_same_period():
    before = _shadow({"1": 90.0}, 4, start=0)  # the champion alone, before the canary began
    champion = _shadow({"1": 10.0}, 6, start=10).assign(request_id=lambda f: f.request_id + "c")
    challenger = _shadow({"2": 4.0}, 4, start=11)
    matched = pd.concat([before, champion, challenger])
    evidence = gather_evidence(matched, "1", "2", TaskType.REGRESSION, "rmse")
    assert evidence.basis == SAME_PERIOD
    assert (evidence.challenger_labels, evidence.champion_labels) == (4, 5)  # from hour 11 on
    assert evidence.champion_value == pytest.approx(10.0)
    assert decide_on_evidence(evidence, LIVE).action == "promote"


@pytest.mark.parametrize(
    ("promotion", "named"),
    [
        ({"stage": "canary"}, "apply to policy 'live' only; set `policy: live`"),
        ({"policy": "live", "canary_share": 0.2}, "canary_share applies to stage 'canary' only"),
        ({"policy": "live", "stage": "canary", "canary_share": 1.5}, "promotion.canary_share"),
        ({"policy": "eventually"}, "promotion.policy"),
        ({"policy": "live", "min_live_labels": 1}, "promotion.min_live_labels"),
    ],
)
def test_a_bad_promotion_policy_is_refused_with_its_field(tmp_path, promotion, named):
    import yaml

    spec = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    spec["promotion"] = promotion
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="invalid") as error:
        load_spec(path)
    assert named in str(error.value)


def test_the_default_policy_promotes_offline():
    spec = load_spec(HOUSE_PRICES_SPEC)
    assert spec.promotion.live is False
    assert PromotionPolicy(policy="live", stage="canary", canary_share=0.2).canary_share == 0.2


def test_the_log_reader_reads_shadow_lines_and_counts_what_it_cannot_judge(tmp_path):
    paths = PlatformPaths(tmp_path)
    paths.predictions.mkdir(parents=True)
    common = {"endpoint": "predict_by_key", "latency_ms": 1.0, "row": 0}
    lines = [
        {**common, "request_id": "a", "timestamp": "2026-11-01T10:00:00+00:00",
         "model_version": "1", "inputs": {"house_id": 7}, "output": 100.0},
        {**common, "request_id": "a", "timestamp": "2026-11-01T10:00:00.250000+00:00",
         "model_version": "2", "role": "challenger", "answered": False,
         "inputs": {"house_id": 7}, "output": 110.0},
        {**common, "request_id": "b", "timestamp": "2026-11-01T11:00:00+00:00",
         "model_version": "1", "inputs": {"sqft": 900.0}, "output": 50.0},
    ]  # fmt: skip
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    (paths.predictions / "predictions-20261101-1.jsonl").write_text(text)
    (paths.predictions / "predictions-20261101-2.jsonl").write_text(text + '{"request_id": "c", ')
    spec = load_spec(HOUSE_PRICES_SPEC)

    logged = keyed_predictions(paths, spec)

    assert (logged.unkeyed, logged.unreadable) == (2, 1)  # the cut line is counted, not lost
    first, second = (g for _, g in logged.frame.groupby(logged.frame.index // 2))
    for frame in (first, second):  # the fast reader and the forgiving one agree
        assert frame["key"].tolist() == [7, 7]
        assert frame["model_version"].tolist() == ["1", "2"]
        assert frame["request_id"].tolist() == ["a", "a"]
        assert frame["prediction"].tolist() == [100.0, 110.0]
        assert frame["predicted_at"].iloc[1] == pd.Timestamp("2026-11-01 10:00:00.25", tz="UTC")
