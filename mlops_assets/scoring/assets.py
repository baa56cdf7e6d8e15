"""The `batch_predictions` asset: one landed file of rows to score, one partition.

A thin shell over `core.scoring.score_frame`: it finds the champion, reads the file, and
writes the scored rows and the rejected ones (each file whole or not at all). The champion is
read from the registry alias, so a rollback changes what the next batch is scored with, and
every scored row names the version that scored it.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from mlops_assets.core.scoring import ScoringError, check_columns, score_frame
from mlops_assets.core.storage import write_parquet_atomic
from mlops_assets.model_registry.champion import ChampionRegistry
from mlops_assets.model_registry.model_store import load_manifest, load_verified_model
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.scoring.partitions import scoring_batches
from mlops_assets.signing import ModelSignatureError
from mlops_assets.sources.base import SourceError
from mlops_assets.sources.files import FileSource
from mlops_assets.sources.landing import LandingSource


class ScoringConfig(dg.Config):
    """Where the rows come from: the landed file of this partition, or a path given here."""

    path: str = Field(
        default="",
        description="A CSV or Parquet file to score. Empty: the file landed in "
        "MLOPS_HOME/scoring/landing under this partition's name.",
    )


@dg.asset(
    group_name="scoring",
    deps=["promoted_model"],  # scores with the champion
    partitions_def=scoring_batches,
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            "rows_accounted",
            asset="batch_predictions",
            description="Scored + rejected rows = delivered rows: none dropped.",
        )
    ],
)
def batch_predictions(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    dataset: DatasetSpecResource,
    home: MlopsHome,
    mlflow_tracking: MlflowTracking,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Score a file of unlabelled rows with the champion; reject bad rows with reasons."""
    spec, paths, batch = dataset.load(), home.paths(), context.partition_key
    text_key = (spec.entity_key,) if spec.text_entity_key else ()  # read as written
    source = (
        FileSource(config.path, text_columns=text_key)
        if config.path
        else LandingSource(paths.scoring_landing, batch, text_key)
    )
    try:  # the file's own faults first: they are named whatever the registry holds
        frame = source.load()
        check_columns(frame, spec)
    except (SourceError, ScoringError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    champion = ChampionRegistry(mlflow_tracking.client(), spec.name, paths).reconcile()
    if champion is None:
        raise dg.Failure("no champion to score with yet: run the pipeline first (mlops run)")
    if not paths.model(champion.run_id).exists():
        raise dg.Failure(
            f"the champion v{champion.version} has no local copy under {paths.models}: "
            "run the pipeline on this state folder, or restore it"
        )
    manifest = load_manifest(paths, champion.run_id)
    try:
        model = load_verified_model(paths, champion.run_id)
    except ModelSignatureError as exc:
        context.log.error(f"champion v{champion.version} refused: {exc}")
        raise dg.Failure(
            description=f"champion v{champion.version} not used to score: {exc}. Restore the "
            "model folder (or roll back with `mlops rollback`); nothing was scored",
            allow_retries=False,
        ) from exc
    try:
        result = score_frame(
            frame,
            spec,
            model,
            manifest.imputation,
            champion.version,
            datetime.now(UTC),
        )
    except ScoringError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    counts = result.accounting()
    context.log.info(
        f"scored {counts['scored']:,} of {counts['delivered']:,} rows with v{champion.version}"
        f" ({counts['rejected']:,} rejected)"
    )
    scored = write_parquet_atomic(result.scored, paths.scored(batch))
    rejected = write_parquet_atomic(result.rejected, paths.score_rejected(batch))
    reasons = result.rejected["reject_reason"].str.split(";").explode().value_counts()
    yield dg.MaterializeResult(
        metadata={
            **counts,
            "model_version": champion.version,
            "source": source.describe(),
            "predictions": dg.MetadataValue.path(str(scored)),
            "rejected_rows": dg.MetadataValue.path(str(rejected)),
            "reject_reasons": dg.MetadataValue.json({str(k): int(v) for k, v in reasons.items()}),
        }
    )
    yield dg.AssetCheckResult(
        check_name="rows_accounted",
        passed=counts["scored"] + counts["rejected"] == counts["delivered"],
        metadata=counts,
    )
