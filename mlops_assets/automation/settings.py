"""Automation settings, from `automation.yaml` beside this file.

A file in the package rather than the environment, so the definitions load the same everywhere.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

SETTINGS_FILE = Path(__file__).with_name("automation.yaml")


class FreshnessWindows(BaseModel):
    """Hours after which an asset warns, and fails, its freshness policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    warn_hours: float = Field(gt=0)
    fail_hours: float = Field(gt=0)

    @property
    def warn(self) -> timedelta:
        """Warning window."""
        return timedelta(hours=self.warn_hours)

    @property
    def fail(self) -> timedelta:
        """Failure window."""
        return timedelta(hours=self.fail_hours)


class AutomationSettings(BaseModel):
    """Everything the sensors and schedules need to know."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    freshness: dict[str, FreshnessWindows]
    landing_settle_seconds: float = Field(default=2.0, ge=0)
    retrain_cooldown_hours: float = Field(default=6.0, ge=0)
    max_retrains_per_day: int = Field(default=4, ge=1)
    retrain_cron: str = "0 3 * * 0"
    webhook_url: str = ""


def load_settings(path: Path = SETTINGS_FILE) -> AutomationSettings:
    """Read and validate the settings file."""
    return AutomationSettings.model_validate(yaml.safe_load(path.read_text()))
