"""Reconcile: one key in, every target cluster brought to the desired state (ADR 0000).

``reconciler`` runs the pure core (``federator.core``: desired -> render -> diff) for one
global service against the objects meshfed owns in each writable target, and returns a
``Result`` (``outcome``) the controller acts on; ``apply`` executes one target's plan
(server-side apply, guarded deletes); ``policy`` is the I/O side of the egress allow-list and
access policies (an egress key is a namespace's egress objects). This package writes to
clusters but never decides when: what to reconcile and when to retry is the reactor's
(``federator.reactor.controller``).
"""
