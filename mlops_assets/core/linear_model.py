"""The linear candidate: ridge or logistic regression, stored as plain JSON coefficients.

Fitted like the linear baseline (median-imputed, standardised numbers and one-hot categories),
then folded back to the raw feature space, so the stored model is a handful of numbers a person
can read: an intercept, per numeric feature a weight and the value that fills a missing one,
per category a weight, and the link. Prediction is a dot product in numpy, the same function
offline and in the service, so no scikit-learn object (and no pickle) is on the serving path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_assets.spec import DatasetSpec, TaskType

FORMAT = "mlops-linear-v1"
RIDGE_ALPHAS = tuple(10.0**p for p in range(-3, 4))  # chosen by leave-one-out on the train rows
LOGISTIC_CS = tuple(10.0**p for p in range(-3, 4))
IDENTITY, LOGISTIC, SOFTMAX = "identity", "logistic", "softmax"
ABSENT = -1e6  # the score of a class the rows had none of (finite: the document stays JSON)


@dataclass(frozen=True)
class LinearModel:
    """A linear model over the model matrix; `predict` is exactly what the service runs.

    `weights[i]` applies to numeric column `numeric[i]` in raw units (missing: `impute[i]`);
    `category_weights[j][code]` to categorical column `categorical[j]`, a missing or unknown
    category adding nothing. `mean` and `scale` are kept to read the standardised weights.
    """

    link: str
    intercept: float
    features: tuple[str, ...]
    numeric: tuple[int, ...]
    weights: tuple[float, ...]
    impute: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    categorical: tuple[int, ...]
    category_weights: tuple[tuple[float, ...], ...]
    regularisation: float

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions (values, or positive-class probabilities) for a model matrix."""
        x = np.asarray(matrix, dtype=np.float64)
        numbers = x[:, list(self.numeric)] if self.numeric else np.empty((len(x), 0))
        numbers = np.where(np.isfinite(numbers), numbers, np.asarray(self.impute))
        score = self.intercept + numbers @ np.asarray(self.weights, dtype=np.float64)
        for column, weights in zip(self.categorical, self.category_weights, strict=True):
            codes = x[:, column]
            known = np.isfinite(codes) & (codes >= 0) & (codes < len(weights))
            table = np.asarray(weights, dtype=np.float64)
            score = score + np.where(known, table[np.where(known, codes, 0).astype(np.int64)], 0)
        if self.link == LOGISTIC:
            return 1.0 / (1.0 + np.exp(-score))
        return score

    def importance(self) -> dict[str, float]:
        """|standardised weight| per numeric feature, largest |weight| per categorical one."""
        result = {
            self.features[c]: abs(w * s)
            for c, w, s in zip(self.numeric, self.weights, self.scale, strict=True)
        }
        for column, weights in zip(self.categorical, self.category_weights, strict=True):
            result[self.features[column]] = float(np.max(np.abs(weights))) if weights else 0.0
        return result

    def to_dict(self, spec: DatasetSpec) -> dict[str, Any]:
        """The JSON document: readable names, categories by value, floats exact (repr)."""
        numeric = {
            self.features[c]: {"weight": w, "impute": i, "mean": m, "scale": s}
            for c, w, i, m, s in zip(
                self.numeric, self.weights, self.impute, self.mean, self.scale, strict=True
            )
        }
        categorical = {}
        for column, weights in zip(self.categorical, self.category_weights, strict=True):
            name = self.features[column]
            values = list(spec.column(name).categories or ())
            categorical[name] = dict(zip(values, weights, strict=True))
        return {
            "format": FORMAT,
            "link": self.link,
            "intercept": self.intercept,
            "features": list(self.features),
            "numeric": numeric,
            "categorical": categorical,
            "regularisation": self.regularisation,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> LinearModel:
        """Read the JSON document written by `to_dict`."""
        if document.get("format") != FORMAT:
            raise ValueError(f"not a linear model document (format {document.get('format')!r})")
        features = tuple(document["features"])
        numeric = document["numeric"]
        categorical = document["categorical"]
        return cls(
            link=document["link"],
            intercept=float(document["intercept"]),
            features=features,
            numeric=tuple(features.index(n) for n in numeric),
            weights=tuple(float(v["weight"]) for v in numeric.values()),
            impute=tuple(float(v["impute"]) for v in numeric.values()),
            mean=tuple(float(v["mean"]) for v in numeric.values()),
            scale=tuple(float(v["scale"]) for v in numeric.values()),
            categorical=tuple(features.index(n) for n in categorical),
            category_weights=tuple(
                tuple(float(w) for w in weights.values()) for weights in categorical.values()
            ),
            regularisation=float(document["regularisation"]),
        )


@dataclass(frozen=True)
class SoftmaxModel:
    """Multinomial logistic regression: one linear score per class, softmax across them.

    Each class's score is a `LinearModel` with the identity link (raw-unit weights, the same
    imputation), so the stored document is one readable block of coefficients per class.
    """

    classes: tuple[Any, ...]
    scores: tuple[LinearModel, ...]
    regularisation: float

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """An (n, k) matrix of class probabilities; each row sums to 1."""
        score = np.column_stack([s.predict(matrix) for s in self.scores])
        score = score - score.max(axis=1, keepdims=True)  # exp never overflows
        exp = np.exp(score)
        return exp / exp.sum(axis=1, keepdims=True)

    def importance(self) -> dict[str, float]:
        """The largest of the classes' importances per feature."""
        result: dict[str, float] = {}
        for score in self.scores:
            for name, value in score.importance().items():
                result[name] = max(result.get(name, 0.0), value)
        return result

    def to_dict(self, spec: DatasetSpec) -> dict[str, Any]:
        """The JSON document: the classes, and per class the score's coefficients."""
        return {
            "format": FORMAT,
            "link": SOFTMAX,
            "classes": list(self.classes),
            "scores": [s.to_dict(spec) for s in self.scores],
            "regularisation": self.regularisation,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SoftmaxModel:
        """Read the JSON document written by `to_dict`."""
        return cls(
            classes=tuple(document["classes"]),
            scores=tuple(LinearModel.from_dict(d) for d in document["scores"]),
            regularisation=float(document["regularisation"]),
        )


def linear_from_dict(document: dict[str, Any]) -> LinearModel | SoftmaxModel:
    """Either linear document: one score (identity or logistic link) or one per class."""
    if document.get("link") == SOFTMAX:
        return SoftmaxModel.from_dict(document)
    return LinearModel.from_dict(document)


def fit_linear(
    x: np.ndarray, y: np.ndarray, spec: DatasetSpec, seed: int = 42
) -> LinearModel | SoftmaxModel:
    """Fit on imputed, standardised numbers and one-hot categories, then fold to raw units."""
    features = tuple(spec.model_features)
    categorical = tuple(i for i, n in enumerate(features) if n in spec.categorical_columns)
    numeric = tuple(i for i in range(len(features)) if i not in categorical)
    sizes = [len(spec.column(features[c]).categories or ()) for c in categorical]
    x = np.asarray(x, dtype=np.float64)
    numbers = x[:, list(numeric)]
    finite = np.isfinite(numbers)
    impute = np.array(
        [
            np.median(numbers[finite[:, j], j]) if finite[:, j].any() else 0.0
            for j in range(len(numeric))
        ]
    )
    filled = np.where(finite, numbers, impute)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    design = np.hstack([(filled - mean) / scale, _one_hot(x, categorical, sizes)])
    layout = _Layout(features, numeric, categorical, sizes, impute, mean, scale)
    if spec.task == TaskType.MULTICLASS_CLASSIFICATION:
        coefficients, intercepts, strength = _fit_multinomial(design, y, len(spec.classes), seed)
        scores = tuple(
            layout.fold(IDENTITY, c, float(i), strength)
            for c, i in zip(coefficients, intercepts, strict=True)
        )
        return SoftmaxModel(tuple(spec.classes), scores, strength)
    coefficients, intercept, strength = _fit(design, y, spec.task, seed)
    link = IDENTITY if spec.task == TaskType.REGRESSION else LOGISTIC
    return layout.fold(link, coefficients, intercept, strength)


@dataclass(frozen=True)
class _Layout:
    """Which design columns are which feature, and the numbers' fill, mean and scale."""

    features: tuple[str, ...]
    numeric: tuple[int, ...]
    categorical: tuple[int, ...]
    sizes: list[int]
    impute: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def fold(
        self, link: str, coefficients: np.ndarray, intercept: float, strength: float
    ) -> LinearModel:
        """Standardised coefficients folded back to raw units (one linear score)."""
        numeric_weights = coefficients[: len(self.numeric)] / self.scale
        offsets = np.cumsum([len(self.numeric), *self.sizes])
        category_weights = tuple(
            tuple(float(w) for w in coefficients[start:end])
            for start, end in itertools.pairwise(offsets)
        )
        return LinearModel(
            link=link,
            intercept=float(intercept - numeric_weights @ self.mean),
            features=self.features,
            numeric=self.numeric,
            weights=tuple(float(w) for w in numeric_weights),
            impute=tuple(float(v) for v in self.impute),
            mean=tuple(float(v) for v in self.mean),
            scale=tuple(float(v) for v in self.scale),
            categorical=self.categorical,
            category_weights=category_weights,
            regularisation=strength,
        )


def _one_hot(x: np.ndarray, columns: tuple[int, ...], sizes: list[int]) -> np.ndarray:
    """Indicator columns for each category code; a missing code sets none of them."""
    blocks = []
    for column, size in zip(columns, sizes, strict=True):
        codes = x[:, column]
        blocks.append((codes[:, None] == np.arange(size)[None, :]).astype(np.float64))
    return np.hstack(blocks) if blocks else np.empty((len(x), 0))


def _fit(
    design: np.ndarray, y: np.ndarray, task: TaskType, seed: int
) -> tuple[np.ndarray, float, float]:
    """Coefficients, intercept and the regularisation chosen on these rows only."""
    from sklearn.linear_model import RidgeCV

    if task == TaskType.REGRESSION:
        ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(design, y)
        return (
            np.asarray(ridge.coef_, dtype=np.float64),
            float(ridge.intercept_),
            float(ridge.alpha_),
        )
    model, strength = _fit_logistic(design, y.astype(np.int64), 2, seed)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0]), strength


def _fit_logistic(
    design: np.ndarray, codes: np.ndarray, classes: int, seed: int
) -> tuple[Any, float]:
    """Logistic regression with its strength chosen by log loss in up to 3 stratified folds.

    With fewer than two rows of some class there is nothing to choose with: sklearn's
    default strength (C = 1).
    """
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    folds = int(min(3, np.bincount(codes, minlength=classes).min()))
    if folds < 2:
        return LogisticRegression(max_iter=5_000).fit(design, codes), 1.0
    model = LogisticRegressionCV(
        Cs=list(LOGISTIC_CS),
        l1_ratios=(0.0,),
        cv=folds,
        scoring="neg_log_loss",
        max_iter=5_000,
        random_state=seed,
        use_legacy_attributes=False,
    ).fit(design, codes)
    return model, float(model.C_)


def _fit_multinomial(
    design: np.ndarray, y: np.ndarray, classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(k, p) coefficients, k intercepts and the strength chosen by log loss on these rows."""
    codes = y.astype(np.int64)
    model, strength = _fit_logistic(design, codes, classes, seed)
    coefficients = np.zeros((classes, design.shape[1]))
    intercepts = np.full(classes, ABSENT)  # a class absent from these rows: never predicted
    present = np.asarray(model.classes_, dtype=np.int64)
    coefficients[present] = model.coef_
    intercepts[present] = model.intercept_
    return coefficients, intercepts, strength
