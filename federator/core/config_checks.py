"""Field checks shared by the settings modules: names, DNS suffixes, addresses.

``Fields`` reads one mapping of the YAML document, strictly (unknown keys are errors). Each
``check_*`` raises ``ConfigError`` naming the field by its YAML path (``where``) and the
fix; ``split_host_port`` is the federator's one parser of ``host:port``. Kept apart so
``federator.core.config`` stays a list of documented fields and the policy settings
(``federator.core.config_policy``) use the same rules.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from federator.errors import ConfigError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check_dns_label(where: str, value: str, *, subdomain: bool = False) -> None:
    """A Kubernetes name: a DNS label (or, with ``subdomain``, a DNS subdomain)."""
    pattern = DNS_SUBDOMAIN if subdomain else DNS_LABEL
    limit = 253 if subdomain else 63
    if not value or len(value) > limit or not pattern.match(value):
        raise ConfigError(
            f'{where} "{value}" is not a valid Kubernetes name: use lowercase letters, '
            f"digits and '-' (at most {limit} characters)"
        )


def check_subdomain(where: str, value: str) -> None:
    """A DNS suffix such as ``clusterset.local``."""
    if not value or len(value) > 253 or not DNS_SUBDOMAIN.match(value):
        raise ConfigError(
            f'{where} "{value}" is not a valid DNS suffix: use lowercase labels separated '
            'by dots, e.g. "clusterset.local"'
        )


def check_address(where: str, value: str) -> None:
    """An IP address or a DNS name (no port, no scheme)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not DNS_SUBDOMAIN.match(value) or len(value) > 253:
            raise ConfigError(
                f'{where} "{value}" is neither an IP address nor a DNS name: give the '
                "gateway's reachable IP or hostname (no port, no scheme)"
            ) from None


def split_host_port(value: str) -> tuple[str, int]:
    """``host:port`` -> ``(host, port)``, the brackets of an IPv6 host (``[::1]:80``) removed.

    The federator's one parser of listen addresses. ``ValueError`` unless there is a host and
    a port between 1 and 65535."""
    host, sep, port = value.rpartition(":")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]"), int(port)


def check_listen(where: str, value: str) -> None:
    """A listen address: ``host:port`` with an IP host (or ``localhost``)."""
    try:
        host, _ = split_host_port(value)
    except ValueError:
        ok = False
    else:
        try:
            ipaddress.ip_address(host)
            ok = True
        except ValueError:
            ok = host == "localhost"
    if not ok:
        raise ConfigError(
            f'{where} "{value}" is not a listen address: write host:port with an IP host, '
            'e.g. "127.0.0.1:9464"'
        )


class Fields:
    """A mapping being parsed at ``where``; remembers which keys were consumed."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where or 'the document'} must be a mapping")
        self.value: Mapping[Any, Any] = value
        self.where = where
        self.used: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.value.get(key)

    def str_(self, key: str, default: str) -> str:
        v = self.get(key)
        if v is None:
            return default
        if not isinstance(v, str):
            raise ConfigError(f"{self.path(key)} must be a string, got {type(v).__name__}")
        return v

    def opt_str(self, key: str) -> str | None:
        v = self.get(key)
        return None if v is None else self.str_(key, "")

    def int_(self, key: str, default: int) -> int:
        v = self.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{self.path(key)} must be an integer, got {v!r}")
        return v

    def finish(self) -> None:
        unknown = sorted(str(k) for k in self.value if str(k) not in self.used)
        if unknown:
            raise ConfigError(
                f"{self.path(unknown[0])} is not a known field; known fields here: "
                f"{', '.join(sorted(self.used))}"
            )
