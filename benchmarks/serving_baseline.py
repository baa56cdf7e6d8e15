"""The comparison peer of `benchmarks/serving.py`: a hand-written async FastAPI service.

It loads the same model (any family) and spec as the platform's service, validates with a
pydantic model of the same fields, computes the same features and answers one JSON object; no
logging, no metrics, no BentoML. Started by the benchmark as `uvicorn serving_baseline:app`.
"""

import json
import os
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from fastapi.responses import Response

from mlops_assets.core.families import load_model_file
from mlops_assets.core.features import arrays_to_matrix, engineer_arrays
from mlops_assets.serving.schema import record_model
from mlops_assets.spec import load_spec

FOLDER = Path(os.environ["BASELINE_MODEL_DIR"])
SPEC = load_spec(FOLDER / "dataset_spec.yaml")
FAMILY = json.loads((FOLDER / "manifest.json").read_text()).get("family", "xgboost")
MODEL = load_model_file(FOLDER, FAMILY, threads=1)
Record = record_model(SPEC)
app = FastAPI()


@app.post("/predict")
async def predict(record: Record) -> Response:  # type: ignore[valid-type]
    values = record.model_dump()
    columns = {name: [values[name]] for name in SPEC.feature_columns}
    times = np.array([np.datetime64("now", "ns")])
    matrix = arrays_to_matrix(engineer_arrays(columns, times, SPEC), SPEC)
    prediction = float(MODEL.predict(matrix)[0])
    return Response(f'{{"prediction": {prediction}}}', media_type="application/json")
