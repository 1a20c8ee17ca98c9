#!/usr/bin/env bash
# Fetch third-party manifests the sandbox applies, at pinned versions, from their Go modules
# (never committed): the Istio and MCS API CRDs, and kwok's default Stages (kwok >= 0.4 does
# nothing without Stages: they make fake nodes Ready and pods Running with IPs).
set -euo pipefail
ISTIO_API_VERSION="${ISTIO_API_VERSION:-v1.32.0}"
MCS_API_VERSION="${MCS_API_VERSION:-v0.5.2}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
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
if [[ ! -s "$out/kwok-stages-$KWOK_VERSION.yaml" ]]; then
  dir=$(moddir "sigs.k8s.io/kwok@$KWOK_VERSION")/kustomize/stage
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$dir/$f"
  done > "$out/kwok-stages-$KWOK_VERSION.yaml"
fi
ln -sfn "kwok-stages-$KWOK_VERSION.yaml" "$out/kwok-stages.yaml"
ln -sfn "istio-$ISTIO_API_VERSION.yaml" "$out/istio.yaml"
ln -sfn "mcs-$MCS_API_VERSION.yaml" "$out/mcs.yaml"
echo "manifests in $out: istio $ISTIO_API_VERSION, mcs-api $MCS_API_VERSION, kwok stages $KWOK_VERSION"
