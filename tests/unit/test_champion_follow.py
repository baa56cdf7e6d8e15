"""The service's models without a server: reading online rows by key, following the champion.

Real XGBoost models trained on synthetic sales stand in for the champion and the challengers;
the watcher runs without its thread (`check()` is called by the test), so nothing waits.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from mlops_assets.core.families import BoosterModel
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.storage import write_json_atomic
from mlops_assets.core.training import TrainParams, train
from mlops_assets.model_registry.rollout import Rollout, write_rollout
from mlops_assets.serving.champion_follow import ChampionFollower
from mlops_assets.serving.metrics import challenger_tally, champion_metrics
from mlops_assets.serving.predictor import ModelBundle, Predictor
from mlops_assets.serving.routing import route
from mlops_assets.serving.traffic import RolloutWatcher, sticky_points
from mlops_assets.serving.worker_status import WorkerStatus, describe_service, read_statuses
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from mlops_assets.spec import DatasetSpec

STORED = {"lot_size": 7_000.0}  # the online rows were imputed with this
OTHER = {"lot_size": 9_500.0}  # a challenger trained on more data learnt this


@pytest.fixture(scope="module")
def boosters(house_spec) -> dict[int, BoosterModel]:
    """Two different models of the same features (depth 2 and 6)."""
    sales = generate_house_sales(SyntheticConfig(rows=1_500, seed=5))
    x = to_matrix(engineer(sales, house_spec, STORED), house_spec)
    y = sales["price"].to_numpy()
    models = {}
    for depth in (2, 6):
        params = TrainParams(max_rounds=30, early_stopping_rounds=5, max_depth=depth)
        models[depth] = BoosterModel(
            train(x[:1200], y[:1200], x[1200:], y[1200:], house_spec, params).booster
        )
    return models


def _predictor(model, spec: DatasetSpec, version: str, imputation=STORED, run="run") -> Predictor:
    manifest = {"imputation": imputation, "mlflow_run_id": f"{run}{version}"}
    info = {"model_version": version, "mlflow_run_id": f"{run}{version}", "model_name": spec.name}
    return Predictor(ModelBundle(model, spec, manifest, info))


def _online_rows(spec: DatasetSpec, rows: int = 40) -> np.ndarray:
    """Rows as the online store holds them: engineered and imputed with `STORED`."""
    sales = generate_house_sales(SyntheticConfig(rows=rows, seed=9))
    return to_matrix(engineer(sales, spec, STORED), spec)


def _respelled(spec: DatasetSpec, **changes) -> DatasetSpec:
    """The spec with some columns' or derived columns' fields changed (by name)."""
    data = spec.model_dump()
    for column in data["columns"] + data["derived"]:
        column.update(changes.get(column["name"], {}))
    if "drop_derived" in changes:
        data["derived"] = [d for d in data["derived"] if d["name"] != changes["drop_derived"]]
    return DatasetSpec.model_validate(data)


def test_online_rows_are_read_in_each_models_own_order_and_fills(house_spec, boosters) -> None:
    rows = _online_rows(house_spec)
    same = _predictor(boosters[2], house_spec, "2").online_rows(house_spec)
    assert same.readable and same.matrix(rows) is rows, "nothing to translate: the rows as is"

    gaps = rows.copy()
    lot = house_spec.model_features.index("lot_size")
    gaps[:5, lot] = np.nan  # the store could not fill these
    own = _predictor(boosters[2], house_spec, "2", imputation=OTHER).online_rows(house_spec)
    read = own.matrix(gaps)
    assert read[:5, lot].tolist() == [9_500.0] * 5 and np.array_equal(read[5:], rows[5:])

    reordered = _respelled(house_spec, location={"categories": ["rural", "urban", "suburban"]})
    codes = _predictor(boosters[2], reordered, "2").online_rows(house_spec).matrix(rows)
    where = house_spec.model_features.index("location")
    old = ["urban", "suburban", "rural"]
    expected = [["rural", "urban", "suburban"].index(old[int(c)]) for c in rows[:, where]]
    assert codes[:, where].tolist() == expected


def test_a_model_that_cannot_read_the_rows_says_which_feature(house_spec, boosters) -> None:
    fewer = _respelled(house_spec, drop_derived="log_lot_size")
    assert _predictor(boosters[2], fewer, "2").online_rows(house_spec).readable
    wider = _predictor(boosters[2], house_spec, "2").online_rows(fewer)
    assert wider.problem == "it needs features the online store does not hold: ['log_lot_size']"
    other = _respelled(house_spec, log_lot_size={"expr": "log(lot_size + 1)"})
    rows = _predictor(boosters[2], other, "2").online_rows(house_spec)
    assert rows.problem == "it computes 'log_lot_size' differently from the online store"


def _watcher(tmp_path: Path, champion: Predictor, models: dict[str, Predictor], follow=True):
    pointer = tmp_path / "bento.json"
    _point(pointer, "m:v1", champion)

    def load(tag: str) -> Predictor:
        if tag not in models:
            raise FileNotFoundError(f"no model {tag}")
        return models[tag]

    follower = ChampionFollower(pointer if follow else None, "m:v1", load, champion.spec)
    statuses = []
    watcher = RolloutWatcher(
        tmp_path / "rollout.json",
        champion,
        load,
        interval_s=3600,
        follower=follower,
        report=statuses.append,
    )
    return watcher, pointer, statuses


def _point(pointer: Path, tag: str, model: Predictor) -> None:
    info = model.bundle.info
    write_json_atomic({"model_tag": tag, **info}, pointer)


def test_by_key_shadow_and_canary_reach_a_challenger_with_its_own_fill_values(
    tmp_path: Path, house_spec, boosters
) -> None:
    champion = _predictor(boosters[6], house_spec, "1")
    challenger = _predictor(boosters[2], house_spec, "12", imputation=OTHER)
    watcher, _, statuses = _watcher(tmp_path, champion, {"m:v12": challenger})
    rows, keys = _online_rows(house_spec), list(range(1, 41))

    write_rollout(watcher.path, Rollout(mode="shadow", challenger_tag="m:v12"))
    watcher.check()
    assert not watcher.traffic.same_matrix, "the fill values differ"
    shadowed = route(watcher.traffic, "predict_by_key", rows=rows, keys=keys)
    np.testing.assert_array_equal(shadowed.predictions, champion.predict_matrix(rows))
    part = shadowed.shadow.run()
    np.testing.assert_array_equal(part.predictions, challenger.predict_matrix(rows))

    write_rollout(watcher.path, Rollout(mode="canary", challenger_tag="m:v12", share=0.3))
    watcher.check()
    routed = route(watcher.traffic, "predict_by_key", rows=rows, keys=keys)
    wanted = np.where(sticky_points(np.array(keys)) < 0.3, "12", "1")
    assert routed.versions() == wanted.tolist() and "12" in wanted and "1" in wanted
    on_challenger = wanted == "12"
    np.testing.assert_array_equal(
        routed.predictions[on_challenger], challenger.predict_matrix(rows[on_challenger])
    )
    assert challenger_tally("12") == {"scored": 2}
    watcher.check()  # the next tick reports it
    assert statuses[-1]["challenger_requests"] == {"scored": 2}


def test_a_challenger_that_cannot_read_the_rows_is_counted_and_shown(
    tmp_path: Path, house_spec, boosters
) -> None:
    champion = _predictor(boosters[6], house_spec, "1")
    other = _respelled(house_spec, log_lot_size={"expr": "log(lot_size + 1)"})
    challenger = _predictor(boosters[2], other, "13")
    watcher, _, statuses = _watcher(tmp_path, champion, {"m:v13": challenger})
    write_rollout(watcher.path, Rollout(mode="canary", challenger_tag="m:v13", share=0.5))
    watcher.check()
    rows = _online_rows(house_spec)
    for _ in range(3):
        routed = route(watcher.traffic, "predict_by_key", rows=rows, keys=list(range(40)))
        assert routed.version == "1"
    watcher.check()
    reported = statuses[-1]
    assert reported["challenger_requests"] == {"unscored:features": 3}
    problem = "it computes 'log_lot_size' differently from the online store"
    assert reported["rollout"]["by_key_error"] == problem
    assert describe_service([reported]) == [
        "Service: 1 worker(s); champion answering: v1",
        f"  challenger: {problem}",
        "  challenger v13: 0 requests scored, 3 not scored (features 3)",
    ]


def test_the_watcher_swaps_to_a_verified_champion_and_keeps_the_old_one_otherwise(
    tmp_path: Path, house_spec, boosters
) -> None:
    first = _predictor(boosters[6], house_spec, "1")
    second = _predictor(boosters[2], house_spec, "2")
    liar = _predictor(boosters[2], house_spec, "4")  # its files say v4
    broken = _predictor(_Raising(), house_spec, "5")
    models = {"m:v1": first, "m:v2": second, "m:v4": liar, "m:v5": broken}
    watcher, pointer, _ = _watcher(tmp_path, first, models)
    before = watcher.traffic
    failures = champion_metrics()[0]._value.get()

    _point(pointer, "m:v2", second)
    watcher.check()
    assert watcher.traffic.champion is second and before.champion is first, "in flight: old"
    assert watcher.traffic.following == {
        "model_tag": "m:v2",
        "follows": str(pointer),
        "error": None,
    }
    write_json_atomic({"model_tag": "m:v4", **second.bundle.info}, pointer)
    watcher.check()
    assert watcher.traffic.champion is second
    assert watcher.traffic.following["error"] == (
        f"champion m:v4 named by {pointer} not loaded, v2 keeps answering: the pointer says "
        "model_version '2', the model's files '4'"
    )
    _point(pointer, "m:v5", broken)
    watcher.check()
    assert watcher.traffic.champion is second
    assert watcher.traffic.following["error"].endswith("v2 keeps answering: corrupt model")
    _point(pointer, "m:v9", second)
    watcher.check()
    assert watcher.traffic.following["error"].endswith("v2 keeps answering: no model m:v9")
    assert champion_metrics()[0]._value.get() == failures + 3
    _point(pointer, "m:v1", first)  # a rollback
    watcher.check()
    assert watcher.traffic.champion is first and watcher.traffic.following["error"] is None


def test_a_pinned_service_follows_nothing(tmp_path: Path, house_spec, boosters) -> None:
    first = _predictor(boosters[6], house_spec, "1")
    watcher, pointer, _ = _watcher(
        tmp_path, first, {"m:v2": _predictor(boosters[2], house_spec, "2")}, follow=False
    )
    _point(pointer, "m:v2", first)
    watcher.check()
    assert watcher.traffic.champion is first
    assert watcher.traffic.following == {"model_tag": "m:v1", "follows": None, "error": None}


class _Raising:
    def predict(self, matrix: np.ndarray) -> np.ndarray:
        raise RuntimeError("corrupt model")


def test_status_files_of_workers_no_longer_running_are_ignored(tmp_path: Path) -> None:
    status = WorkerStatus(tmp_path)
    status({"champion": {"version": "2"}, "rollout": {}, "challenger_requests": {}})
    stale = {"pid": 2**22 + 7, "started": 1.0, "champion": {"version": "1"}}
    (tmp_path / "worker-4194311.json").write_text(json.dumps(stale))
    reused = {**stale, "pid": status._identity["pid"], "started": 2.0}  # same pid, other start
    (tmp_path / "worker-0.json").write_text(json.dumps(reused))
    [seen] = read_statuses(tmp_path)
    assert seen["champion"] == {"version": "2"} and seen["pid"] == status._identity["pid"]
    status.remove()
    assert read_statuses(tmp_path) == []
    assert describe_service([]) == [
        "Service: no running `mlops serve` worker reports to this state folder"
    ]


def test_a_loaded_challenger_is_checked_again_when_the_file_names_another_version(
    tmp_path: Path, house_spec, boosters
) -> None:
    champion = _predictor(boosters[6], house_spec, "1")
    challenger = _predictor(boosters[2], house_spec, "14")
    watcher, _, _ = _watcher(tmp_path, champion, {"m:v14": challenger})
    write_rollout(watcher.path, Rollout(mode="shadow", challenger_tag="m:v14"))
    watcher.check()
    assert watcher.traffic.mode == "shadow"
    wrong = Rollout(mode="shadow", challenger_tag="m:v14", challenger_version="77")
    write_rollout(watcher.path, wrong)
    watcher.check()
    assert watcher.traffic.mode == "champion"
    assert watcher.traffic.error == (
        "challenger m:v14 not loaded: the rollout names challenger v77 but the model m:v14 is "
        "v14: run `mlops rollout` again"
    )
