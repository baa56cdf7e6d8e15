# Container images of the platform. Targets:
#   serving        (default) the BentoML prediction service with the champion model inside
#   code-location  the Dagster code location as a gRPC code server (for the Dagster Helm chart)
#
# The serving image needs the exported champion in the build context: `scripts/container.sh`
# copies it to build/container/models and passes its tag as MODEL_TAG.
#
#   podman build --isolation chroot --format docker \
#     --build-arg BASE_IMAGE=python:3.11-slim-bookworm --build-arg MODEL_TAG=house_prices:v1-... \
#     -t mlops-serving .

ARG BASE_IMAGE=python:3.11-slim-bookworm

# The locked dependencies only, so they are cached until uv.lock changes. Every build stage
# carries the label below, so scripts/container.sh can remove them once the image is built.
FROM ${BASE_IMAGE} AS uv
LABEL org.mlops-assets.stage=build
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_SYSTEM_CERTS=1 \
    UV_NATIVE_TLS=1
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./

# The service's imports only (pyproject's `serving` group): no Dagster, MLflow, Kubernetes
# client or NVIDIA libraries.
# Bytecode only for the modules the service imports (written by importing them), not for
# every file of every package: the image stays small and the service still starts fast.
FROM uv AS serving-deps
RUN UV_COMPILE_BYTECODE=0 /opt/uv/bin/uv sync --frozen --only-group serving --no-install-project \
        --no-cache \
    && /opt/venv/bin/python -c "import bentoml, bentoml._internal.server.http_app, fastapi, \
feast, feast.infra.online_stores.redis, feast.infra.online_stores.sqlite, \
feast.infra.registry.sql, numpy, orjson, pandas, pyarrow.parquet, pydantic, uvicorn, xgboost, yaml"

# The whole platform, for the Dagster code location.
FROM uv AS platform-deps
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --no-cache

# The source, run as a non-root user.
FROM ${BASE_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mlops
WORKDIR /app
COPY pyproject.toml README.md workspace.yaml ./
COPY mlops_assets ./mlops_assets
COPY bentos ./bentos
COPY feature_repo ./feature_repo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLOPS_HOME=/home/mlops/state \
    BENTOML_DO_NOT_TRACK=true

FROM runtime AS code-location
COPY --from=platform-deps /opt/venv /opt/venv
USER mlops
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "mlops_assets.definitions"]

FROM runtime AS serving
COPY --from=serving-deps /opt/venv /opt/venv
ARG MODEL_TAG
ENV BENTOML_HOME=/home/mlops/bentoml \
    MLOPS_MODEL_TAG=${MODEL_TAG} \
    MLOPS_ONLINE_FEATURES=off \
    PORT=3000
COPY --chown=mlops:mlops build/container/models /home/mlops/bentoml/models
# BentoML creates these at start-up; made here so the root filesystem can be read-only.
RUN mkdir -p /home/mlops/bentoml/bentos /home/mlops/bentoml/envs /home/mlops/bentoml/tmp \
    /home/mlops/state && chown -R mlops:mlops /home/mlops
USER mlops
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/readyz\", timeout=2)"]
CMD ["sh", "-c", "exec bentoml serve bentos.service:PredictionService --host 0.0.0.0 --port ${PORT}"]
