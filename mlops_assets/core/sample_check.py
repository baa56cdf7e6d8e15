"""A sample of data checked against a spec without running anything: `mlops validate --data`.

The same raw typing, cleaning rules and blocking checks as ingestion, on rows in memory, so a
user learns in a second what a run would quarantine or refuse, and why: each rule names its
column and the values the spec allows there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from mlops_assets.core.cleaning import REASON_COLUMN, SOURCE_ROW_COLUMN, clean
from mlops_assets.core.quality import CheckOutcome, check_cleaned
from mlops_assets.core.raw import missing_columns, prepare_raw
from mlops_assets.spec import ColumnSpec, DatasetSpec, DType, Imputation

EXAMPLES = 3


@dataclass(frozen=True)
class SampleReport:
    """What a run would do with the sample: lines to print, and how many would refuse it."""

    lines: list[str] = field(default_factory=list)
    problems: int = 0


def check_sample(frame: pd.DataFrame, spec: DatasetSpec, *, complete: bool) -> SampleReport:
    """Every rule the sample breaks, and the checks that would refuse it as a batch.

    `complete` says the sample is the whole file; only then is its row count judged.
    """
    lines = [f"data: {len(frame):,} rows checked{'' if complete else ' (a sample)'}"]
    missing = missing_columns(frame, spec)
    if missing:
        present = [str(c) for c in frame.columns]
        lines += [
            f"  problem: column {name!r} ({_allowed(spec.column(name))}) is missing; the data "
            f"has {present[:20]}"
            for name in missing
        ]
        return SampleReport(lines, len(missing))
    prepared = prepare_raw(frame, spec, "sample", datetime.now(UTC))
    if prepared.extra_columns:
        lines.append(f"  note: columns not in the spec are ignored: {list(prepared.extra_columns)}")
    result = clean(prepared.frame, spec)
    for label, count in result.rule_counts.items():
        lines.append(f"  quarantine: {count:,} rows: {_rule(label, spec, result.quarantine)}")
    if result.duplicates_removed:
        lines.append(f"  note: {result.duplicates_removed:,} exact duplicate rows would be dropped")
    outcomes = [o for o in check_cleaned(result, spec) if complete or o.name != "row_count"]
    blocking = [o for o in outcomes if o.blocks]
    lines += [f"  problem: {o.name}: {o.description}{_setting(o.name)}" for o in blocking]
    lines += [f"  warning: {o.name}: {o.description}" for o in outcomes if _warns(o)]
    verdict = "would be refused" if blocking else "would be accepted"
    lines.append(
        f"data: {verdict}: {len(result.cleaned):,} rows clean, "
        f"{len(result.quarantine):,} quarantined"
    )
    return SampleReport(lines, len(blocking))


def _warns(outcome: CheckOutcome) -> bool:
    return not outcome.passed and not outcome.blocks


def _setting(check: str) -> str:
    """The spec setting behind a blocking check, so the user knows what may be changed."""
    settings = {
        "row_count": "quality.min_rows",
        "quarantine_share": "quality.max_quarantine_share",
        "no_forbidden_nulls": "nullable / impute of the column",
    }
    return f" (spec: {settings[check]})" if check in settings else ""


def _rule(label: str, spec: DatasetSpec, quarantine: pd.DataFrame) -> str:
    """`out_of_range:area` -> what the rule means, what the spec allows, and examples."""
    kind, _, name = label.partition(":")
    if kind == "duplicate_key":
        return (
            f"rows share entity key {spec.entity_key!r} and event time "
            f"{spec.event_timestamp!r} but differ in other columns (which one is right is "
            "unknown, so all of them are quarantined)"
        )
    column = spec.column(name) if name in spec.required_columns else None
    if column is None:
        return label
    meaning = {
        "unparseable": f"values that do not read as {column.dtype}",
        "wrong_type": f"values of another type than {column.dtype}",
        "unknown_category": "values outside its categories",
        "out_of_range": "values outside its range",
        "null": "missing values",
    }.get(kind, kind)
    examples = _examples(label, name, quarantine)
    return f"column {name!r} has {meaning}; allowed: {_allowed(column)}{examples}"


def _allowed(column: ColumnSpec) -> str:
    """The values a column accepts, as the spec says them."""
    parts = [f"dtype {column.dtype}"]
    if column.categories is not None:
        parts.append(f"categories {list(column.categories)}")
    if column.min is not None:
        parts.append(f"min {column.min:g}")
    if column.max is not None:
        parts.append(f"max {column.max:g}")
    if column.nullable:
        parts.append("nulls")
    elif column.impute != Imputation.NONE:
        parts.append(f"nulls (imputed: {column.impute})")
    else:
        parts.append("no nulls (set nullable: true, or impute: for a feature)")
    if column.dtype == DType.DATETIME:
        parts.append("ISO dates or times")
    return ", ".join(parts)


def _examples(label: str, name: str, quarantine: pd.DataFrame) -> str:
    """A few offending rows: their position in the data (1 = first row) and value."""
    pattern = f"(?:^|;){re.escape(label)}(?:;|$)"
    hits = quarantine.loc[quarantine[REASON_COLUMN].str.contains(pattern, regex=True)]
    shown = [
        f"row {int(row) + 1}: {value!r}"
        for row, value in zip(
            hits[SOURCE_ROW_COLUMN].head(EXAMPLES), hits[name].head(EXAMPLES), strict=True
        )
    ]
    return f" (e.g. {'; '.join(shown)})" if shown else ""
