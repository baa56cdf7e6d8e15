"""Evaluation protocols: which rows estimate a model's quality, and whether there are enough.

Small data is cross-validated: every row is predicted once by a model that never saw it
(out-of-fold), folds are stratified by class and grouped by entity where an entity has several
rows, so no entity leaks from training into its own evaluation. Large data keeps the stable
entity-hash split. Every refusal names the setting that decides it and where to change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_assets.spec import DatasetSpec, Protocol, TaskType, TrainingSettings

INNER_SPLITS = 5  # early stopping inside a fold uses a fifth of the training folds


class TrainingDataError(ValueError):
    """The training data cannot produce a meaningful model; the message says why and what to do."""


@dataclass(frozen=True)
class Plan:
    """The training settings in force for one run, with the protocol resolved."""

    protocol: Protocol  # cross_validation or holdout, never auto
    settings: TrainingSettings
    why: str  # how the protocol was chosen
    spec_path: str

    def where(self, field: str, option: str = "") -> str:
        """Where a setting is changed: the spec field, and the `mlops run` option if any."""
        place = f"training.{field} in {self.spec_path}"
        return f"{place}, or `mlops run {option}`" if option else place


def resolve_settings(spec: DatasetSpec, overrides: dict[str, Any]) -> TrainingSettings:
    """The spec's `training:` with one run's overrides (None: keep the spec's), validated."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return spec.training
    return TrainingSettings.model_validate({**spec.training.model_dump(), **given})


def plan_for(rows: int, settings: TrainingSettings, spec_path: Path | str) -> Plan:
    """Resolve `auto` by the number of labelled rows."""
    if settings.protocol != Protocol.AUTO:
        return Plan(
            settings.protocol,
            settings,
            f"{settings.protocol} (set in training.protocol)",
            str(spec_path),
        )
    if rows < settings.cv_below_rows:
        why = f"auto: {rows:,} rows < training.cv_below_rows {settings.cv_below_rows:,}"
        return Plan(Protocol.CROSS_VALIDATION, settings, why, str(spec_path))
    why = f"auto: {rows:,} rows >= training.cv_below_rows {settings.cv_below_rows:,}"
    return Plan(Protocol.HOLDOUT, settings, why, str(spec_path))


def check_labels(y: np.ndarray, spec: DatasetSpec, plan: Plan) -> None:
    """Refuse a label set no protocol can learn from: too few rows, nulls, constant, not 0/1."""
    needed = plan.settings.min_rows
    if len(y) < needed:
        raise TrainingDataError(
            f"the training set has {len(y)} rows; at least {needed} are needed for any "
            f"protocol ({plan.where('min_rows')})"
        )
    missing = int(np.isnan(y).sum())
    if missing:
        raise TrainingDataError(f"label column {spec.target!r} has {missing} nulls")
    if np.unique(y).size < 2:
        raise TrainingDataError(f"label column {spec.target!r} is constant ({y[0]!r})")
    if spec.task == TaskType.BINARY_CLASSIFICATION:
        unexpected = sorted(set(np.unique(y)) - {0.0, 1.0})
        if unexpected:
            raise TrainingDataError(
                f"label column {spec.target!r} must be 0/1, found {unexpected[:5]}"
            )
    if spec.task == TaskType.MULTICLASS_CLASSIFICATION:
        absent = [c for i, c in enumerate(spec.classes) if not np.any(y == i)]
        if absent:
            raise TrainingDataError(
                f"label column {spec.target!r} has no rows of classes {absent}: every class "
                "of the spec's categories needs rows to learn from (remove the class from the "
                "target's categories, or deliver rows of it)"
            )


def check_holdout(splits: dict[str, np.ndarray], spec: DatasetSpec, plan: Plan) -> None:
    """Each split needs `min_rows` rows, and the train split both classes or several values."""
    needed = plan.settings.min_rows
    for name in ("train", "validation", "test"):
        rows = len(splits[name])
        if rows < needed:
            raise TrainingDataError(
                f"{name} split has {rows} rows; at least {needed} are needed "
                f"({plan.where('min_rows')}; or use protocol cross_validation: "
                f"training.protocol, or `mlops run --protocol cross_validation`)"
            )
    if np.unique(splits["train"]).size < 2:
        raise TrainingDataError(f"label column {spec.target!r} is constant in the train split")


def assign_folds(y: np.ndarray, groups: np.ndarray, spec: DatasetSpec, plan: Plan) -> np.ndarray:
    """The fold (0..k-1) of each row: stratified by class, grouped by entity when they repeat."""
    folds = plan.settings.folds
    repeated = np.unique(groups).size < len(groups)
    if repeated and np.unique(groups).size < folds:
        raise TrainingDataError(
            f"{np.unique(groups).size} entities cannot fill {folds} folds (each entity stays "
            f"in one fold): lower {plan.where('folds', '--folds N')}"
        )
    if spec.task == TaskType.BINARY_CLASSIFICATION:
        for value, count in zip(*np.unique(y, return_counts=True), strict=True):
            if count < folds:
                raise TrainingDataError(
                    f"class {int(value)} of {spec.target!r} has {count} rows, fewer than the "
                    f"{folds} folds (each fold needs both classes): lower "
                    f"{plan.where('folds', '--folds N')}"
                )
    if spec.task == TaskType.MULTICLASS_CLASSIFICATION:
        counts = np.bincount(y.astype(np.int64), minlength=len(spec.classes))
        for name, count in zip(spec.classes, counts, strict=True):
            if count < folds:
                raise TrainingDataError(
                    f"class {name!r} of {spec.target!r} has {count} rows, fewer than the "
                    f"{folds} folds (each fold needs every class): lower "
                    f"{plan.where('folds', '--folds N')}"
                )
    return split_indices(y, groups, spec.task, folds, plan.settings.seed)


def split_indices(
    y: np.ndarray, groups: np.ndarray, task: TaskType, folds: int, seed: int
) -> np.ndarray:
    """Fold numbers from scikit-learn's (stratified, grouped) k-fold splitters, seeded."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    repeated = np.unique(groups).size < len(groups)
    classes = task.is_classification and np.bincount(y.astype(np.int64)).min() >= folds
    if classes:
        splitter: Any = (
            StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
            if repeated
            else StratifiedKFold(folds, shuffle=True, random_state=seed)
        )
    else:
        splitter = (
            GroupKFold(folds, shuffle=True, random_state=seed)
            if repeated
            else KFold(folds, shuffle=True, random_state=seed)
        )
    assignment = np.empty(len(y), dtype=np.int64)
    pieces = splitter.split(np.zeros(len(y)), y, groups if repeated else None)
    for fold, (_, held_out) in enumerate(pieces):
        assignment[held_out] = fold
    return assignment


def inner_split(
    y: np.ndarray, groups: np.ndarray, task: TaskType, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(fit, early-stopping) row positions inside a fold's training rows, same rules as folds.

    Early stopping on the held-out fold would let the fold choose its own model; this split
    keeps the held-out fold unseen until it is predicted.
    """
    splits = INNER_SPLITS
    if task.is_classification:
        splits = max(2, min(INNER_SPLITS, int(np.bincount(y.astype(np.int64)).min())))
    assignment = split_indices(y, groups, task, splits, seed)
    return np.flatnonzero(assignment != 0), np.flatnonzero(assignment == 0)
