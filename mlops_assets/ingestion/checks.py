"""Asset-check specs of the ingestion stage and the bridge from core outcomes to Dagster.

The checks are evaluated inside the assets, before anything is written, so a blocking failure
leaves the previous good table in place (write-audit-publish) instead of overwriting it first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg

from mlops_assets.core.metadata_bounds import bounded, message
from mlops_assets.core.quality import (
    CLEANED_BLOCKING,
    CLEANED_CHECKS,
    RAW_BLOCKING,
    RAW_CHECKS,
    CheckOutcome,
    Severity,
)


def check_specs(asset: str, checks: dict[str, str], blocking: set[str]) -> list[dg.AssetCheckSpec]:
    """Declare the checks an asset evaluates, blocking the ones that guard correctness."""
    return [
        dg.AssetCheckSpec(name, asset=asset, description=text, blocking=name in blocking)
        for name, text in checks.items()
    ]


RAW_CHECK_SPECS = check_specs("raw_data", RAW_CHECKS, RAW_BLOCKING)
CLEANED_CHECK_SPECS = check_specs("cleaned_data", CLEANED_CHECKS, CLEANED_BLOCKING)


def to_check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    """Translate a core outcome, keeping its severity so WARN failures do not block."""
    severity = (
        dg.AssetCheckSeverity.ERROR
        if outcome.severity == Severity.ERROR
        else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        severity=severity,
        description=message(outcome.description),
        metadata={key: _metadata_value(bounded(value)) for key, value in outcome.metadata.items()},
    )


def reject(outcomes: list[CheckOutcome], what: str) -> Iterator[dg.AssetCheckResult]:
    """Report every evaluated check, then fail naming the blocking ones (nothing published)."""
    for outcome in outcomes:
        yield to_check_result(outcome)
    reasons = "; ".join(f"{o.name}: {o.description}" for o in blocking_failures(outcomes))
    raise dg.Failure(
        description=message(f"{what} blocked by failed checks: {reasons}"), allow_retries=False
    )


def blocking_failures(outcomes: Iterable[CheckOutcome]) -> list[CheckOutcome]:
    """The outcomes that must stop publication."""
    return [o for o in outcomes if o.blocks]


def _metadata_value(value: object) -> dg.MetadataValue | object:
    if isinstance(value, dict | list):
        return dg.MetadataValue.json(value)
    if value is None:
        return dg.MetadataValue.text("none")
    return value
