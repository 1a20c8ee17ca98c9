"""Bounded msgpack decoding: no header may make us allocate or wait for more than the limits.

Why: a 5-byte msgpack header can declare a 4 Gi-element array or a 4 GB string; a naive
decoder allocates first and reads later (opentelemetry-collector-contrib#49229). msgpack's C
``Unpacker`` checks array and map lengths against ``max_array_len``/``max_map_len`` at the
header, before allocating; strings, binaries and ext bodies are only ever as big as the
bytes buffered, which ``max_buffer_size`` bounds (a feed beyond it raises ``BufferFull``).
Nesting is bounded by the C unpacker's fixed stack (1024 levels: a deeper document raises
``StackError`` cleanly, without recursion in Python); tighter depth limits for records are
applied where records are converted (:mod:`collectors.receivers.forward.protocol.message`).
Every decoding failure becomes :class:`collectors._core.errors.PermanentError` (or
``LimitExceededError`` for size bounds)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import msgpack

from collectors._core.errors import LimitExceededError, PermanentError


@dataclass(frozen=True, slots=True)
class MsgpackLimits:
    """Bounds of one decoder."""

    max_buffer_bytes: int = 8 * 1024 * 1024
    """Bytes buffered for one incomplete object (so: the largest object accepted)."""
    max_container_len: int = 262_144
    """Longest array or map."""


ExtHook = Callable[[int, bytes], Any]


def new_unpacker(limits: MsgpackLimits, *, ext_hook: ExtHook = msgpack.ExtType) -> Any:
    """A streaming ``msgpack.Unpacker`` with every length bounded; feed it with :func:`feed`.

    ``ext_hook(code, data)`` builds ext values (default ``msgpack.ExtType``); ext ``-1``
    (timestamps) is decoded by msgpack itself.
    """
    size = limits.max_buffer_bytes
    return msgpack.Unpacker(
        ext_hook=ext_hook,
        raw=False,
        unicode_errors="replace",
        strict_map_key=True,
        max_buffer_size=size,
        max_str_len=size,
        max_bin_len=size,
        max_ext_len=size,
        max_array_len=limits.max_container_len,
        max_map_len=limits.max_container_len,
    )


def feed(unpacker: Any, data: bytes) -> None:
    """Append ``data``; an object that outgrows the buffer is a ``LimitExceededError``."""
    try:
        unpacker.feed(data)
    except msgpack.BufferFull:
        raise LimitExceededError("msgpack object larger than the buffer limit") from None


def _decoding_error(exc: Exception) -> PermanentError:
    """The error to raise for a failure of ``next(unpacker)``."""
    if isinstance(exc, msgpack.StackError):
        return PermanentError("msgpack nesting deeper than 1024 levels")
    # FormatError, ExtraData, UnicodeDecodeError, "exceeds max_array_len", int map keys
    if "exceeds max_" in str(exc):
        return LimitExceededError(f"msgpack length limit: {exc}")
    return PermanentError(f"invalid msgpack: {type(exc).__name__}: {exc}")


def objects(unpacker: Any) -> Iterator[Any]:
    """The complete objects buffered so far; decoding failures become ``PermanentError``."""
    while True:
        try:
            obj = next(unpacker)
        except StopIteration:
            return
        except (ValueError, msgpack.UnpackException) as exc:  # StackError is a ValueError
            raise _decoding_error(exc) from None
        yield obj


def take(unpacker: Any, n: int) -> list[Any]:
    """Up to ``n`` of the complete objects buffered so far, decoded in one C-level loop.

    Why: a Python generator step per object cost as much as decoding a small Fluentd event.
    """
    try:
        return list(islice(unpacker, n))
    except (ValueError, msgpack.UnpackException) as exc:
        raise _decoding_error(exc) from None


def _check_complete(unpacker: Any) -> None:
    """``PermanentError`` when the stream ended inside an object."""
    try:  # msgpack refuses read_bytes while an object is incomplete
        unpacker.read_bytes(1)
    except ValueError:
        raise PermanentError(
            f"msgpack stream truncated inside the object at byte {unpacker.tell()}"
        ) from None


def stream(
    chunks: Iterable[bytes], limits: MsgpackLimits, *, ext_hook: ExtHook = msgpack.ExtType
) -> Iterator[Any]:
    """Every object of a msgpack stream given in pieces; trailing partial data is an error."""
    unpacker = new_unpacker(limits, ext_hook=ext_hook)
    for chunk in chunks:
        feed(unpacker, chunk)
        yield from objects(unpacker)
    _check_complete(unpacker)


def batches(
    chunks: Iterable[bytes], limits: MsgpackLimits, size: int, *, ext_hook: ExtHook
) -> Iterator[list[Any]]:
    """The objects of a msgpack stream in lists of ``size`` (the last may be shorter).

    Memory: one chunk of input plus one list. Trailing partial data is a ``PermanentError``,
    raised after the complete objects before it were yielded.
    """
    unpacker = new_unpacker(limits, ext_hook=ext_hook)
    batch: list[Any] = []
    for chunk in chunks:
        feed(unpacker, chunk)
        while True:
            batch += take(unpacker, size - len(batch))
            if len(batch) < size:
                break
            yield batch
            batch = []
    if batch:
        yield batch
    _check_complete(unpacker)


def unpack_one(data: bytes, limits: MsgpackLimits) -> Any:
    """Exactly one object from ``data`` (nothing missing, nothing left over)."""
    found = list(stream([data], limits))
    if len(found) != 1:
        raise PermanentError(f"expected one msgpack object, found {len(found)}")
    return found[0]
