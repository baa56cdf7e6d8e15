"""Freshness policies from the automation settings, attached to the watched assets."""

import dagster as dg

from mlops_assets.automation.settings import load_settings


def freshness_policy(asset: str) -> dg.FreshnessPolicy | None:
    """The time-window policy of `asset` (None when the settings name none)."""
    windows = load_settings().freshness.get(asset)
    if windows is None:
        return None
    return dg.FreshnessPolicy.time_window(fail_window=windows.fail, warn_window=windows.warn)
