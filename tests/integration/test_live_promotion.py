"""Promotion on live evidence, end to end through the real assets, sensors and registry.

The market jumps: houses sold from 2025 on fetch 25 % more than the trend (the generator's
`market_jump` scenario over 2015-2035, kept from 2025). The first champion, a linear model
trained on 2015-2024, has never seen it, so its live R² on the jumped sales falls below the
spec's live gate; the live sensor asks for a retrain, and the retrained XGBoost challenger
(trained on the jumped batch too) wins offline. With `promotion: {policy: live}` it is staged,
not promoted. Traffic is then written to the prediction log in the service's format, and
labels for it arrive in later batches:

- shadow, the market stays up: the champion's answer and the challenger's shadow score share a
  request id. The challenger, which learnt the jump, is far better on the same requests; with
  60 of the 100 labels needed nothing happens, with 140 it is promoted and `deploy_job`
  packages it;
- canary, the market falls back to the trend: the challenger answers some houses, the champion
  the others. The challenger, which still prices the jump, is ~25 % high and worse than the
  champion over the same period; it is rejected and the champion kept."""

import json
import time
import uuid
from datetime import UTC, datetime

import dagster as dg
import mlflow
import pandas as pd
import pytest
import yaml

from mlops_assets.automation.sensors import live_decision_sensor, live_performance_sensor
from mlops_assets.cli import main
from mlops_assets.definitions import defs
from mlops_assets.model_registry.rollout import read_rollout
from mlops_assets.runner import ingest_batch, open_instance, run_pipeline
from mlops_assets.serving.predictor import Predictor, load_bundle
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from mlops_assets.spec import HOUSE_PRICES_SPEC
from tests.materializations import metadata

NEEDED = 100  # promotion.min_live_labels


def _save_spec(paths, stage: str) -> None:
    """House prices with gates a linear model reaches, a live gate and the live policy."""
    spec = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    spec["gates"]["rules"] = [{"metric": "r2", "min": 0.8}]
    spec["training"] = {**spec["training"], "protocol": "holdout"}
    spec["monitoring"] = {"live_gate": {"metric": "r2", "min": 0.8}, "min_live_labels": 50}
    spec["promotion"] = {"policy": "live", "stage": stage, "min_live_labels": NEEDED}
    if stage == "canary":
        spec["promotion"]["canary_share"] = 0.4
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.saved_spec.write_text(yaml.safe_dump(spec))


def _sales(seed: int, rows: int, scenario: str, first_id: int) -> pd.DataFrame:
    """`rows` sales from 2025 on, one per house, on a 2015-2035 market (jumped or not)."""
    config = SyntheticConfig(
        rows=rows * 3,
        seed=seed,
        start=datetime(2015, 1, 1, tzinfo=UTC),
        end=datetime(2035, 1, 1, tzinfo=UTC),
        scenario=scenario,
        repeat_share=0.0,
        first_house_id=first_id,
    )
    frame = generate_house_sales(config)
    later = frame[frame["event_timestamp"] >= pd.Timestamp("2025-01-01", tz="UTC")]
    return later.head(rows).reset_index(drop=True)


def _ingest(instance, tmp_path, batch: str, frame: pd.DataFrame) -> None:
    """Labels arrive: the rows are delivered as a batch (ingested after the predictions)."""
    time.sleep(1.1)  # ingestion times have one-second resolution: strictly after the log
    path = tmp_path / f"{batch}.parquet"
    frame.to_parquet(path, index=False)
    assert ingest_batch(instance, batch, {"kind": "file", "path": str(path)}).success


def _predictor(paths, tag: str) -> Predictor:
    name, version = tag.split(":")
    return Predictor(load_bundle(paths.bentoml_home / "models" / name / version))


def _log(paths, rows: pd.DataFrame, answering: Predictor, shadow: Predictor | None = None) -> None:
    """By-key predictions of `rows` as the service logs them (shadow: two lines per request).

    The champion's answers carry no role (as before rollouts existed); a challenger's carry
    `role: challenger`, and `answered: false` when they only shadowed the champion.
    """
    records = [
        {
            **{c: r[c] for c in answering.spec.feature_columns},
            "event_timestamp": r["event_timestamp"],
        }
        for r in rows.to_dict("records")
    ]
    moment = datetime.fromtimestamp(time.time() - 1, UTC).isoformat()
    answered = {} if answering.bundle.version == "1" else {"role": "challenger", "answered": True}
    models = [(answering, answered)]
    if shadow is not None:
        models.append((shadow, {"role": "challenger", "answered": False}))
    outputs = [(p.bundle.version, extra, p.predict_records(records)) for p, extra in models]
    lines = []
    for i, key in enumerate(rows["house_id"]):
        request = uuid.uuid4().hex
        for version, extra, predicted in outputs:
            lines.append(
                {
                    "request_id": request,
                    "endpoint": "predict_by_key",
                    "model_version": version,
                    "latency_ms": 1.0,
                    **extra,
                    "row": 0,
                    "timestamp": moment,
                    "inputs": {"house_id": int(key)},
                    "output": float(predicted[i]),
                }
            )
    paths.predictions.mkdir(parents=True, exist_ok=True)
    with (paths.predictions / f"predictions-{uuid.uuid4().hex[:8]}.jsonl").open("a") as log:
        log.write("".join(json.dumps(line) + "\n" for line in lines))


def _serve(paths, stage: str, rows: pd.DataFrame, others: pd.DataFrame, v1, v2) -> None:
    """Traffic under the rollout: shadow scores `rows` twice; a canary splits the houses."""
    if stage == "shadow":
        _log(paths, rows, v1, v2)
    else:  # sticky by house: the challenger answers `rows`, the champion `others`
        _log(paths, rows, v2)
        _log(paths, others, v1)


def _monitor(instance) -> dict[str, dict]:
    result = defs.resolve_job_def("monitoring_job").execute_in_process(instance=instance)
    assert result.success
    return {a: metadata(result, a) for a in ("live_performance", "live_decision")}


def _execute(instance, job: str, request: dg.RunRequest):
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=request.tags, raise_on_error=False
    )
    assert result.success, job
    return result


def _aliases(paths) -> dict[str, str]:
    uri = f"sqlite:///{paths.root / 'mlflow' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {k: str(v) for k, v in client.get_registered_model("house_prices").aliases.items()}


def _history(capsys) -> list[str]:
    capsys.readouterr()
    assert main(["history"]) == 0
    return capsys.readouterr().out.strip().splitlines()


@pytest.mark.slow
@pytest.mark.parametrize(("market", "stage"), [("stays_up", "shadow"), ("falls_back", "canary")])
def test_market_jump_retrains_stages_and_decides_on_live_labels(
    paths, tmp_path, capsys, market, stage
):
    _save_spec(paths, stage)
    instance = open_instance(paths)
    assert ingest_batch(instance, "initial", {"rows": 3_000, "seed": 3}).success
    first = run_pipeline(instance, model_config={"families": ["linear"]})
    assert first.success, first.error
    assert first.metadata["promoted_model"]["promoted"] is True, "no champion: promoted at once"
    champion_tag = json.loads(paths.bento_pointer.read_text())["model_tag"]
    v1 = _predictor(paths, champion_tag)

    # The market jumps; the champion's answers are judged by the labels that follow.
    jumped = _sales(11, 1_500, "market_jump", first_id=10_000_001)
    _log(paths, jumped.head(300), v1)
    _ingest(instance, tmp_path, "jumped", jumped)
    report = _monitor(instance)
    live = report["live_performance"]
    assert live["champion_live_rows"] == 300 and live["below_gate"] is True, live["reason"]
    assert report["live_decision"]["decision"] == "none"

    # The live sensor retrains; the winner is staged (shadow or canary), not promoted.
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    request = live_performance_sensor(context)
    assert isinstance(request, dg.RunRequest), request
    assert request.tags["mlops/reason"].startswith("live performance: v1: live r2")
    retrained = _execute(instance, "pipeline_job", request)
    promotion = metadata(retrained, "promoted_model")
    assert (promotion["promoted"], promotion["staged"]) == (False, True), promotion["reason"]
    assert promotion["reason"].startswith("staged for live evidence: better than the champion")
    assert (promotion["champion_version"], promotion["candidate_version"]) == ("1", "2")
    assert metadata(retrained, "bento")["model_version"] == "1", "the champion still serves"
    rollout = read_rollout(paths.rollout)
    assert (rollout.mode, rollout.challenger_version) == (stage, "2")
    assert rollout.share == (0.4 if stage == "canary" else 0.0)
    assert rollout.challenger_tag == promotion["challenger_tag"]
    assert _aliases(paths) == {"champion": "1", "challenger": "2"}
    history = _history(capsys)
    assert history[-2].split()[1:3] == ["stage", "v2"] and "staged for live evidence" in history[-2]
    v2 = _predictor(paths, rollout.challenger_tag)
    assert v2.bundle.version == "2"

    # Traffic under the rollout; labels for 60 of the challenger's predictions: too few.
    # In shadow, each labelled batch also labels 100 houses nobody asked about (a batch has at
    # least 100 rows); in canary, the champion answered those.
    later = _sales(12, 340, "market_jump" if market == "stays_up" else "none", 20_000_001)
    _serve(paths, stage, later[:60], later[140:240], v1, v2)
    _ingest(instance, tmp_path, "labels_a", pd.concat([later[:60], later[140:240]]))
    waiting = _monitor(instance)["live_decision"]
    assert waiting["decision"] == "wait", waiting["reason"]
    assert f"60 of {NEEDED} labelled predictions" in waiting["reason"]
    assert _aliases(paths)["champion"] == "1" and read_rollout(paths.rollout).mode == stage
    quiet = live_decision_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(quiet, dg.SkipReason)

    # 80 more: 140 labels. The decision follows the market.
    _serve(paths, stage, later[60:140], later[240:340], v1, v2)
    _ingest(instance, tmp_path, "labels_b", pd.concat([later[60:140], later[240:340]]))
    decided = _monitor(instance)
    decision, evidence = decided["live_decision"], decided["live_decision"]["evidence"]
    if stage == "shadow":  # the same 140 requests, scored by both
        assert (evidence["basis"], evidence["challenger_labels"]) == ("paired", 140)
        assert evidence["champion_labels"] == 140
    else:  # each on its own houses since the canary began (not the 300 answers before it)
        assert (evidence["basis"], evidence["challenger_labels"]) == ("same period", 140)
        assert evidence["champion_labels"] == 200
    assert read_rollout(paths.rollout).mode == "champion"
    history = _history(capsys)
    if market == "stays_up":
        assert decision["decision"] == "promote", decision["reason"]
        assert evidence["challenger_value"] < evidence["champion_value"]
        assert _aliases(paths)["champion"] == "2"
        assert history[-2].split()[1:3] == ["promote", "v2"]
        assert "on 140 paired labels" in history[-2] and history[-1].startswith("Champion: v2 ")
        deploy = live_decision_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        [request] = deploy.run_requests
        deployed = _execute(instance, "deploy_job", request)
        assert metadata(deployed, "bento")["model_version"] == "2"
    else:
        assert decision["decision"] == "reject", decision["reason"]
        assert evidence["challenger_value"] > evidence["champion_value"]
        assert _aliases(paths) == {"champion": "1"}, "the challenger alias is cleared"
        assert history[-2].split()[1:3] == ["keep", "v2"]
        assert "worse on live labels" in history[-2] and history[-1].startswith("Champion: v1 ")
        assert "on 140 and 200 labels of the same period" in history[-2]
        nothing = live_decision_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(nothing, dg.SkipReason)
