#!/usr/bin/env bash
# Installs the locked environment into .venv. Needs only Python 3.11+ on the PATH: uv (the
# installer that reads uv.lock) is taken from the PATH, else installed into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION="0.13.9"
# Trust the machine's certificate store (needed behind TLS-intercepting proxies).
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}" UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"

if command -v uv >/dev/null 2>&1; then
  UV="uv"
else
  if [ ! -x .tools/bin/uv ]; then
    python3 -m venv .tools
    .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
  fi
  UV="$(pwd)/.tools/bin/uv"
fi
"$UV" sync --frozen --quiet
echo "$UV"
