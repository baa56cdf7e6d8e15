"""Data sources behind one interface (`DataSource`), chosen by configuration."""

from mlops_assets.sources.base import DataSource, SourceError
from mlops_assets.sources.files import FileSource
from mlops_assets.sources.landing import (
    LandingScan,
    LandingSource,
    archive_landed,
    batch_key_for,
    drop_batch,
    ready_files,
    scan_landing,
    validate_batch_key,
)
from mlops_assets.sources.sklearn_datasets import SklearnSource
from mlops_assets.sources.synthetic import SyntheticConfig, SyntheticSource, generate_house_sales

__all__ = [
    "DataSource",
    "FileSource",
    "LandingScan",
    "LandingSource",
    "SklearnSource",
    "SourceError",
    "SyntheticConfig",
    "SyntheticSource",
    "archive_landed",
    "batch_key_for",
    "drop_batch",
    "generate_house_sales",
    "ready_files",
    "scan_landing",
    "validate_batch_key",
]
