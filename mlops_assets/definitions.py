"""The code location: every asset, check, job and resource of the platform, in one place."""

import dagster as dg

from mlops_assets.ingestion.assets import cleaned_data, raw_data
from mlops_assets.jobs import ingestion_job
from mlops_assets.resources import DatasetSpecResource, MlopsHome

home = MlopsHome()

defs = dg.Definitions(
    assets=[raw_data, cleaned_data],
    jobs=[ingestion_job],
    resources={"home": home, "dataset": DatasetSpecResource(home=home)},
    executor=dg.in_process_executor,
)
