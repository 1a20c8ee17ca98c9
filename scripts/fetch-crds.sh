#!/usr/bin/env bash
# Fetch the Istio and MCS API CRDs at pinned versions from their Go modules (never committed:
# they are third-party files) and place them in $MESHFED_CACHE/crds for the sandbox.
set -euo pipefail
ISTIO_API_VERSION="${ISTIO_API_VERSION:-v1.32.0}"
MCS_API_VERSION="${MCS_API_VERSION:-v0.5.2}"
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
out="$CACHE/crds"
mkdir -p "$out"
moddir() { GOFLAGS=-mod=mod go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }
if [[ ! -s "$out/istio-$ISTIO_API_VERSION.yaml" ]]; then
  dir=$(moddir "istio.io/api@$ISTIO_API_VERSION")
  cp "$dir/kubernetes/customresourcedefinitions.gen.yaml" "$out/istio-$ISTIO_API_VERSION.yaml"
fi
if [[ ! -s "$out/mcs-$MCS_API_VERSION.yaml" ]]; then
  dir=$(moddir "sigs.k8s.io/mcs-api@$MCS_API_VERSION")
  for f in "$dir"/config/crd/*.yaml; do echo "---"; cat "$f"; done > "$out/mcs-$MCS_API_VERSION.yaml"
fi
ln -sfn "istio-$ISTIO_API_VERSION.yaml" "$out/istio.yaml"
ln -sfn "mcs-$MCS_API_VERSION.yaml" "$out/mcs.yaml"
echo "CRDs in $out: istio $ISTIO_API_VERSION, mcs-api $MCS_API_VERSION"
