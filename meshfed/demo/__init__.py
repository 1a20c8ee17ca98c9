"""``meshfed demo``: Istio's Bookinfo walk-through (request routing, fault injection, traffic
shifting) replayed as meshfed drills across a 3-cluster, 2-region sandbox, every step checked by
what istiod serves in each cluster and by the telemetry in meshfed's store.

``plan`` is pure (the steps, their Drill documents, what each cluster must serve, the summary
table); ``checks`` judges xDS views against a plan's expectations; ``runner`` and ``cli`` do the
I/O (sandbox, processes, kubectl, xDS, the store). See docs/demo.md.
"""
