#!/usr/bin/env bash
# Link Prometheus's own PromQL test files (promql/testdata/*.test) from the Go module cache
# into $MESHFED_CACHE, at the version the differential test runs (2.42 = module v0.42.0).
# They are read in place by tests/helpers/promql_testdata.py and never copied into the repo.
set -euo pipefail
VERSION="${PROMETHEUS_MODULE_VERSION:-v0.42.0}"
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
mkdir -p "$CACHE/promql-testdata"
dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/prometheus/prometheus@$VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
ln -sfn "$dir/promql/testdata" "$CACHE/promql-testdata/$VERSION"
echo "PromQL testdata: $CACHE/promql-testdata/$VERSION -> $dir/promql/testdata"
