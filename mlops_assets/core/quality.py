"""Data-quality checks as plain functions, turned into asset-check results by the Dagster shell.

ERROR outcomes block what depends on the data; WARN ones only inform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.cleaning import CleaningResult, stored_columns
from mlops_assets.core.coercion import parse_column
from mlops_assets.spec import DatasetSpec, DType


class Severity(StrEnum):
    """How much a failed check matters: ERROR blocks downstream assets, WARN informs."""

    ERROR = "ERROR"
    WARN = "WARN"


@dataclass(frozen=True)
class CheckOutcome:
    """One evaluated check."""

    name: str
    passed: bool
    severity: Severity
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        """Whether this outcome must stop the data from being published."""
        return not self.passed and self.severity == Severity.ERROR


RAW_CHECKS = {
    "required_columns": "Every column the dataset spec names is delivered.",
    "row_count": "The batch has at least the spec's minimum rows (WARN below the warning level).",
    "null_rates": "Per-column null rates stay within the spec's limits (informative on raw).",
    "values_valid": "Share of values that fail to parse, fall out of range or use unknown "
    "categories (informative: cleaning quarantines them).",
}
CLEANED_CHECKS = {
    "schema_matches_spec": "Columns and dtypes are exactly those the dataset spec defines.",
    "no_forbidden_nulls": "Columns the spec marks non-nullable (and not imputed) hold no nulls.",
    "null_rates": "Nullable and imputed columns stay within their null-rate limits.",
    "values_valid": "Every value is within its range and category list.",
    "unique_key_per_timestamp": "No entity key appears twice with the same event timestamp.",
    "row_count": "At least the spec's minimum rows survive cleaning (WARN below warning level).",
    "quarantine_share": "The share of quarantined rows stays under the spec's limit "
    "(WARN above the warning level).",
}
RAW_BLOCKING = {"required_columns", "row_count"}
CLEANED_BLOCKING = {
    "row_count",
    "schema_matches_spec",
    "no_forbidden_nulls",
    "values_valid",
    "unique_key_per_timestamp",
    "quarantine_share",
}


def check_raw(raw: pd.DataFrame, spec: DatasetSpec) -> list[CheckOutcome]:
    """Checks on a delivered batch; only a missing column or too few rows block it."""
    missing = [c for c in spec.required_columns if c not in raw.columns]
    outcomes = [
        CheckOutcome(
            "required_columns",
            not missing,
            Severity.ERROR,
            f"missing columns: {missing}" if missing else "all spec columns delivered",
            {"missing": missing},
        ),
        row_count_check(len(raw), spec),
    ]
    if missing:
        return outcomes
    outcomes.append(_null_rates(raw, spec, nullable_only=False, severity=Severity.WARN))
    outcomes.append(_values_valid(raw, spec, raw=True))
    return outcomes


def check_cleaned(result: CleaningResult, spec: DatasetSpec) -> list[CheckOutcome]:
    """Checks on a cleaned batch: anything wrong here is a bug or bad data, so most block."""
    cleaned = result.cleaned
    return [
        _schema_matches(cleaned, spec),
        _forbidden_nulls(cleaned, spec),
        _null_rates(cleaned, spec, nullable_only=True, severity=Severity.WARN),
        _values_valid(cleaned, spec, raw=False),
        _unique_keys(cleaned, spec),
        row_count_check(len(cleaned), spec),
        _quarantine_share(result, spec),
    ]


def row_count_check(rows: int, spec: DatasetSpec) -> CheckOutcome:
    """A WARN/ERROR ladder: below `min_rows` blocks, below `warn_rows` warns."""
    rules = spec.quality
    meta = {"rows": rows, "min_rows": rules.min_rows, "warn_rows": rules.warn_rows}
    if rows < rules.min_rows:
        return CheckOutcome(
            "row_count", False, Severity.ERROR, f"{rows} rows < minimum {rules.min_rows}", meta
        )
    if rules.warn_rows is not None and rows < rules.warn_rows:
        return CheckOutcome(
            "row_count",
            False,
            Severity.WARN,
            f"{rows} rows < warning level {rules.warn_rows}",
            meta,
        )
    return CheckOutcome("row_count", True, Severity.ERROR, f"{rows} rows", meta)


def _null_rates(
    frame: pd.DataFrame, spec: DatasetSpec, *, nullable_only: bool, severity: Severity
) -> CheckOutcome:
    rates: dict[str, float] = {}
    over: dict[str, float] = {}
    for column in spec.columns:
        if nullable_only and not (column.nullable or column.imputes):
            continue
        rate = float(frame[column.name].isna().mean()) if len(frame) else 0.0
        rates[column.name] = round(rate, 6)
        limit = (
            column.max_null_rate if column.max_null_rate is not None else spec.quality.max_null_rate
        )
        if rate > limit:
            over[column.name] = round(rate, 6)
    description = f"null rate over limit in {over}" if over else "null rates within limits"
    return CheckOutcome(
        "null_rates", not over, severity, description, {"null_rates": rates, "over_limit": over}
    )


def _invalid_counts(frame: pd.DataFrame, spec: DatasetSpec, *, parse: bool) -> dict[str, int]:
    counts: dict[str, int] = {}
    for column in spec.columns:
        values = frame[column.name]
        bad = np.zeros(len(frame), dtype=bool)
        if parse:
            parsed = parse_column(values, column)
            bad |= parsed.invalid
            values = parsed.values
        if column.min is not None or column.max is not None:
            numbers = values.to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                lo = numbers < column.min if column.min is not None else False
                hi = numbers > column.max if column.max is not None else False
            bad |= lo | hi
        if column.categories is not None:
            known = values.isin(column.categories).to_numpy(dtype=bool, na_value=False)
            bad |= ~known & values.notna().to_numpy()
        if bad.any():
            counts[column.name] = int(bad.sum())
    return counts


def _values_valid(frame: pd.DataFrame, spec: DatasetSpec, *, raw: bool) -> CheckOutcome:
    """Count invalid values per column.

    On raw data they only warn (cleaning quarantines them); on cleaned data they mean cleaning
    let something through, so they block.
    """
    counts = _invalid_counts(frame, spec, parse=raw)
    severity, note = (Severity.WARN, " (quarantined when cleaned)") if raw else (Severity.ERROR, "")
    description = f"invalid values{note}: {counts}" if counts else "all values valid"
    return CheckOutcome(
        "values_valid", not counts, severity, description, {"invalid_values": counts}
    )


def expected_dtype(dtype: DType, nullable: bool) -> set[str]:
    """Pandas dtypes the cleaned table may hold for a spec dtype."""
    return {
        DType.INT: {"int64", "Int64"} if nullable else {"int64"},
        DType.FLOAT: {"float64"},
        DType.CATEGORY: {"category"},
        DType.STRING: {"string"},
        DType.DATETIME: {"datetime64[ns, UTC]", "datetime64[us, UTC]"},
        DType.BOOL: {"bool", "boolean"} if nullable else {"bool"},
    }[dtype]


def _schema_matches(cleaned: pd.DataFrame, spec: DatasetSpec) -> CheckOutcome:
    expected = stored_columns(spec)
    problems: list[str] = []
    if list(cleaned.columns) != expected:
        problems.append(f"columns {list(cleaned.columns)} != {expected}")
    for name in expected:
        if name not in cleaned.columns:
            continue
        dtype = str(cleaned[name].dtype)
        if name == spec.entity_key and spec.entity_key_column is None:
            allowed = {"int64"}
        elif name == spec.event_timestamp and spec.event_timestamp_column is None:
            allowed = expected_dtype(DType.DATETIME, False)
        else:
            column = spec.column(name)
            allowed = expected_dtype(column.dtype, column.nullable or column.imputes)
        if dtype not in allowed:
            problems.append(f"{name}: dtype {dtype} not in {sorted(allowed)}")
    schema = {str(c): str(t) for c, t in cleaned.dtypes.items()}
    description = "; ".join(problems) if problems else "schema matches the spec"
    return CheckOutcome(
        "schema_matches_spec", not problems, Severity.ERROR, description, {"schema": schema}
    )


def _forbidden_nulls(cleaned: pd.DataFrame, spec: DatasetSpec) -> CheckOutcome:
    names = [spec.entity_key, spec.event_timestamp] + [
        c.name for c in spec.columns if not (c.nullable or c.imputes)
    ]
    nulls = {n: int(cleaned[n].isna().sum()) for n in dict.fromkeys(names)}
    nulls = {n: k for n, k in nulls.items() if k}
    description = f"nulls in non-nullable columns: {nulls}" if nulls else "no forbidden nulls"
    return CheckOutcome(
        "no_forbidden_nulls", not nulls, Severity.ERROR, description, {"nulls": nulls}
    )


def _unique_keys(frame: pd.DataFrame, spec: DatasetSpec) -> CheckOutcome:
    keys = frame[[spec.entity_key, spec.event_timestamp]]
    duplicated = int(keys.duplicated(keep=False).sum())
    description = (
        f"{duplicated} rows share an entity key and timestamp"
        if duplicated
        else "keys unique per timestamp"
    )
    return CheckOutcome(
        "unique_key_per_timestamp",
        not duplicated,
        Severity.ERROR,
        description,
        {"duplicated_rows": duplicated},
    )


def _quarantine_share(result: CleaningResult, spec: DatasetSpec) -> CheckOutcome:
    share = result.quarantine_share
    rules = spec.quality
    meta = {
        "quarantined": len(result.quarantine),
        "share": round(share, 6),
        "max_share": rules.max_quarantine_share,
        "warn_share": rules.warn_quarantine_share,
    }
    if share > rules.max_quarantine_share:
        return CheckOutcome(
            "quarantine_share",
            False,
            Severity.ERROR,
            f"{share:.2%} of rows quarantined > limit {rules.max_quarantine_share:.2%}",
            meta,
        )
    if share > rules.warn_quarantine_share:
        return CheckOutcome(
            "quarantine_share",
            False,
            Severity.WARN,
            f"{share:.2%} of rows quarantined > warning level {rules.warn_quarantine_share:.2%}",
            meta,
        )
    return CheckOutcome(
        "quarantine_share", True, Severity.ERROR, f"{share:.2%} of rows quarantined", meta
    )


FEATURE_CHECKS = {
    "features_finite": "Feature columns the spec marks non-nullable hold only finite values.",
}
TRAINING_SET_CHECKS = {
    "one_row_per_label": "The point-in-time join returned exactly one row per label.",
    "point_in_time_correct": "Every row's features are the newest ones at or before its label "
    "time (recomputed independently with an as-of join).",
}


def check_features(features: pd.DataFrame, spec: DatasetSpec) -> list[CheckOutcome]:
    """NaN or infinite values where the spec forbids them block the feature table."""
    required = [c.name for c in spec.columns if c.name in spec.feature_columns and not c.nullable]
    required += [d.name for d in spec.derived if not d.nullable]
    bad: dict[str, int] = {}
    for name in required:
        values = features[name]
        if name in spec.categorical_columns:
            count = int(values.isna().sum())
        else:
            count = int((~np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan))).sum())
        if count:
            bad[name] = count
    description = f"non-finite values in {bad}" if bad else "all required features finite"
    return [
        CheckOutcome("features_finite", not bad, Severity.ERROR, description, {"non_finite": bad})
    ]
