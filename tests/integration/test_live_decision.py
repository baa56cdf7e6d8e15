"""The live decision's refusals and a rejection, against a real MLflow registry.

Two registered versions: v1 champion, v2 the challenger in the rollout file. The evidence is
written as `live_performance` records it, so each case knows its outcome in advance.
"""

import pytest
import yaml

from mlops_assets.core.live_evidence import LiveEvidence
from mlops_assets.model_registry.champion import ChampionRegistry
from mlops_assets.model_registry.rollout import Rollout, read_rollout, write_rollout
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.monitoring.decision import decide_live
from mlops_assets.resources import MlopsHome
from mlops_assets.spec import HOUSE_PRICES_SPEC, DatasetSpec

BETTER = LiveEvidence("1", "2", "paired", "rmse", 300, 300, 10.0, 20.0).as_record()
WORSE = LiveEvidence("1", "2", "paired", "rmse", 300, 300, 25.0, 20.0).as_record()


def _spec(policy: str) -> DatasetSpec:
    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    document["promotion"] = {"policy": policy}
    if policy == "live":
        document["promotion"]["min_live_labels"] = 100
    return DatasetSpec.model_validate(document)


@pytest.fixture
def staged(paths):
    """v1 champion (passed its gates), v2 registered with `gates_passed` as given, in shadow."""
    client = MlflowTracking(home=MlopsHome()).client()
    registry = ChampionRegistry(client, "house_prices", paths)
    experiment = client.create_experiment("live", artifact_location=str(paths.root / "artifacts"))

    def register(gates_passed: bool) -> str:
        run = client.create_run(experiment)
        tags = {"gates_passed": str(gates_passed).lower()}
        return registry.register(f"runs:/{run.info.run_id}/model", run.info.run_id, tags)

    def make(challenger_passed: bool) -> ChampionRegistry:
        registry.promote(register(True), None, {"reason": "first"})
        registry.set_challenger(register(challenger_passed))
        rollout = Rollout(mode="shadow", challenger_tag="house_prices:v2-x", challenger_version="2")
        write_rollout(paths.rollout, rollout)
        return registry

    return make


def _decide(registry, paths, policy: str, evidence: dict):
    return decide_live(registry, paths, HOUSE_PRICES_SPEC, _spec(policy), evidence)


def test_what_cannot_be_decided_changes_nothing(paths, staged):
    registry = staged(challenger_passed=False)
    refused = _decide(registry, paths, "live", BETTER)
    assert refused.action == "none" and "did not pass the offline gates" in refused.reason
    by_hand = _decide(registry, paths, "offline", BETTER)
    assert by_hand.action == "none" and "policy is offline" in by_hand.reason
    registry.client.set_model_version_tag("house_prices", "2", "gates_passed", "true")
    stale = _decide(registry, paths, "live", {**BETTER, "champion": "7"})
    assert stale.action == "wait" and "no live evidence on v2 against champion v1" in stale.reason
    few = _decide(registry, paths, "live", {**BETTER, "challenger_labels": 40})
    assert few.action == "wait" and "40 of 100 labelled predictions" in few.reason
    assert registry.champion().version == "1" and registry.challenger().version == "2"
    assert read_rollout(paths.rollout).mode == "shadow"
    assert [e["action"] for e in registry.history()] == ["promote"]


def test_a_worse_challenger_is_rejected_once(paths, staged):
    registry = staged(challenger_passed=True)
    rejected = _decide(registry, paths, "live", WORSE)
    assert rejected.action == "reject", rejected.reason
    assert "worse on live labels: live rmse v2 25 vs champion v1 20" in rejected.reason
    assert registry.champion().version == "1" and registry.challenger() is None
    assert read_rollout(paths.rollout).mode == "champion"
    [kept] = [e for e in registry.history() if e["action"] == "keep"]
    assert kept["version"] == "2" and kept["evidence"]["challenger_value"] == 25.0
    again = _decide(registry, paths, "live", WORSE)
    assert again.action == "none", "nothing staged any more"
    assert [e["action"] for e in registry.history()] == ["promote", "keep"]
