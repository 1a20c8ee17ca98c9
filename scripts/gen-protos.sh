#!/usr/bin/env bash
# Generate Python gRPC stubs for protos/**/*.proto into federator/api/_generated (git-ignored,
# excluded from lint) for the editable install of the checkout. A no-op without protos.
#
# The generator itself is scripts/gen_protos.py, which setup.py also runs when a wheel or an
# sdist is built, so `pip install .` generates the same code (docs/adr/0011-*.md).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python scripts/gen_protos.py federator/api/_generated
