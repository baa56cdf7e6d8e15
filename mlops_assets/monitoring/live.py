"""What live performance is measured on: logged predictions with an entity key, and labels.

A prediction can be judged only if the log says which entity it was for: by-key requests always
do, and records that carry the entity key field. A label is a cleaned batch's target for an
entity; it became known when its batch was ingested (the batch manifest's `ingested_at`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

from mlops_assets.core.entity_keys import key_array
from mlops_assets.core.features import label_values
from mlops_assets.core.live_evidence import REQUEST, ROW
from mlops_assets.core.live_performance import (
    KEY,
    KNOWN_AT,
    LABEL,
    PREDICTED_AT,
    PREDICTION,
    VERSION,
)
from mlops_assets.core.storage import read_json
from mlops_assets.features.inputs import cleaned_batch_paths
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import DatasetSpec

COLUMNS = [KEY, PREDICTED_AT, VERSION, PREDICTION, REQUEST, ROW]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class LoggedPredictions:
    """Logged predictions that name their entity, and what the log held besides."""

    frame: pd.DataFrame  # COLUMNS
    unkeyed: int  # rows that name no entity: they cannot be judged
    unreadable: int  # lines that are not a record (a line cut short by a killed worker)


def keyed_predictions(paths: PlatformPaths, spec: DatasetSpec) -> LoggedPredictions:
    """Every logged prediction, read with Arrow's JSON reader (a million lines in seconds).

    The reader takes only the fields judged here, typed, and ignores the rest (feature values,
    latency); a file it cannot read whole (a cut line, a value of another type) is read line
    by line instead, so one bad line never hides a file.
    """
    folder = paths.predictions
    frames, unreadable = [], 0
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        try:
            frames.append(_read_arrow(path, spec))
        except Exception:  # any surprise in the file: read it line by line
            frame, bad = _read_lines(path, spec)
            frames.append(frame)
            unreadable += bad
    frame = pd.concat(frames, ignore_index=True) if frames else _empty(spec.text_entity_key)
    keyed = frame[KEY].notna()
    frame = frame.loc[keyed].reset_index(drop=True)
    frame[KEY] = key_array(frame[KEY], spec.text_entity_key)
    return LoggedPredictions(frame, int((~keyed).sum()), unreadable)


NULLABLE = {pa.int64(): pd.Int64Dtype()}


def _read_arrow(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    key, text = spec.entity_key, spec.text_entity_key
    # A multiclass model logs each row's probabilities as a list.
    output = pa.list_(pa.float64()) if spec.task.is_multiclass else pa.float64()
    schema = pa.schema(
        [
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("model_version", pa.string()),
            ("output", output),
            ("request_id", pa.string()),
            ("row", pa.int64()),
            ("inputs", pa.struct([(key, pa.string() if text else pa.int64())])),
        ]
    )
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    # One thread: the files are many and small enough, and the machine's cores are shared.
    table = pa_json.read_json(
        path, read_options=pa_json.ReadOptions(use_threads=False), parse_options=options
    )
    inputs = table.column("inputs").combine_chunks()
    return pd.DataFrame(
        {
            # Nullable integers straight from Arrow: through float64 a 19-digit key would round.
            KEY: inputs.field(key).to_pandas(types_mapper=NULLABLE.get),
            PREDICTED_AT: table.column("timestamp").to_pandas(),
            VERSION: table.column("model_version").to_pandas(),
            PREDICTION: table.column("output").to_pandas(),
            # Kept in Arrow's memory: a million Python strings cost most of a second.
            REQUEST: table.column("request_id").to_pandas(types_mapper=pd.ArrowDtype),
            ROW: table.column("row").to_pandas(types_mapper=NULLABLE.get),
        }
    ).astype({PREDICTED_AT: "datetime64[ns, UTC]", KEY: _key_dtype(text), ROW: "Int64"})


def _key_dtype(text: bool) -> str:
    """Keys while some may be missing: nullable integers, or text."""
    return "string" if text else "Int64"


def _read_lines(path: Path, spec: DatasetSpec) -> tuple[pd.DataFrame, int]:
    """The slow, forgiving path: line by line, counting the lines that cannot be read.

    A line is unreadable when it is not a record (cut short by a killed worker) or when one of
    its values cannot be what it names: a time that is not an ISO 8601 instant within pandas'
    range (`yesterday`, `9999-12-31`, a number), a key that is not an int64 (or, for a text
    key, not text), a row number that is not an integer, an output that is not a number (or,
    multiclass, a list of them). Each line is judged alone, so one never fails the report.
    """
    key, multiclass, text = spec.entity_key, spec.task.is_multiclass, spec.text_entity_key
    rows, bad = [], 0
    for line in path.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
            rows.append(
                (
                    _key((entry.get("inputs") or {}).get(key), text),
                    _instant(entry["timestamp"]),
                    str(entry["model_version"]),
                    _output(entry["output"], multiclass),
                    entry.get("request_id"),
                    _int64(entry.get("row")),
                )
            )
        except Exception:  # whatever is wrong with a line, it is that line's
            bad += line.strip() != b""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame[PREDICTED_AT] = pd.to_datetime(frame[PREDICTED_AT], utc=True)
    types = {
        KEY: _key_dtype(text),
        ROW: "Int64",
        PREDICTION: "float64",
        REQUEST: pd.ArrowDtype(pa.string()),
    }
    if multiclass:
        del types[PREDICTION]
    return frame.astype(types), bad


def _key(value: object, text: bool) -> int | str | None:
    """A logged key: text as written for a text key, else an int64."""
    if text:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"a text key must be a string, got {value!r}")
        return value
    return _int64(value)


def _instant(value: object) -> pd.Timestamp:
    """An ISO 8601 time as a UTC timestamp in nanoseconds (a naive time is taken as UTC)."""
    if not isinstance(value, str):
        raise TypeError(f"a time must be an ISO 8601 string, got {value!r}")
    moment = datetime.fromisoformat(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return pd.Timestamp(moment).tz_convert("UTC").as_unit("ns")  # out of range: raises


def _int64(value: object) -> int | None:
    """An integer that fits int64, or None for a missing one; anything else raises."""
    if value is None:
        return None
    # A float is refused: the JSON parser turns integers beyond 64 bits into floats, whose
    # rounding could name another entity.
    if isinstance(value, bool | float):
        raise ValueError(f"not an integer: {value!r}")
    number = int(value)  # type: ignore[call-overload]
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{number} is outside the int64 range")
    return number


def _output(value: object, multiclass: bool) -> object:
    """A logged output: a number, or a multiclass row's probabilities (a list of numbers)."""
    if multiclass:
        if not isinstance(value, list):
            raise TypeError("a multiclass output is a list of probabilities")
        return np.asarray([float(v) for v in value])
    return float(value)  # type: ignore[arg-type]


def _empty(text: bool) -> pd.DataFrame:
    return pd.DataFrame(
        {
            KEY: pd.Series([], dtype=_key_dtype(text)),
            PREDICTED_AT: pd.to_datetime([], utc=True),
            VERSION: pd.Series([], dtype="object"),
            PREDICTION: pd.Series([], dtype="float64"),
            REQUEST: pd.Series([], dtype=pd.ArrowDtype(pa.string())),
            ROW: pd.Series([], dtype="Int64"),
        }
    )


def known_labels(paths: PlatformPaths, spec: DatasetSpec) -> pd.DataFrame:
    """Every cleaned row's label, with the time its batch was ingested."""
    frames = []
    for path in cleaned_batch_paths(paths):
        known = read_json(paths.manifest(path.stem))["ingested_at"]
        batch = pd.read_parquet(path, columns=[spec.entity_key, spec.target])
        frames.append(
            pd.DataFrame(
                {
                    KEY: key_array(batch[spec.entity_key], spec.text_entity_key),
                    KNOWN_AT: pd.Timestamp(known).tz_convert("UTC"),
                    LABEL: label_values(batch[spec.target], spec),
                }
            )
        )
    if not frames:
        return pd.DataFrame(  # typed as read ones are: the join refuses mismatched keys
            {
                KEY: pd.Series([], dtype="int64"),
                KNOWN_AT: pd.to_datetime([], utc=True),
                LABEL: pd.Series([], dtype="float64"),
            }
        )
    return pd.concat(frames, ignore_index=True)
