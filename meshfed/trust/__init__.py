"""``meshfed certs``: one shared root CA and an intermediate CA per member cluster, in Istio's
plug-in CA format, with status, expiry metrics and root rotation (docs/security.md).

Pure core (:mod:`errors`, :mod:`issue`, :mod:`bundle`, :mod:`rotation`, :mod:`status`) over
frozen dataclasses; I/O at the edges (:mod:`store` for files, :mod:`writer` for clusters).
"""
