"""Reconcile: one key in, every target cluster brought to the desired state (ADR 0000).

``reconciler`` runs the pure core (``federator.core``: desired -> render -> diff) for one
global service against the objects meshfed owns in each writable target, and returns a
``Result`` the controller acts on; ``apply`` executes one target's plan (server-side apply,
guarded deletes). This package writes to clusters but never decides when: what to reconcile
and when to retry is the reactor's (``federator.reactor.controller``).
"""
