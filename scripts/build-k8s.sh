#!/usr/bin/env bash
# Build the sandbox's Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) and kwok from Go modules at pinned releases.
#
# Why a go.mod of our own: k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...)
# with local paths, so `go install k8s.io/kubernetes/cmd/...@vX` refuses it. We require the
# module and replace each staging module with the matching v0.X.Y release instead.
# Results are cached in $MESHFED_CACHE/bin keyed by version: a rerun is a no-op.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
BIN="$CACHE/bin"
STAMP="$BIN/.k8s-$K8S_VERSION-kwok-$KWOK_VERSION"
mkdir -p "$BIN"

if [[ -f "$STAMP" ]]; then
  echo "k8s $K8S_VERSION and kwok $KWOK_VERSION already built in $BIN"
  exit 0
fi
export GOFLAGS="-buildvcs=false -mod=mod"
export CGO_ENABLED=0

staging_minor="v0.${K8S_VERSION#v1.}"
work="$CACHE/build/k8s-$K8S_VERSION"
mkdir -p "$work"
cd "$work"

if [[ ! -f go.mod ]] || ! grep -q "k8s.io/kubernetes $K8S_VERSION" go.mod; then
  echo "--> resolving k8s.io/kubernetes@$K8S_VERSION"
  modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  goline=$(grep -m1 -E '^go [0-9]' "$modfile")
  {
    echo "module meshfed.local/k8sbuild"
    echo
    echo "$goline"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging/' "$modfile" \
      | awk -v v="$staging_minor" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  echo "--> go mod tidy (downloads the dependency graph once)"
  go mod tidy
fi

pkg=k8s.io/component-base/version
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  echo "--> go build $cmd $K8S_VERSION"
  go build -trimpath -ldflags "$ldflags" -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done

echo "--> go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"

touch "$STAMP"
echo "built into $BIN"
