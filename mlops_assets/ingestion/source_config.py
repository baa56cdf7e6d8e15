"""Run config that picks the data source of a batch (visible in the launchpad)."""

from __future__ import annotations

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


class SourceKind(StrEnum):
    """The kinds of data source the platform reads."""

    SYNTHETIC = "synthetic"
    FILE = "file"
    LANDING = "landing"
    SKLEARN = "sklearn"


class SourceConfig(dg.Config):
    """Where the rows of a batch come from."""

    kind: str = Field(
        default=SourceKind.SYNTHETIC.value,
        description="Which source to read: synthetic, file, landing or sklearn.",
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


def build_source(config: SourceConfig, paths: PlatformPaths, batch: str) -> DataSource:
    """Turn run config into a `DataSource` for one batch."""
    if config.kind not in set(SourceKind):
        raise ValueError(
            f"unknown source kind {config.kind!r}; known: {[k.value for k in SourceKind]}"
        )
    if config.kind == SourceKind.FILE:
        if not config.path:
            raise ValueError("source kind 'file' needs a path")
        return FileSource(config.path, config.file_format)  # type: ignore[arg-type]
    if config.kind == SourceKind.LANDING:
        return LandingSource(paths.landing, batch)
    if config.kind == SourceKind.SKLEARN:
        return SklearnSource(config.dataset)
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
