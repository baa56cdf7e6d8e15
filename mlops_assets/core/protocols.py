"""Evaluation protocols: which rows estimate a model's quality, and whether there are enough.

Data with its own event time is judged the way a deployed model is used: on rows later than
every row the model learned from. Small data gets a rolling-origin backtest (an expanding
window: fold k trains on everything before its cut-off, minus a gap of the forecast horizon,
and is judged on the block after it); large data a latest-period split. Data without a
meaningful time is cross-validated when small (every row predicted once by a model that never
saw it, folds stratified by class and grouped by entity where an entity has several rows) and
keeps the stable entity-hash split when large. Every refusal names the setting that decides it
and where to change it.
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

    protocol: Protocol  # cross_validation, holdout, backtest or latest_period
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


def plan_for(
    rows: int, settings: TrainingSettings, spec_path: Path | str, event_time: str | None = None
) -> Plan:
    """Resolve `auto` and `time_ordered` by the data's event time and number of labelled rows.

    `event_time` names the event-time column delivered in the data (None: the data has no
    time of its own, only the ingestion time, which orders nothing a model learns from).
    """
    chosen, path = Protocol(settings.protocol), str(spec_path)
    small = rows < settings.cv_below_rows
    size = (
        f"{rows:,} rows {'<' if small else '>='} training.cv_below_rows {settings.cv_below_rows:,}"
    )
    if chosen in (Protocol.AUTO, Protocol.TIME_ORDERED) and event_time is not None:
        resolved = Protocol.BACKTEST if small else Protocol.LATEST_PERIOD
        how = "rolling-origin backtest" if small else "latest-period test"
        why = (
            f"{chosen}: event time {event_time!r} is in the data, so every judged row is later "
            f"than the rows its model learned from ({how}; {size})"
        )
        return Plan(resolved, settings, why, path)
    if chosen == Protocol.TIME_ORDERED:
        raise TrainingDataError(
            "protocol time_ordered needs an event time delivered in the data (a column with "
            "role event_timestamp); use protocol auto, cross_validation or holdout"
        )
    if chosen == Protocol.AUTO:
        resolved = Protocol.CROSS_VALIDATION if small else Protocol.HOLDOUT
        return Plan(resolved, settings, f"auto: {size}; the data has no event time", path)
    why = f"{chosen} (set in training.protocol)"
    if chosen.in_time and event_time is None:
        raise TrainingDataError(
            f"protocol {chosen} orders rows by event time, and the data has none (a column "
            "with role event_timestamp); use protocol auto, cross_validation or holdout"
        )
    if not chosen.in_time and event_time is not None:
        why += (
            f"; rows are not ordered by event time {event_time!r}, so models are judged on rows "
            "between those they learned from and the estimate may use the future (protocol "
            "auto judges later rows only)"
        )
    return Plan(chosen, settings, why, path)


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


@dataclass(frozen=True)
class Folds:
    """Which fold judges each row, and which rows each fold may train on.

    Cross-validation: every row is judged once, and a fold trains on every other fold's rows.
    Backtest: the earliest block is never judged (`-1`), and fold k trains only on rows earlier
    than its cut-off minus the horizon (`training_rows`), so it never sees its own future.
    """

    assignment: np.ndarray  # fold judging each row; -1: a row only ever trained on
    training_rows: tuple[np.ndarray, ...] = ()  # per fold: positions it trains on
    times: np.ndarray | None = None  # event time of each row (ns), for ordered early stopping
    windows: tuple[dict[str, str], ...] = ()  # per fold: its training and judged time ranges

    @property
    def numbers(self) -> np.ndarray:
        """The folds, in order."""
        return np.unique(self.assignment[self.assignment >= 0])

    @property
    def judged(self) -> np.ndarray:
        """Positions of the rows some fold judges (every row, for cross-validation)."""
        return np.flatnonzero(self.assignment >= 0)

    def training(self, fold: int) -> np.ndarray:
        """Positions of the rows fold `fold` trains on."""
        if self.training_rows:
            return self.training_rows[int(fold)]
        return np.flatnonzero(self.assignment != fold)

    def early_stopping(
        self, training: np.ndarray, y: np.ndarray, groups: np.ndarray, task: TaskType, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(fit, early-stopping) positions among `training`: the latest fifth when ordered."""
        if self.times is None:
            fit, stop = inner_split(y[training], groups[training], task, seed)
            return training[fit], training[stop]
        return latest_share(training, self.times, 1 / INNER_SPLITS)


def latest_share(
    positions: np.ndarray, times: np.ndarray, share: float
) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, latest) positions: the latest `share` of `positions` by event time."""
    ordered = positions[np.argsort(times[positions], kind="stable")]
    cut = max(1, min(len(ordered) - 1, round(len(ordered) * (1 - share))))
    return ordered[:cut], ordered[cut:]


def backtest_folds(
    times: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    spec: DatasetSpec,
    plan: Plan,
) -> Folds:
    """A rolling-origin backtest: `folds` cut-offs, each fold trained on all rows before it.

    The rows are cut into `folds + 1` blocks of about equal size at distinct event times (rows
    of one instant stay in one block). Fold k is judged on block k + 1 and trains on the rows
    earlier than that block's start minus the horizon; with `unseen_entities`, also without the
    judged block's entities. Refused, naming what was found and needed, when the history is too
    short for the folds asked.
    """
    settings, gap = plan.settings, np.int64(plan.settings.gap.total_seconds() * 1e9)
    folds = settings.folds
    distinct = np.unique(times)
    span = f"{event_day(distinct[0])} to {event_day(distinct[-1])}" if len(distinct) else "no rows"
    if len(distinct) < folds + 1:
        raise TrainingDataError(
            f"a backtest with {folds} folds needs at least {folds + 1} distinct event times; "
            f"the data has {len(distinct)} ({span}): lower {plan.where('folds', '--folds N')}"
        )
    ordered = np.sort(times)
    cuts = np.unique(ordered[[len(ordered) * i // (folds + 1) for i in range(1, folds + 1)]])
    if len(cuts) < folds:
        raise TrainingDataError(
            f"{len(times)} rows over {len(distinct)} event times ({span}) cannot be cut into "
            f"{folds + 1} blocks at distinct times: lower {plan.where('folds', '--folds N')}"
        )
    block = np.searchsorted(cuts, times, side="right")  # 0 = before the first cut-off
    assignment = block - 1
    training_rows, windows = [], []
    for fold, cut in enumerate(cuts):
        judged = block == fold + 1
        allowed = times < cut - gap
        if settings.unseen_entities:
            allowed &= ~np.isin(groups, groups[judged])
        rows = np.flatnonzero(allowed)
        _check_fold(fold, rows, y, times[judged], cut, spec, plan, span)
        training_rows.append(rows)
        windows.append(
            {
                "train_from": event_day(times[rows].min()),
                "train_to": event_day(times[rows].max()),
                "judged_from": event_day(times[judged].min()),
                "judged_to": event_day(times[judged].max()),
                "train_rows": str(len(rows)),
                "judged_rows": str(int(judged.sum())),
            }
        )
    return Folds(assignment, tuple(training_rows), times, tuple(windows))


def _check_fold(
    fold: int,
    rows: np.ndarray,
    y: np.ndarray,
    judged_times: np.ndarray,
    cut: np.int64,
    spec: DatasetSpec,
    plan: Plan,
    span: str,
) -> None:
    needed = plan.settings.min_rows
    if len(rows) < needed or np.unique(y[rows]).size < 2:
        found = f"{len(rows)} rows" if len(rows) < needed else f"one value of {spec.target!r}"
        raise TrainingDataError(
            f"backtest fold {fold + 1} (judged from {event_day(judged_times.min())}) has "
            f"{found} to train on before {event_day(cut)} minus the horizon "
            f"{plan.settings.horizon}; at least {needed} rows with several label values are "
            f"needed. The data covers {span}: "
            f"lower {plan.where('folds', '--folds N')}, or {plan.where('min_rows')}, or "
            f"shorten {plan.where('horizon')}"
        )


def event_day(value: np.int64 | int) -> str:
    """An event time (ns since the epoch) as an ISO date, or date and time when not midnight."""
    stamp = np.datetime64(int(value), "ns")
    text = np.datetime_as_string(stamp, unit="s")
    return text.removesuffix("T00:00:00")


def as_event_times(values: Any) -> np.ndarray:
    """Event times as int64 nanoseconds since the epoch (UTC), for ordering and cut-offs."""
    import pandas as pd

    stamps = pd.to_datetime(pd.Series(values), utc=True)
    return (
        stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").view(np.int64)
    )


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
