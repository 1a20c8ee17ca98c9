"""Fluentd Forward protocol v1: a decoded msgpack message → tag, options and event entries.

Pure (no sockets). The mode is told by the second element (docs/receivers/forward.md): a time (int,
float, EventTime ext 0, msgpack timestamp) or nil → Message ``[tag, time, record,
option?]``; an array → Forward ``[tag, [[time, record], ...], option?]``; bin or str →
PackedForward (a msgpack stream of ``[time, record]``), gzip-compressed when
``option.compressed == "gzip"`` (several gzip members allowed). Entries are produced lazily,
in lists of at most the receiver's batch size decoded by msgpack's C loop: a
CompressedPackedForward payload is decompressed in 256 KiB steps and decoded as it goes, so
memory stays at one step plus one batch of entries however large the payload, and a gzip
bomb is refused as soon as its output passes ``max_decompressed_bytes``. Inside packed
payloads every ext value (an EventTime is ext 0 of 8 bytes) is decoded to ``slice(code,
data)`` (:data:`EXT`): msgpack calls its ``ext_hook`` once per value, and a Python function
there (or ``msgpack.ExtType``'s Python constructor) cost more than decoding the rest of a
small event, while ``slice`` is a C type that takes exactly two arguments. Turning entries
into records is in :mod:`collectors.receivers.forward.protocol.record`; a bad *entry* is
skipped by the caller (counted), a bad *message* raises
:class:`collectors._core.errors.PermanentError`."""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from collectors._core.errors import LimitExceededError, PermanentError
from collectors.receivers.forward.protocol import msgpack_safe

NS_PER_S = 1_000_000_000
GZIP_STEP_BYTES = 256 * 1024
MAX_SECONDS = 2**34  # keeps nanoseconds inside int64 (year 2514)
EVENT_TIME = struct.Struct(">II")
"""EventTime's 8 bytes: uint32 seconds, uint32 nanoseconds (big-endian)."""
_ENTRIES_STEP = 1024


EXT = slice
"""What packed payloads decode an ext value to: ``slice(code, data)`` (``.start`` is the ext
code, ``.stop`` its bytes). Only this module's :func:`entry_batches` produces them."""
EXT_HOOK = slice
"""The ``ext_hook`` of packed payloads (see :data:`EXT`)."""


_TIME_TYPES = (int, float, msgpack.ExtType, msgpack.Timestamp)


class Mode(enum.Enum):
    """The four carrying modes of Forward protocol v1."""

    MESSAGE = "Message"
    FORWARD = "Forward"
    PACKED_FORWARD = "PackedForward"
    COMPRESSED_PACKED_FORWARD = "CompressedPackedForward"


@dataclass(frozen=True, slots=True)
class ForwardLimits:
    """Every bound the parser applies (see ``ForwardSettings`` for the meaning of each)."""

    max_message_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 16 * 1024 * 1024
    max_container_len: int = 262_144
    max_depth: int = 32

    @property
    def msgpack(self) -> msgpack_safe.MsgpackLimits:
        return msgpack_safe.MsgpackLimits(
            max_buffer_bytes=self.max_message_bytes, max_container_len=self.max_container_len
        )


@dataclass(frozen=True, slots=True)
class ForwardMessage:
    """One message's header; ``payload`` is the raw second (and third) element by mode."""

    tag: str
    mode: Mode
    payload: Any
    """Message: ``(time, record)``; Forward: the entries list; PackedForward: the bytes."""
    chunk: str | bytes | None = None
    """The option ``chunk``: when present the server answers ``{"ack": chunk}``."""


def decode_message(obj: Any) -> ForwardMessage:
    """Tell the mode of a decoded message and read its options; ``PermanentError`` if malformed."""
    if not isinstance(obj, list) or not 2 <= len(obj) <= 4:
        raise PermanentError("a Forward message must be an array of 2 to 4 elements")
    tag = obj[0]
    if type(tag) is bytes:
        tag = tag.decode("utf-8", "replace")
    if not isinstance(tag, str) or not tag:
        raise PermanentError("a Forward message's tag must be a non-empty string")
    second = obj[1]
    payload: Any
    if isinstance(second, list):
        mode, payload, rest = Mode.FORWARD, second, obj[2:]
    elif second is None or isinstance(second, _TIME_TYPES):
        if len(obj) < 3:
            raise PermanentError("a Message-mode message needs [tag, time, record]")
        mode, payload, rest = Mode.MESSAGE, (second, obj[2]), obj[3:]
    elif isinstance(second, bytes | str):
        mode, payload, rest = Mode.PACKED_FORWARD, second, obj[2:]
    else:
        raise PermanentError(f"unknown Forward mode (second element is {type(second).__name__})")
    if len(rest) > 1:
        raise PermanentError(f"too many elements for {mode.value} mode")
    options = rest[0] if rest else None
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise PermanentError("a Forward message's option must be a map")
    chunk = options.get("chunk")
    if chunk is not None and type(chunk) not in (str, bytes):
        raise PermanentError("option chunk must be a string")
    compressed = options.get("compressed")
    if compressed == "gzip":
        if mode is not Mode.PACKED_FORWARD:
            raise PermanentError("option compressed=gzip is only valid in PackedForward mode")
        mode = Mode.COMPRESSED_PACKED_FORWARD
    elif compressed not in (None, "text"):
        raise PermanentError(f"unsupported option compressed={compressed!r} (only gzip)")
    return ForwardMessage(tag=tag, mode=mode, payload=payload, chunk=chunk)


def entry_batches(message: ForwardMessage, limits: ForwardLimits, size: int) -> Iterator[list[Any]]:
    """The message's raw entries (``[time, record]`` pairs, unchecked) in lists of ``size``.

    Raises ``PermanentError`` (or ``LimitExceededError``) while iterating when a packed
    payload is not valid msgpack or gzip, or decompresses to more than the limit.
    """
    if message.mode is Mode.MESSAGE:
        yield [message.payload]
        return
    if message.mode is Mode.FORWARD:
        items = message.payload
        for start in range(0, len(items), size):
            yield items[start : start + size]
        return
    payload = message.payload
    if isinstance(payload, str):  # msgpack-ruby in compatibility mode sends str
        payload = payload.encode("utf-8", "surrogateescape")
    if message.mode is Mode.PACKED_FORWARD:
        chunks: Iterator[bytes] = iter((payload,))
    else:
        chunks = gunzip_members(payload, max_bytes=limits.max_decompressed_bytes)
    yield from msgpack_safe.batches(chunks, limits.msgpack, size, ext_hook=EXT_HOOK)


def entries(message: ForwardMessage, limits: ForwardLimits) -> Iterator[Any]:
    """The message's raw entries one by one (see :func:`entry_batches`)."""
    for batch in entry_batches(message, limits, _ENTRIES_STEP):
        yield from batch


def gunzip_members(data: bytes, *, max_bytes: int, step: int = GZIP_STEP_BYTES) -> Iterator[bytes]:
    """Decompress one or more concatenated gzip members in pieces of at most ``step`` bytes.

    Raises ``LimitExceededError`` once the output passes ``max_bytes`` (before producing
    more than one ``step`` beyond it) and ``PermanentError`` for corrupt or truncated input.
    """
    total = 0
    rest = data
    if not rest:
        raise PermanentError("empty gzip payload")
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = rest
        while not inflater.eof:
            try:
                out = inflater.decompress(pending, step)
            except zlib.error as exc:
                raise PermanentError(f"invalid gzip payload: {exc}") from None
            total += len(out)
            if total > max_bytes:
                raise LimitExceededError(
                    f"gzip payload decompresses to more than {max_bytes} bytes"
                )
            pending = inflater.unconsumed_tail
            if out:
                yield out
            elif not pending and not inflater.eof:
                raise PermanentError("truncated gzip payload")
        rest = inflater.unused_data


def event_time_ns(value: Any, now_ns: int) -> int:
    """A Forward time in unix nanoseconds; 0 or nil means "now" (as Fluentd does).

    Accepts integer seconds, float seconds, EventTime (ext 0: uint32 seconds + uint32 nanos,
    fixext8 or ext8) and msgpack timestamps (ext -1).
    """
    if isinstance(value, bool):
        raise PermanentError("event time must be a number or EventTime, not a boolean")
    if value is None or (isinstance(value, int | float) and value == 0):
        return now_ns
    if isinstance(value, int):
        if not 0 < value < MAX_SECONDS:
            raise PermanentError(f"event time {value} out of range")
        return value * NS_PER_S
    if isinstance(value, float):
        if not 0 < value < MAX_SECONDS:  # also refuses NaN
            raise PermanentError(f"event time {value} out of range")
        return round(value * NS_PER_S)
    if isinstance(value, msgpack.ExtType | EXT):
        ext: Any = value
        code, data = (ext.start, ext.stop) if type(ext) is EXT else (ext.code, ext.data)
        if code != 0 or len(data) != EVENT_TIME.size:
            raise PermanentError(f"ext type {code} of {len(data)} bytes is not an EventTime")
        seconds, nanos = EVENT_TIME.unpack(data)
        if nanos >= NS_PER_S:
            raise PermanentError(f"EventTime nanoseconds {nanos} out of range")
        return now_ns if seconds == 0 and nanos == 0 else seconds * NS_PER_S + nanos
    if isinstance(value, msgpack.Timestamp):
        ns = int(value.to_unix_nano())
        if not 0 < ns < MAX_SECONDS * NS_PER_S:
            raise PermanentError("msgpack timestamp out of range")
        return ns
    raise PermanentError(f"event time must be a number or EventTime, not {type(value).__name__}")
