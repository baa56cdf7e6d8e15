"""Assets of the `features` group.

Engineered features in Feast, the online store, and the point-in-time-correct training set.
"""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from mlops_assets.asset_checks import blocking_failures, check_specs, reject, to_check_result
from mlops_assets.core.features import engineer
from mlops_assets.core.imputation import ATTRS_KEY as IMPUTATION_KEY
from mlops_assets.core.imputation import learn_imputation
from mlops_assets.core.point_in_time import as_of_join, mismatched_rows
from mlops_assets.core.protocols import as_event_times
from mlops_assets.core.quality import (
    FEATURE_CHECKS,
    TRAINING_SET_CHECKS,
    CheckOutcome,
    Severity,
    check_features,
)
from mlops_assets.core.splits import (
    ENTITY_HASH,
    LATEST_PERIOD,
    SPLIT_COLUMN,
    SPLITS,
    entity_split,
    time_split,
)
from mlops_assets.core.statistics import feature_statistics
from mlops_assets.core.storage import content_hash, write_json_atomic, write_parquet_atomic
from mlops_assets.core.windows import window_features
from mlops_assets.errors import failing_clearly
from mlops_assets.features.feast_repo import (
    FeastDefinitions,
    FeastNames,
    build_definitions,
    offline_path,
)
from mlops_assets.features.inputs import NoCleanedDataError, load_cleaned
from mlops_assets.features.store_resource import FeatureStoreResource
from mlops_assets.model_registry.state_setup import setup_lock
from mlops_assets.profile import redact_url
from mlops_assets.progress import reporter
from mlops_assets.resources import DatasetSpecResource, MlopsHome
from mlops_assets.spec import DatasetSpec, Protocol

FEAST_EVENT_TIMESTAMP = "event_timestamp"  # the entity-frame column Feast takes without guessing


class TrainingSetConfig(dg.Config):
    """One-run override of the holdout split (None: the spec's `training.split`)."""

    train_fraction: float | None = None
    validation_fraction: float | None = None
    test_fraction: float | None = None

    def fractions(self, spec: DatasetSpec) -> tuple[float, float, float]:
        """(train, validation, test) in force."""
        given = (self.train_fraction, self.validation_fraction, self.test_fraction)
        default = spec.training.split.as_tuple()
        train, validation, test = (
            d if g is None else g for g, d in zip(given, default, strict=True)
        )
        return (train, validation, test)


@dg.asset(
    group_name="features",
    deps=["cleaned_data"],
    kinds={"pandas", "parquet"},
    check_specs=check_specs("features", FEATURE_CHECKS, set(FEATURE_CHECKS)),
)
def features(
    context: dg.AssetExecutionContext, home: MlopsHome, dataset: DatasetSpecResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Engineered features of every cleaned batch, keyed by entity and event time, for Feast."""
    spec, paths, say = dataset.load(), home.paths(), reporter(context)
    cleaned, superseded = _load_cleaned(paths, spec)
    say(f"features: {len(cleaned):,} cleaned rows read ({superseded:,} superseded by later ones)")
    imputation = learn_imputation(cleaned, spec)
    engineered = engineer(cleaned, spec, imputation)
    if spec.windows.history_features:
        started = time.perf_counter()
        engineered = _with_history(engineered, cleaned, spec)
        say(
            f"features: {len(spec.windows.history_features)} window features of each entity's "
            f"past in {time.perf_counter() - started:.1f} s"
        )
    outcomes = check_features(engineered, spec)
    if blocking_failures(outcomes):
        yield from reject(outcomes, "features")
    stored = _strings_for_feast(engineered, spec)
    stored.attrs[IMPUTATION_KEY] = imputation  # kept in the Parquet file, with the features
    path = write_parquet_atomic(stored, offline_path(paths, spec))
    say(f"features: {len(stored):,} rows written for Feast")
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "dagster/row_count": len(stored),
            "entities": int(stored[spec.entity_key].nunique()),
            "superseded_rows": superseded,
            "features": dg.MetadataValue.json(spec.model_features),
            "imputation": dg.MetadataValue.json(imputation),
            "content_hash": content_hash(stored),
        },
        check_results=[to_check_result(o) for o in outcomes],
    )


@dg.asset(group_name="features", deps=[features], kinds={"feast"})
def feast_registry(
    feature_store: FeatureStoreResource, dataset: DatasetSpecResource, home: MlopsHome
) -> dg.MaterializeResult:
    """The Feast registry with the entity, source, feature view and feature service applied."""
    from mlops_assets.features import registry_sync

    spec = dataset.load()
    definitions = build_definitions(spec, home.paths())
    digest = registry_sync.definitions_hash(definitions)
    registry_sync.tag_view(definitions, digest)
    with setup_lock(home.paths(), "feast"):  # two applies at once: the last write loses one
        store = feature_store.store()  # opened under the lock: reads the registry as it is now
        unchanged = registry_sync.already_applied(store, definitions, digest)
        if not unchanged:
            _apply(store, definitions)
    names = FeastNames.for_spec(spec)
    return dg.MaterializeResult(
        metadata={
            "project": store.project,
            "entity": names.entity,
            "feature_view": names.view,
            "feature_service": names.service,
            "registry": dg.MetadataValue.path(redact_url(str(store.config.registry.path))),
            "apply": "skipped: unchanged" if unchanged else "applied",
            "definitions_hash": digest,
        }
    )


def _apply(store: Any, definitions: FeastDefinitions) -> None:
    """`feast apply` of each object in order, naming the one Feast refused."""
    for obj in definitions.in_apply_order():
        try:
            store.apply(obj)
        except Exception as exc:  # Feast raises many types; name the object that failed
            kind = type(obj).__name__
            raise dg.Failure(
                description=f"feast apply failed for {kind} {obj.name!r}: {exc}",
                allow_retries=False,
            ) from exc


class OnlineFeaturesConfig(dg.Config):
    """How to bring the online store up to date."""

    full_rewrite: bool = Field(
        default=False,
        description="Rewrite every entity, not only those whose newest row changed since the "
        "last materialization (the recorded state is ignored; the end state is the same).",
    )


@dg.asset(group_name="features", deps=[feast_registry], kinds={"feast"})
def online_features(
    context: dg.AssetExecutionContext,
    config: OnlineFeaturesConfig,
    feature_store: FeatureStoreResource,
    dataset: DatasetSpecResource,
    home: MlopsHome,
) -> dg.MaterializeResult:
    """Each entity's newest features in the online store, written only where they changed."""
    from mlops_assets.features.online_write import materialize_newest

    spec = dataset.load()
    store = feature_store.store()
    features = _read_features(home, spec)
    view = store.get_feature_view(FeastNames.for_spec(spec).view)
    say = reporter(context)
    say(f"online store: writing each entity's newest row of {len(features):,} feature rows")
    with failing_clearly(
        "writing the online features",
        f"the {store.config.online_store.type} online store",
        "Entities already written keep their values and nothing is promoted; re-run once the "
        "store is reachable (the write is an idempotent upsert).",
    ):
        written = materialize_newest(
            store,
            view,
            features,
            spec.entity_key,
            spec.event_timestamp,
            state_dir=home.paths().online_state,
            full=config.full_rewrite,
        )
    say(f"online store: {written.entities:,} entities written in {written.seconds:.1f} s")
    return dg.MaterializeResult(
        metadata={
            "mode": written.mode,
            "mode_reason": written.reason,
            "entities": written.entities,
            "entities_written": written.written,
            "entities_skipped": written.skipped,
            "entities_deleted": written.deleted,
            "input_rows": written.input_rows,
            "window_start": written.start.isoformat(),
            "window_end": written.end.isoformat(),
            "seconds": round(written.seconds, 3),
            "entities_written_per_second": round(written.written / max(written.seconds, 1e-9)),
            "online_store": written.path,
        }
    )


@dg.asset(
    group_name="features",
    deps=[feast_registry, "cleaned_data"],
    kinds={"feast", "parquet"},
    check_specs=check_specs("training_set", TRAINING_SET_CHECKS, set(TRAINING_SET_CHECKS)),
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    feature_store: FeatureStoreResource,
    dataset: DatasetSpecResource,
    home: MlopsHome,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Labels joined point-in-time-correctly to their features by Feast, split and described."""
    spec, paths = dataset.load(), home.paths()
    cleaned, _ = _load_cleaned(paths, spec)
    labels = cleaned[[spec.entity_key, spec.event_timestamp, spec.target]]
    store = feature_store.store()
    service = store.get_feature_service(FeastNames.for_spec(spec).service)
    say = reporter(context)
    say(f"training set: point-in-time join of {len(labels):,} labels through Feast")
    started = time.perf_counter()
    joined = _historical_features(store, labels, service, spec)
    join_seconds = time.perf_counter() - started
    table = _align_to_labels(labels, joined, spec)
    features = _read_features(home, spec)
    outcomes = _training_set_checks(labels, joined, table, features, spec)
    if blocking_failures(outcomes):
        yield from reject(outcomes, "training_set")
    fractions = config.fractions(spec)
    table[SPLIT_COLUMN], method = split_rows(table, spec, fractions)
    statistics = feature_statistics(table.loc[table[SPLIT_COLUMN] == "train"], spec)
    path = write_parquet_atomic(table, paths.training_set)
    digest = content_hash(table)
    write_json_atomic(
        {
            "content_hash": digest,
            "feature_service": service.name,
            "split_method": method,
            IMPUTATION_KEY: features.attrs.get(IMPUTATION_KEY, {}),
            **statistics,
        },
        paths.feature_statistics,
    )
    counts = table[SPLIT_COLUMN].value_counts()
    # The split line belongs to the holdout protocols; the model step says which protocol ran.
    say(f"training set: {len(table):,} rows in {join_seconds:.1f} s")
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "dagster/row_count": len(table),
            **{f"{name}_rows": int(counts.get(name, 0)) for name in SPLITS},
            "split_method": method,
            "split_fractions": dg.MetadataValue.json(list(fractions)),
            "feature_service": service.name,
            "label": spec.target,
            "content_hash": digest,
            "point_in_time_join_seconds": round(join_seconds, 3),
        },
        check_results=[to_check_result(o) for o in outcomes],
    )


def split_rows(
    table: pd.DataFrame, spec: DatasetSpec, fractions: tuple[float, float, float]
) -> tuple[pd.Series, str]:
    """Each row's holdout split and how it was made: by event time when the data has one.

    The large-data protocol in force for time-stamped data judges the latest period; an
    explicit `cross_validation` or `holdout` in the spec keeps the entity-hash split.
    """
    settings = spec.training
    by_time = spec.has_event_time and settings.protocol in (
        Protocol.AUTO,
        Protocol.TIME_ORDERED,
        Protocol.LATEST_PERIOD,
        Protocol.BACKTEST,
    )
    keys = table[spec.entity_key].to_numpy()
    if not by_time:
        return pd.Series(entity_split(keys, fractions), index=table.index), ENTITY_HASH
    times = as_event_times(table[spec.event_timestamp])
    gap = int(settings.gap.total_seconds() * 1e9)
    labels = time_split(times, fractions, gap, keys if settings.unseen_entities else None)
    return pd.Series(labels, index=table.index), LATEST_PERIOD


def _with_history(
    engineered: pd.DataFrame, cleaned: pd.DataFrame, spec: DatasetSpec
) -> pd.DataFrame:
    """The engineered rows with their lag and rolling features, columns in model order."""
    history = window_features(cleaned, spec)
    combined = pd.concat([engineered, history], axis=1)
    return combined[[spec.entity_key, spec.event_timestamp, *spec.model_features]]


def _load_cleaned(paths, spec: DatasetSpec) -> tuple[pd.DataFrame, int]:
    try:
        return load_cleaned(paths, spec)
    except NoCleanedDataError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def _read_features(home: MlopsHome, spec: DatasetSpec) -> pd.DataFrame:
    path = offline_path(home.paths(), spec)
    if not path.exists():
        raise dg.Failure(
            description=f"no feature table at {path}: materialize the `features` asset first"
        )
    features = pd.read_parquet(path)
    if features.empty:
        raise dg.Failure(description=f"feature table {path} is empty: nothing to materialize")
    return features


def _strings_for_feast(features: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Categories as plain strings: Feast's String type, readable in `feast ui`.

    An integer category 3 is stored as "3"; `_align_to_labels` and the online lookup map the
    text back through the spec's category list, so the model sees the same code either way.
    """
    stored = features.copy()
    for name in spec.categorical_columns:
        stored[name] = stored[name].astype("string")
    return stored


def _historical_features(
    store: Any, labels: pd.DataFrame, service: Any, spec: DatasetSpec
) -> pd.DataFrame:
    """Feast's point-in-time join, with the labels' event time named as Feast expects.

    Given any other name, Feast guesses the event-time column and prints that it did on
    every run; named `event_timestamp`, it takes it without a word. The answer gets the
    spec's name back.
    """
    named = spec.event_timestamp
    taken = {*labels.columns, *spec.model_features}
    if FEAST_EVENT_TIMESTAMP in taken:  # the name is in use (or already the event time)
        return store.get_historical_features(entity_df=labels, features=service).to_df()
    entity_df = labels.rename(columns={named: FEAST_EVENT_TIMESTAMP})
    joined = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    return joined.rename(columns={FEAST_EVENT_TIMESTAMP: named})


def _align_to_labels(labels: pd.DataFrame, joined: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Feast may reorder rows: join its answer back onto the labels by key and timestamp."""
    keys = [spec.entity_key, spec.event_timestamp]
    joined = joined.copy()
    joined[spec.event_timestamp] = pd.to_datetime(joined[spec.event_timestamp], utc=True)
    joined[spec.entity_key] = joined[spec.entity_key].astype(labels[spec.entity_key].dtype)
    features = joined[keys + spec.model_features].drop_duplicates(keys)
    table = labels.merge(features, on=keys, how="left", validate="one_to_one")
    table = categories_from_text(table, spec)
    return table[keys + spec.model_features + [spec.target]]


def categories_from_text(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Feast's category text back to the spec's categories (the text "3" to the integer 3)."""
    frame = frame.copy()
    for name in spec.categorical_columns:
        categories = list(spec.column(name).categories or ())
        by_text = {str(c): c for c in categories}
        values = frame[name].astype("string").map(by_text, na_action="ignore")
        frame[name] = pd.Categorical(values.astype("object"), categories=categories)
    return frame


def _training_set_checks(
    labels: pd.DataFrame,
    joined: pd.DataFrame,
    table: pd.DataFrame,
    features: pd.DataFrame,
    spec: DatasetSpec,
) -> list[CheckOutcome]:
    rows_ok = len(joined) == len(labels)
    rows = CheckOutcome(
        "one_row_per_label",
        rows_ok,
        Severity.ERROR,
        f"{len(joined)} joined rows for {len(labels)} labels",
        {"labels": len(labels), "joined": len(joined)},
    )
    features = categories_from_text(features, spec)
    expected = as_of_join(labels, features, spec.entity_key, spec.event_timestamp)
    differences = mismatched_rows(table, expected, spec.model_features)
    pit = CheckOutcome(
        "point_in_time_correct",
        not differences,
        Severity.ERROR,
        f"rows differing from the as-of join: {differences}"
        if differences
        else "every row as of its label time",
        {"differing_rows": differences},
    )
    return [rows, pit]
