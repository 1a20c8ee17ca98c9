#!/usr/bin/env bash
# Build Helm (the `helm` CLI) from the helm.sh/helm/v4 Go module at a pinned release, for the
# chart tests (tests/integration/deploy) and docs/install.md.
# `go install pkg@version` works here: helm.sh/helm/v4 has no replace directives.
# The result is cached in $MESHFED_CACHE/bin keyed by version: a rerun is a no-op.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
BIN="$CACHE/bin"
STAMP="$BIN/.helm-$HELM_VERSION"
mkdir -p "$BIN"

if [[ -f "$STAMP" && -x "$BIN/helm" ]]; then
  echo "helm $HELM_VERSION already built in $BIN"
  exit 0
fi
export GOFLAGS="-buildvcs=false -mod=mod"
export CGO_ENABLED=0

pkg=helm.sh/helm/v4/internal/version
ldflags="-s -w -X $pkg.version=$HELM_VERSION -X $pkg.gitTreeState=clean"
echo "--> go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
start=$SECONDS
GOBIN="$BIN" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
echo "    helm built in $((SECONDS - start)) s"

# The version check: the binary must report the pinned release.
reported=$("$BIN/helm" version --template '{{.Version}}')
if [[ "$reported" != "$HELM_VERSION" ]]; then
  echo "error: built helm reports version '$reported', expected $HELM_VERSION" >&2
  exit 1
fi
touch "$STAMP"
echo "built into $BIN"
