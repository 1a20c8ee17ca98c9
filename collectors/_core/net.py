"""Listen addresses: the one parser of ``host:port`` settings and flags.

Every listener (the HTTP port, StatsD, Forward, OTLP, ``meshfed store serve --listen``) reads
its address here, so each accepts the same forms and refuses a typo at start-up with the
same kind of message: the setting's name and a corrected example. Pure: nothing is resolved
or bound (binding, and its errors, belong to the servers).
"""

from __future__ import annotations

from collectors._core.errors import ConfigError

_EXAMPLE_PORT = "9201"


def parse_host_port(value: str, *, field: str) -> tuple[str, int]:
    """``host:port`` -> ``(host, port)``; IPv6 in brackets (``[::1]:4317`` -> ``("::1", 4317)``).

    The port is 0..65535 (0 lets the kernel pick a free one). ``field`` (``http.listen``,
    ``--listen``) names the setting in the ``ConfigError``, which also shows a fixed example.
    """
    written, sep, port = value.rpartition(":")
    port_hint = port if port.isdigit() else _EXAMPLE_PORT
    if not sep or not written:
        raise ConfigError(f"{field} must be host:port, e.g. 127.0.0.1:{port_hint}; got {value!r}")
    bracketed = written.startswith("[") and written.endswith("]") and len(written) > 2
    host = written[1:-1] if bracketed else written
    if "[" in host or "]" in host or (":" in host and not bracketed):
        raise ConfigError(
            f"{field}: an IPv6 host goes in brackets, e.g. [{host.strip('[]') or '::1'}]:"
            f"{port_hint}; got {value!r}"
        )
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError(
            f"{field} must be host:port with a port in 0..65535, e.g. {written}:{_EXAMPLE_PORT};"
            f" got {value!r}"
        )
    return host, int(port)
