"""The competition: every candidate family on the same rows, the best becomes the challenger.

Holdout and latest period (large data): each family is fitted on the train split, ranked on
the validation split and estimated on the test split. Cross-validation and backtest (small
data): each family predicts every judged row from a model that never saw it (out-of-fold;
in a backtest, from a model trained only on earlier rows), is ranked and estimated on those
predictions, and the winner is refitted on all rows with the settings the folds chose (for
XGBoost: its parameters and the mean number of trees that early stopping kept inside the
folds, on an inner split of the training rows -- their latest fifth when time orders them --
so the judged fold never picks its own model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_assets.core.families import BoosterModel, Model
from mlops_assets.core.linear_model import fit_linear
from mlops_assets.core.protocols import Folds, Plan
from mlops_assets.core.training import Fit, TrainParams, fit_rounds, search_candidates, train
from mlops_assets.core.uncertainty import better_sign, metric
from mlops_assets.progress import Progress, silent
from mlops_assets.spec import DatasetSpec, Family, Protocol, TaskType

CONSTANT = {
    TaskType.REGRESSION: "mean",
    TaskType.BINARY_CLASSIFICATION: "prior",
    TaskType.MULTICLASS_CLASSIFICATION: "prior",
}


@dataclass(frozen=True)
class Rows:
    """The labelled rows a competition runs on: matrix, labels, entity and time of each row."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    times: np.ndarray | None = None  # event time (ns) when the data has one


@dataclass(frozen=True)
class Candidate:
    """One family's result: its score for ranking, its estimate rows' predictions, its model."""

    family: Family
    score: float  # primary metric on the ranking rows (validation split, or out-of-fold)
    predictions: np.ndarray  # on the evaluation rows (test split, or the judged rows)
    model: Model  # what would be served
    settings: dict[str, Any]  # what re-creates it: parameters, number of trees, strength
    search: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Competition:
    """All candidates and baselines on the same evaluation rows, and the winner."""

    protocol: Protocol
    rows: np.ndarray  # positions of the evaluation rows in the training table
    folds: np.ndarray  # fold of each evaluation row (0 everywhere for holdout)
    y: np.ndarray
    candidates: dict[str, Candidate]
    baselines: dict[str, np.ndarray]
    winner: str

    @property
    def challenger(self) -> Candidate:
        """The winning candidate."""
        return self.candidates[self.winner]


def compete(
    rows: Rows,
    spec: DatasetSpec,
    plan: Plan,
    params: TrainParams,
    *,
    folds: Folds | None = None,
    split: np.ndarray | None = None,
    progress: Progress = silent,
    fit: Fit | None = None,
) -> Competition:
    """Run every family of the plan under its protocol and pick the best on the primary metric.

    `fit` trains the holdout's XGBoost boosters (default: in this process). Cross-validation
    always trains here: it is the small-data protocol, where a cluster's fixed cost per fit
    (shipping the rows, starting the workers' collective) exceeds the fit itself.
    """
    families = plan.settings.families
    if plan.protocol.folded:
        assert folds is not None
        candidates = {}
        kind = (
            "fold rolling-origin backtest"
            if plan.protocol == Protocol.BACKTEST
            else "fold cross-validation"
        )
        for number, family in enumerate(families, start=1):
            progress(
                f"candidate {number}/{len(families)}: {family}, "
                f"{len(folds.numbers)}-{kind} on {len(rows.y):,} rows"
            )
            candidates[str(family)] = cross_validate(
                family, rows, folds, spec, plan, params, progress=progress
            )
        baselines = _cv_baselines(rows, folds, spec, plan)
        evaluation = folds.judged
        fold_of_row = folds.assignment[evaluation]
    else:
        assert split is not None
        candidates = {}
        for number, family in enumerate(families, start=1):
            progress(
                f"candidate {number}/{len(families)}: {family}, {plan.protocol.replace('_', ' ')} "
                f"({int(np.sum(split == 'train')):,} train rows)"
            )
            candidates[str(family)] = _holdout(
                family, rows, split, spec, plan, params, progress, fit
            )
        train_rows = split == "train"
        evaluation = np.flatnonzero(split == "test")
        baselines = _baselines(rows, train_rows, evaluation, spec, plan)
        fold_of_row = np.zeros(len(evaluation), dtype=np.int64)
    primary = spec.gates.primary_metric
    sign = better_sign(primary)
    ranked = sorted(candidates, key=lambda name: -sign * _finite(candidates[name].score, sign))
    scores = ", ".join(f"{name} {c.score:.4g}" for name, c in candidates.items())
    progress(f"{primary}: {scores}; challenger: {ranked[0]}")
    return Competition(
        plan.protocol,
        evaluation,
        fold_of_row,
        rows.y[evaluation],
        candidates,
        baselines,
        ranked[0],
    )


def cross_validate(
    family: Family | str,
    rows: Rows,
    folds: Folds,
    spec: DatasetSpec,
    plan: Plan,
    params: TrainParams,
    *,
    search: bool = True,
    progress: Progress = silent,
) -> Candidate:
    """Out-of-fold predictions of one family's settings on the judged rows, and its refit.

    With `search` off, `params` are evaluated as they are (re-evaluating a champion's settings).
    """
    family = Family(family)
    judged = folds.judged
    if family == Family.LINEAR:
        oof = empty_predictions(len(rows.y), spec)
        for fold in folds.numbers:
            held, training = folds.assignment == fold, folds.training(fold)
            linear = fit_linear(rows.x[training], rows.y[training], spec, plan.settings.seed)
            oof[held] = linear.predict(rows.x[held])
        model = fit_linear(rows.x, rows.y, spec, plan.settings.seed)
        score = metric(
            rows.y[judged], oof[judged], spec.gates.primary_metric, spec.task, spec.threshold
        )
        return Candidate(
            family, score, oof[judged], model, {"regularisation": model.regularisation}
        )
    # One thread: on a few thousand rows more threads cost more than they save (and under a
    # busy CPU their spin-waits cost several times the training itself).
    params = params.with_changes(threads=1)
    trials = search_candidates(params, plan.settings.search_trials if search else 0)
    results = []
    for number, trial in enumerate(trials, start=1):
        label = f"xgboost trial {number}/{len(trials)}" if len(trials) > 1 else "xgboost"
        per_fold = progress if len(trials) == 1 else silent  # a search says one line a trial
        results.append(_xgboost_oof(rows, folds, spec, plan, trial, label, per_fold))
        progress(f"{label}: out-of-fold {spec.gates.primary_metric} {results[-1][1]:.4g}")
    sign = better_sign(spec.gates.primary_metric)
    best = max(range(len(results)), key=lambda i: sign * _finite(results[i][1], sign))
    oof, score, rounds = results[best]
    chosen = trials[best]
    booster = fit_rounds(rows.x, rows.y, spec, chosen, rounds)
    history = [
        {**t.model_dump(), "oof_score": r[1], "rounds": r[2]}
        for t, r in zip(trials, results, strict=True)
    ]
    return Candidate(
        family,
        score,
        oof[judged],
        BoosterModel(booster),
        {**chosen.model_dump(), "rounds": rounds},
        history if len(trials) > 1 else [],
    )


def _xgboost_oof(
    rows: Rows,
    folds: Folds,
    spec: DatasetSpec,
    plan: Plan,
    params: TrainParams,
    label: str = "xgboost",
    progress: Progress = silent,
) -> tuple[np.ndarray, float, int]:
    """Out-of-fold predictions, their score, and the mean number of trees early stopping kept."""
    oof = empty_predictions(len(rows.y), spec)
    kept = []
    every_fold = folds.numbers
    for number, fold in enumerate(every_fold, start=1):
        fit, stop = folds.early_stopping(
            folds.training(fold), rows.y, rows.groups, spec.task, plan.settings.seed + int(fold)
        )
        trained = train(rows.x[fit], rows.y[fit], rows.x[stop], rows.y[stop], spec, params)
        held = folds.assignment == fold
        oof[held] = BoosterModel(trained.booster).predict(rows.x[held])
        kept.append(trained.best_iteration + 1)
        progress(f"{label}: fold {number}/{len(every_fold)}, {kept[-1]:,} trees")
    judged = folds.judged
    return (
        oof,
        metric(rows.y[judged], oof[judged], spec.gates.primary_metric, spec.task, spec.threshold),
        round(float(np.mean(kept))),
    )


def _holdout(
    family: Family,
    rows: Rows,
    split: np.ndarray,
    spec: DatasetSpec,
    plan: Plan,
    params: TrainParams,
    progress: Progress = silent,
    fit: Fit | None = None,
) -> Candidate:
    parts = {name: split == name for name in ("train", "validation", "test")}
    x_train, y_train = rows.x[parts["train"]], rows.y[parts["train"]]
    x_valid, y_valid = rows.x[parts["validation"]], rows.y[parts["validation"]]
    primary = spec.gates.primary_metric
    if family == Family.LINEAR:
        linear = fit_linear(x_train, y_train, spec, plan.settings.seed)
        score = metric(y_valid, linear.predict(x_valid), primary, spec.task, spec.threshold)
        return Candidate(
            family,
            score,
            linear.predict(rows.x[parts["test"]]),
            linear,
            {"regularisation": linear.regularisation},
        )
    trials = plan.settings.search_trials
    trained = train(x_train, y_train, x_valid, y_valid, spec, params, trials, progress, fit)
    model = BoosterModel(trained.booster)
    score = metric(y_valid, model.predict(x_valid), primary, spec.task, spec.threshold)
    settings = {**trained.params.model_dump(), "rounds": trained.best_iteration + 1}
    return Candidate(
        family, score, model.predict(rows.x[parts["test"]]), model, settings, trained.search
    )


def _cv_baselines(rows: Rows, folds: Folds, spec: DatasetSpec, plan: Plan) -> dict[str, np.ndarray]:
    """Each baseline's out-of-fold values on the judged rows, trained as the candidates were."""
    result: dict[str, np.ndarray] = {}
    for fold in folds.numbers:
        held = np.flatnonzero(folds.assignment == fold)
        for name, values in _baselines(rows, folds.training(fold), held, spec, plan).items():
            result.setdefault(name, empty_predictions(len(rows.y), spec))[held] = values
    return {name: values[folds.judged] for name, values in result.items()}


def _baselines(
    rows: Rows, training: np.ndarray, evaluation: np.ndarray, spec: DatasetSpec, plan: Plan
) -> dict[str, np.ndarray]:
    """The constant baseline, linear unless it competes, and the forecasting baselines.

    The forecasting baselines exist when the spec lags its own target (`forecast_baselines`).
    """
    y_train = rows.y[training]
    mean = float(np.mean(y_train))
    if spec.task.is_multiclass:  # each class's share of the training rows, for every row
        shares = np.bincount(y_train.astype(np.int64), minlength=len(spec.classes)) / len(y_train)
        constant = np.tile(shares, (len(evaluation), 1))
    else:
        constant = np.full(len(evaluation), mean)
    result = {CONSTANT[spec.task]: constant}
    if Family.LINEAR not in plan.settings.families:
        linear = fit_linear(rows.x[training], y_train, spec, plan.settings.seed)
        result["linear"] = linear.predict(rows.x[evaluation])
    for name, feature in forecast_baselines(spec).items():
        values = rows.x[evaluation, spec.model_features.index(feature)].astype(np.float64)
        result[name] = np.where(np.isnan(values), mean, values)  # no history: the mean
    return result


def forecast_baselines(spec: DatasetSpec) -> dict[str, str]:
    """`last_value` and `seasonal_naive`, each read from a lag of the target the spec declares.

    Seasonal naive is the value a week before (the 7-day lag) when declared, else the longest
    lag; last value is the shortest lag. Both are what a forecaster must beat.
    """
    lags = [(lag, name) for name, column, lag in spec.windows.lag_names() if column == spec.target]
    if not lags or spec.task != TaskType.REGRESSION:
        return {}
    lags.sort()
    weekly = [name for lag, name in lags if lag.total_seconds() == 7 * 86_400]
    return {"last_value": lags[0][1], "seasonal_naive": weekly[0] if weekly else lags[-1][1]}


def empty_predictions(rows: int, spec: DatasetSpec) -> np.ndarray:
    """Room for one prediction per row: a value, or a multiclass target's k probabilities."""
    return np.empty((rows, len(spec.classes)) if spec.task.is_multiclass else rows)


def _finite(value: float, sign: float) -> float:
    """NaN ranks last."""
    return value if np.isfinite(value) else -sign * np.inf


def with_rounds(params: TrainParams, settings: dict[str, Any]) -> TrainParams:
    """TrainParams from a stored settings dict (unknown keys such as `rounds` ignored)."""
    known = TrainParams.model_fields
    return params.with_changes(**{k: v for k, v in settings.items() if k in known})
