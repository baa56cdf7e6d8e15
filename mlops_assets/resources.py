"""Typed Dagster resources shared by every stage: the state folder and the dataset spec."""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.spec import HOUSE_PRICES_SPEC, DatasetSpec, load_spec

SPEC_ENV = "MLOPS_SPEC"
PUSHGATEWAY_ENV = "MLOPS_PUSHGATEWAY_URL"


def resolve_spec_path(paths: PlatformPaths, explicit: str = "") -> Path:
    """Explicit path, else `$MLOPS_SPEC`, else the state folder's saved spec, else the default."""
    chosen = explicit or os.environ.get(SPEC_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    if paths.saved_spec.exists():
        return paths.saved_spec
    return HOUSE_PRICES_SPEC


class MlopsHome(dg.ConfigurableResource):
    """The one folder that holds all platform state."""

    path: str = Field(
        default="",
        description="State folder. Empty: $MLOPS_HOME, else .mlops_home in the project.",
    )

    def paths(self) -> PlatformPaths:
        """Resolve the folder now (not at import) and name its parts."""
        return PlatformPaths(resolve_home(self.path or None))


class DatasetSpecResource(dg.ConfigurableResource):
    """The dataset spec every stage reads; one file is the whole data contract."""

    home: MlopsHome
    spec_path: str = Field(
        default="",
        description=(
            "Spec YAML. Empty: $MLOPS_SPEC, else the spec saved in the state folder by "
            "`mlops run --spec`, else the built-in house-price spec."
        ),
    )

    def resolved_path(self) -> Path:
        """Which spec file is in force for this run."""
        return resolve_spec_path(self.home.paths(), self.spec_path)

    def load(self) -> DatasetSpec:
        """Load and validate the spec; an invalid one fails naming the field."""
        return load_spec(self.resolved_path())


class MetricsPush(dg.ConfigurableResource):
    """Where pipeline verdicts go for Prometheus: a Pushgateway, or nowhere."""

    pushgateway_url: str = Field(
        default="",
        description="Pushgateway URL (host:port or http://...). Empty: $MLOPS_PUSHGATEWAY_URL, "
        "else pushing is off.",
    )

    def url(self) -> str:
        """The Pushgateway to push to, resolved when a run asks; empty when off."""
        return self.pushgateway_url or os.environ.get(PUSHGATEWAY_ENV, "")
