"""A delivery counted once: the same file under a new batch name is refused, naming the batch.

Through `mlops ingest` as a user meets it, on data without a key or a timestamp (the diabetes
set), where a repeated file would otherwise double every row.
"""

import json
import os
import shutil

from mlops_assets.cli import KEYLESS_NOTE, main
from mlops_assets.core.storage import read_json
from mlops_assets.features.inputs import cleaned_batch_paths, load_cleaned
from mlops_assets.sources import SklearnSource
from mlops_assets.spec import DIABETES_SPEC, load_spec

ROWS = 442  # scikit-learn's diabetes set


def test_the_same_file_under_a_new_name_is_refused_then_accepted_when_allowed(
    paths, capsys, monkeypatch
):
    monkeypatch.setenv("MLOPS_SPEC", str(DIABETES_SPEC))
    paths.landing.mkdir(parents=True)
    SklearnSource("diabetes").load().to_csv(paths.landing / "first.csv", index=False)
    assert main(["ingest"]) == 0
    output = capsys.readouterr().out
    assert f"Batch 'first': {ROWS} raw rows -> {ROWS} cleaned, 0 quarantined" in output
    assert KEYLESS_NOTE in output, "the summary says how keyless rows are identified"
    first = read_json(paths.manifest("first"))

    shutil.copyfile(paths.landing_processed / "first.csv", paths.landing / "again.csv")
    assert main(["ingest"]) == 1
    output = capsys.readouterr().out
    expected = (
        f"batch 'again' repeats batch 'first': this run read landing:{paths.landing / 'again'}, "
        f"whose content (delivered hash {first['delivered_hash'][:16]}) equals what batch "
        f"'first' already holds (from landing:{paths.landing / 'first'}, ingested "
        f"{first['ingested_at']}), so its rows would be counted twice. Nothing was changed."
    )
    assert "Batch 'again' FAILED" in output and expected in output
    assert "`mlops ingest --allow-repeat`" in output
    assert expected in (paths.landing_failed / "again.csv.error.txt").read_text()
    assert not paths.manifest("again").exists()
    assert [p.stem for p in cleaned_batch_paths(paths)] == ["first"]

    os.replace(paths.landing_failed / "again.csv", paths.landing / "again.csv")
    assert main(["ingest", "--allow-repeat"]) == 0
    output = capsys.readouterr().out
    assert f"Batch 'again': {ROWS} raw rows -> {ROWS} cleaned, 0 quarantined" in output
    assert "This delivery repeats batch 'first' (accepted with --allow-repeat)" in output
    again = read_json(paths.manifest("again"))
    assert again["repeats_batch"] == "first"
    assert again["delivered_hash"] == first["delivered_hash"]
    rows, superseded = load_cleaned(paths, load_spec(DIABETES_SPEC))
    assert (len(rows), superseded) == (2 * ROWS, 0), "as the summary said: counted again"
    assert json.loads(paths.manifest("first").read_text()) == first, "the first is untouched"
