"""Periodic retraining, off by default.

Drift triggers retraining when it matters; turn this on in the UI (Automation) to retrain on a
calendar as well.
"""

import dagster as dg

from mlops_assets.automation.settings import load_settings
from mlops_assets.jobs import pipeline_job

retrain_schedule = dg.ScheduleDefinition(
    name="retrain_schedule",
    job=pipeline_job,
    cron_schedule=load_settings().retrain_cron,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    tags={"mlops/reason": "scheduled retraining"},
)
