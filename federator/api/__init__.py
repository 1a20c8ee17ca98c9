"""The federator's gRPC status API (``meshfed.v1.FederationService``, health, reflection).

``server.ApiServer`` is started by the ``Federator`` (``federator.app``) inside
``meshfed federate``; ``convert`` maps the status model
to protobuf messages. The message and stub modules in ``_generated`` come from
``protos/meshfed/v1/federation.proto`` via ``scripts/gen-protos.sh`` (git-ignored, not linted).
Importing this package does not import grpc, so the rest of the federator stays light.
"""
