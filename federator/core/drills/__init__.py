"""Failover drills, the pure part: spec, validation, rendering, blast radius, journal, verify.

A drill is a temporary, guarded overlay on the federated desired state (see
``docs/drills.md`` and ADR 0013). Everything here is pure: the controller that applies
steps, evaluates guards against the store and rolls back lives in the layers above.
"""
