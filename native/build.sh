#!/usr/bin/env bash
# Build meshfed_native (the Rust chunk decoder, docs/adr/0015-native-chunk-decoding.md) and
# install it into the venv; `make setup` runs this. The wheel is cached under
# $MESHFED_CACHE/native/<hash of the sources>, and cargo's build directory beside it, so a
# rerun with unchanged sources only checks the installed copy. Without cargo it says so and
# leaves the numpy decoder (collectors/store/chunks.py) to do the work: that is the
# supported fallback, not an error.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
PY=.venv/bin/python

cargo=$(command -v cargo || true)
if [[ -z $cargo && -x $HOME/.cargo/bin/cargo ]]; then
  cargo=$HOME/.cargo/bin/cargo
fi
if [[ -z $cargo ]]; then
  echo "note: cargo not found, so the native chunk decoder is not built; queries use the"
  echo "      numpy decoder (same results, about 4x slower decoding). To build it, install"
  echo "      Rust (https://rustup.rs) and rerun: make setup"
  exit 0
fi
export PATH="$(dirname "$cargo"):$PATH"

hash=$(cd native && cat Cargo.toml Cargo.lock pyproject.toml meshfed_native.pyi build.sh src/*.rs \
  | sha256sum | cut -c1-16)
wheels="$CACHE/native/wheels-$hash"
export CARGO_TARGET_DIR="$CACHE/native/target"
if ! compgen -G "$wheels/*.whl" >/dev/null; then
  "$PY" -m pip install -q 'maturin>=1.5,<2'
  (cd native && cargo test --release --quiet)  # the codec's own tests, whenever it changed
  rm -rf "$wheels.tmp"
  .venv/bin/maturin build --release --quiet -i "$PY" -m native/Cargo.toml -o "$wheels.tmp"
  mv "$wheels.tmp" "$wheels"
fi
stamp=.venv/.meshfed-native
if [[ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]] \
  || ! "$PY" -c 'import meshfed_native' 2>/dev/null; then
  "$PY" -m pip install -q --force-reinstall --no-deps "$wheels"/*.whl
  echo "$hash" >"$stamp"
fi
"$PY" -c 'from meshfed_native import decode_many; decode_many([])'
echo "meshfed_native $hash installed"
