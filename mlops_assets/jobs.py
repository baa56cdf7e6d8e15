"""Jobs of the platform.

On the embedded profile each runs in one process (see `execution.py`): spawning a process per
step costs seconds, more than the steps themselves on laptop-sized data, and SQLite would lock
under parallel writers. The production profile runs independent steps in parallel processes.
"""

import dagster as dg

from mlops_assets.ingestion.partitions import batches
from mlops_assets.scoring.partitions import scoring_batches
from mlops_assets.spec import DatasetSpec

ingestion_job = dg.define_asset_job(
    name="ingestion_job",
    selection=dg.AssetSelection.groups("ingestion"),
    partitions_def=batches,
    description="Ingest one batch: raw data as delivered, then cleaned with its checks.",
)

pipeline_job = dg.define_asset_job(
    name="pipeline_job",
    selection=dg.AssetSelection.groups("features", "training", "deployment"),
    description="Everything after ingestion, over all cleaned batches: features, online store, "
    "training set, model, report, promotion and bento. Also the retraining job.",
)

federated_job = dg.define_asset_job(
    name="federated_job",
    selection=dg.AssetSelection.assets(
        "model", "validation_report", "promoted_model", "bento_model", "bento"
    ),
    description="Train across the sites the spec's training.federated names (their rows stay "
    "at each site), then report, gate, promote and package as for any model.",
)

deploy_job = dg.define_asset_job(
    name="deploy_job",
    selection=dg.AssetSelection.assets("bento_model", "bento"),
    description="Package the current champion (after a rollback, for instance) as the bento.",
)

monitoring_job = dg.define_asset_job(
    name="monitoring_job",
    selection=dg.AssetSelection.groups("monitoring"),
    description="Drift of the newest batch and of live traffic against the champion's data; "
    "live performance from labels that arrived later, and the live decision on a staged "
    "challenger.",
)

scoring_job = dg.define_asset_job(
    name="scoring_job",
    selection=dg.AssetSelection.groups("scoring"),
    partitions_def=scoring_batches,
    description="Score one file of unlabelled rows with the champion (batch_predictions).",
)


def retraining_job(spec: DatasetSpec) -> str:
    """The job a retrain runs: the sites' `federated_job` when the spec names sites.

    A federated model's rows never reach the central graph, so `pipeline_job` (features,
    online store, training set) has nothing to train it from.
    """
    return federated_job.name if spec.training.federated is not None else pipeline_job.name
