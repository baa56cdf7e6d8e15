#!/usr/bin/env bash
# CI's container check: install podman, make a local base image (no image registry is
# reachable here), train a champion in a throwaway state folder, then build and run the
# serving image and check /readyz and one prediction (scripts/container.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# runc beside podman's own crun: runc is the runtime seen working here with container.sh's flags.
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap curl
fi
BASE_IMAGE="$(bash scripts/base_image.sh)"
STATE="$(mktemp -d)"
trap 'rm -rf "$STATE"' EXIT
MLOPS_HOME="$STATE/home" .venv/bin/mlops run --rows 3000 | tail -n 4
MLOPS_HOME="$STATE/home" BASE_IMAGE="$BASE_IMAGE" bash scripts/container.sh
