"""The only code that talks to Kubernetes apiservers (import-linter enforces it).

A thin async client over httpx (``client``), list+watch with relist and backoff
(``watching``), the cluster registry that turns kubeconfigs into clients (``clusters``) and
credential rotation (``credentials_watch``). It knows nothing of keys, reconciles or status.
"""
