"""The raw stage: delivered rows, typed by the spec where the values allow, content unchanged.

A column whose every value parses gets the spec's type; a column with any value that does not
parse stays text, exactly as delivered, so the cleaning stage can quarantine those rows with the
offending value in view. Missing entity keys and timestamps are derived here, deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from mlops_assets.core.coercion import parse_column
from mlops_assets.sources import SourceError
from mlops_assets.spec import (
    DERIVED_ENTITY_KEY,
    DERIVED_EVENT_TIMESTAMP,
    ColumnSpec,
    DatasetSpec,
    DType,
)


@dataclass(frozen=True)
class RawBatch:
    """A typed raw batch and what the platform had to add to it."""

    frame: pd.DataFrame
    derived_entity_key: bool
    derived_event_timestamp: bool
    extra_columns: tuple[str, ...]
    untyped_columns: tuple[str, ...]


def missing_columns(frame: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """Spec columns the delivery lacks."""
    present = set(map(str, frame.columns))
    return [name for name in spec.required_columns if name not in present]


def prepare_raw(
    frame: pd.DataFrame, spec: DatasetSpec, source: str, ingested_at: datetime
) -> RawBatch:
    """Type a delivered frame by the spec and add derived identity columns where needed."""
    if frame.empty:
        raise SourceError(f"source {source} delivered no rows")
    missing = missing_columns(frame, spec)
    if missing:
        raise SourceError(f"source {source} lacks required columns {missing}")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    typed = frame.copy(deep=False)
    untyped = []
    for column in spec.columns:
        parsed = parse_column(frame[column.name], column)
        if parsed.invalid.any():
            typed[column.name] = frame[column.name].astype("string")
            untyped.append(column.name)
        else:
            typed[column.name] = _raw_dtype(parsed.values, column, parsed.missing.any())
    if spec.entity_key_column is None:
        typed[DERIVED_ENTITY_KEY] = stable_row_ids(frame[spec.required_columns])
    if spec.event_timestamp_column is None:
        typed[DERIVED_EVENT_TIMESTAMP] = pd.Timestamp(ingested_at).tz_convert("UTC")
        typed[DERIVED_EVENT_TIMESTAMP] = typed[DERIVED_EVENT_TIMESTAMP].astype(
            "datetime64[ns, UTC]"
        )
    extra = tuple(c for c in frame.columns if c not in set(spec.required_columns))
    return RawBatch(
        frame=typed,
        derived_entity_key=spec.entity_key_column is None,
        derived_event_timestamp=spec.event_timestamp_column is None,
        extra_columns=extra,
        untyped_columns=tuple(untyped),
    )


def stable_row_ids(frame: pd.DataFrame) -> np.ndarray:
    """A row identity from the row's content: the same row gets the same id in every run."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return (hashes >> np.uint64(1)).astype(np.int64)


def _raw_dtype(values: pd.Series, column: ColumnSpec, has_missing: bool) -> pd.Series:
    dtype = column.dtype
    if dtype == DType.INT or column.integer_categories:
        return values.astype("Int64" if has_missing else "int64")
    if dtype in (DType.CATEGORY, DType.STRING):
        return values.astype("string")
    return values
