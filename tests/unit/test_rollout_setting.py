"""The rollout setting refuses what the service could not apply, and reads back what it wrote."""

from pathlib import Path

import pytest

from mlops_assets.model_registry.rollout import (
    CHAMPION_ONLY,
    Rollout,
    RolloutError,
    read_rollout,
    write_rollout,
)


def test_missing_file_means_champion_only(tmp_path: Path) -> None:
    assert read_rollout(tmp_path / "rollout.json") == CHAMPION_ONLY


def test_written_setting_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "deployment" / "rollout.json"
    setting = Rollout(mode="canary", challenger_tag="m:v2", challenger_version="2", share=0.2)
    write_rollout(path, setting)
    assert read_rollout(path) == setting


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "canary", "challenger_tag": "m:v2", "share": 1.5}, "less than or equal to 1"),
        ({"mode": "canary", "challenger_tag": "m:v2", "share": 0.0}, "above 0 and below 1"),
        ({"mode": "shadow"}, "needs a challenger_tag"),
        ({"mode": "shadow", "challenger_tag": "m:v2", "share": 0.3}, "to mode 'canary' only"),
        ({"mode": "blue"}, "'champion', 'shadow' or 'canary'"),
    ],
)
def test_out_of_range_settings_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rollout(**fields)


def test_a_corrupt_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "rollout.json"
    path.write_text('{"mode": "canary", "share": 2}')
    with pytest.raises(RolloutError, match=r"rollout\.json is not a valid rollout setting"):
        read_rollout(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[" * 100_000, "nested too deeply to read"),
        (b"\xff\xfe\x00", "codec can't decode"),
        (b'{"mode": "canary", "share": "1e999999"}', "share"),
    ],
)
def test_any_content_is_the_files_error(tmp_path: Path, content: bytes, problem: str) -> None:
    """Whatever is in the file, the caller gets one RolloutError naming it, never a crash."""
    path = tmp_path / "rollout.json"
    path.write_bytes(content)
    with pytest.raises(RolloutError, match=r"rollout\.json is not a valid rollout setting") as got:
        read_rollout(path)
    assert problem in str(got.value)


def test_a_folder_in_place_of_the_file_is_the_files_error(tmp_path: Path) -> None:
    (tmp_path / "rollout.json").mkdir()
    with pytest.raises(RolloutError, match="Is a directory"):
        read_rollout(tmp_path / "rollout.json")
