"""The BentoML service that serves the champion model, and a challenger while one is rolled out.

The model is a class attribute (`bentoml.models.BentoModel`), pinned by `bentoml build --arg
model_tag=...` (the `bento` asset does this), so `bentoml build` and `bentoml containerize`
pack it. Predictions go through a lean FastAPI app mounted under `/v1` (see
`mlops_assets/serving/app.py` for why); BentoML keeps `/livez`, `/readyz` (ready once the model
is loaded) and `/metrics`. Each worker also follows the rollout file (`mlops rollout ...`):
a challenger named there is loaded from the same BentoML store, by tag, to shadow the champion
or answer a canary share (`mlops_assets/serving/traffic.py`). Started without a pinned tag
(`mlops serve`), each worker also follows the champion: when a promotion or a rollback makes
`bento.json` name another model, that model is loaded, verified, warmed and swapped in without
a restart (`mlops_assets/serving/champion_follow.py`).

    bentoml serve bentos.service:PredictionService          # from the project root
"""

from __future__ import annotations

import gc
from pathlib import Path

import bentoml

from mlops_assets.serving.app import build_app, docs_redirect
from mlops_assets.serving.champion_follow import ChampionFollower
from mlops_assets.serving.connections import install_header_deadline
from mlops_assets.serving.metrics import publish_model
from mlops_assets.serving.prediction_log import PredictionLog
from mlops_assets.serving.predictor import SPEC_FILE, Predictor, load_bundle
from mlops_assets.serving.runtime import (
    body_timeout_s,
    followed_pointer,
    header_timeout_s,
    online_lookup,
    prediction_log_dir,
    resolve_model_tag,
    rollout_path,
    serving_status_dir,
)
from mlops_assets.serving.shadow import ShadowScorer
from mlops_assets.serving.traffic import RolloutWatcher
from mlops_assets.serving.worker_status import WorkerStatus
from mlops_assets.spec import load_spec

MODEL_TAG = resolve_model_tag(bentoml.use_arguments())
FOLLOWS = followed_pointer(bentoml.use_arguments())
CHAMPION = bentoml.models.BentoModel(MODEL_TAG)
SPEC = load_spec(Path(CHAMPION.resolve().path) / SPEC_FILE)
_LIVE: dict[str, PredictionService] = {}
api = build_app(SPEC, lambda: _LIVE["service"], body_timeout_s())
install_header_deadline(header_timeout_s())  # before the worker starts uvicorn's server


@bentoml.service(
    name="mlops_predictions",
    resources={"cpu": "2", "memory": "2Gi"},
    traffic={"timeout": 30, "max_concurrency": 512},
    workers=2,
    # The prediction log and the mlops_* metrics record every prediction; BentoML's per-request
    # access log and tracing spans on the prediction paths cost more than the prediction itself.
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": "/v1/predict,/v1/predict_batch,/v1/predict_by_key"},
)
@bentoml.asgi_app(api, path="/v1")
@bentoml.asgi_app(docs_redirect, path="/docs")
class PredictionService:
    """Predictions of the champion: single, batch and by entity key."""

    model = CHAMPION

    def __init__(self) -> None:
        champion = Predictor(load_bundle(Path(self.model.path)))
        self.lookup = online_lookup(champion.spec)
        self.log = PredictionLog(prediction_log_dir())
        publish_model(champion.bundle.info)
        follower = ChampionFollower(FOLLOWS, MODEL_TAG, load_stored, champion.spec)
        self.status = WorkerStatus(serving_status_dir()) if FOLLOWS is not None else None
        self.rollout = RolloutWatcher(
            rollout_path(), champion, load_stored, follower=follower, report=self.status
        )
        self.shadow = ShadowScorer(self.log)
        # Everything loaded so far (Feast, pandas, the model) lives as long as the worker:
        # freezing it keeps full garbage collections, and their pauses, short under load.
        gc.collect()
        gc.freeze()
        _LIVE["service"] = self

    @property
    def predictor(self) -> Predictor:
        """The champion answering now (it changes when the champion moves)."""
        return self.rollout.traffic.champion

    def __is_ready__(self) -> bool:
        return "service" in _LIVE

    @bentoml.on_shutdown
    def flush_log(self) -> None:
        """Write out buffered prediction records before the worker exits."""
        self.rollout.stop()
        self.shadow.close()
        self.log.close()
        if self.status is not None:
            self.status.remove()


def load_stored(tag: str) -> Predictor:
    """A model (challenger or new champion) from the BentoML store the champion came from."""
    return Predictor(load_bundle(Path(bentoml.models.get(tag).path)))
