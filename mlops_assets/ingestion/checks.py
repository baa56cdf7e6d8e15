"""Asset-check specs of the ingestion stage (the helpers they use are in `asset_checks`)."""

from __future__ import annotations

from mlops_assets.asset_checks import check_specs
from mlops_assets.core.quality import CLEANED_BLOCKING, CLEANED_CHECKS, RAW_BLOCKING, RAW_CHECKS

RAW_CHECK_SPECS = check_specs("raw_data", RAW_CHECKS, RAW_BLOCKING)
CLEANED_CHECK_SPECS = check_specs("cleaned_data", CLEANED_CHECKS, CLEANED_BLOCKING)
