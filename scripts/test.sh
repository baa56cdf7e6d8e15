#!/usr/bin/env bash
# Sets everything up and runs the lint and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="$(bash scripts/bootstrap.sh | tail -n 1)"
"$UV" run --frozen ruff check .
"$UV" run --frozen ruff format --check .
exec "$UV" run --frozen pytest "$@"
