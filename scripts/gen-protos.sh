#!/usr/bin/env bash
# Generate Python gRPC stubs for protos/**/*.proto into federator/api/_generated (git-ignored,
# excluded from lint). A no-op when there are no protos yet.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
protos=(protos/**/*.proto)
((${#protos[@]})) || exit 0
out=federator/api/_generated
mkdir -p "$out"
.venv/bin/python -m grpc_tools.protoc -Iprotos --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" "${protos[@]}"
find "$out" -type d -exec touch {}/__init__.py \;
