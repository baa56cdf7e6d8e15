"""Run config that picks the data source of a batch (visible in the launchpad).

The default kind, `auto`, makes a re-run safe from anywhere: the launchpad fills in defaults,
not the config a partition was first materialized with, so a batch that exists is read again
from the source its manifest records, never from whatever the defaults happen to say.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import dagster as dg
from pydantic import Field

from mlops_assets.paths import PlatformPaths
from mlops_assets.sources import (
    DataSource,
    FileSource,
    LandingSource,
    SklearnSource,
    SyntheticConfig,
    SyntheticSource,
)
from mlops_assets.sources.retail import RetailConfig, RetailSource


class SourceKind(StrEnum):
    """The kinds of data source the platform reads."""

    AUTO = "auto"
    SYNTHETIC = "synthetic"
    FILE = "file"
    LANDING = "landing"
    SKLEARN = "sklearn"
    RETAIL = "retail"


SYNTHETIC_FIELDS = ("rows", "seed", "scenario", "faults", "fault_rate", "first_house_id")
RETAIL_FIELDS = ("rows", "seed", "days", "start")


class SourceConfig(dg.Config):
    """Where the rows of a batch come from."""

    kind: str = Field(
        default=SourceKind.AUTO.value,
        description="Which source to read: auto, synthetic, file, landing, sklearn or retail. "
        "auto "
        "with the synthetic settings below left at their defaults: a batch ingested before is "
        "read again from the source its manifest records, a new batch reads its landed file "
        "if one is waiting, else synthetic data. auto with a synthetic setting changed: "
        "synthetic data with those settings.",
    )
    replace: bool = Field(
        default=False,
        description="Allow this run to replace the data of a batch that already holds a "
        "different delivery (the manifest records both content hashes). Without it, a "
        "different delivery under an existing key is refused and nothing changes.",
    )
    allow_repeat: bool = Field(
        default=False,
        description="Accept a delivery whose content equals what another batch already holds "
        "(the same file delivered again under a new batch key); its rows are then counted "
        "again, and the manifest names the batch it repeats. Without it, such a delivery is "
        "refused naming that batch and nothing changes.",
    )
    path: str = Field(default="", description="file: a path, a glob or an http(s) URL.")
    file_format: str = Field(default="auto", description="file: auto, csv or parquet.")
    dataset: str = Field(default="breast_cancer", description="sklearn: bundled dataset name.")
    rows: int = Field(default=20_000, ge=1, description="synthetic: number of sales.")
    seed: int = Field(default=42, description="synthetic: random seed.")
    scenario: str = Field(
        default="none", description="synthetic: none, covariate_shift, market_jump."
    )
    faults: list[str] = Field(default_factory=list, description="synthetic: injected faults.")
    fault_rate: float = Field(default=0.02, ge=0, le=0.5, description="synthetic: share per fault.")
    first_house_id: int = Field(default=1, ge=1, description="synthetic: first house id.")
    days: int = Field(default=730, ge=1, description="retail: days of sales per series.")
    start: str = Field(default="2023-01-01", description="retail: the first day (ISO date).")


def resolve_source(
    config: SourceConfig, paths: PlatformPaths, batch: str, manifest: dict | None
) -> SourceConfig:
    """The concrete source of this run: `auto` becomes the batch's own recorded source."""
    if config.kind not in set(SourceKind):
        raise ValueError(
            f"unknown source kind {config.kind!r}; known: {[k.value for k in SourceKind]}"
        )
    if config.kind != SourceKind.AUTO:
        return config
    defaults = SourceConfig()
    if (config.path, config.dataset) != (defaults.path, defaults.dataset):
        raise ValueError(
            "a path or dataset is read only with kind 'file' or 'sklearn', not 'auto': "
            "set the kind of source you mean"
        )
    if any(getattr(config, name) != getattr(defaults, name) for name in SYNTHETIC_FIELDS):
        return config.model_copy(update={"kind": SourceKind.SYNTHETIC.value})  # settings given
    if manifest is not None:
        kept = {"replace": config.replace, "allow_repeat": config.allow_repeat}
        return recorded_source(manifest).model_copy(update=kept)
    if LandingSource(paths.landing, batch).has_file():
        return config.model_copy(update={"kind": SourceKind.LANDING.value})
    return config.model_copy(update={"kind": SourceKind.SYNTHETIC.value})


def recorded_form(config: SourceConfig) -> dict:
    """What the manifest keeps of a source: enough to read the same delivery again."""
    fields = {
        SourceKind.FILE: ("path", "file_format"),
        SourceKind.SKLEARN: ("dataset",),
        SourceKind.LANDING: (),
        SourceKind.SYNTHETIC: SYNTHETIC_FIELDS,
        SourceKind.RETAIL: RETAIL_FIELDS,
    }[SourceKind(config.kind)]
    return {"kind": config.kind, **{name: getattr(config, name) for name in fields}}


def recorded_source(manifest: dict) -> SourceConfig:
    """The source a manifest records (older manifests hold only its description)."""
    if "source_config" in manifest:
        return SourceConfig(**manifest["source_config"])
    kind, _, detail = str(manifest.get("source", "")).partition(":")
    if kind == SourceKind.FILE:
        return SourceConfig(kind=kind, path=detail)
    if kind == SourceKind.SKLEARN:
        return SourceConfig(kind=kind, dataset=detail)
    if kind == SourceKind.LANDING:
        return SourceConfig(kind=kind)
    if kind == SourceKind.SYNTHETIC:
        head, _, fault_list = detail.partition("faults=")
        knobs = dict(part.split("=", 1) for part in head.split(",") if "=" in part)
        faults = [] if fault_list in ("", "none") else fault_list.split(",")
        return SourceConfig(
            kind=kind,
            rows=int(knobs.get("rows", 20_000)),
            seed=int(knobs.get("seed", 42)),
            scenario=knobs.get("scenario", "none"),
            faults=faults,
        )
    raise ValueError(f"the manifest of this batch records no readable source: {manifest!r}")


def build_source(
    config: SourceConfig, paths: PlatformPaths, batch: str, text_columns: tuple[str, ...] = ()
) -> DataSource:
    """Turn a resolved source config into a `DataSource` for one batch.

    `text_columns` are read from a CSV as the text written there (the spec's text key).
    """
    if config.kind not in set(SourceKind) or config.kind == SourceKind.AUTO:
        raise ValueError(f"source kind {config.kind!r} must be resolved first")
    if config.kind == SourceKind.FILE:
        if not config.path:
            raise ValueError("source kind 'file' needs a path")
        return FileSource(config.path, config.file_format, text_columns)  # type: ignore[arg-type]
    if config.kind == SourceKind.LANDING:
        return LandingSource(paths.landing, batch, text_columns)
    if config.kind == SourceKind.SKLEARN:
        return SklearnSource(config.dataset)
    if config.kind == SourceKind.RETAIL:
        try:
            start = date.fromisoformat(config.start)
        except ValueError as exc:
            raise ValueError(f"retail: start {config.start!r} is not an ISO date") from exc
        return RetailSource(
            RetailConfig(rows=config.rows, days=config.days, seed=config.seed, start=start)
        )
    return SyntheticSource(
        SyntheticConfig(
            rows=config.rows,
            seed=config.seed,
            scenario=config.scenario,
            faults=tuple(config.faults),
            fault_rate=config.fault_rate,
            first_house_id=config.first_house_id,
        )
    )
