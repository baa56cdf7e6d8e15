#!/usr/bin/env bash
# Sets everything up and runs the main job: materializes the graph on the default data.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="$(bash scripts/bootstrap.sh | tail -n 1)"
exec "$UV" run --frozen mlops run "$@"
