"""Freshness policies from the automation settings, attached to the watched assets.

Attached where the definitions are assembled, not where the assets are declared: the stages
then know nothing of automation, which sits above them (its sensors start their jobs).
"""

from collections.abc import Sequence

import dagster as dg

from mlops_assets.automation.settings import load_settings


def freshness_policy(asset: str) -> dg.FreshnessPolicy | None:
    """The time-window policy of `asset` (None when the settings name none)."""
    windows = load_settings().freshness.get(asset)
    if windows is None:
        return None
    return dg.FreshnessPolicy.time_window(fail_window=windows.fail, warn_window=windows.warn)


def with_freshness_policies(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The assets, each watched one carrying the policy its settings give."""
    return [asset.map_asset_specs(_with_policy) for asset in assets]


def _with_policy(spec: dg.AssetSpec) -> dg.AssetSpec:
    policy = freshness_policy(spec.key.to_user_string())
    return spec if policy is None else spec.replace_attributes(freshness_policy=policy)
