"""Feast objects derived from the dataset spec, and the store configured under `MLOPS_HOME`.

The entity, source, feature view and feature service are built from the spec rather than
written by hand, so adding a column to the spec adds it to Feast too. `feature_repo/` holds
the `feature_store.yaml` both the platform and the `feast` CLI read. Feast is imported lazily:
it takes seconds to import, and the Dagster code location should load fast.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops_assets.paths import PROJECT_ROOT, PlatformPaths
from mlops_assets.profile import EMBEDDED, PRODUCTION, Profile, active_profile
from mlops_assets.spec import DatasetSpec, DType
from mlops_assets.spec.durations import parse_duration

if TYPE_CHECKING:
    from feast import Entity, FeatureService, FeatureStore, FeatureView, FileSource

FEATURE_REPO = PROJECT_ROOT / "feature_repo"
CONFIG_FILES = {
    EMBEDDED: FEATURE_REPO / "feature_store.yaml",
    PRODUCTION: FEATURE_REPO / "feature_store.production.yaml",
}


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
    return paths.feast_data / f"{FeastNames.for_spec(spec).view}.parquet"


def build_definitions(spec: DatasetSpec, paths: PlatformPaths) -> FeastDefinitions:
    """Entity, file source, feature view and feature service for the spec's features."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType

    names = FeastNames.for_spec(spec)
    entity = Entity(
        name=names.entity,
        join_keys=[spec.entity_key],
        value_type=ValueType.STRING if spec.text_entity_key else ValueType.INT64,
        description=_entity_description(spec),
    )
    source = FileSource(
        name=names.source,
        path=str(offline_path(paths, spec)),
        timestamp_field=spec.event_timestamp,
        description="Engineered features written by the `features` asset.",
    )
    view = FeatureView(
        name=names.view,
        entities=[entity],
        ttl=_ttl(spec),
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


def config_file(profile: Profile) -> Path:
    """The Feast configuration file of the profile."""
    return CONFIG_FILES[profile.name]


def repo_config_dict(paths: PlatformPaths, profile: Profile | None = None) -> dict[str, Any]:
    """The profile's Feast configuration with its `${VAR}` placeholders filled in.

    Filled from the profile rather than `os.path.expandvars`, so defaults apply and credentials
    are escaped for the URL they sit in; an unknown placeholder is an error, not a literal.
    """
    profile = profile or active_profile()
    values = profile.feast_substitutions(paths.root)
    config = yaml.safe_load(config_file(profile).read_text())
    missing = sorted(set(_placeholders(config)) - values.keys())
    if missing:
        raise ValueError(f"{config_file(profile)} uses unset placeholders: {missing}")
    return _fill(config, values)


def _placeholders(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [name for value in node.values() for name in _placeholders(value)]
    return _PLACEHOLDER.findall(node) if isinstance(node, str) else []


def _fill(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, str):
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], node)
    return node


class _KnownAdvice(logging.Filter):
    """Drop Feast's advice that `serve_features_while_materializing` matters most for SQL.

    The setting is deliberate here: it carries over when the registry moves to SQL.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "serve_features_while_materializing" not in record.getMessage()


def feature_store(
    paths: PlatformPaths, profile: Profile | None = None, *, online_only: bool = False
) -> FeatureStore:
    """A FeatureStore on this state folder, configured by the profile's file in feature_repo/.

    `online_only` (the prediction service) swaps the offline store for Feast's plain `file`
    one: the service never joins offline data, and its image carries no DuckDB, which Feast
    imports as soon as a configuration names it.
    """
    from feast import FeatureStore, RepoConfig

    logging.getLogger("feast.repo_config").addFilter(_KNOWN_ADVICE)
    profile = profile or active_profile()
    if not profile.is_production:  # the SQLite online store and file registry live here
        paths.feast_data.mkdir(parents=True, exist_ok=True)
    settings = repo_config_dict(paths, profile)
    if online_only:
        settings["offline_store"] = {"type": "file"}
    config = RepoConfig(**settings)
    config.repo_path = FEATURE_REPO
    return FeatureStore(config=config)


_KNOWN_ADVICE = _KnownAdvice()
_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def _feast_type(spec: DatasetSpec, name: str) -> Any:
    from feast.types import Float64, String

    if name in spec.categorical_columns:
        return String
    if name in spec.feature_columns and spec.column(name).dtype == DType.STRING:
        return String
    return Float64


def _ttl(spec: DatasetSpec) -> timedelta:
    """How long an entity's features stay valid in a point-in-time join.

    0 (never expires) by default: a house's last known attributes stay valid. With features
    of an entity's past, `windows.ttl`: a week-old lag means nothing a year later.
    """
    if spec.windows.history_features:
        return parse_duration(spec.windows.ttl)
    return timedelta(0)


def _describe(spec: DatasetSpec, name: str) -> str:
    if name in spec.feature_columns:
        return spec.column(name).description
    derived = next((d for d in spec.derived if d.name == name), None)
    if derived is not None:
        return derived.description or derived.expr
    if name in spec.windows.history_features:
        return (
            f"Of the entity's rows before the event time minus the horizon "
            f"({spec.training.horizon}): {name}."
        )
    return f"Calendar feature of the event time (UTC): {name}."


def _entity_description(spec: DatasetSpec) -> str:
    if spec.entity_key_column is None:
        return "Row identity derived from each row's content (the dataset has no key)."
    return spec.column(spec.entity_key).description
