"""The `model` step's federated path: train across the spec's sites, keep what the sites report.

The sites train one XGBoost model and score it, the constant baseline and the current champion
on their own test rows (`mlops_assets.federated`); what comes back is aggregate only. These
functions turn that into the same model folder a central training writes (model file,
manifest, spec, drift reference), plus the sites' evaluation, so the report, gates, registry,
serving and drift monitoring take a federated model unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlops_assets.core.candidates import CONSTANT
from mlops_assets.core.families import MODEL_FILES, BoosterModel
from mlops_assets.model_registry.champion import ChampionInfo
from mlops_assets.model_registry.model_store import (
    STATISTICS_FILE,
    ModelManifest,
    load_manifest,
)
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import DatasetSpec, Family
from mlops_assets.training.candidate import TrainingFacts, TrainingRefused, lineage_fields

if TYPE_CHECKING:  # the sites' code brings XGBoost: imported when a federated run needs it
    from mlops_assets.federated.coordinator import FederatedResult
    from mlops_assets.federated.site_worker import ChampionModel

FEDERATED = "federated"  # the evaluation protocol a federated model's manifest records
SITES_FILE = "federated_evaluation.json"  # the sites' metrics, saved with the model


def champion_for_sites(champion: ChampionInfo | None, paths: PlatformPaths) -> ChampionModel | None:
    """The champion as the sites need it: its saved model folder and how it reads rows."""
    if champion is None:
        return None
    folder = paths.model(champion.run_id)
    if not folder.exists():
        raise TrainingRefused(
            f"champion v{champion.version} (run {champion.run_id}) has no local copy at {folder}: "
            "the sites score it on their own rows from that folder; restore it (or roll back "
            "to a version that has one) before training federated"
        )
    from mlops_assets.federated.site_worker import ChampionModel

    manifest = load_manifest(paths, champion.run_id)
    return ChampionModel(
        folder=str(folder),
        family=manifest.family,
        features=list(manifest.features),
        imputation=dict(manifest.imputation),
        run_id=champion.run_id,
        version=champion.version,
    )


def federated_booster(result: FederatedResult) -> BoosterModel:
    """The model every site ended with, as central training would have saved it."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(result.model))
    return BoosterModel(booster)


def federated_manifest(
    spec: DatasetSpec, result: FederatedResult, facts: TrainingFacts, params: dict[str, Any]
) -> ModelManifest:
    """The manifest of a federated model: the central one's fields, the sites as its protocol."""
    primary = spec.gates.primary_metric
    rows = {site: summary["rows"] for site, summary in result.sites.items()}
    return ModelManifest(
        **lineage_fields(spec, facts),
        params={**params, "rounds": result.best_iteration + 1},
        validation_score=float(result.pooled.get(primary, float("nan"))),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        family=str(Family.XGBOOST),
        model_file=MODEL_FILES[Family.XGBOOST],
        evaluation={
            "protocol": FEDERATED,
            "why": f"training.federated names {len(result.sites)} sites; rows stay at each site",
            "folds": None,
            "rows": sum(sum(r.values()) for r in rows.values()),
            "evaluation_rows": sum(r["test"] for r in rows.values()),
            "seed": int(params.get("seed", spec.training.seed)),
            "winner": str(Family.XGBOOST),
            "sites": rows,
        },
        candidates={str(Family.XGBOOST): {"score": result.pooled.get(primary), "settings": params}},
        imputation=facts.imputation,
    )


def model_documents(
    spec: DatasetSpec, result: FederatedResult, champion: ChampionModel | None, service: str
) -> dict[str, Any]:
    """The JSON files saved with a federated model: the sites' evaluation, the drift reference."""
    evaluation = {
        "champion": {"run_id": champion.run_id, "version": champion.version} if champion else None,
        "baseline": CONSTANT[spec.task],
        "pooled": result.pooled,
        "pooled_baseline": result.pooled_baseline,
        "pooled_champion": result.pooled_champion,
        "sites": {
            site: {
                key: summary.get(key)
                for key in ("rows", "metrics", "baseline_metrics", "champion_metrics", "files")
            }
            for site, summary in result.sites.items()
        },
        "seconds": result.seconds,
    }
    statistics = {
        "content_hash": result.data_hash,
        "feature_service": service,
        "imputation": result.imputation,
        **result.statistics,
    }
    return {SITES_FILE: evaluation, STATISTICS_FILE: statistics}


def no_rows() -> pd.DataFrame:
    """The evaluation rows a federated model saves centrally: none (they stay at the sites)."""
    return pd.DataFrame({"row": pd.Series([], dtype="int64"), "fold": [], "y": []})
