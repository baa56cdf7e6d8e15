"""Canary routing and the rollout watcher, without a server: sticky points and failure paths."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mlops_assets.model_registry.rollout import Rollout, write_rollout
from mlops_assets.serving.prediction_log import PredictionLog
from mlops_assets.serving.predictor import ModelBundle, Predictor
from mlops_assets.serving.routing import Shadow
from mlops_assets.serving.shadow import ShadowScorer
from mlops_assets.serving.traffic import RolloutWatcher, canary_mask, sticky_points


def _splitmix64_point(key: int) -> float:
    """SplitMix64's finaliser in plain Python integers: the published algorithm, by hand."""
    mask = 2**64 - 1
    z = (key + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return (z >> 11) / 2**53


def test_sticky_points_are_splitmix64_of_the_key_in_every_process() -> None:
    """A fixed hash: the same house gets the same model in every worker and after restarts."""
    keys = [1, 2, 3, -5, 2**63 - 1, 123_456_789]
    points = sticky_points(np.array(keys))
    assert points.tolist() == [_splitmix64_point(k % 2**64) for k in keys]
    assert points[0] == pytest.approx(0.5665615751722809, abs=0)
    assert np.all((points >= 0) & (points < 1))


def test_canary_share_holds_over_many_keys_and_grows_without_moving_keys_back() -> None:
    keys = list(range(1, 200_001))
    at_20 = canary_mask(keys, len(keys), 0.2)
    at_30 = canary_mask(keys, len(keys), 0.3)
    assert abs(at_20.mean() - 0.2) < 0.005 and abs(at_30.mean() - 0.3) < 0.005
    assert np.all(at_30[at_20]), "raising the share keeps every key already on the challenger"
    assert np.array_equal(at_20, canary_mask(keys, len(keys), 0.2)), "the same keys each time"


def test_rows_without_a_key_are_routed_at_random() -> None:
    keys = [None, 7] * 20_000
    first, second = canary_mask(keys, len(keys), 0.5), canary_mask(keys, len(keys), 0.5)
    keyed = np.arange(len(keys)) % 2 == 1
    assert np.array_equal(first[keyed], second[keyed])
    assert not np.array_equal(first[~keyed], second[~keyed])
    assert abs(first[~keyed].mean() - 0.5) < 0.02


def _champion(spec) -> Predictor:
    """The champion's predictor; the watcher only compares its spec with the challenger's."""
    return Predictor(ModelBundle(None, spec, {}, {"model_version": "1"}))


def _loader_failing(tag: str):
    raise FileNotFoundError(f"no model {tag}")


def test_watcher_serves_the_champion_alone_when_the_challenger_or_file_is_broken(
    tmp_path: Path, house_spec
) -> None:
    path = tmp_path / "rollout.json"
    watcher = RolloutWatcher(path, _champion(house_spec), _loader_failing, interval_s=3600)
    assert watcher.traffic.mode == "champion" and watcher.traffic.error == ""
    write_rollout(path, Rollout(mode="shadow", challenger_tag="m:v2", challenger_version="2"))
    watcher.check()
    described = watcher.traffic.describe()
    assert (described["mode"], described["requested_mode"]) == ("champion", "shadow")
    assert described["error"] == "challenger m:v2 not loaded: no model m:v2"
    path.write_text(json.dumps({"mode": "canary", "challenger_tag": "m:v2", "share": 3}))
    watcher.check()
    assert watcher.traffic.mode == "champion"
    assert "is not a valid rollout setting" in watcher.traffic.error
    path.unlink()
    watcher.check()
    assert watcher.traffic.describe()["error"] is None
    watcher.stop()


def _invalid_files() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("mlops_rollout_invalid_total") or 0.0


def _version(spec, version: str) -> Predictor:
    """A predictor of the house spec at `version` (the watcher never predicts with it here)."""
    return Predictor(ModelBundle(None, spec, {}, {"model_version": version}))


def test_a_file_nested_beyond_the_stack_is_the_files_error_and_is_retried(
    tmp_path: Path, house_spec
) -> None:
    """`[` x 100,000 exhausts the parser's stack: the canary stops, the champion answers alone."""
    path = tmp_path / "rollout.json"
    canary = Rollout(mode="canary", challenger_tag="m:v2", challenger_version="2", share=0.5)
    write_rollout(path, canary)
    watcher = RolloutWatcher(
        path, _version(house_spec, "1"), lambda tag: _version(house_spec, "2"), interval_s=3600
    )
    assert watcher.traffic.mode == "canary"
    before = _invalid_files()
    path.write_text("[" * 100_000)
    watcher.check()
    described = watcher.traffic.describe()
    assert (described["mode"], described["challenger_version"]) == ("champion", None)
    assert described["error"] == (
        f"{path} is not a valid rollout setting (nested too deeply to read); fix it with "
        "`mlops rollout ...` or delete it to serve the champion alone"
    )
    assert _invalid_files() == before + 1
    write_rollout(path, canary)  # fixed: read again at once
    watcher.check()
    assert watcher.traffic.mode == "canary" and watcher.traffic.error == ""
    watcher.stop()


def test_a_version_that_does_not_match_the_loaded_tag_is_refused(
    tmp_path: Path, house_spec
) -> None:
    """Version and tag must agree, also when the tag is already loaded."""
    path = tmp_path / "rollout.json"
    write_rollout(path, Rollout(mode="shadow", challenger_tag="m:v1", challenger_version="1"))
    watcher = RolloutWatcher(
        path, _version(house_spec, "0"), lambda tag: _version(house_spec, "1"), interval_s=3600
    )
    assert watcher.traffic.describe()["challenger_version"] == "1"
    wrong = Rollout(mode="canary", challenger_tag="m:v1", challenger_version="77", share=0.5)
    write_rollout(path, wrong)
    watcher.check()
    described = watcher.traffic.describe()
    assert (described["mode"], described["requested_mode"]) == ("champion", "canary")
    assert described["error"] == (
        "challenger m:v1 not loaded: the rollout names challenger v77 but the model m:v1 is v1: "
        "run `mlops rollout` again"
    )
    watcher.stop()


def test_log_lines_say_whose_prediction_and_keep_each_rows_place(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_seconds=3600)
    inputs = [{"house_id": k} for k in (10, 11, 12)]
    common = {"request_id": "r", "timestamp": 0.0, "endpoint": "predict_batch", "latency_ms": 1}
    log.append({**common, "model_version": "1", "inputs": inputs, "outputs": [1.0, 3.0]}
               | {"rows": [0, 2], "role": "champion", "answered": True})  # fmt: skip
    log.append({**common, "model_version": "2", "inputs": inputs, "outputs": [2.0]}
               | {"rows": [1], "role": "challenger", "answered": True})  # fmt: skip
    log.append({**common, "model_version": "2", "inputs": inputs[:1], "outputs": [5.0]}
               | {"role": "challenger", "answered": False})  # fmt: skip
    log.close()
    lines = [json.loads(x) for f in tmp_path.glob("*.jsonl") for x in f.read_text().splitlines()]
    seen = [(e["row"], e["inputs"]["house_id"], e["model_version"], e["answered"]) for e in lines]
    assert seen == [(0, 10, "1", True), (2, 12, "1", True), (1, 11, "2", True), (0, 10, "2", False)]


class _RowSums:
    """A challenger whose prediction of a row is its sum, counting its calls."""

    def __init__(self, fail: bool = False) -> None:
        self.bundle = SimpleNamespace(version="2")
        self.calls, self.fail = 0, fail

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.fail:
            raise RuntimeError("corrupt")
        return matrix.sum(axis=1)


class _Log:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def append(self, record: dict) -> None:
        self.records.append(record)


def test_shadow_requests_are_scored_together_and_split_back_per_request() -> None:
    challenger, log = _RowSums(), _Log()
    scorer = ShadowScorer(log, interval_s=3600)
    sizes = (1, 3, 1, 2)
    for number, size in enumerate(sizes):
        matrix = np.full((size, 2), float(number))
        shadow = Shadow(challenger, True, matrix, None, "predict_batch")
        scorer.submit(shadow, f"r{number}", [{"house_id": number}] * size)
    assert scorer.drain() == len(sizes) and challenger.calls == 1, "one call for the queue"
    assert [(r["request_id"], r["outputs"]) for r in log.records] == [
        (f"r{n}", [2.0 * n] * size) for n, size in enumerate(sizes)
    ]
    assert {(r["model_version"], r["role"], r["answered"]) for r in log.records} == {
        ("2", "challenger", False)
    }
    scorer.close()


def test_a_failing_or_overloaded_shadow_logs_nothing_and_never_raises() -> None:
    log = _Log()
    scorer = ShadowScorer(log, interval_s=3600, max_queued=2)
    for number in range(5):  # three beyond the bound are dropped at once
        shadow = Shadow(_RowSums(fail=True), True, np.ones((1, 2)), None, "predict")
        scorer.submit(shadow, f"r{number}", [{}])
    assert scorer.drain() == 0 and log.records == []
    scorer.close()
