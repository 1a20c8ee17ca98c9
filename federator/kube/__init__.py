"""The only code that talks to Kubernetes apiservers (import-linter enforces it).

A thin async client over httpx (``client``), list+watch with relist and backoff
(``watching``) and the cluster registry that turns kubeconfigs into clients (``clusters``).
"""
