"""The dataset spec: the one contract that cleaning, features, training and serving all read.

A spec is a small YAML document validated with pydantic, so a typo fails at load time with the
offending field named instead of surfacing later as a confusing KeyError deep in a pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops_assets.spec.derived import DerivedExpression, ExpressionError
from mlops_assets.spec.durations import describe, parse_duration

EVENT_YEAR = "event_year"  # pseudo-column for derived expressions: event time as decimal year
DERIVED_ENTITY_KEY = "row_id"
DERIVED_EVENT_TIMESTAMP = "ingested_at"
FORBIDDEN_NAME_CHARS = ("<", "[", "]")  # XGBoost rejects these in feature names
DEFAULT_THRESHOLD = 0.5
MIN_CLASSES = 3  # a multiclass target; two classes are binary_classification
DEFAULT_PRIMARY = {"multiclass_classification": "log_loss"}  # else Gates' own default


class SpecError(ValueError):
    """A dataset spec that cannot be used; the message names the file and the field.

    `problems` lists each problem on its own (the message joins them), for `mlops validate`.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


class Role(StrEnum):
    """What a column is for; drives Feast schema, training columns and the request model."""

    ENTITY_KEY = "entity_key"
    EVENT_TIMESTAMP = "event_timestamp"
    FEATURE = "feature"
    TARGET = "target"


class DType(StrEnum):
    """Logical column types; kept few so every stage maps them the same way."""

    INT = "int"
    FLOAT = "float"
    CATEGORY = "category"
    STRING = "string"
    DATETIME = "datetime"
    BOOL = "bool"


KEY_DTYPES = (DType.INT, DType.STRING)  # what Feast joins on: INT64 or STRING values


class Imputation(StrEnum):
    """How a null may be filled; `none` means the row is quarantined instead."""

    NONE = "none"
    MEDIAN = "median"
    MEAN = "mean"
    MODE = "mode"
    CONSTANT = "constant"


class TaskType(StrEnum):
    """The learning task, which decides the model family and the report's metrics."""

    REGRESSION = "regression"
    BINARY_CLASSIFICATION = "binary_classification"
    MULTICLASS_CLASSIFICATION = "multiclass_classification"

    @property
    def is_classification(self) -> bool:
        """Whether the model answers class probabilities (binary or multiclass)."""
        return self != TaskType.REGRESSION

    @property
    def is_multiclass(self) -> bool:
        """Whether the model answers one probability per class of three or more."""
        return self == TaskType.MULTICLASS_CLASSIFICATION


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _category_value(value: Any) -> Any:
    """A category is written as it appears in the data: an integer or a string, nothing else.

    Checked before pydantic's union so a float or a boolean gets one clear message instead of
    one per union member (and `True` is never taken for the integer 1).
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(
            f"{value!r} is a {type(value).__name__}; a category is an integer (as in "
            "`categories: [1, 2, 3]`) or a string"
        )
    return value


CategoryValue = Annotated[int | str, BeforeValidator(_category_value)]


class ColumnSpec(_Strict):
    """One delivered column: its type, role and the rules its values must keep."""

    name: str = Field(min_length=1)
    dtype: DType
    role: Role = Role.FEATURE
    description: str = ""
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[CategoryValue, ...] | None = None
    impute: Imputation = Imputation.NONE
    impute_value: int | float | str | None = None
    max_null_rate: float | None = Field(default=None, ge=0, le=1)

    @field_validator("name")
    @classmethod
    def _name_is_usable(cls, name: str) -> str:
        bad = [c for c in FORBIDDEN_NAME_CHARS if c in name]
        if bad:
            raise ValueError(f"column name {name!r} contains {''.join(bad)!r}")
        return name

    @model_validator(mode="after")
    def _rules_fit_dtype(self) -> ColumnSpec:
        numeric = self.dtype in (DType.INT, DType.FLOAT)
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"column {self.name!r}: min/max need a numeric dtype")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min} > max {self.max}")
        if self.dtype == DType.CATEGORY and not self.categories:
            raise ValueError(f"column {self.name!r}: a category column must list categories")
        if self.categories is not None and self.dtype != DType.CATEGORY:
            raise ValueError(f"column {self.name!r}: categories need dtype 'category'")
        if self.categories:
            self._categories_are_consistent()
        if self.impute == Imputation.CONSTANT and self.impute_value is None:
            raise ValueError(f"column {self.name!r}: impute 'constant' needs impute_value")
        if self.impute != Imputation.NONE and self.role != Role.FEATURE:
            raise ValueError(f"column {self.name!r}: only feature columns can be imputed")
        if self.impute in (Imputation.MEDIAN, Imputation.MEAN) and not numeric:
            raise ValueError(f"column {self.name!r}: impute {self.impute} needs a numeric dtype")
        if self.role in (Role.ENTITY_KEY, Role.EVENT_TIMESTAMP, Role.TARGET) and self.nullable:
            raise ValueError(f"column {self.name!r}: a {self.role} column cannot be nullable")
        if self.role == Role.EVENT_TIMESTAMP and self.dtype != DType.DATETIME:
            raise ValueError(f"column {self.name!r}: the event timestamp needs dtype 'datetime'")
        if self.role == Role.ENTITY_KEY and self.dtype not in KEY_DTYPES:
            raise ValueError(
                f"column {self.name!r}: an entity key needs dtype 'int' or 'string', not "
                f"{str(self.dtype)!r}; use 'string' for names and codes, 'int' for numbers"
            )
        return self

    def _categories_are_consistent(self) -> None:
        categories = list(self.categories or ())
        if len({type(c) for c in categories}) > 1:
            raise ValueError(
                f"column {self.name!r}: categories mix integers and strings {categories}; "
                "declare them as the values appear in the data, all integers or all strings"
            )
        repeated = sorted({str(c) for c in categories if categories.count(c) > 1})
        if repeated:
            raise ValueError(f"column {self.name!r}: categories repeat {repeated}")
        if self.impute == Imputation.CONSTANT and self.impute_value not in categories:
            raise ValueError(
                f"column {self.name!r}: impute_value {self.impute_value!r} is not one of its "
                f"categories {categories}"
            )

    @property
    def integer_categories(self) -> bool:
        """Whether the categories are integer codes (`[1, 2, 3]`) rather than strings."""
        return bool(self.categories) and isinstance(self.categories[0], int)

    @property
    def imputes(self) -> bool:
        """Whether a missing value is filled (at the feature stage and in the service)."""
        return self.impute != Imputation.NONE


class DerivedColumn(_Strict):
    """A column computed from others by a safe arithmetic expression (no arbitrary code).

    `nullable: false` makes a missing or non-finite result a blocking feature-check failure.
    """

    name: str = Field(min_length=1)
    expr: str = Field(min_length=1)
    description: str = ""
    nullable: bool = True


class Aggregate(StrEnum):
    """What a rolling window computes over an entity's earlier rows."""

    MEAN = "mean"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    STD = "std"
    COUNT = "count"


class CalendarFeature(StrEnum):
    """Features of the event time itself, computed wherever the time is known (requests too)."""

    DAY_OF_WEEK = "day_of_week"  # 0 = Monday
    DAY_OF_YEAR = "day_of_year"  # 1 = 1 January
    MONTH = "month"  # 1 = January
    IS_HOLIDAY = "is_holiday"  # 1 on a date listed in `windows.holidays`


class Lag(_Strict):
    """An entity's `column` exactly `every` earlier (`7d`: the same weekday last week)."""

    column: str
    every: tuple[str, ...] = Field(min_length=1)


class Rolling(_Strict):
    """Aggregates of an entity's `column` over the `window` before each row's time."""

    column: str
    window: str
    aggregates: tuple[Aggregate, ...] = Field(default=(Aggregate.MEAN,), min_length=1)


class WindowSettings(_Strict):
    """Per-entity features of the past: lags, rolling aggregates and calendar features.

    A value at time t reads only the entity's rows strictly before t minus
    `training.horizon` (a lag must therefore be longer than the horizon, and so must a
    window, or it would hold no row). They are computed over the whole table at once and
    stored as columns of the dataset's Feast feature view, whose TTL becomes `ttl`.
    """

    lags: tuple[Lag, ...] = ()
    rolling: tuple[Rolling, ...] = ()
    calendar: tuple[CalendarFeature, ...] = ()
    holidays: tuple[date, ...] = ()
    ttl: str = Field(
        default="400d",
        description="The feature view's TTL when it holds window features: how long an "
        "entity's values stay valid in a point-in-time join.",
    )

    @field_validator("ttl")
    @classmethod
    def _ttl_parses(cls, ttl: str) -> str:
        parse_duration(ttl)
        return ttl

    def lag_names(self) -> list[tuple[str, str, timedelta]]:
        """(feature name, column, lag) of every lag, in spec order."""
        return [
            (
                f"{lag.column}_lag_{describe(parse_duration(every))}",
                lag.column,
                parse_duration(every),
            )
            for lag in self.lags
            for every in lag.every
        ]

    def rolling_names(self) -> list[tuple[str, str, Aggregate, timedelta]]:
        """(feature name, column, aggregate, window) of every rolling aggregate, in spec order."""
        result = []
        for rolling in self.rolling:
            window = parse_duration(rolling.window)
            for aggregate in rolling.aggregates:
                name = f"{rolling.column}_{aggregate}_{describe(window)}"
                result.append((name, rolling.column, aggregate, window))
        return result

    @property
    def history_features(self) -> list[str]:
        """The features read from an entity's earlier rows (what a request cannot carry)."""
        return [n for n, *_ in self.lag_names()] + [n for n, *_ in self.rolling_names()]


class QualityRules(_Strict):
    """Dataset-wide thresholds for the asset checks (ERROR blocks, WARN informs)."""

    min_rows: int = Field(default=100, ge=1)
    warn_rows: int | None = Field(default=None, ge=1)
    max_null_rate: float = Field(default=0.05, ge=0, le=1)
    max_quarantine_share: float = Field(default=0.10, ge=0, le=1)
    warn_quarantine_share: float = Field(default=0.02, ge=0, le=1)


class Gate(_Strict):
    """One promotion gate on a test-split metric: at least `min` and/or at most `max`."""

    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError(f"gate on {self.metric!r} needs min or max")
        return self


class Gates(_Strict):
    """Promotion policy: absolute gates on the estimate, and the metric models are ranked by.

    How much a challenger must beat the baselines and the champion is part of `training:`.
    """

    rules: tuple[Gate, ...] = ()
    primary_metric: str = "rmse"

    @model_validator(mode="before")
    @classmethod
    def _no_tolerance(cls, data: object) -> object:
        if isinstance(data, dict) and "champion_tolerance" in data:
            raise ValueError(
                "champion_tolerance was removed: a challenger must now be strictly better than "
                "the champion; set training.min_improvement instead (default 0)"
            )
        return data


class MonitoringSettings(_Strict):
    """Live truth: how the champion must do on labels that arrive after its predictions."""

    live_gate: Gate | None = Field(
        default=None,
        description="Live metric bound (e.g. {metric: r2, min: 0.8}); below it, retrain.",
    )
    min_live_labels: int = Field(
        default=50, ge=2, description="Labelled predictions needed before the gate is judged."
    )


class PromotionMode(StrEnum):
    """When a challenger that passed the offline gates becomes champion."""

    OFFLINE = "offline"  # at once (the default)
    LIVE = "live"  # after live evidence from shadow or canary serving


class RolloutStage(StrEnum):
    """How a staged challenger meets live traffic before the decision."""

    SHADOW = "shadow"  # scores every request beside the champion, answers none
    CANARY = "canary"  # answers a share of traffic, sticky by entity key


class PromotionPolicy(_Strict):
    """Promotion on live evidence (`policy: live`), or at once after the offline gates.

    With `live`, a challenger that passed the offline gates is staged (shadow, or canary with
    `canary_share`) and promoted only once at least `min_live_labels` of its predictions have
    labels and its live primary metric is not worse than the champion's on them by more than
    `tolerance` (a share of the champion's metric, like `training.min_improvement`). The
    first model of a dataset has no champion to be compared with and is promoted at once.
    """

    policy: PromotionMode = PromotionMode.OFFLINE
    stage: RolloutStage = RolloutStage.SHADOW
    canary_share: float = Field(default=0.1, gt=0, lt=1)
    min_live_labels: int = Field(default=200, ge=2)
    tolerance: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _settings_fit_policy(self) -> PromotionPolicy:
        # Settings that differ from their defaults (a dumped spec repeats the defaults).
        fields = type(self).model_fields
        given = {
            f for f in self.model_fields_set - {"policy"} if getattr(self, f) != fields[f].default
        }
        if self.policy == PromotionMode.OFFLINE and given:
            raise ValueError(
                f"{sorted(given)} apply to policy 'live' only; set `policy: live` to promote on "
                "live evidence, or remove them"
            )
        if "canary_share" in given and self.stage != RolloutStage.CANARY:
            raise ValueError(
                "canary_share applies to stage 'canary' only; set `stage: canary` or remove it"
            )
        return self

    @property
    def live(self) -> bool:
        """Whether a challenger waits for live evidence before it is promoted."""
        return self.policy == PromotionMode.LIVE


class Protocol(StrEnum):
    """How a model's quality is estimated.

    `auto` follows the data: with an event time delivered in the data, the model is judged on
    rows later than those it learned from (`backtest` on small data, `latest_period` on large);
    without one, `cross_validation` on small data and the entity-hash `holdout` on large.
    `time_ordered` asks for the time-honest pair whatever `auto` would pick.
    """

    AUTO = "auto"
    CROSS_VALIDATION = "cross_validation"
    HOLDOUT = "holdout"
    TIME_ORDERED = "time_ordered"
    BACKTEST = "backtest"
    LATEST_PERIOD = "latest_period"

    @property
    def folded(self) -> bool:
        """Whether rows are judged fold by fold (cross-validation or a rolling-origin backtest)."""
        return self in (Protocol.CROSS_VALIDATION, Protocol.BACKTEST)

    @property
    def in_time(self) -> bool:
        """Whether rows are judged only by models trained on earlier rows."""
        return self in (Protocol.TIME_ORDERED, Protocol.BACKTEST, Protocol.LATEST_PERIOD)


class Family(StrEnum):
    """Model families that compete for the challenger's place."""

    XGBOOST = "xgboost"
    LINEAR = "linear"


class SplitFractions(_Strict):
    """Shares of the entity-hash split used by the holdout protocol."""

    train: float = Field(default=0.70, gt=0, lt=1)
    validation: float = Field(default=0.15, gt=0, lt=1)
    test: float = Field(default=0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitFractions:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        return self

    def as_tuple(self) -> tuple[float, float, float]:
        """(train, validation, test)."""
        return (self.train, self.validation, self.test)


class FederatedTls(_Strict):
    """Certificates for the federated server and its sites (PEM files, paths as given).

    The server presents `server_cert` (signed by `ca_cert`); each site presents `client_cert`
    (signed by the same CA), and each side trusts only certificates the CA signed.
    """

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


class FederatedSettings(_Strict):
    """Train across sites whose rows never leave them (XGBoost's federated communicator).

    Each site names where its rows are (a file, a glob or a folder of CSV/Parquet files) as the
    site sees them; the sites' processes each read only their own location.
    """

    sites: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], str] = Field(min_length=2)
    timeout_seconds: int = Field(
        default=600, ge=10, description="A site silent this long fails the run."
    )
    tls: FederatedTls | None = None
    server_address: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Where the sites reach the federated server `mlops run` starts (loopback).",
    )
    server_port: int = Field(
        default=0, ge=0, le=65535, description="The federated server's port; 0 picks a free one."
    )
    server_start_seconds: float = Field(
        default=120.0, gt=0, description="How long the federated server may take to listen."
    )

    def __hash__(self) -> int:
        """Hashable like the rest of the spec (the service caches by spec), `sites` included."""
        return hash(
            (
                tuple(self.sites.items()),
                self.timeout_seconds,
                self.tls,
                self.server_address,
                self.server_port,
                self.server_start_seconds,
            )
        )


class TrainingSettings(_Strict):
    """How models are trained, compared and estimated; defaults suit most tabular data.

    Below `cv_below_rows` labelled rows, `auto` cross-validates: a 15 % test split of a few
    hundred rows is a few dozen rows, whose metric swings by several points from one split to
    the next. At ten thousand rows the test split holds 1,500 rows, enough for a stable
    estimate, while five-fold cross-validation would cost five trainings per candidate.
    """

    protocol: Protocol = Protocol.AUTO
    cv_below_rows: int = Field(default=10_000, ge=1)
    folds: int = Field(default=5, ge=2, le=20)
    split: SplitFractions = SplitFractions()
    search_trials: int = Field(default=0, ge=0, le=50)
    seed: int = 42
    families: tuple[Family, ...] = Field(default=(Family.XGBOOST, Family.LINEAR), min_length=1)
    min_rows: int = Field(default=50, ge=2)
    baseline_margin: float = Field(default=0.0, ge=0, lt=1)
    min_improvement: float = Field(default=0.0, ge=0, lt=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    bootstrap_resamples: int = Field(default=1_000, ge=100, le=100_000)
    horizon: str = Field(
        default="0d",
        description="How far ahead the model predicts (e.g. '7d'): time protocols leave at "
        "least this gap between the last training row and the first judged row.",
    )
    unseen_entities: bool = Field(
        default=False,
        description="Time protocols: judge entities the fold never trained on (default: "
        "later rows of known entities, as a forecast is used).",
    )
    federated: FederatedSettings | None = None

    @field_validator("horizon")
    @classmethod
    def _horizon_parses(cls, horizon: str) -> str:
        parse_duration(horizon)
        return horizon

    @property
    def gap(self) -> timedelta:
        """The horizon as a duration."""
        return parse_duration(self.horizon)

    @field_validator("families")
    @classmethod
    def _unique(cls, families: tuple[Family, ...]) -> tuple[Family, ...]:
        if len(set(families)) != len(families):
            raise ValueError(f"families listed twice: {[str(f) for f in families]}")
        return families


class DatasetSpec(_Strict):
    """The whole data contract of one dataset."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(default=1, ge=1)
    description: str = ""
    task: TaskType
    columns: tuple[ColumnSpec, ...] = Field(min_length=1)
    derived: tuple[DerivedColumn, ...] = ()
    windows: WindowSettings = WindowSettings()
    quality: QualityRules = QualityRules()
    gates: Gates = Gates()
    training: TrainingSettings = TrainingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    promotion: PromotionPolicy = PromotionPolicy()
    positive_class: str | int | None = None
    decision_threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Probability at or above which a row is labelled positive (default 0.5).",
    )

    @model_validator(mode="before")
    @classmethod
    def _task_default_primary(cls, data: object) -> object:
        """A task's own default primary metric when the spec names none (log loss: multiclass)."""
        if not isinstance(data, dict) or str(data.get("task")) not in DEFAULT_PRIMARY:
            return data
        gates = data.get("gates")
        gates = dict(gates) if isinstance(gates, dict) else {} if gates is None else gates
        if isinstance(gates, dict) and "primary_metric" not in gates:
            gates["primary_metric"] = DEFAULT_PRIMARY[str(data["task"])]
            return {**data, "gates": gates}
        return data

    @model_validator(mode="after")
    def _roles_are_consistent(self) -> DatasetSpec:
        names = [c.name for c in self.columns] + [d.name for d in self.derived]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names: {dupes}")
        for role in (Role.ENTITY_KEY, Role.EVENT_TIMESTAMP, Role.TARGET):
            found = [c.name for c in self.columns if c.role == role]
            if len(found) > 1:
                raise ValueError(f"more than one {role} column: {found}")
        if not any(c.role == Role.TARGET for c in self.columns):
            raise ValueError("no column has role 'target'")
        if not self.feature_columns:
            raise ValueError("no column has role 'feature'")
        if self.training.protocol.in_time and not self.has_event_time:
            raise ValueError(
                f"training.protocol {self.training.protocol} judges later rows by earlier ones "
                "and needs a column with role 'event_timestamp' (dtype datetime) delivered in "
                "the data; add one, or use protocol auto, cross_validation or holdout"
            )
        if self.decision_threshold is not None and self.task != TaskType.BINARY_CLASSIFICATION:
            raise ValueError("decision_threshold applies to task binary_classification only")
        self._target_fits_task()
        reserved = sorted({DERIVED_ENTITY_KEY, DERIVED_EVENT_TIMESTAMP, EVENT_YEAR} & set(names))
        if reserved:
            raise ValueError(f"column names {reserved} are reserved for derived keys")
        known = {c.name for c in self.columns} | {EVENT_YEAR}
        for derived in self.derived:
            try:
                expression = DerivedExpression.parse(derived.expr)
            except ExpressionError as exc:
                shown = derived.expr if len(derived.expr) <= 120 else derived.expr[:120] + "..."
                raise ValueError(f"derived column {derived.name!r} = {shown!r}: {exc}") from exc
            unknown = sorted(expression.columns - known)
            if unknown:
                raise ValueError(f"derived column {derived.name!r} uses unknown columns {unknown}")
            known.add(derived.name)
        self._windows_are_consistent()
        return self

    def _windows_are_consistent(self) -> None:
        """Window features name real numeric columns, need an event time, and see the past."""
        windows, horizon = self.windows, self.training.gap
        if not (windows.lags or windows.rolling or windows.calendar):
            return
        if not self.has_event_time:
            raise ValueError(
                "windows: lags, rolling windows and calendar features read the event time, and "
                "the data has none: add a column with role 'event_timestamp' (dtype datetime)"
            )
        numeric = {c.name for c in self.columns if c.dtype in (DType.INT, DType.FLOAT, DType.BOOL)}
        items = [("lags", n, c, d) for n, c, d in windows.lag_names()]
        items += [("rolling", n, c, d) for n, c, _, d in windows.rolling_names()]
        for field, name, column, length in items:
            if column not in numeric:
                raise ValueError(
                    f"windows.{field} {name!r}: column {column!r} is not a numeric column of the "
                    f"spec (numeric columns: {sorted(numeric)})"
                )
            if length <= horizon:
                raise ValueError(
                    f"windows.{field} {name!r}: {describe(length)} is not longer than "
                    f"training.horizon {self.training.horizon}; a value at time t may read only "
                    "rows before t minus the horizon, so it would be empty or read the future"
                )
        if CalendarFeature.IS_HOLIDAY in windows.calendar and not windows.holidays:
            raise ValueError("windows.calendar is_holiday needs the dates in windows.holidays")
        names = [c.name for c in self.columns] + [d.name for d in self.derived]
        clash = sorted(set(names) & set(self.window_features))
        if clash:
            raise ValueError(f"windows: feature names {clash} clash with columns of the spec")

    def _target_fits_task(self) -> None:
        """A multiclass target lists its classes; other tasks keep a numeric target."""
        target = next(c for c in self.columns if c.role == Role.TARGET)
        if self.task == TaskType.MULTICLASS_CLASSIFICATION:
            if target.dtype != DType.CATEGORY:
                raise ValueError(
                    f"target {target.name!r} of a multiclass_classification needs dtype "
                    f"'category' and its classes as categories (e.g. `dtype: category, "
                    f"categories: [0, 1, 2]`), not dtype {str(target.dtype)!r}"
                )
            classes = len(target.categories or ())
            if classes < MIN_CLASSES:
                raise ValueError(
                    f"target {target.name!r} lists {classes} classes; multiclass_classification "
                    f"needs at least {MIN_CLASSES} (for two use task binary_classification)"
                )
            if self.positive_class is not None:
                raise ValueError("positive_class applies to task binary_classification only")
            if self.training.federated is not None:
                raise ValueError(
                    "federated training supports regression and binary_classification; "
                    "remove training.federated or change the task"
                )
        elif target.dtype == DType.CATEGORY:
            raise ValueError(
                f"target {target.name!r} has dtype 'category', which only task "
                f"multiclass_classification reads; {self.task} needs a numeric target"
            )

    @property
    def classes(self) -> list[int | str]:
        """The classes of a multiclass target in the spec's order (class i is code i), else []."""
        if not self.task.is_multiclass:
            return []
        return list(self.column(self.target).categories or ())

    def column(self, name: str) -> ColumnSpec:
        """The column named `name`; a KeyError names it if the spec has none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"column {name!r} is not in dataset spec {self.name!r}")

    def _role(self, role: Role) -> ColumnSpec | None:
        return next((c for c in self.columns if c.role == role), None)

    @property
    def entity_key_column(self) -> str | None:
        """The delivered entity key, or None when the platform derives one."""
        column = self._role(Role.ENTITY_KEY)
        return column.name if column else None

    @property
    def event_timestamp_column(self) -> str | None:
        """The delivered event timestamp, or None when the platform derives one."""
        column = self._role(Role.EVENT_TIMESTAMP)
        return column.name if column else None

    @property
    def has_event_time(self) -> bool:
        """Whether the data carries its own event time (not the ingestion time)."""
        return self.event_timestamp_column is not None

    @property
    def entity_key(self) -> str:
        """The entity key as stored after ingestion (delivered or derived)."""
        return self.entity_key_column or DERIVED_ENTITY_KEY

    @property
    def text_entity_key(self) -> bool:
        """Whether entities are named by text (`dtype: string`) rather than by integers.

        A derived key (`row_id`) is an integer.
        """
        column = self._role(Role.ENTITY_KEY)
        return column is not None and column.dtype == DType.STRING

    @property
    def event_timestamp(self) -> str:
        """The event timestamp as stored after ingestion (delivered or derived)."""
        return self.event_timestamp_column or DERIVED_EVENT_TIMESTAMP

    @property
    def target(self) -> str:
        """The label column."""
        column = self._role(Role.TARGET)
        assert column is not None  # guaranteed by validation
        return column.name

    @property
    def feature_columns(self) -> list[str]:
        """Delivered feature columns in spec order (derived ones excluded)."""
        return [c.name for c in self.columns if c.role == Role.FEATURE]

    @property
    def categorical_columns(self) -> list[str]:
        """Feature columns whose values come from a fixed category list."""
        return [
            c.name for c in self.columns if c.role == Role.FEATURE and c.dtype == DType.CATEGORY
        ]

    @property
    def threshold(self) -> float:
        """The classification decision threshold (the spec's, else 0.5)."""
        return DEFAULT_THRESHOLD if self.decision_threshold is None else self.decision_threshold

    @property
    def imputed_columns(self) -> list[str]:
        """Feature columns whose missing values are filled with a value learned from the data."""
        return [c.name for c in self.columns if c.role == Role.FEATURE and c.imputes]

    @property
    def window_features(self) -> list[str]:
        """Calendar features, then the features of each entity's past, in spec order."""
        calendar = [str(c) for c in self.windows.calendar]
        return calendar + self.windows.history_features

    @property
    def model_features(self) -> list[str]:
        """The model's input columns in their fixed order: delivered, derived, then windows."""
        return self.feature_columns + [d.name for d in self.derived] + self.window_features

    @property
    def required_columns(self) -> list[str]:
        """Columns a source must deliver."""
        return [c.name for c in self.columns]


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a spec file, naming the file and the field on any error."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise SpecError(f"dataset spec {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"dataset spec {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise SpecError(f"dataset spec {path} must be a mapping at the top level")
    try:
        return DatasetSpec.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe_error(document, e) for e in errors if not _echo(e, errors)]
        message = f"dataset spec {path} is invalid: {'; '.join(problems)}"
        raise SpecError(message, problems) from exc


def _describe_error(document: dict[str, Any], error: Any) -> str:
    """`column 'cp': categories[0]: ...` rather than pydantic's `columns.2.categories.0`."""
    location = list(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        model = _model_at(location[:-1])
        allowed = f"; allowed fields: {', '.join(model.model_fields)}" if model else ""
        message = f"unknown field {location[-1]!r}{allowed}"
        location = location[:-1]
    subject = ""
    if len(location) >= 2 and location[0] in _LISTS and isinstance(location[1], int):
        entries = document.get(location[0])
        entry = entries[location[1]] if isinstance(entries, list) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        label = _LISTS[location[0]]
        subject = f"{label} {name!r}" if name else f"{label} #{location[1] + 1}"
        location = location[2:]
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    where = ": ".join(p for p in (subject, path) if p) or "top level"
    if subject and message.startswith(f"{subject}:"):
        return message  # the model's own check already named the column
    return f"{where}: {message}"


_LISTS = {"columns": "column", "derived": "derived column"}


def _echo(error: Any, errors: list[Any]) -> bool:
    """A list found "too short" only because its entries failed: those errors say it."""
    loc = tuple(error["loc"])
    return error["type"] == "too_short" and any(
        len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors
    )


def _model_at(location: Sequence[str | int]) -> type[BaseModel] | None:
    """The spec model that a validation error's location points into (None: not a model)."""
    model: type[BaseModel] | None = DatasetSpec
    for part in location:
        if isinstance(part, int):
            continue  # an entry of a list: the same model as the list's
        field = model.model_fields.get(part) if model else None
        model = _inner_model(field.annotation) if field else None
        if model is None:
            return None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside `X | None`, `tuple[X, ...]` or `X` itself."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None
