#!/usr/bin/env bash
# Sourced by scripts/container.sh: which OCI runtime `podman run` is given.
# CONTAINER_RUNTIME (a name on PATH or a path) wins; else runc, then crun, whichever is
# installed (runc is the one seen working under this project's rlimit and cgroup flags;
# a stock podman ships crun); else podman's own default, read from `podman info`.
# Prints the runtime's name, or fails with a sentence when none exists.
choose_runtime() {
  local wanted="${CONTAINER_RUNTIME:-}"
  if [ -n "$wanted" ]; then
    command -v "$wanted" >/dev/null 2>&1 || {
      echo "CONTAINER_RUNTIME=$wanted is not an installed program: install it or unset CONTAINER_RUNTIME" >&2
      return 1
    }
    echo "$wanted"
    return 0
  fi
  local candidate
  for candidate in runc crun; do
    if command -v "$candidate" >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  candidate="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null || true)"
  if [ -n "$candidate" ]; then
    echo "$candidate"
    return 0
  fi
  echo "no OCI runtime found: install crun or runc (apt-get install crun), or set CONTAINER_RUNTIME" >&2
  return 1
}
