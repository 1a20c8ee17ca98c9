"""What Istio's control plane actually serves: an xDS client that connects to an istiod as a
sidecar would, and views of the Envoy configuration it receives.

meshfed's objects only matter through what istiod computes from them, so this package is
how tests, benchmarks and operators (``meshfed mesh inspect``) look at the result instead of
at the ServiceEntries themselves. ``node`` and ``views`` are pure; ``xds`` holds the gRPC
stream; ``cli`` is the command.
"""
