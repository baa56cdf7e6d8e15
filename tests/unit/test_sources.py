import http.server
import os
import threading
from collections.abc import Iterator
from functools import partial

import pandas as pd
import pytest

from mlops_assets.sources import (
    FileSource,
    LandingSource,
    SklearnSource,
    SourceError,
    SyntheticConfig,
    archive_landed,
    drop_batch,
    generate_house_sales,
    ready_files,
    scan_landing,
    validate_batch_key,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_house_sales(SyntheticConfig(rows=300, seed=9))


def test_csv_and_parquet_round_trip(tmp_path, frame):
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    from_csv = FileSource(str(tmp_path / "a.csv")).load()
    from_parquet = FileSource(str(tmp_path / "a.parquet")).load()
    assert len(from_csv) == len(from_parquet) == 300
    pd.testing.assert_frame_equal(from_parquet, frame)
    assert list(from_csv.columns) == list(frame.columns)


def test_glob_concatenates_in_name_order(tmp_path, frame):
    frame.iloc[:100].to_csv(tmp_path / "part-1.csv", index=False)
    frame.iloc[100:].to_csv(tmp_path / "part-2.csv", index=False)
    loaded = FileSource(str(tmp_path / "part-*.csv")).load()
    assert len(loaded) == 300
    assert loaded["house_id"].tolist() == frame["house_id"].tolist()


def test_glob_with_different_columns_names_the_file(tmp_path, frame):
    frame.to_csv(tmp_path / "part-1.csv", index=False)
    frame.drop(columns=["sqft"]).to_csv(tmp_path / "part-2.csv", index=False)
    with pytest.raises(SourceError, match=r"part-2\.csv has columns"):
        FileSource(str(tmp_path / "part-*.csv")).load()


@pytest.fixture
def http_folder(tmp_path) -> Iterator[str]:
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_url(tmp_path, http_folder, frame):
    frame.to_parquet(tmp_path / "remote.parquet", index=False)
    frame.to_csv(tmp_path / "remote.csv", index=False)
    assert len(FileSource(f"{http_folder}/remote.parquet").load()) == 300
    assert len(FileSource(f"{http_folder}/remote.csv").load()) == 300
    with pytest.raises(SourceError, match="HTTP 404"):
        FileSource(f"{http_folder}/missing.csv").load()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("header_only.csv", b"a,b\n", "has no rows"),
        ("garbage.parquet", b"this is not parquet", "cannot be read as PARQUET"),
        ("notes.txt", b"a,b\n1,2\n", "unsupported file type"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as error:
        FileSource(str(path)).load()
    assert name in str(error.value)


def test_missing_file_and_unmatched_glob(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.csv does not exist"):
        FileSource(str(tmp_path / "nope.csv")).load()
    with pytest.raises(SourceError, match="no file matches"):
        FileSource(str(tmp_path / "*.csv")).load()


def test_landing_drop_is_atomic_and_ready_files_skip_temporaries(tmp_path, frame):
    landing = tmp_path / "landing"
    path = drop_batch(frame, landing, "batch-1", "csv")
    (landing / ".batch-2.abc.tmp").write_text("half written")
    assert ready_files(landing) == [path]
    assert len(LandingSource(landing, "batch-1").load()) == 300
    with pytest.raises(SourceError, match="no landed file for batch 'batch-2'"):
        LandingSource(landing, "batch-2").load()
    archived = archive_landed(path, succeeded=False, error="bad rows")
    assert archived == landing / "failed" / "batch-1.csv"
    assert (landing / "failed" / "batch-1.csv.error.txt").read_text() == "bad rows"
    assert ready_files(landing) == []


@pytest.mark.parametrize("key", ["../escape", "a/b", "", ".hidden", "x" * 200])
def test_batch_keys_are_safe_file_names(key):
    with pytest.raises(ValueError, match="batch key"):
        validate_batch_key(key)


def test_sklearn_datasets_load_with_snake_case_names():
    cancer = SklearnSource("breast_cancer").load()
    assert cancer.shape == (569, 31)
    assert "mean_radius" in cancer.columns and "target" in cancer.columns
    assert SklearnSource("diabetes").load().shape == (442, 11)
    wine = SklearnSource("wine_binary").load()
    assert wine.shape == (130, 14) and set(wine["target"]) == {0, 1}
    assert "od280_od315_of_diluted_wines" in wine.columns
    with pytest.raises(SourceError, match="unknown scikit-learn dataset"):
        SklearnSource("iris2").load()


def test_landing_scan_refuses_links_pipes_and_bad_names_without_reading_them(tmp_path, frame):
    landing = tmp_path / "landing"
    good = drop_batch(frame, landing, "batch-1", "csv")
    (landing / "bad name.csv").write_text("a\n1\n")
    (landing / "notes.txt").write_text("hello")
    os.mkfifo(landing / "pipe.csv")
    (landing / "linked.csv").symlink_to(good)
    (landing / "processed").mkdir()
    scan = scan_landing(landing)
    assert scan.ready == [good]
    reasons = {path.name: reason for path, reason in scan.refused}
    assert set(reasons) == {"bad name.csv", "notes.txt", "pipe.csv", "linked.csv"}
    assert "symbolic link" in reasons["linked.csv"]
    assert "not a regular file" in reasons["pipe.csv"]
    assert "batch key 'bad name'" in reasons["bad name.csv"]
    with pytest.raises(SourceError, match="symbolic link"):
        LandingSource(landing, "linked").load()
    with pytest.raises(SourceError, match="not a regular file"):
        LandingSource(landing, "pipe").load()


def test_landing_source_reads_the_archived_file_of_an_ingested_batch(tmp_path, frame):
    landing = tmp_path / "landing"
    archive_landed(drop_batch(frame, landing, "batch-1"), succeeded=True)
    assert len(LandingSource(landing, "batch-1").load()) == 300
