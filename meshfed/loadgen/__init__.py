"""The load generator: a TEST TOOL that simulates client requests from one cluster's view.

It reads over xDS what istiod serves a sidecar in that cluster (routes, clusters, endpoints),
derives each simulated request's outcome from those routes (header matches, fault injection,
weighted subsets, the endpoint's cluster) and writes Istio-standard telemetry into a running
``meshfed collect`` through the collectors' real protocols. It is not on the product's path:
nothing in the federator or the collectors imports it (docs/loadgen.md).
"""
