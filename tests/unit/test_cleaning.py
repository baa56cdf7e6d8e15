from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_assets.core.cleaning import REASON_COLUMN, clean, exact_duplicates
from mlops_assets.core.quality import check_cleaned
from mlops_assets.core.raw import prepare_raw
from mlops_assets.sources import SklearnSource, SourceError, SyntheticConfig, generate_house_sales

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _clean(frame, spec):
    return clean(prepare_raw(frame, spec, "test", NOW).frame, spec)


@pytest.fixture
def batch() -> pd.DataFrame:
    return generate_house_sales(SyntheticConfig(rows=500, seed=1))


def _reasons(result) -> list[str]:
    return result.quarantine[REASON_COLUMN].tolist()


def test_clean_batch_passes_untouched(batch, house_spec):
    result = _clean(batch, house_spec)
    assert len(result.cleaned) == 500 and result.quarantine.empty
    assert result.cleaned["location"].dtype.categories.tolist() == ["urban", "suburban", "rural"]
    assert str(result.cleaned["year_built"].dtype) == "int64"


def test_unparseable_values_are_quarantined_with_the_column(batch, house_spec):
    batch["year_built"] = batch["year_built"].astype("string")
    batch.loc[[3, 7], "year_built"] = ["nineteen-eighty", "1999.5"]
    result = _clean(batch, house_spec)
    assert _reasons(result) == ["unparseable:year_built"] * 2
    assert result.quarantine["year_built"].tolist() == ["nineteen-eighty", "1999.5"]
    assert result.quarantine["source_row"].tolist() == [3, 7]


def test_infinite_values_are_not_numbers(batch, house_spec):
    batch.loc[5, "sqft"] = np.inf
    assert _reasons(_clean(batch, house_spec)) == ["unparseable:sqft"]


def test_nulls_are_quarantined_unless_imputation_is_allowed(batch, house_spec):
    batch.loc[[1, 2], "sqft"] = np.nan
    batch.loc[[4], "lot_size"] = np.nan
    result = _clean(batch, house_spec)
    assert _reasons(result) == ["null:sqft", "null:sqft"]
    assert result.to_impute["lot_size"] == {"strategy": "median", "rows": 1}
    # The fill value is learned by the feature stage, not per batch here.
    assert result.cleaned["lot_size"].isna().sum() == 1
    assert not [o.name for o in check_cleaned(result, house_spec) if o.blocks]


def test_out_of_range_and_unknown_categories(batch, house_spec):
    batch.loc[0, "bedrooms"] = 99
    batch.loc[1, "sqft"] = -5
    batch["location"] = batch["location"].astype("string")
    batch.loc[2, "location"] = "moon"
    result = _clean(batch, house_spec)
    assert sorted(_reasons(result)) == [
        "out_of_range:bedrooms",
        "out_of_range:sqft",
        "unknown_category:location",
    ]


def test_several_reasons_are_all_recorded(batch, house_spec):
    batch.loc[0, "bedrooms"] = 99
    batch.loc[0, "sqft"] = np.nan
    assert _reasons(_clean(batch, house_spec)) == ["null:sqft;out_of_range:bedrooms"]


def test_exact_duplicates_are_removed_and_counted(batch, house_spec):
    doubled = pd.concat([batch, batch.iloc[:25]], ignore_index=True)
    result = _clean(doubled, house_spec)
    assert result.duplicates_removed == 25
    assert len(result.cleaned) == 500 and result.quarantine.empty


def test_conflicting_rows_for_one_key_and_time_are_all_quarantined(batch, house_spec):
    conflict = batch.iloc[[10]].assign(price=batch.loc[10, "price"] + 1)
    result = _clean(pd.concat([batch, conflict], ignore_index=True), house_spec)
    assert _reasons(result) == ["duplicate_key", "duplicate_key"]
    assert len(result.cleaned) == 499


def test_exact_duplicate_detection_compares_values_not_only_hashes():
    frame = pd.DataFrame({"a": [1, 1, 2, np.nan, np.nan], "b": ["x", "x", "x", None, None]})
    assert exact_duplicates(frame).tolist() == [False, True, False, False, True]


def test_missing_required_column_is_named(batch, house_spec):
    with pytest.raises(SourceError, match=r"lacks required columns \['sqft'\]"):
        prepare_raw(batch.drop(columns=["sqft"]), house_spec, "file:x.csv", NOW)


def test_second_spec_derives_a_stable_key_and_the_ingestion_time(cancer_spec):
    frame = SklearnSource("breast_cancer").load()
    first = prepare_raw(frame, cancer_spec, "sklearn", NOW)
    again = prepare_raw(frame.copy(), cancer_spec, "sklearn", NOW)
    assert first.derived_entity_key and first.derived_event_timestamp
    np.testing.assert_array_equal(first.frame["row_id"], again.frame["row_id"])
    assert first.frame["row_id"].is_unique and (first.frame["row_id"] >= 0).all()
    assert (first.frame["ingested_at"] == pd.Timestamp(NOW)).all()
    result = clean(first.frame, cancer_spec)
    assert len(result.cleaned) == 569
    assert list(result.cleaned.columns[:2]) == ["row_id", "ingested_at"]


@settings(max_examples=25, deadline=None)
@given(
    faults=st.sets(st.sampled_from(["nulls", "out_of_range", "unparseable", "duplicates"])),
    rate=st.floats(min_value=0.0, max_value=0.3),
    rows=st.integers(min_value=2, max_value=400),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_every_raw_row_is_accounted_for(house_spec, faults, rate, rows, seed):
    config = SyntheticConfig(rows=rows, seed=seed, faults=tuple(sorted(faults)), fault_rate=rate)
    raw = prepare_raw(generate_house_sales(config), house_spec, "synthetic", NOW).frame
    result = clean(raw, house_spec)
    assert len(raw) == len(result.cleaned) + len(result.quarantine) + result.duplicates_removed
    assert result.quarantine[REASON_COLUMN].str.len().gt(0).all()


def test_booleans_for_numbers_are_a_wrong_type_not_out_of_range(batch, house_spec):
    batch["sqft"] = batch["sqft"].astype(object)
    batch.loc[[2, 5], "sqft"] = [True, False]
    batch.loc[9, "sqft"] = "true"
    result = _clean(batch, house_spec)
    assert result.rule_counts == {"wrong_type:sqft": 3}
    assert _reasons(result) == ["wrong_type:sqft"] * 3
    assert len(result.cleaned) + len(result.quarantine) == 500


@pytest.mark.parametrize("column", ["sqft", "bedrooms"])  # a float and an int column
def test_a_boolean_column_for_a_number_is_a_wrong_type(batch, house_spec, column):
    batch[column] = batch[column] > 2
    result = _clean(batch, house_spec)
    assert result.rule_counts == {f"wrong_type:{column}": 500}
