#!/usr/bin/env bash
# Builds the serving image with podman and checks it: its size, /readyz, then one prediction.
# Needs a state folder with an exported champion ($MLOPS_HOME, default .mlops_home; run
# ./scripts/quickstart.sh first). With no registry reachable, BASE_IMAGE may be a local image,
# e.g. one made by `scripts/base_image.sh`. Runs the image with runc or crun, whichever is
# installed (CONTAINER_RUNTIME chooses; see scripts/container_runtime.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
HOME_DIR="${MLOPS_HOME:-$(pwd)/.mlops_home}"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim-bookworm}"
IMAGE="${IMAGE:-localhost/mlops-serving:latest-build}"
PORT="${PORT:-38080}"
MAX_IMAGE_MB="${MAX_IMAGE_MB:-800}"   # the service needs no more; a bigger image means a leak
POINTER="$HOME_DIR/deployment/bento.json"
# The service verifies the model's signature before loading it: it gets the public key the
# model was signed with, read-only, as deploy/kubernetes/serving.yaml mounts it from a secret.
PUBLIC_KEY="$HOME_DIR/keys/signing_key.pub"
[ -f "$POINTER" ] || { echo "no exported champion in $HOME_DIR: run ./scripts/quickstart.sh first" >&2; exit 1; }
[ -f "$PUBLIC_KEY" ] || { echo "no public key at $PUBLIC_KEY to verify the champion with: train it in this state folder" >&2; exit 1; }
MODEL_TAG="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_tag"])' "$POINTER")"
NAME="${MODEL_TAG%%:*}"; VERSION="${MODEL_TAG#*:}"

rm -rf build/container && mkdir -p "build/container/models/$NAME"
cp -r "$HOME_DIR/bentoml/models/$NAME/$VERSION" "build/container/models/$NAME/$VERSION"
echo "$VERSION" > "build/container/models/$NAME/latest"

CERTS=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && CERTS=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
echo "building $IMAGE from $BASE_IMAGE with $MODEL_TAG"
podman build --isolation chroot --format docker "${CERTS[@]}" \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "MODEL_TAG=$MODEL_TAG" -t "$IMAGE" .
# The dependency stages are only a means to the image: remove them, and nothing else.
podman image prune -f --filter label=org.mlops-assets.stage=build >/dev/null
SIZE_MB="$(( $(podman image inspect --format '{{.Size}}' "$IMAGE") / 1000000 ))"
echo "image $IMAGE: $SIZE_MB MB (limit ${MAX_IMAGE_MB} MB)"
[ "$SIZE_MB" -le "$MAX_IMAGE_MB" ] || { echo "the serving image is larger than ${MAX_IMAGE_MB} MB" >&2; exit 1; }

source scripts/container_runtime.sh
RUNTIME="$(choose_runtime)"
echo "running it with the OCI runtime $RUNTIME"
CONTAINER="mlops-serving-check-$$"
# Read-only root filesystem with writable scratch space, as deploy/kubernetes/serving.yaml runs it.
podman --cgroup-manager=cgroupfs run -d --rm --name "$CONTAINER" --runtime "$RUNTIME" --network host \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -e "PORT=$PORT" \
  --read-only --tmpfs /tmp --tmpfs /home/mlops/bentoml/tmp --tmpfs /var/log/mlops \
  -v "$PUBLIC_KEY:/run/secrets/mlops-signing/signing_key.pub:ro" \
  -e MLOPS_VERIFY_KEY_FILE=/run/secrets/mlops-signing/signing_key.pub \
  -e MLOPS_PREDICTION_LOG_DIR=/var/log/mlops/predictions "$IMAGE" >/dev/null
trap 'podman --cgroup-manager=cgroupfs rm -f "$CONTAINER" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then break; fi
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { podman logs "$CONTAINER" | tail -50; echo "container never became ready" >&2; exit 1; }
ANSWER="$(curl -sf -X POST "http://127.0.0.1:$PORT/v1/predict" -H 'content-type: application/json' \
  -d '{"sqft": 1800, "bedrooms": 3, "bathrooms": 2, "location": "urban", "year_built": 1990, "condition": "good", "lot_size": 5000}')"
echo "container answered: $ANSWER"
python3 -c 'import json,sys; a=json.loads(sys.argv[1]); assert a["prediction"] > 0 and a["model_version"], a' "$ANSWER"
USER_IN_IMAGE="$(podman --cgroup-manager=cgroupfs exec "$CONTAINER" id -u)"
[ "$USER_IN_IMAGE" != "0" ] || { echo "the service runs as root" >&2; exit 1; }
echo "container check passed: ready, one prediction, non-root user (uid $USER_IN_IMAGE), read-only root"
