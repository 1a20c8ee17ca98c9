"""OTLP/JSON request bodies -> the same protobuf messages OTLP/protobuf decodes to. Pure.

OTLP/JSON is protobuf's JSON mapping with one deviation that ``json_format`` does not know:
``traceId``, ``spanId`` and ``parentSpanId`` are hex, not base64. They are rewritten to
base64 before ``json_format.ParseDict`` (which also accepts enum integers, 64-bit integers as
strings, and, with ``ignore_unknown_fields``, fields a newer sender adds, as the spec asks).
Any failure is a :class:`collectors._core.errors.PermanentError` (400 / INVALID_ARGUMENT).
"""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from collectors._core.errors import PermanentError

M = TypeVar("M", bound=Message)
_HEX_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})
_MAX_DEPTH = 64


def _hex_ids_to_base64(node: Any, depth: int = 0) -> None:
    """Rewrite hex id fields in place, everywhere in the document (depth bounded)."""
    if depth > _MAX_DEPTH:
        raise PermanentError(f"JSON nested deeper than {_MAX_DEPTH} levels")
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise PermanentError(f"{key} {value[:40]!r} is not hex") from None
            elif isinstance(value, dict | list):
                _hex_ids_to_base64(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _hex_ids_to_base64(item, depth + 1)


def parse_otlp_json(body: bytes, message: M) -> M:
    """Fill ``message`` (an empty ``Export*ServiceRequest``) from an OTLP/JSON body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise PermanentError(f"body is not JSON: {str(e)[:200]}") from None
    if not isinstance(document, dict):
        raise PermanentError("an OTLP/JSON body must be a JSON object")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as e:
        raise PermanentError(f"invalid OTLP/JSON: {str(e)[:300]}") from None
    return message


def to_otlp_json(message: Message) -> bytes:
    """A response message as OTLP/JSON (camelCase; no id fields occur in responses)."""
    return json_format.MessageToJson(message, indent=None).encode()


__all__ = ["parse_otlp_json", "to_otlp_json"]
