"""What Istio's control plane actually serves: an xDS client that connects to an istiod as a
sidecar would, and views of the Envoy configuration it receives.

meshfed's objects only matter through what istiod computes from them, so this package is
how tests, benchmarks and operators (``meshfed mesh inspect``) look at the result instead of
at the ServiceEntries themselves. ``node`` and ``views`` are pure; ``xds`` holds the gRPC
stream; ``cli`` is the command.

The Envoy API messages come from ``xds-protos``, an optional extra (``meshfed[mesh]``): that
distribution also ships an old copy of the ``opentelemetry.proto`` modules under the same
import path, which would replace the collectors' ones in a plain install
(docs/adr/0011-generated-grpc-code-at-build-time.md). Only ``meshfed.mesh._envoy`` imports it; when
it is missing, importing ``node``, ``views`` or ``xds`` raises :class:`MeshExtraMissingError`,
whose message names the fix.
"""

MESH_EXTRA_FIX = "pip install 'meshfed[mesh]'"
"""The command that installs what ``meshfed mesh`` needs (the ``xds-protos`` distribution)."""


class MeshExtraMissingError(ImportError):
    """The Envoy API (``xds-protos``, the ``mesh`` extra) is not installed."""
