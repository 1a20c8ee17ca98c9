#!/usr/bin/env bash
# `make setup`: everything the tests, the sandbox and the benchmarks need, on a fresh machine
# of this kind (Debian, Python 3.11, Go, Node 20, root). Idempotent; slow steps are cached
# under $MESHFED_CACHE (default ~/.cache/meshfed) so a rerun takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MESHFED_CACHE:-$HOME/.cache/meshfed}"
mkdir -p "$CACHE"
step() { printf '\n==> %s\n' "$*"; }

# Debian peers: Prometheus 2.42 (differential tests, remote_write peer) and redis-server 7
# (Redis Cluster tests, redis-benchmark baselines); buildah, podman, runc and debootstrap build
# and run the container image (tests/integration/packaging/test_image.py).
need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-benchmark >/dev/null || need_apt+=(redis-tools)
# Chromium: the web console's browser tests drive it headless (tests/integration/console).
command -v chromium >/dev/null || need_apt+=(chromium)
for tool in buildah podman runc debootstrap; do
  command -v "$tool" >/dev/null || need_apt+=("$tool")
done
if ((${#need_apt[@]})); then
  step "apt-get install ${need_apt[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: need root to install ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  # Debian starts its own redis-server on :6379; the project starts the ones it needs.
  systemctl disable --now redis-server >/dev/null 2>&1 || service redis-server stop >/dev/null 2>&1 || true
fi

step "Python venv and meshfed with dev dependencies"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
# xds-protos (the Envoy API for `meshfed mesh inspect`, the `mesh` extra, in `dev` for the tests
# that read xDS) bundles an old copy of the opentelemetry/proto modules in the same import
# path; whichever wheel pip installed last owns those files. The collectors need
# opentelemetry-proto's own (newer) ones, and the Envoy messages work with them, so reinstall
# them last: this is what fixes the order in the dev venv (a plain `pip install meshfed` has
# no xds-protos at all; docs/adr/0011-generated-grpc-code-at-build-time.md).
otel_proto=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')
.venv/bin/pip install -q --force-reinstall --no-deps "opentelemetry-proto==$otel_proto"
.venv/bin/python -c 'from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope' \
  || { echo "error: opentelemetry-proto is shadowed by another package's copy" >&2; exit 1; }

step "native chunk decoder (Rust, cached; without cargo the numpy decoder is used)"
bash native/build.sh

step "meshfed's Redis module (C, cached; without a compiler the Lua write script is used)"
bash native/redis/build.sh

step "generated code (gRPC stubs)"
bash scripts/gen-protos.sh

step "Kubernetes control plane and kwok (Go build, cached)"
bash scripts/build-k8s.sh

step "istiod (pilot-discovery) and pilot-agent from istio.io/istio (Go build, cached)"
bash scripts/build-istio.sh
bash scripts/gen-istio-ca-protos.sh  # istiod's CA gRPC client for the tests, from istio.io/api

step "Helm (helm.sh/helm/v4, Go build, cached) for the chart tests"
bash scripts/build-helm.sh

step "container base image from a Debian root filesystem (debootstrap, cached)"
bash deploy/image/debian-base.sh

step "Istio and MCS CRDs, kwok stages (Go modules, cached)"
bash scripts/fetch-manifests.sh
bash scripts/fetch-promql-testdata.sh  # Prometheus 2.42's promql/testdata, linked from the Go module cache

step "Node.js peers: reference StatsD daemon, fluent-logger (npm, cached)"
bash scripts/setup-peers.sh

# Stamps `make test` compares (Makefile, SETUP_STAMP): setup is complete for this venv and cache.
touch "$CACHE/.meshfed-setup" .venv/.meshfed-setup

echo
echo "setup done. Next: make test   (or: .venv/bin/meshfed sandbox up --clusters 3)"
