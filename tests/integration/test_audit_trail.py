"""The audit trail of a real MLflow registry: every decision appended, tagged, and guarded.

Promote v1, keep v2, promote v3, roll back: four entries, chained, each with its evidence and
tagged on its version. A hand edit then blocks the next promotion (with the sentence that says
what to do) until `mlops audit acknowledge`; the CLI names the broken entry.
"""

import json

import pytest

from mlops_assets.cli import main
from mlops_assets.model_registry.audit import AuditChainBroken, acting_as
from mlops_assets.model_registry.champion import ChampionRegistry
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.resources import MlopsHome


@pytest.fixture
def registry(paths):
    client = MlflowTracking(home=MlopsHome()).client()
    found = ChampionRegistry(client, "house_prices", paths)
    experiment = client.create_experiment("audit", artifact_location=str(paths.root / "art"))

    def register(number: int) -> str:
        run = client.create_run(experiment)
        tags = {"gates_passed": "true", "data_hash": f"hash{number}", "code_version": "abc123"}
        return found.register(f"runs:/{run.info.run_id}/model", run.info.run_id, tags)

    found.register_new = register  # type: ignore[attr-defined]
    return found


def test_each_decision_is_chained_tagged_and_guarded(paths, registry, capsys):
    with acting_as("dagster run r1"):
        registry.promote(
            registry.register_new(1), None, {"reason": "first", "metrics": {"r2": 0.8}}
        )
    registry.record_kept(registry.register_new(2), "1", {"reason": "no better"})
    registry.promote(registry.register_new(3), "1", {"reason": "better", "metrics": {"r2": 0.9}})
    registry.rollback("bad canary")

    entries = registry.audit.entries()
    assert [(e["action"], e["version"], e["previous"]) for e in entries] == [
        ("promote", "1", None), ("keep", "2", "1"), ("promote", "3", "1"), ("rollback", "1", "3"),
    ]  # fmt: skip
    assert entries[0]["by"] == "dagster run r1"
    assert entries[0]["evidence"]["metrics"] == {"r2": 0.8}
    assert entries[2]["evidence"]["data_hash"] == "hash3"
    assert entries[2]["evidence"]["code_version"] == "abc123"
    tag = registry.version("3").tags["audit.promote"]
    assert tag.startswith("entry 3 by ") and tag.endswith(entries[2]["hash"])
    assert registry.version("1").tags["audit.rollback"].endswith(entries[3]["hash"])

    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.strip() == (
        "Audit log intact: 4 entries, each chained to the one before."
    )

    lines = registry.audit.path.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["reason"] = "it was better after all"
    lines[1] = json.dumps(edited, sort_keys=True)
    registry.audit.path.write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify"]) == 1
    assert capsys.readouterr().out.strip() == (
        "Audit log BROKEN at entry 2: entry 2 was edited: its content no longer matches its hash"
    )
    with pytest.raises(AuditChainBroken, match="mlops audit acknowledge"):
        registry.promote(registry.register_new(4), "1", {"reason": "better"})
    assert registry.champion().version == "1", "the champion did not move"

    assert main(["audit", "acknowledge", "--by", "Ada", "--reason", "typo fixed by hand"]) == 0
    assert capsys.readouterr().out.startswith("Acknowledged as entry 5 by Ada: entry 2 was edited")
    registry.promote("4", "1", {"reason": "better"})
    assert registry.champion().version == "4"
    assert main(["audit", "verify"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("acknowledged: entry 2 was edited")
    assert said[1] == "Audit log intact: 6 entries, each chained to the one before."
    assert main(["audit", "show"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in shown] == [
        "promote", "keep", "promote", "rollback", "acknowledge", "promote",
    ]  # fmt: skip
