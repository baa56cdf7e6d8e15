"""Training: XGBoost on the model matrix, with early stopping and an optional bounded search.

Everything here is a plain function of arrays, so the same data, seed and code give the same
booster (byte for byte: XGBoost's `hist` method is deterministic for a fixed thread count).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops_assets.core.features import feature_types
from mlops_assets.progress import Progress, silent
from mlops_assets.spec import DatasetSpec, TaskType

if TYPE_CHECKING:  # XGBoost takes seconds to import: loading the code location must not pay it
    import xgboost as xgb

# Boosting rounds are reported every this many rounds (a few lines per fit, not one per round).
ROUND_INTERVAL = 250


class Hyperparameters(BaseModel):
    """XGBoost's tunable hyperparameters: sound defaults for tabular data, and their bounds.

    Defined once: the `model` asset's run config inherits these fields, training reads them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(default=0.05, gt=0, le=1, description="Shrinkage per tree.")
    max_depth: int = Field(default=6, ge=1, le=16, description="Deepest split of a tree.")
    min_child_weight: float = Field(default=5.0, ge=0, description="Least weight in a leaf.")
    subsample: float = Field(default=0.8, gt=0, le=1, description="Share of rows per tree.")
    colsample_bytree: float = Field(default=0.8, gt=0, le=1, description="Columns per tree.")
    reg_lambda: float = Field(default=1.0, ge=0, description="L2 penalty on leaf weights.")
    max_rounds: int = Field(default=3_000, ge=1, le=20_000, description="Most trees.")
    early_stopping_rounds: int = Field(
        default=100, ge=1, description="Stop after this many rounds without improvement."
    )


class TrainParams(Hyperparameters):
    """The hyperparameters and what one training run fixes besides: its seed and threads."""

    seed: int = 42
    threads: int = 2

    def with_changes(self, **changes: Any) -> TrainParams:
        """A copy with some fields changed (values from the search grid or a stored model)."""
        return self.model_copy(update=changes)

    def booster_params(self, task: TaskType, classes: int = 0) -> dict[str, Any]:
        """The parameter dict `xgb.train` takes (`classes`: a multiclass target's count)."""
        objective = {
            TaskType.REGRESSION: ("reg:squarederror", "rmse"),
            TaskType.BINARY_CLASSIFICATION: ("binary:logistic", "logloss"),
            TaskType.MULTICLASS_CLASSIFICATION: ("multi:softprob", "mlogloss"),
        }[task]
        per_class = {"num_class": classes} if task == TaskType.MULTICLASS_CLASSIFICATION else {}
        return {
            "objective": objective[0],
            "eval_metric": objective[1],
            **per_class,
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "tree_method": "hist",
            "seed": self.seed,
            "nthread": self.threads,
        }


# One booster with early stopping: (x_train, y_train, x_validation, y_validation, spec, params,
# round callbacks) -> the trimmed model. `fit_in_process` here; a cluster engine supplies another.
Fit = Callable[..., "TrainedModel"]

# The bounded search: a small grid, sampled without replacement in a seeded order.
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "learning_rate": (0.03, 0.05, 0.1),
    "max_depth": (4, 6, 8),
    "min_child_weight": (1.0, 5.0, 20.0),
    "subsample": (0.7, 0.9),
    "colsample_bytree": (0.7, 0.9),
}


@dataclass(frozen=True)
class TrainedModel:
    """A booster cut to its best iteration, and how it got there."""

    booster: xgb.Booster
    params: TrainParams
    best_iteration: int
    validation_score: float
    search: list[dict[str, Any]]


def train(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_validation: np.ndarray,
    y_validation: np.ndarray,
    spec: DatasetSpec,
    params: TrainParams,
    search_trials: int = 0,
    progress: Progress = silent,
    fit: Fit | None = None,
) -> TrainedModel:
    """Train with early stopping on the validation split; optionally search first.

    `fit` trains one booster (default: in this process, `fit_in_process`); a cluster engine
    passes its own, so the search, the trimming and the scores stay one code path.
    """
    fit = fit or fit_in_process
    candidates = search_candidates(params, search_trials)
    search: list[dict[str, Any]] = []
    best: TrainedModel | None = None
    for number, candidate in enumerate(candidates, start=1):
        label = f"xgboost trial {number}/{len(candidates)}" if search_trials else "xgboost"
        rounds = _rounds_progress_class()(progress, label, candidate.max_rounds)
        model = fit(x_train, y_train, x_validation, y_validation, spec, candidate, [rounds])
        progress(
            f"{label}: {model.best_iteration + 1:,} trees, "
            f"validation score {model.validation_score:.4g}"
        )
        search.append(
            {
                **candidate.model_dump(),
                "validation_score": model.validation_score,
                "best_iteration": model.best_iteration,
            }
        )
        if best is None or model.validation_score < best.validation_score:
            best = model
    assert best is not None
    return replace(best, search=search if search_trials else [])


def fit_rounds(
    x: np.ndarray, y: np.ndarray, spec: DatasetSpec, params: TrainParams, rounds: int
) -> xgb.Booster:
    """A booster of exactly `rounds` trees on all given rows (no early stopping: nothing held out).

    The refit of cross-validation: the number of rounds was chosen inside the folds.
    """
    matrix = _matrix(x, y, spec)
    import xgboost as xgb

    return xgb.train(
        params.booster_params(spec.task, len(spec.classes)), matrix, num_boost_round=max(rounds, 1)
    )


def predict(booster: xgb.Booster, matrix: np.ndarray) -> np.ndarray:
    """Predictions (values, positive-class probabilities or an (n, k) matrix) as float64."""
    return np.asarray(booster.inplace_predict(matrix), dtype=np.float64)


def booster_bytes(booster: xgb.Booster) -> bytes:
    """The booster in XGBoost's own binary JSON format (no pickle)."""
    return bytes(booster.save_raw(raw_format="ubj"))


def fit_in_process(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_validation: np.ndarray,
    y_validation: np.ndarray,
    spec: DatasetSpec,
    params: TrainParams,
    callbacks: list[xgb.callback.TrainingCallback] | None = None,
) -> TrainedModel:
    """One booster with early stopping on the validation rows, in this process, trimmed."""
    train_matrix = _matrix(x_train, y_train, spec)
    valid_matrix = _matrix(x_validation, y_validation, spec)
    evals_result: dict[str, Any] = {}
    import xgboost as xgb

    booster = xgb.train(
        params.booster_params(spec.task, len(spec.classes)),
        train_matrix,
        num_boost_round=params.max_rounds,
        evals=[(valid_matrix, "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        evals_result=evals_result,
        verbose_eval=False,
        callbacks=callbacks or [],
    )
    return trimmed_model(booster, evals_result, params)


def trimmed_model(
    booster: xgb.Booster, evals_result: dict[str, Any], params: TrainParams
) -> TrainedModel:
    """The booster cut to its best iteration, with that iteration's validation score.

    Early stopping keeps the trees after the best one: cut them so what is saved is what won.
    """
    best_iteration = int(booster.best_iteration)
    trimmed = booster[: best_iteration + 1]
    scores = next(iter(evals_result["validation"].values()))
    return TrainedModel(trimmed, params, best_iteration, float(scores[best_iteration]), [])


def _matrix(x: np.ndarray, y: np.ndarray, spec: DatasetSpec) -> xgb.DMatrix:
    import xgboost as xgb

    return xgb.DMatrix(
        x,
        y,
        feature_names=list(spec.model_features),
        feature_types=feature_types(spec),
        enable_categorical=True,
    )


def search_candidates(base: TrainParams, trials: int) -> list[TrainParams]:
    """The base parameters followed by `trials` seeded draws from the search grid."""
    return [base, *_search_candidates(base, trials)]


def _search_candidates(base: TrainParams, trials: int) -> list[TrainParams]:
    if trials <= 0:
        return []
    grid = list(itertools.product(*SEARCH_SPACE.values()))
    order = np.random.default_rng(base.seed).permutation(len(grid))[:trials]
    keys = list(SEARCH_SPACE)
    return [base.with_changes(**dict(zip(keys, grid[i], strict=True))) for i in order]


def model_dmatrix(x: np.ndarray, y: np.ndarray, spec: DatasetSpec) -> xgb.DMatrix:
    """The DMatrix every training path builds: named, typed features, categories native."""
    return _matrix(x, y, spec)


class _RoundsProgressLines:
    """Says the boosting round and the latest validation score every `every` rounds."""

    def __init__(self, say: Progress, label: str, total: int, every: int = ROUND_INTERVAL):
        super().__init__()
        self.say, self.label, self.total, self.every = say, label, total, every

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        """Report on every `every`-th round; never stops training (returns False)."""
        message = self.message(self.label, self.total, self.every, epoch, evals_log)
        if message:
            self.say(message)
        return False

    @staticmethod
    def message(label: str, total: int, every: int, epoch: int, evals_log: dict) -> str:
        """The line for round `epoch` (empty between reported rounds); shared by the engines."""
        done = epoch + 1
        if done % every:
            return ""
        scores = [(m, v[-1]) for data in evals_log.values() for m, v in data.items() if v]
        shown = f", validation {scores[0][0]} {scores[0][1]:.4g}" if scores else ""
        return f"{label}: round {done:,} of at most {total:,}{shown}"


def _rounds_progress_class() -> type:
    """`RoundsProgress`: an XGBoost callback, so defined once XGBoost is imported."""
    global _ROUNDS_PROGRESS
    if _ROUNDS_PROGRESS is None:
        import xgboost as xgb

        _ROUNDS_PROGRESS = type(
            "RoundsProgress", (_RoundsProgressLines, xgb.callback.TrainingCallback), {}
        )
    return _ROUNDS_PROGRESS


_ROUNDS_PROGRESS: type | None = None


def __getattr__(name: str) -> Any:
    """`RoundsProgress` is made on first use (`from mlops_assets.core.training import ...`)."""
    if name == "RoundsProgress":
        return _rounds_progress_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
