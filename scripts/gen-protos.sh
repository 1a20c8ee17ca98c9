#!/usr/bin/env bash
# Generate Python gRPC stubs for protos/**/*.proto into federator/api/_generated (git-ignored,
# excluded from lint). A no-op when there are no protos yet.
#
# protoc writes imports relative to the -I root (`from meshfed.v1 import federation_pb2`),
# which would resolve to our own top-level `meshfed` package; they are rewritten to the full
# path (`from federator.api._generated.meshfed.v1 import ...`), so no sys.path tricks are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
protos=(protos/**/*.proto)
((${#protos[@]})) || exit 0
out=federator/api/_generated
rm -rf "$out"
mkdir -p "$out"
.venv/bin/python -m grpc_tools.protoc -Iprotos --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" "${protos[@]}"
generated=("$out"/**/*.py "$out"/**/*.pyi)
sed -i -E 's/^(from|import) meshfed\./\1 federator.api._generated.meshfed./' "${generated[@]}"
find "$out" -type d -exec touch {}/__init__.py \;
