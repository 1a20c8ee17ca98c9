#!/usr/bin/env bash
# A local stand-in for the python:3.11-slim base image, built from Debian packages only (no
# registry): a debootstrap minbase root filesystem of Debian 12 with python3 (3.11), venv and
# CA certificates, imported as localhost/meshfed-python-base:bookworm. The Dockerfile builds on
# it with --build-arg PYTHON_IMAGE=localhost/meshfed-python-base:bookworm
# (tests/integration/packaging/test_image.py does). Needs root, debootstrap and podman.
# Idempotent: does nothing when the image exists; the root filesystem tarball is cached.
set -euo pipefail
IMAGE=${IMAGE:-localhost/meshfed-python-base:bookworm}
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}/image"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if podman image exists "$IMAGE"; then
  echo "$IMAGE exists"
  exit 0
fi
mkdir -p "$CACHE"
tarball="$CACHE/bookworm-python3-rootfs.tar"
if [[ ! -s $tarball ]]; then
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$MIRROR"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi
podman import --change 'CMD ["python3"]' "$tarball" "$IMAGE"
echo "imported $IMAGE"
