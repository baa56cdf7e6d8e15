"""`mlops rollback` and `mlops history` against a real registry, after three real promotions.

v1 is a linear model (the spec's R² gate lowered to its reach), v2 XGBoost at the default depth,
v3 XGBoost at depth 3: on these rows each truly beats the one before (see `IMPROVED` in
`test_training_pipeline.py`), so all three are promoted. Each rollback re-runs `deploy_job`:
the alias, `champion.json` and the model `mlops serve` loads (`bento.json`) all move back.
"""

import json

import mlflow
import pytest

from mlops_assets.cli import main
from mlops_assets.runner import ingest_batch, open_instance, run_pipeline
from tests.integration.conftest import save_linear_reach_spec

CHALLENGERS = ({}, {"families": ["xgboost"]}, {"families": ["xgboost"], "max_depth": 3})


def _served(paths) -> tuple[str, str]:
    """The model version and BentoML model tag `mlops serve` would load."""
    pointer = json.loads((paths.root / "deployment" / "bento.json").read_text())
    return pointer["model_version"], pointer["model_tag"]


def _champion(paths) -> str:
    uri = f"sqlite:///{paths.root / 'mlflow' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    alias = client.get_model_version_by_alias("house_prices", "champion").version
    pointer = json.loads((paths.root / "deployment" / "champion.json").read_text())["version"]
    assert pointer == str(alias), "champion.json follows the alias"
    return str(alias)


def _three_promotions(paths) -> dict[str, tuple[str, str]]:
    # Shuffled folds: the ladder linear < XGBoost < depth-3 XGBoost holds there; judged on
    # later sales the families are within noise of each other (test_training_pipeline.py).
    save_linear_reach_spec(paths, families=["linear"], protocol="cross_validation")
    instance = open_instance(paths)
    assert ingest_batch(instance, "initial", {"rows": 3_000, "seed": 3}).success
    served = {}
    for config in CHALLENGERS:
        run = run_pipeline(instance, model_config=config)
        assert run.success, run.error
        promotion = run.metadata["promoted_model"]
        assert promotion["promoted"] is True, promotion["reason"]
        served[promotion["champion_version"]] = _served(paths)
    assert list(served) == ["1", "2", "3"] and len({tag for _, tag in served.values()}) == 3
    return served


@pytest.mark.slow
def test_rollbacks_step_back_through_promotions_and_redeploy(paths, capsys):
    served = _three_promotions(paths)
    capsys.readouterr()
    assert main(["history"]) == 0
    history = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1:3] for line in history[:-1]] == [
        ["promote", "v1"], ["promote", "v2"], ["promote", "v3"],
    ]  # fmt: skip
    assert history[-1].startswith("Champion: v3 ")

    assert main(["rollback", "--reason", "bad canary"]) == 0
    said = capsys.readouterr().out
    assert "Rolled back: champion is v2 again (was v3)" in said
    assert (_champion(paths), _served(paths)) == ("2", served["2"]), "deploy_job re-ran"
    assert "Serving package: mlops_predictions:v2-" in said

    assert main(["rollback"]) == 0, "a second rollback steps back one more promotion"
    said = capsys.readouterr().out
    assert "Rolled back: champion is v1 again (was v2)" in said
    assert "Serving package: mlops_predictions:v1-" in said
    assert (_champion(paths), _served(paths)) == ("1", served["1"])

    history_file = paths.root / "deployment" / "promotions.jsonl"
    before = (history_file.read_bytes(), _served(paths), len(open_instance(paths).get_runs()))
    assert main(["rollback"]) == 1
    assert capsys.readouterr().out.strip() == (
        "error: champion v1 has no earlier champion to restore"
    )
    after = (history_file.read_bytes(), _served(paths), len(open_instance(paths).get_runs()))
    assert after == before and _champion(paths) == "1", "nothing changed, nothing ran"

    assert main(["history"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].split()[1:4] == ["rollback", "v2", "(previous"] and "bad canary" in lines[-3]
    assert lines[-2].split()[1:3] == ["rollback", "v1"]
    assert lines[-1].startswith("Champion: v1 ")
