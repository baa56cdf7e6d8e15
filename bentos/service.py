"""The BentoML service that serves the champion model, and a challenger while one is rolled out.

The model is a class attribute (`bentoml.models.BentoModel`), pinned by `bentoml build --arg
model_tag=...` (the `bento` asset does this), so `bentoml build` and `bentoml containerize`
pack it. Predictions go through a lean FastAPI app mounted under `/v1` (see
`mlops_assets/serving/app.py` for why); BentoML keeps `/livez`, `/readyz` (ready once the model
is loaded) and `/metrics`. Each worker also follows the rollout file (`mlops rollout ...`):
a challenger named there is loaded from the same BentoML store, by tag, to shadow the champion
or answer a canary share (`mlops_assets/serving/traffic.py`).

    bentoml serve bentos.service:PredictionService          # from the project root
"""

from __future__ import annotations

import gc
from pathlib import Path

import bentoml

from mlops_assets.serving.app import build_app, docs_redirect
from mlops_assets.serving.connections import install_header_deadline
from mlops_assets.serving.metrics import publish_model
from mlops_assets.serving.prediction_log import PredictionLog
from mlops_assets.serving.predictor import SPEC_FILE, Predictor, load_bundle
from mlops_assets.serving.runtime import (
    body_timeout_s,
    header_timeout_s,
    online_lookup,
    prediction_log_dir,
    resolve_model_tag,
    rollout_path,
)
from mlops_assets.serving.shadow import ShadowScorer
from mlops_assets.serving.traffic import RolloutWatcher
from mlops_assets.spec import load_spec

MODEL_TAG = resolve_model_tag(bentoml.use_arguments())
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
        self.predictor = Predictor(load_bundle(Path(self.model.path)))
        self.lookup = online_lookup(self.predictor.spec)
        self.log = PredictionLog(prediction_log_dir())
        publish_model(self.predictor.bundle.info)
        self.rollout = RolloutWatcher(rollout_path(), self.predictor, load_challenger)
        self.shadow = ShadowScorer(self.log)
        # Everything loaded so far (Feast, pandas, the model) lives as long as the worker:
        # freezing it keeps full garbage collections, and their pauses, short under load.
        gc.collect()
        gc.freeze()
        _LIVE["service"] = self

    def __is_ready__(self) -> bool:
        return "service" in _LIVE

    @bentoml.on_shutdown
    def flush_log(self) -> None:
        """Write out buffered prediction records before the worker exits."""
        self.rollout.stop()
        self.shadow.close()
        self.log.close()


def load_challenger(tag: str) -> Predictor:
    """A challenger from the BentoML store the champion came from, loaded the same way."""
    return Predictor(load_bundle(Path(bentoml.models.get(tag).path)))
