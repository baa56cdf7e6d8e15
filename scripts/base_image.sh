#!/usr/bin/env bash
# Makes a local Debian bookworm base image with Python 3.11 (for machines with no image
# registry): debootstrap into a folder, then podman import. Prints the image name.
set -euo pipefail
NAME="${1:-localhost/mlops-base:bookworm}"
if podman image exists "$NAME"; then echo "$NAME"; exit 0; fi
ROOTFS="$(mktemp -d /var/tmp/mlops-rootfs.XXXXXX)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$ROOTFS" >&2
# Package caches, indexes, documentation and translations: about 140 MB no image needs.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
  "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
  "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/info/*
tar -C "$ROOTFS" -c . | podman import - "$NAME" >&2
rm -rf "$ROOTFS"
echo "$NAME"
