"""DogStatsD events and service checks -> typed records (pure; bad input -> PermanentError).

Formats (Datadog's DogStatsD datagram spec):

- event: ``_e{<title bytes>,<text bytes>}:<title>|<text>|d:<ts>|h:<host>|k:<agg key>|
  p:<low|normal>|s:<source>|t:<error|warning|info|success>|#<tags>`` — lengths count UTF-8
  bytes, ``\\n`` in the text is a newline;
- service check: ``_sc|<name>|<0..3>|d:<ts>|h:<host>|#<tags>|m:<message>`` (``m:`` last, it may
  contain ``|``).

They are stored as logs by the receiver; the reference Etsy daemon counts both as bad lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collectors._core.errors import PermanentError

_EVENT_HEAD = re.compile(r"_e\{([0-9]{1,6}),([0-9]{1,6})\}:")
_ALERT_TYPES = frozenset({"error", "warning", "info", "success"})
_PRIORITIES = frozenset({"low", "normal"})
_MAX_TIMESTAMP_DIGITS = 12


@dataclass(frozen=True, slots=True)
class DogEvent:
    """A DogStatsD event."""

    title: str
    text: str
    timestamp_s: int | None = None
    hostname: str = ""
    aggregation_key: str = ""
    priority: str = "normal"
    source_type: str = ""
    alert_type: str = "info"
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceCheck:
    """A DogStatsD service check; ``status`` 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""

    name: str
    status: int
    timestamp_s: int | None = None
    hostname: str = ""
    message: str = ""
    tags: tuple[tuple[str, str], ...] = ()


def parse_tags(text: str) -> tuple[tuple[str, str], ...]:
    """``a:1,b:2`` -> sorted pairs; a tag without ``:`` gets the value ``"true"``."""
    pairs: dict[str, str] = {}
    for tag in text.split(","):
        if not tag:
            continue
        name, sep, value = tag.partition(":")
        if name:
            pairs[name] = value if sep else "true"
    return tuple(sorted(pairs.items()))


def _timestamp(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_TIMESTAMP_DIGITS:
        raise PermanentError(f"bad timestamp {text[:20]!r}")
    return int(text)


def parse_event(line: str) -> DogEvent:
    """``_e{..}:title|text|...`` -> DogEvent, or PermanentError."""
    head = _EVENT_HEAD.match(line)
    if head is None:
        raise PermanentError("event header must be _e{<title length>,<text length>}:")
    title_len, text_len = int(head.group(1)), int(head.group(2))
    body = line[head.end() :].encode("utf-8", "surrogatepass")
    if title_len == 0 or len(body) < title_len + 1 + text_len:
        raise PermanentError("event shorter than its declared lengths")
    if body[title_len : title_len + 1] != b"|":
        raise PermanentError("event title length does not match")
    try:
        title = body[:title_len].decode("utf-8")
        text = body[title_len + 1 : title_len + 1 + text_len].decode("utf-8")
    except UnicodeDecodeError as e:
        raise PermanentError("event lengths cut a character") from e
    tail = body[title_len + 1 + text_len :].decode("utf-8", "replace")
    if tail and not tail.startswith("|"):
        raise PermanentError("event text length does not match")
    fields: dict[str, str | int | tuple[tuple[str, str], ...] | None] = {}
    for field in tail.split("|")[1:]:
        key, value = field[:2], field[2:]
        if key == "d:":
            fields["timestamp_s"] = _timestamp(value)
        elif key == "h:":
            fields["hostname"] = value
        elif key == "k:":
            fields["aggregation_key"] = value
        elif key == "p:" and value in _PRIORITIES:
            fields["priority"] = value
        elif key == "s:":
            fields["source_type"] = value
        elif key == "t:" and value in _ALERT_TYPES:
            fields["alert_type"] = value
        elif field.startswith("#"):
            fields["tags"] = parse_tags(field[1:])
        elif field:
            raise PermanentError(f"unknown event field {field[:20]!r}")
    return DogEvent(title, text.replace("\\n", "\n"), **fields)  # type: ignore[arg-type]


def parse_service_check(line: str) -> ServiceCheck:
    """``_sc|name|status|...`` -> ServiceCheck, or PermanentError."""
    head, sep, message = line.partition("|m:")
    parts = head.split("|")
    if len(parts) < 3 or not parts[1]:
        raise PermanentError("service check must be _sc|<name>|<status>")
    if parts[2] not in ("0", "1", "2", "3"):
        raise PermanentError("service check status must be 0, 1, 2 or 3")
    timestamp: int | None = None
    hostname = ""
    tags: tuple[tuple[str, str], ...] = ()
    for field in parts[3:]:
        if field.startswith("d:"):
            timestamp = _timestamp(field[2:])
        elif field.startswith("h:"):
            hostname = field[2:]
        elif field.startswith("#"):
            tags = parse_tags(field[1:])
        elif field:
            raise PermanentError(f"unknown service check field {field[:20]!r}")
    return ServiceCheck(parts[1], int(parts[2]), timestamp, hostname, message if sep else "", tags)
