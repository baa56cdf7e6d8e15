"""The cleaning stage: coerce types, drop exact duplicates, quarantine rule-breaking rows.

Every raw row ends up in exactly one place (cleaned, quarantined with a reason, or counted as an
exact duplicate), so `raw = cleaned + quarantined + duplicates` always holds. All rules are
vectorised masks; only quarantined rows get a per-row reason string.

A missing value in a column the spec lets impute stays missing here: the value that fills it is
learned by the feature stage from all cleaned rows and stored with the model, so training, the
online store and the service fill it with one and the same value (see `core/imputation.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops_assets.core.coercion import parse_column
from mlops_assets.spec import ColumnSpec, DatasetSpec, DType

REASON_COLUMN = "quarantine_reason"
SOURCE_ROW_COLUMN = "source_row"


@dataclass(frozen=True)
class CleaningResult:
    """The outcome of cleaning one batch, with the counts the metadata and checks need."""

    cleaned: pd.DataFrame
    quarantine: pd.DataFrame
    raw_rows: int
    duplicates_removed: int
    rule_counts: dict[str, int] = field(default_factory=dict)
    to_impute: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def quarantine_share(self) -> float:
        """Quarantined rows as a share of the rows that were not exact duplicates."""
        considered = self.raw_rows - self.duplicates_removed
        return len(self.quarantine) / considered if considered else 0.0


def stored_columns(spec: DatasetSpec) -> list[str]:
    """Columns of the cleaned table: entity key, timestamp, then the spec's other columns."""
    head = [spec.entity_key, spec.event_timestamp]
    return head + [c for c in spec.required_columns if c not in head]


def exact_duplicates(frame: pd.DataFrame) -> np.ndarray:
    """Rows equal in every column to an earlier row.

    Hashes find candidates fast; the candidates are then compared value by value, so a hash
    collision can never remove a row that merely looks alike.
    """
    hashes = pd.util.hash_pandas_object(frame, index=False)
    candidates = hashes.duplicated(keep=False).to_numpy()
    mask = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        positions = np.flatnonzero(candidates)
        repeated = frame.iloc[positions].duplicated(keep="first").to_numpy()
        mask[positions[repeated]] = True
    return mask


def clean(raw: pd.DataFrame, spec: DatasetSpec) -> CleaningResult:
    """Apply the spec's rules to a typed raw batch."""
    columns = stored_columns(spec)
    raw = raw.reset_index(drop=True)
    duplicate = exact_duplicates(raw[columns])
    work = raw.loc[~duplicate, columns]
    rules: list[tuple[str, np.ndarray]] = []
    typed: dict[str, pd.Series] = {}
    to_impute: dict[str, dict[str, object]] = {}
    for name in columns:
        column = _column_spec(spec, name)
        values, column_rules, missing = _apply_column_rules(work[name], column)
        typed[name] = values
        rules.extend(column_rules)
        if column.imputes and missing:
            to_impute[name] = {"strategy": str(column.impute), "rows": missing}
    bad = np.zeros(len(work), dtype=bool)
    for _, mask in rules:
        bad |= mask
    conflicts = _key_conflicts(typed, spec, bad)
    rules.append(("duplicate_key", conflicts))
    bad |= conflicts
    cleaned = pd.DataFrame(
        {n: _final_dtype(typed[n].loc[~bad], _column_spec(spec, n)) for n in columns}
    )
    return CleaningResult(
        cleaned=cleaned.reset_index(drop=True),
        quarantine=_quarantine(work, bad, rules),
        raw_rows=len(raw),
        duplicates_removed=int(duplicate.sum()),
        rule_counts={label: int(mask.sum()) for label, mask in rules if mask.any()},
        to_impute=to_impute,
    )


@dataclass(frozen=True)
class RowValidation:
    """Every delivered row, typed by the spec, and why each bad one is bad ("" when good)."""

    typed: pd.DataFrame
    bad: np.ndarray
    reasons: np.ndarray


def validate_rows(raw: pd.DataFrame, spec: DatasetSpec, columns: list[str]) -> RowValidation:
    """The spec's per-row rules on `columns`, keeping every row (none dropped or merged).

    For scoring, where each delivered row must get an answer or a reason: no duplicate removal
    and no key conflicts (a row to score is not a fact to store), the same parse, range,
    category and null rules as cleaning.
    """
    raw = raw.reset_index(drop=True)
    rules: list[tuple[str, np.ndarray]] = []
    typed: dict[str, pd.Series] = {}
    for name in columns:
        column = _column_spec(spec, name)
        values, column_rules, _ = _apply_column_rules(raw[name], column)
        typed[name] = _final_dtype(values, column)
        rules.extend(column_rules)
    bad = _any(rules, len(raw))
    reasons = _reasons(rules, np.arange(len(raw)))
    return RowValidation(pd.DataFrame(typed), bad, reasons)


def _any(rules: list[tuple[str, np.ndarray]], rows: int) -> np.ndarray:
    bad = np.zeros(rows, dtype=bool)
    for _, mask in rules:
        bad |= mask
    return bad


def _reasons(rules: list[tuple[str, np.ndarray]], positions: np.ndarray) -> np.ndarray:
    """The broken rules of each row at `positions`, joined with ';'."""
    reasons = np.full(len(positions), "", dtype=object)
    for label, mask in rules:
        hit = mask[positions]
        if hit.any():
            reasons = np.where(hit, reasons + ";" + label, reasons)
    return np.array([r.lstrip(";") for r in reasons], dtype=object)


def _column_spec(spec: DatasetSpec, name: str) -> ColumnSpec:
    if name == spec.entity_key and spec.entity_key_column is None:
        return ColumnSpec(name=name, dtype=DType.INT, role="entity_key")
    if name == spec.event_timestamp and spec.event_timestamp_column is None:
        return ColumnSpec(name=name, dtype=DType.DATETIME, role="event_timestamp")
    return spec.column(name)


def _apply_column_rules(
    values: pd.Series, column: ColumnSpec
) -> tuple[pd.Series, list[tuple[str, np.ndarray]], int]:
    """Parsed values, the rules they break, and how many are missing."""
    parsed = parse_column(values, column)
    result = parsed.values
    rules = [
        (f"unparseable:{column.name}", parsed.unparseable),
        (f"wrong_type:{column.name}", parsed.wrong_type),
    ]
    if column.categories is not None:
        rules.append((f"unknown_category:{column.name}", _unknown_category(result, column)))
    else:
        rules.append((f"out_of_range:{column.name}", _out_of_range(result, column)))
    if parsed.missing.any() and not (column.nullable or column.imputes):
        rules.append((f"null:{column.name}", parsed.missing))
    return result, rules, int(parsed.missing.sum())


def _out_of_range(values: pd.Series, column: ColumnSpec) -> np.ndarray:
    mask = np.zeros(len(values), dtype=bool)
    if column.min is None and column.max is None:
        return mask
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        if column.min is not None:
            mask |= numbers < column.min
        if column.max is not None:
            mask |= numbers > column.max
    return mask


def _unknown_category(values: pd.Series, column: ColumnSpec) -> np.ndarray:
    if column.categories is None:
        return np.zeros(len(values), dtype=bool)
    known = values.isin(column.categories).to_numpy(dtype=bool, na_value=False)
    return ~known & values.notna().to_numpy()


def _key_conflicts(typed: dict[str, pd.Series], spec: DatasetSpec, bad: np.ndarray) -> np.ndarray:
    """Flag rows sharing entity key and timestamp but differing elsewhere.

    There is no way to tell which of them is right, so all are quarantined rather than one
    picked silently.
    """
    keys = pd.DataFrame({"k": typed[spec.entity_key], "t": typed[spec.event_timestamp]})
    conflicts = np.zeros(len(keys), dtype=bool)
    good = np.flatnonzero(~bad)
    conflicts[good] = keys.iloc[good].duplicated(keep=False).to_numpy()
    return conflicts


def _final_dtype(values: pd.Series, column: ColumnSpec) -> pd.Series:
    if column.dtype == DType.INT:
        return values.astype("Int64" if values.isna().any() else "int64")
    if column.dtype == DType.FLOAT:
        return values.astype("float64")
    if column.dtype == DType.CATEGORY:
        return pd.Series(
            pd.Categorical(values, categories=list(column.categories or ())), index=values.index
        )
    if column.dtype == DType.STRING:
        return values.astype("string")
    if column.dtype == DType.BOOL:
        return values.astype("boolean" if values.isna().any() else "bool")
    return values


def _quarantine(
    work: pd.DataFrame, bad: np.ndarray, rules: list[tuple[str, np.ndarray]]
) -> pd.DataFrame:
    positions = np.flatnonzero(bad)
    reasons = np.full(len(positions), "", dtype=object)
    for label, mask in rules:
        hit = mask[positions]
        if hit.any():
            reasons = np.where(hit, reasons + ";" + label, reasons)
    quarantine = work.iloc[positions].astype("string")
    quarantine.insert(0, SOURCE_ROW_COLUMN, work.index.to_numpy()[positions])
    quarantine[REASON_COLUMN] = pd.Series(reasons, dtype="string").str.lstrip(";").to_numpy()
    return quarantine.reset_index(drop=True)
