"""Reactor: keeps the world current and decides *when* to reconcile what.

``sources`` (watches -> ``cache`` -> keys) feed the ``controller`` (``workqueue`` -> workers ->
``reconcile(key)`` -> result policy); the ``reporter`` turns the caches into the status
registry and readiness; ``world`` shows the caches to the reconciler.
"""
