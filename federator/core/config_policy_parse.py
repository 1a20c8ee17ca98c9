"""``federation.yaml``'s policy sections -> the settings of ``federator.core.config_policy``.

``egress``, ``access`` and the list fields they use; called by
``federator.core.config_parse.parse_document``. Strict like the rest of the parser: unknown
keys and wrong types are errors naming the YAML path. An egress port is a number (the entry's
``protocol`` applies, TLS by default) or ``{number, protocol}``.
"""

from __future__ import annotations

from typing import Any

from federator.core.config_checks import Fields
from federator.core.config_policy import (
    AccessOperation,
    AccessRule,
    AccessSource,
    EgressPort,
    EgressRule,
    EgressSettings,
    ServiceAccess,
)
from federator.core.model import ClusterId, ServiceKey
from federator.errors import ConfigError


def items(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list")
    return value


def strings(f: Fields, key: str) -> tuple[str, ...]:
    values = items(f.get(key), f.path(key))
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ConfigError(f"{f.path(key)}[{i}] must be a string, got {v!r}")
    return tuple(values)


def _egress_port(value: Any, where: str, protocol: str) -> EgressPort:
    if isinstance(value, int) and not isinstance(value, bool):
        return EgressPort(number=value, protocol=protocol)
    f = Fields(value, where)
    port = EgressPort(number=f.int_("number", 0), protocol=f.str_("protocol", protocol).upper())
    f.finish()
    return port


def parse_egress(value: Any) -> EgressSettings:
    d = EgressSettings()
    if value is None:
        return d
    f = Fields(value, "egress")
    rules = []
    for i, raw in enumerate(items(f.get("allow"), "egress.allow")):
        r = Fields(raw, f"egress.allow[{i}]")
        protocol = r.str_("protocol", "TLS").upper()
        ports = items(r.get("ports"), r.path("ports"))
        rules.append(
            EgressRule(
                host=r.str_("host", ""),
                ports=tuple(
                    _egress_port(p, f"{r.path('ports')}[{k}]", protocol)
                    for k, p in enumerate(ports)
                ),
                namespaces=strings(r, "namespaces"),
            )
        )
        r.finish()
    out = EgressSettings(
        allow=tuple(rules), root_namespace=f.str_("rootNamespace", d.root_namespace)
    )
    f.finish()
    return out


def _access_rule(value: Any, where: str) -> AccessRule:
    f = Fields(value, where)
    sources = []
    for k, raw in enumerate(items(f.get("from"), f.path("from"))):
        s = Fields(raw, f"{where}.from[{k}]")
        clusters = tuple(ClusterId(c) for c in strings(s, "clusters"))
        sources.append(
            AccessSource(clusters, strings(s, "namespaces"), strings(s, "serviceAccounts"))
        )
        s.finish()
    operations = []
    for k, raw in enumerate(items(f.get("to"), f.path("to"))):
        o = Fields(raw, f"{where}.to[{k}]")
        operations.append(AccessOperation(methods=strings(o, "methods"), paths=strings(o, "paths")))
        o.finish()
    f.finish()
    return AccessRule(sources=tuple(sources), operations=tuple(operations))


def parse_access(value: Any) -> tuple[ServiceAccess, ...]:
    out = []
    for i, raw in enumerate(items(value, "access")):
        f = Fields(raw, f"access[{i}]")
        service = f.str_("service", "")
        namespace, sep, name = service.partition("/")
        if not (sep and namespace and name):
            raise ConfigError(
                f'access[{i}].service "{service}" is not a global service: write '
                '"<namespace>/<name>"'
            )
        rules = items(f.get("rules"), f.path("rules"))
        out.append(
            ServiceAccess(
                service=ServiceKey(namespace, name),
                rules=tuple(
                    _access_rule(r, f"access[{i}].rules[{j}]") for j, r in enumerate(rules)
                ),
            )
        )
        f.finish()
    return tuple(out)
