"""The code location: every asset, check, job and resource of the platform, in one place.

`MLOPS_PROFILE` is read once here, when the code location loads, to pick the executor (see
`execution.py`); everything else resolves the profile when a run asks for it.
"""

import dagster as dg

from mlops_assets import quiet
from mlops_assets.automation.freshness import with_freshness_policies
from mlops_assets.automation.schedules import retrain_schedule
from mlops_assets.automation.scoring_sensors import (
    scored_sensor,
    scoring_failed_sensor,
    scoring_landing_sensor,
)
from mlops_assets.automation.sensors import (
    drift_sensor,
    freshness_sensor,
    ingested_sensor,
    ingestion_failed_sensor,
    landing_sensor,
    live_decision_sensor,
    live_performance_sensor,
    run_failure_sensor,
)
from mlops_assets.deployment.assets import bento, bento_model, promoted_model
from mlops_assets.execution import executor_for
from mlops_assets.features.assets import (
    feast_registry,
    features,
    online_features,
    training_set,
)
from mlops_assets.features.store_resource import FeatureStoreResource
from mlops_assets.ingestion.assets import cleaned_data, raw_data
from mlops_assets.jobs import (
    deploy_job,
    federated_job,
    ingestion_job,
    monitoring_job,
    pipeline_job,
    scoring_job,
)
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.monitoring.assets import drift_report, live_decision, live_performance
from mlops_assets.profile import active_profile
from mlops_assets.resources import (
    DatasetSpecResource,
    MetricsPush,
    MlopsHome,
)
from mlops_assets.scoring.assets import batch_predictions
from mlops_assets.training.assets import model, validation_report
from mlops_assets.training.engine import TrainingEngine

# Code servers and runs launched from the UI are processes of their own: quiet them here too.
quiet.apply()

home = MlopsHome()

defs = dg.Definitions(
    assets=with_freshness_policies(
        [
            raw_data,
            cleaned_data,
            features,
            feast_registry,
            online_features,
            training_set,
            model,
            validation_report,
            promoted_model,
            bento_model,
            bento,
            drift_report,
            live_performance,
            live_decision,
            batch_predictions,
        ]
    ),
    jobs=[ingestion_job, pipeline_job, federated_job, deploy_job, monitoring_job, scoring_job],
    sensors=[
        landing_sensor,
        ingested_sensor,
        ingestion_failed_sensor,
        drift_sensor,
        live_performance_sensor,
        live_decision_sensor,
        freshness_sensor,
        run_failure_sensor,
        scoring_landing_sensor,
        scored_sensor,
        scoring_failed_sensor,
    ],
    schedules=[retrain_schedule],
    resources={
        "home": home,
        "dataset": DatasetSpecResource(home=home),
        "feature_store": FeatureStoreResource(home=home),
        "mlflow_tracking": MlflowTracking(home=home),
        "metrics_push": MetricsPush(),
        "training_engine": TrainingEngine(),
    },
    executor=executor_for(active_profile()),
)
