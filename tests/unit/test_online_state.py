"""Which entities a materialization writes, from the recorded state (pure, no store)."""

import numpy as np

from mlops_assets.features.online_state import OnlineState, load_state, plan_changes, save_state

KEYS = np.array([1, 2, 3, 5], dtype=np.int64)
HASHES = np.array([10, 20, 30, 50], dtype=np.uint64)
STATE = OnlineState(KEYS, HASHES, token="t1", fingerprint="f1")


def _plan(keys, hashes, previous=STATE, token="t1", fingerprint="f1", full=False):
    keys, hashes = np.asarray(keys, dtype=np.int64), np.asarray(hashes, dtype=np.uint64)
    return plan_changes(
        keys, hashes, previous, store_token=token, current_fingerprint=fingerprint, full=full
    )


def test_only_new_and_changed_entities_are_written_and_gone_ones_deleted():
    changes = _plan([1, 2, 4, 5, 9], [10, 21, 40, 50, 90])  # 2 changed, 4 and 9 new, 3 gone
    assert changes.mode == "incremental"
    assert changes.write.tolist() == [False, True, True, False, True]
    assert changes.deleted.tolist() == [3]


def test_keys_beyond_the_recorded_range_are_new():
    changes = _plan([0, 7], [1, 2])
    assert changes.write.tolist() == [True, True]
    assert sorted(changes.deleted.tolist()) == [1, 2, 3, 5]


def test_unchanged_rows_write_nothing():
    changes = _plan(KEYS, HASHES)
    assert (changes.mode, changes.written, len(changes.deleted)) == ("incremental", 0, 0)


def test_full_rewrite_when_asked_or_when_the_state_cannot_be_trusted():
    cases = {
        "full rewrite requested": _plan(KEYS, HASHES, full=True),
        "no record of an earlier write": _plan(KEYS, HASHES, previous=None),
        "the feature view's definition changed": _plan(KEYS, HASHES, fingerprint="f2"),
        "the online store does not hold the recorded write (rebuilt or written elsewhere)": (
            _plan(KEYS, HASHES, token=None)
        ),
    }
    for reason, changes in cases.items():
        assert (changes.mode, changes.reason, changes.written) == ("full", reason, 4)


def test_full_rewrite_still_removes_entities_the_state_knew():
    changes = _plan([1, 2], [10, 20], full=True)
    assert changes.deleted.tolist() == [3, 5]


def test_state_round_trips_and_an_unreadable_file_means_no_state(tmp_path):
    path = tmp_path / "state.parquet"
    save_state(path, STATE)
    loaded = load_state(path)
    assert loaded is not None
    assert (loaded.token, loaded.fingerprint) == ("t1", "f1")
    assert loaded.keys.tolist() == KEYS.tolist() and loaded.hashes.tolist() == HASHES.tolist()
    path.write_bytes(b"not parquet")
    assert load_state(path) is None
    assert load_state(tmp_path / "missing.parquet") is None
