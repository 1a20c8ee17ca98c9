#!/usr/bin/env bash
# Generate the Python client of istiod's CA (istio.v1.auth.IstioCertificateService, from
# security/v1alpha1/ca.proto) into tests/helpers/_generated (git-ignored, excluded from lint).
# The tests ask every cluster's istiod for a workload certificate with it (docs/security.md).
#
# The proto is read from the istio.io/api module at exactly the version the pinned istio.io/istio
# module requires (scripts/build-istio.sh, docs/adr/0010-*), from Go's module cache
# (`go mod download` fetches it once); nothing is copied into the repository.
# protoc writes imports relative to the -I root (`from security.v1alpha1 import ca_pb2`); they
# are rewritten to the full package path, so no sys.path tricks are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned=$(sed -n 's/^ISTIO_VERSION="${ISTIO_VERSION:-\(.*\)}"$/\1/p' scripts/build-istio.sh)
ISTIO_VERSION="${ISTIO_VERSION:-$pinned}"
[[ -n "$ISTIO_VERSION" ]] || { echo "error: no ISTIO_VERSION in scripts/build-istio.sh" >&2; exit 1; }
export GOFLAGS="-mod=mod"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
gomod=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | json GoMod)
api_version=$(awk '$1 == "istio.io/api" { print $2; exit }' "$gomod")
[[ -n "$api_version" ]] || { echo "error: $gomod does not require istio.io/api" >&2; exit 1; }
api_dir=$(go mod download -json "istio.io/api@$api_version" | json Dir)
proto="security/v1alpha1/ca.proto"
[[ -f "$api_dir/$proto" ]] || { echo "error: $api_dir/$proto not found" >&2; exit 1; }

out=tests/helpers/_generated
rm -rf "$out"
mkdir -p "$out"
well_known=$(.venv/bin/python -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
.venv/bin/python -m grpc_tools.protoc -I"$api_dir" -I"$well_known" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "$proto"
sed -i -E 's/^(from|import) security\./\1 tests.helpers._generated.security./' \
  "$out"/security/v1alpha1/*.py "$out"/security/v1alpha1/*.pyi
find "$out" -type d -exec touch {}/__init__.py \;
echo "$proto from istio.io/api@$api_version -> $out"
