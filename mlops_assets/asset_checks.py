"""Asset checks of every stage: declaring them, and turning core outcomes into Dagster results.

The checks are evaluated inside the assets, before anything is written, so a blocking failure
leaves the previous good table in place (write-audit-publish) instead of overwriting it first.
Ingestion, features, deployment and monitoring all declare checks this way, so the bridge lives
beside them rather than inside any one stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg

from mlops_assets.core.metadata_bounds import bounded, message
from mlops_assets.core.quality import CheckOutcome, Severity


def check_specs(asset: str, checks: dict[str, str], blocking: set[str]) -> list[dg.AssetCheckSpec]:
    """Declare the checks an asset evaluates, blocking the ones that guard correctness."""
    return [
        dg.AssetCheckSpec(name, asset=asset, description=text, blocking=name in blocking)
        for name, text in checks.items()
    ]


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
