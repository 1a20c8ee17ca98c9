"""Istio port protocol of a Service port, following Istio's explicit protocol selection.

Istio reads a Kubernetes Service port's protocol from ``appProtocol`` if set, else from the
port-name prefix (``name: <protocol>[-<suffix>]``), case-insensitively (Istio docs: "Protocol
Selection"; Istio source: ``pkg/config/kube`` ``ConvertProtocol``):

- ``appProtocol`` ``kubernetes.io/h2c`` -> HTTP2, ``kubernetes.io/ws`` -> HTTP,
  ``kubernetes.io/wss`` -> HTTPS (the Kubernetes standard application protocols);
- a value starting with ``grpc-web`` -> GRPC-Web (checked before the ``-`` split, since the
  name itself contains a dash);
- otherwise the part before the first ``-``: http, http2, https, grpc, tcp, tls, mongo,
  mysql, redis (and http_proxy) map to the Istio protocol of that name.

Unknown or missing names leave the protocol unset in Istio, which means protocol sniffing for
a Kubernetes Service. A ServiceEntry port with no ``protocol`` also means sniffing, but
meshfed writes **TCP** instead: sniffing breaks server-first protocols (MySQL, SMTP, many
databases) when the detection timeout is disabled (Istio's default), whereas TCP always works;
name the port (``http-...``) or set ``appProtocol`` to get L7 features. Istio itself falls
back to TCP for the well-known server-first ports, which TCP-by-default covers too.
"""

from __future__ import annotations

from federator.core.model import ServicePort

DEFAULT_PROTOCOL = "TCP"

_K8S_APP_PROTOCOLS = {
    "kubernetes.io/h2c": "HTTP2",
    "kubernetes.io/ws": "HTTP",
    "kubernetes.io/wss": "HTTPS",
}
_ISTIO_PROTOCOLS = {
    "tcp": "TCP",
    "grpc": "GRPC",
    "grpc-web": "GRPC-Web",
    "http": "HTTP",
    "http_proxy": "HTTP_PROXY",
    "http2": "HTTP2",
    "https": "HTTPS",
    "tls": "TLS",
    "mongo": "Mongo",
    "redis": "Redis",
    "mysql": "MySQL",
}


def parse_protocol_name(name: str) -> str | None:
    """The Istio protocol a port name or appProtocol value selects, or None if none."""
    if name in _K8S_APP_PROTOCOLS:
        return _K8S_APP_PROTOCOLS[name]
    lowered = name.lower()
    if lowered.startswith("grpc-web"):
        return "GRPC-Web"
    return _ISTIO_PROTOCOLS.get(lowered.split("-", 1)[0])


def istio_protocol(port: ServicePort) -> str:
    """The ``protocol`` to write on the ServiceEntry port for ``port``.

    As in Istio, a set ``appProtocol`` replaces the name entirely: an ``appProtocol`` Istio does
    not know (``example.com/custom``) is not rescued by an ``http-`` name; it gets TCP here,
    where Istio would sniff (see the module docstring).
    """
    selector = port.app_protocol if port.app_protocol else port.name
    return parse_protocol_name(selector) or DEFAULT_PROTOCOL
