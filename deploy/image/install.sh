#!/bin/sh
# Install meshfed into a new virtual environment: the install steps of the container image
# (Dockerfile), kept here so tests/integration/packaging runs exactly the same steps.
#
#   deploy/image/install.sh VENV WHEEL
#
# 1. venv + the wheel and its dependencies from PyPI;
# 2. opentelemetry-proto reinstalled last. The image installs the plain wheel, without the
#    `mesh` extra, so nothing else owns those files today; the reinstall keeps the image right
#    if WHEEL is ever given as `meshfed[mesh]`: xds-protos (the Envoy API of `meshfed mesh`)
#    ships an old copy of the opentelemetry/proto modules in the same import path, whichever
#    wheel pip installs last owns them, and the collectors need opentelemetry-proto's own;
# 3. fail now if the collectors' OTLP messages or the generated gRPC code cannot be imported;
# 4. byte-compile everything, so a read-only root filesystem costs no start-up time.
# Set PIP_NO_CACHE_DIR=1 (the Dockerfile does) to keep no pip cache.
set -eu
venv=${1:?usage: install.sh VENV WHEEL}
wheel=${2:?usage: install.sh VENV WHEEL}
python=${PYTHON:-python3}

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
otel=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps \
  "opentelemetry-proto==$otel"
"$venv/bin/python" -c '
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from federator.api._generated.meshfed.v1 import federation_pb2_grpc
'
"$venv/bin/python" -m compileall -q "$venv/lib" \
  || echo "warning: some files did not byte-compile; Python reads those from source" >&2
echo "meshfed installed into $venv"
