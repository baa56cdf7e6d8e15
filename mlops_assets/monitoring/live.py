"""What live performance is measured on: logged predictions with an entity key, and labels.

A prediction can be judged only if the log says which entity it was for: by-key requests always
do, and records that carry the entity key field. A label is a cleaned batch's target for an
entity; it became known when its batch was ingested (the batch manifest's `ingested_at`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

from mlops_assets.core.entity_keys import key_array
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
            frames.append(_read_arrow(path, spec.entity_key, spec.text_entity_key))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            frame, bad = _read_lines(path, spec.entity_key, spec.text_entity_key)
            frames.append(frame)
            unreadable += bad
    frame = pd.concat(frames, ignore_index=True) if frames else _empty(spec.text_entity_key)
    keyed = frame[KEY].notna()
    frame = frame.loc[keyed].reset_index(drop=True)
    frame[KEY] = key_array(frame[KEY], spec.text_entity_key)
    return LoggedPredictions(frame, int((~keyed).sum()), unreadable)


def _read_arrow(path: Path, key: str, text: bool) -> pd.DataFrame:
    schema = pa.schema(
        [
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("model_version", pa.string()),
            ("output", pa.float64()),
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
            KEY: inputs.field(key).to_pandas(),
            PREDICTED_AT: table.column("timestamp").to_pandas(),
            VERSION: table.column("model_version").to_pandas(),
            PREDICTION: table.column("output").to_pandas(),
            # Kept in Arrow's memory: a million Python strings cost most of a second.
            REQUEST: table.column("request_id").to_pandas(types_mapper=pd.ArrowDtype),
            ROW: table.column("row").to_pandas(),
        }
    ).astype({PREDICTED_AT: "datetime64[ns, UTC]", KEY: _key_dtype(text), ROW: "Int64"})


def _key_dtype(text: bool) -> str:
    """Keys while some may be missing: nullable integers, or text."""
    return "string" if text else "Int64"


def _read_lines(path: Path, key: str, text: bool) -> tuple[pd.DataFrame, int]:
    """The slow, forgiving path: line by line, counting the lines that are not records."""
    rows, bad = [], 0
    for line in path.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
            value = (entry.get("inputs") or {}).get(key)
            rows.append(
                (
                    None if value is None else (str if text else int)(value),
                    entry["timestamp"],
                    str(entry["model_version"]),
                    float(entry["output"]),
                    entry.get("request_id"),
                    entry.get("row"),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            bad += line.strip() != b""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame[PREDICTED_AT] = pd.to_datetime(frame[PREDICTED_AT], utc=True, format="ISO8601")
    types = {
        KEY: _key_dtype(text),
        ROW: "Int64",
        PREDICTION: "float64",
        REQUEST: pd.ArrowDtype(pa.string()),
    }
    return frame.astype(types), bad


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
                    LABEL: batch[spec.target].astype("float64"),
                }
            )
        )
    if not frames:
        return pd.DataFrame({KEY: [], KNOWN_AT: pd.to_datetime([], utc=True), LABEL: []})
    return pd.concat(frames, ignore_index=True)
