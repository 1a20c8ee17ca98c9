#!/usr/bin/env bash
# Build Istio's control plane (pilot-discovery = istiod) and its node agent (pilot-agent) from
# the istio.io/istio Go module at a pinned pseudo-version (docs/adr/0010-*), for the sandbox's
# `--istio` mode and the conformance tests.
#
# Why a go.mod of our own: the module proxy serves istio.io/istio only as pseudo-versions, and
# `go install pkg@version` would work too, but a scratch module lets both commands share one
# resolved dependency graph (and one build cache), so pilot-agent costs seconds after istiod.
# Results are cached in $MESHFED_CACHE/bin keyed by version: a rerun is a no-op.
# $MESHFED_CACHE/istio/module links to the module in Go's module cache: the sandbox reads
# Istio's CRDs and samples there (never copied into the repository).
set -euo pipefail

ISTIO_VERSION="${ISTIO_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}"
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
BIN="$CACHE/bin"
STAMP="$BIN/.istio-$ISTIO_VERSION"
mkdir -p "$BIN" "$CACHE/istio"
export GOFLAGS="-buildvcs=false -mod=mod"

moddir=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
ln -sfn "$moddir" "$CACHE/istio/module"

if [[ -f "$STAMP" ]]; then
  echo "istio $ISTIO_VERSION (pilot-discovery, pilot-agent) already built in $BIN"
  exit 0
fi
export CGO_ENABLED=0

work="$CACHE/build/istio-$ISTIO_VERSION"
mkdir -p "$work"
cd "$work"

if [[ ! -f go.mod ]] || ! grep -q "istio.io/istio $ISTIO_VERSION" go.mod; then
  echo "--> resolving istio.io/istio@$ISTIO_VERSION"
  modfile=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  if grep -qE '^\s*replace\b' "$modfile"; then
    echo "error: istio.io/istio@$ISTIO_VERSION has replace directives; pick another pseudo-version (docs/adr/0010-*)" >&2
    exit 1
  fi
  goline=$(grep -m1 -E '^go [0-9]' "$modfile")
  {
    echo "module meshfed.local/istiobuild"
    echo
    echo "$goline"
    echo
    echo "require istio.io/istio $ISTIO_VERSION"
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "istio.io/istio/pilot/cmd/pilot-agent"
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
GO
  echo "--> go mod tidy (downloads the dependency graph once)"
  go mod tidy
fi

# Istio names its development builds <minor>-alpha.<commit>; the module's VERSION file has the minor.
minor=$(tr -d '[:space:]' < "$moddir/VERSION")
commit="${ISTIO_VERSION##*-}"
pkg=istio.io/istio/pkg/version
ldflags="-s -w -X $pkg.buildVersion=$minor-alpha.$commit -X $pkg.buildGitRevision=$commit -X $pkg.buildStatus=Clean"
for cmd in pilot-discovery pilot-agent; do
  echo "--> go build $cmd ($minor-alpha.$commit)"
  start=$SECONDS
  go build -trimpath -ldflags "$ldflags" -o "$BIN/$cmd" "istio.io/istio/pilot/cmd/$cmd"
  echo "    $cmd built in $((SECONDS - start)) s"
done

touch "$STAMP"
echo "built into $BIN"
