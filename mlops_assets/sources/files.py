"""CSV and Parquet from a path, a glob or an http(s) URL."""

from __future__ import annotations

import glob
import io
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import pandas as pd

from mlops_assets.sources.base import SourceError

FileFormat = Literal["auto", "csv", "parquet"]
SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".csv.gz": "csv"}
URL_TIMEOUT_S = 60


@dataclass(frozen=True)
class FileSource:
    """Rows from one file, every file of a glob (concatenated in name order) or a URL."""

    location: str
    file_format: FileFormat = "auto"
    text_columns: tuple[str, ...] = ()  # read from CSV as written: "007" stays "007"

    def describe(self) -> str:
        """Name the location so metadata and errors point at it."""
        return f"file:{self.location}"

    def load(self) -> pd.DataFrame:
        """Read every matching file; a missing, empty or unreadable one names itself."""
        if self.location.startswith(("http://", "https://")):
            content, fmt = _download(self.location), self._format(self.location)
            return read_frame(content, self.location, fmt, self.text_columns)
        paths = self._paths()
        frames = [_read_path(p, self._format(str(p)), self.text_columns) for p in paths]
        if len(frames) == 1:
            return frames[0]
        _require_same_columns(frames, paths)
        return pd.concat(frames, ignore_index=True)

    def _paths(self) -> list[Path]:
        if glob.has_magic(self.location):
            paths = sorted(Path(p) for p in glob.glob(self.location) if Path(p).is_file())
            if not paths:
                raise SourceError(f"no file matches {self.location}")
            return paths
        path = Path(self.location)
        if not path.exists():
            raise SourceError(f"source file {path} does not exist")
        if not path.is_file():
            raise SourceError(f"source {path} is not a file")
        return [path]

    def _format(self, name: str) -> str:
        if self.file_format != "auto":
            return self.file_format
        lowered = name.lower().split("?", 1)[0]
        for suffix, fmt in SUFFIX_FORMATS.items():
            if lowered.endswith(suffix):
                return fmt
        raise SourceError(f"{name}: unsupported file type (expected .csv or .parquet)")


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise SourceError(f"{url}: cannot be downloaded ({exc})") from exc


def _read_path(path: Path, fmt: str, text_columns: tuple[str, ...]) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise SourceError(f"source file {path} is empty")
    return read_frame(path, str(path), fmt, text_columns)


def read_frame(
    content: bytes | Path | BinaryIO, name: str, fmt: str, text_columns: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Parse CSV or Parquet from bytes, a path or an open binary file; errors name `name`.

    `text_columns` of a CSV are read as the text they hold, not as numbers guessed from it
    (a text key `007` stays `007`; Parquet columns carry their own types).
    """
    handle = io.BytesIO(content) if isinstance(content, bytes) else content
    if isinstance(content, bytes) and not content:
        raise SourceError(f"source {name} is empty")
    try:
        if fmt == "csv":
            frame = pd.read_csv(handle, dtype=dict.fromkeys(text_columns, str))
        else:
            frame = pd.read_parquet(handle)
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"source {name} is empty") from exc
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SourceError(f"source {name} cannot be read as {fmt.upper()}: {exc}") from exc
    if frame.empty:
        raise SourceError(f"source {name} has no rows")
    return frame


def _require_same_columns(frames: list[pd.DataFrame], paths: list[Path]) -> None:
    first = list(frames[0].columns)
    for frame, path in zip(frames[1:], paths[1:], strict=True):
        if list(frame.columns) != first:
            raise SourceError(
                f"source file {path} has columns {list(frame.columns)}, but {paths[0]} has {first}"
            )


def read_sample(location: str, rows: int) -> tuple[pd.DataFrame, bool]:
    """The first `rows` rows of a local CSV or Parquet file, and whether they are all of it.

    Read as `read_frame` reads the whole file, so a check of the sample sees the values the
    pipeline will see; errors name the file as `FileSource` does.
    """
    if rows < 1:
        raise SourceError(f"--rows must be at least 1, got {rows}")
    if glob.has_magic(location) or location.startswith(("http://", "https://")):
        raise SourceError(f"{location}: give one local file to check, not a glob or a URL")
    source = FileSource(location)
    (path,) = source._paths()
    fmt = source._format(str(path))
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, nrows=rows + 1)
        else:
            import pyarrow.parquet as pq

            batches = pq.ParquetFile(path).iter_batches(batch_size=rows + 1)
            frame = next(batches).to_pandas()
    except StopIteration as exc:
        raise SourceError(f"source {path} has no rows") from exc
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"source {path} is empty") from exc
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SourceError(f"source {path} cannot be read as {fmt.upper()}: {exc}") from exc
    if frame.empty:
        raise SourceError(f"source {path} has no rows")
    return frame.head(rows), len(frame) <= rows
