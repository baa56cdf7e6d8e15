#!/usr/bin/env bash
# Serves the documentation site on http://127.0.0.1:8000 (another address: --dev-addr HOST:PORT),
# rebuilt as pages change. Sets up the environment first, as the other scripts do.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="$(bash scripts/bootstrap.sh | tail -n 1)"
exec "$UV" run --frozen mkdocs serve "$@"
