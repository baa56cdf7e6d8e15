import pandas as pd

from mlops_assets.core.metadata_bounds import MAX_SAMPLE_BYTES, bounded, sample_markdown, truncate


def test_a_long_value_is_cut_with_a_marker_naming_its_length():
    assert truncate("x" * 1_048_576, 10) == "xxxxxxxxxx…[truncated, 1048576 chars]"
    assert truncate("short", 10) == "short"


def test_bounded_caps_strings_lists_and_dicts():
    value = bounded({"k" * 500: ["v" * 500] * 1_000})
    [(key, items)] = value.items()
    assert key.endswith("…[truncated, 500 chars]")
    assert len(items) == 101 and items[-1] == "…[900 more items]"
    assert all(len(item) < 260 for item in items)


def test_sample_is_bounded_in_bytes_as_well_as_rows():
    frame = pd.DataFrame({f"c{i}": ["é" * 190] * 50 for i in range(30)})
    sample = sample_markdown(frame)
    assert len(sample.encode()) <= MAX_SAMPLE_BYTES + 200
    assert "of 50 rows and 30 of 30 columns shown" in sample
    assert sample_markdown(frame.iloc[:0], empty="No rows quarantined.") == "No rows quarantined."
