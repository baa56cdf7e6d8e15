import dagster as dg
import pandas as pd
import pytest

from mlops_assets.core.storage import read_json
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from mlops_assets.spec import BREAST_CANCER_SPEC
from tests.integration.conftest import batch_set, check_evaluations, failure_text
from tests.materializations import metadata


def test_batch_is_ingested_with_metadata_and_passing_checks(ingest, paths):
    result = ingest("b1", {"rows": 3_000, "seed": 4})
    assert result.success
    raw_meta, cleaned_meta = metadata(result, "raw_data"), metadata(result, "cleaned_data")
    assert raw_meta["dagster/row_count"] == 3_000
    assert raw_meta["source"].startswith("synthetic:rows=3000,seed=4")
    assert len(raw_meta["content_hash"]) == 64
    assert raw_meta["time_range"].startswith("2015-01-")
    assert cleaned_meta["dagster/row_count"] == 3_000 and cleaned_meta["quarantined_rows"] == 0
    evaluations = check_evaluations(result)
    assert len(evaluations) == 4 + 7
    assert all(e.passed for e in evaluations.values())
    assert len(pd.read_parquet(paths.cleaned("b1"))) == 3_000
    assert read_json(paths.manifest("b1"))["rows"] == 3_000


def test_blocked_reingestion_keeps_the_previous_set_of_all_four(ingest, paths):
    assert ingest("b1", {"rows": 2_000, "seed": 1}).success
    good = batch_set(paths, "b1")
    source = {"rows": 2_000, "seed": 1, "faults": ["nulls"], "fault_rate": 0.2, "replace": True}
    result = ingest("b1", source)
    assert not result.success
    assert "quarantine_share: 20.00% of rows quarantined > limit 10.00%" in failure_text(result)
    assert batch_set(paths, "b1") == good, "raw, cleaned, quarantine and manifest untouched"
    assert not (paths.data / "staging" / "b1").exists(), "the blocked attempt left no staging"
    rejected = pd.read_parquet(paths.quarantine("b1", rejected=True))
    assert (rejected["quarantine_reason"] == "null:sqft").sum() == 400
    evaluation = check_evaluations(result)[("cleaned_data", "quarantine_share")]
    assert not evaluation.passed and evaluation.severity.value == "ERROR"


def test_rows_breaking_rules_are_quarantined_not_dropped(ingest, paths):
    source = {
        "rows": 2_000,
        "faults": ["out_of_range", "unparseable", "duplicates"],
        "fault_rate": 0.01,
    }
    result = ingest("b1", source)
    assert result.success, failure_text(result)
    meta = metadata(result, "cleaned_data")
    assert (
        meta["raw_rows"]
        == meta["dagster/row_count"] + meta["quarantined_rows"] + meta["duplicates_removed"]
    )
    assert meta["duplicates_removed"] == 20
    assert set(meta["rows_per_rule"]) == {"out_of_range:bedrooms", "unparseable:year_built"}
    raw_check = check_evaluations(result)[("raw_data", "values_valid")]
    assert not raw_check.passed and raw_check.severity.value == "WARN"


def test_missing_source_file_names_it(ingest, tmp_path):
    missing = tmp_path / "nowhere" / "sales.csv"
    result = ingest("b1", {"kind": "file", "path": str(missing)})
    assert not result.success
    assert f"source file {missing} does not exist" in failure_text(result)


def test_missing_column_names_the_file_and_the_column(ingest, tmp_path):
    path = tmp_path / "sales.csv"
    generate_house_sales(SyntheticConfig(rows=500)).drop(columns=["condition"]).to_csv(
        path, index=False
    )
    result = ingest("b1", {"kind": "file", "path": str(path)})
    assert not result.success
    message = failure_text(result)
    assert str(path) in message and "condition" in message
    assert not check_evaluations(result)[("raw_data", "required_columns")].passed


def test_too_few_rows_block_raw_data(ingest, paths):
    result = ingest("tiny", {"rows": 20})
    assert not result.success
    assert "row_count: 20 rows < minimum 100" in failure_text(result)
    assert not paths.raw("tiny").exists()


def test_new_batch_does_not_rewrite_history(ingest, paths):
    assert ingest("b1", {"rows": 1_000, "seed": 1}).success
    before = {p: p.stat().st_mtime_ns for p in (paths.raw("b1"), paths.cleaned("b1"))}
    assert ingest("b2", {"rows": 1_000, "seed": 2, "first_house_id": 10_000_000}).success
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert sorted(p.name for p in paths.cleaned_dir().glob("*.parquet")) == [
        "b1.parquet",
        "b2.parquet",
    ]


def test_second_spec_runs_through_the_same_assets(ingest, paths):
    source = {"kind": "sklearn", "dataset": "breast_cancer"}
    first = ingest("cancer", source, spec_path=str(BREAST_CANCER_SPEC))
    assert first.success, failure_text(first)
    meta = metadata(first, "raw_data")
    assert meta["derived_entity_key"] is True and meta["derived_event_timestamp"] is True
    cleaned = pd.read_parquet(paths.cleaned("cancer"))
    assert len(cleaned) == 569 and {"row_id", "ingested_at", "target"} <= set(cleaned.columns)
    again = ingest("cancer", source, spec_path=str(BREAST_CANCER_SPEC))
    assert again.success
    rerun = pd.read_parquet(paths.cleaned("cancer"))
    pd.testing.assert_frame_equal(cleaned, rerun), "a rerun reproduces the same table"


@pytest.mark.parametrize("kind", ["landing"])
def test_landing_source_reads_the_batch_file(ingest, paths, kind):
    from mlops_assets.sources import drop_batch

    drop_batch(generate_house_sales(SyntheticConfig(rows=700)), paths.landing, "landed-1", "csv")
    result = ingest("landed-1", {"kind": kind})
    assert result.success, failure_text(result)
    assert metadata(result, "raw_data")["source"].endswith("landing/landed-1")


def test_cleaned_data_alone_recleans_the_published_raw_table(ingest, instance, paths):
    from mlops_assets.ingestion.assets import cleaned_data, raw_data
    from mlops_assets.resources import DatasetSpecResource, MlopsHome

    assert ingest("b1", {"rows": 1_000, "seed": 1}).success
    before = batch_set(paths, "b1")
    home = MlopsHome()
    result = dg.materialize(
        [raw_data, cleaned_data],
        selection=["cleaned_data"],
        instance=instance,
        partition_key="b1",
        resources={"home": home, "dataset": DatasetSpecResource(home=home)},
    )
    assert result.success
    assert batch_set(paths, "b1") == before, "the same raw table cleans to the same set"
