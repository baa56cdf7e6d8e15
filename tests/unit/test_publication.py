"""The publication of a batch's four files: all of them, or after a crash, finished from the
journal by the next reader."""

import os

import pandas as pd
import pytest

from mlops_assets.core.storage import read_json, write_json_atomic, write_parquet_atomic
from mlops_assets.features.inputs import cleaned_batch_paths
from mlops_assets.ingestion import publication
from mlops_assets.ingestion.publication import publish, recover, staged_set


def _write_set(paths, batch: str, run: str, value: int):
    staged = staged_set(paths, batch, run)
    frame = pd.DataFrame({"value": [value]})
    for path in (staged.raw, staged.quarantine, staged.cleaned):
        write_parquet_atomic(frame, path)
    write_json_atomic({"batch": batch, "generation": value}, staged.manifest)
    return staged


def _published(paths, batch: str) -> dict[str, int]:
    tables = {
        name: int(pd.read_parquet(path)["value"].iloc[0])
        for name, path in (
            ("raw", paths.raw(batch)),
            ("quarantine", paths.quarantine(batch)),
            ("cleaned", paths.cleaned(batch)),
        )
    }
    return {**tables, "manifest": read_json(paths.manifest(batch))["generation"]}


def test_publish_moves_the_whole_set_and_leaves_no_staging(paths):
    publish(paths, "b1", _write_set(paths, "b1", "run-1", 1))
    assert _published(paths, "b1") == {"raw": 1, "quarantine": 1, "cleaned": 1, "manifest": 1}
    assert not (paths.data / "staging" / "b1").exists()
    assert list(paths.publish_journals.iterdir()) == []


def test_a_crash_between_renames_is_finished_by_the_next_reader(paths, monkeypatch):
    publish(paths, "b1", _write_set(paths, "b1", "run-1", 1))
    staged = _write_set(paths, "b1", "run-2", 2)
    renames = []
    real_replace = os.replace

    def crash_after_two(source, target):  # the process dies after the second table's rename
        if paths.publish_journals in type(paths.root)(target).parents:
            return real_replace(source, target)  # the journal itself is written
        if len(renames) == 2:
            raise SystemExit("killed")
        renames.append(target)
        real_replace(source, target)

    monkeypatch.setattr(publication.os, "replace", crash_after_two)
    with pytest.raises(SystemExit):
        publish(paths, "b1", staged)
    monkeypatch.setattr(publication.os, "replace", real_replace)
    assert _published(paths, "b1") == {"raw": 2, "quarantine": 2, "cleaned": 1, "manifest": 1}

    assert [p.stem for p in cleaned_batch_paths(paths)] == ["b1"]  # a reader recovers first
    assert _published(paths, "b1") == {"raw": 2, "quarantine": 2, "cleaned": 2, "manifest": 2}
    assert list(paths.publish_journals.iterdir()) == []
    assert recover(paths) == [], "finishing twice is a no-op"


def test_a_crash_before_the_journal_changes_nothing(paths):
    publish(paths, "b1", _write_set(paths, "b1", "run-1", 1))
    _write_set(paths, "b1", "run-2", 2)  # staged, then killed before publishing
    assert recover(paths) == []
    assert _published(paths, "b1") == {"raw": 1, "quarantine": 1, "cleaned": 1, "manifest": 1}
