"""Feast objects derived from the dataset spec, and the store configured under `MLOPS_HOME`.

The entity, source, feature view and feature service are built from the spec rather than
written by hand, so adding a column to the spec adds it to Feast too. `feature_repo/` holds
the `feature_store.yaml` both the platform and the `feast` CLI read. Feast is imported lazily:
it takes seconds to import, and the Dagster code location should load fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops_assets.paths import PROJECT_ROOT, PlatformPaths
from mlops_assets.spec import DatasetSpec, DType

if TYPE_CHECKING:
    from feast import Entity, FeatureService, FeatureStore, FeatureView, FileSource

FEATURE_REPO = PROJECT_ROOT / "feature_repo"
HOME_PLACEHOLDER = "${MLOPS_HOME}"


@dataclass(frozen=True)
class FeastNames:
    """Names of the Feast objects of one dataset spec."""

    entity: str
    source: str
    view: str
    service: str

    @classmethod
    def for_spec(cls, spec: DatasetSpec) -> FeastNames:
        """Stable names: the view per dataset, the service versioned with the spec."""
        entity = spec.entity_key.removesuffix("_id") or spec.entity_key
        return cls(
            entity=entity,
            source=f"{spec.name}_source",
            view=f"{spec.name}_features",
            service=f"{spec.name}_v{spec.version}",
        )


@dataclass(frozen=True)
class FeastDefinitions:
    """The Feast objects, in the order `feast apply` wants them."""

    entity: Entity
    source: FileSource
    view: FeatureView
    service: FeatureService

    def in_apply_order(self) -> list[Any]:
        """Entity, source, feature view, feature service (each needs the ones before)."""
        return [self.entity, self.source, self.view, self.service]


def offline_path(paths: PlatformPaths, spec: DatasetSpec) -> Path:
    """Where the feature table lives for the Feast file source."""
    return paths.root / "feast" / "data" / f"{FeastNames.for_spec(spec).view}.parquet"


def build_definitions(spec: DatasetSpec, paths: PlatformPaths) -> FeastDefinitions:
    """Entity, file source, feature view and feature service for the spec's features."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType

    names = FeastNames.for_spec(spec)
    entity = Entity(
        name=names.entity,
        join_keys=[spec.entity_key],
        value_type=ValueType.INT64,
        description=_entity_description(spec),
    )
    source = FileSource(
        name=names.source,
        path=str(offline_path(paths, spec)),
        timestamp_field=spec.event_timestamp,
        description="Engineered features written by the `house_features` asset.",
    )
    view = FeatureView(
        name=names.view,
        entities=[entity],
        ttl=timedelta(0),  # 0 = never expires: a house's last known attributes stay valid
        schema=[
            Field(name=n, dtype=_feast_type(spec, n), description=_describe(spec, n))
            for n in spec.model_features
        ],
        online=True,
        source=source,
        tags={"dataset": spec.name, "spec_version": str(spec.version)},
    )
    service = FeatureService(
        name=names.service,
        features=[view],
        description=f"Model inputs of {spec.name} spec version {spec.version}.",
    )
    return FeastDefinitions(entity=entity, source=source, view=view, service=service)


def repo_config_dict(paths: PlatformPaths) -> dict[str, Any]:
    """`feature_store.yaml` with the state folder filled in."""
    text = (FEATURE_REPO / "feature_store.yaml").read_text()
    return yaml.safe_load(text.replace(HOME_PLACEHOLDER, str(paths.root)))


class _KnownAdvice(logging.Filter):
    """Drop Feast's advice that `serve_features_while_materializing` matters most for SQL.

    The setting is deliberate here: it carries over when the registry moves to SQL.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "serve_features_while_materializing" not in record.getMessage()


def feature_store(paths: PlatformPaths) -> FeatureStore:
    """A FeatureStore on this state folder, configured by `feature_repo/feature_store.yaml`."""
    from feast import FeatureStore, RepoConfig

    logging.getLogger("feast.repo_config").addFilter(_KNOWN_ADVICE)

    (paths.root / "feast" / "data").mkdir(parents=True, exist_ok=True)
    config = RepoConfig(**repo_config_dict(paths))
    config.repo_path = FEATURE_REPO
    return FeatureStore(config=config)


_KNOWN_ADVICE = _KnownAdvice()


def _feast_type(spec: DatasetSpec, name: str) -> Any:
    from feast.types import Float64, String

    if name in spec.categorical_columns:
        return String
    if name in spec.feature_columns and spec.column(name).dtype == DType.STRING:
        return String
    return Float64


def _describe(spec: DatasetSpec, name: str) -> str:
    if name in spec.feature_columns:
        return spec.column(name).description
    derived = next(d for d in spec.derived if d.name == name)
    return derived.description or derived.expr


def _entity_description(spec: DatasetSpec) -> str:
    if spec.entity_key_column is None:
        return "Row identity derived from each row's content (the dataset has no key)."
    return spec.column(spec.entity_key).description
