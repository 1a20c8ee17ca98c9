"""A lean remote_write sender for the benchmarks: pre-built HTTP/1.1 requests on keep-alive
connections, one per sender shard, each waiting for its 204 before the next request.

Why not httpx: its pure-Python HTTP/1.1 stack spent about 1.7 ms of CPU per 2,000-sample
request (0.84-1.2 us per sample, measured), as much as meshfed's collector spends storing
them, on the same 2 cores as both receivers. Prometheus, the sender these receivers serve,
spends a small fraction of that in Go. This sender writes the request line, the headers and
the body with one ``writelines`` and reads the status line and headers of the answer: the
same requests on the wire (same headers, same bodies), for less of the machine.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from tests.helpers.remote_write import HEADERS

_MAX_HEAD = 64 * 1024


def request_head(url: str) -> tuple[str, int, bytes]:
    """(host, port, request head without Content-Length) for POSTs to ``url``."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise ValueError(f"need http://host:port/path, got {url!r}")
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
    lines += [f"{name}: {value}" for name, value in HEADERS.items()]
    return parts.hostname, parts.port, ("\r\n".join(lines) + "\r\n").encode()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status code and body of one HTTP/1.1 answer (``Content-Length`` bodies only:
    what both receivers send)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > _MAX_HEAD:
        raise RuntimeError("answer head too large")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"transfer-encoding":
            raise RuntimeError(f"unexpected {line.decode(errors='replace')!r} (status {status})")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _sender(url: str, bodies: list[bytes]) -> None:
    host, port, head = request_head(url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for body in bodies:
            writer.writelines((head, b"Content-Length: %d\r\n\r\n" % len(body), body))
            status, text = await read_answer(reader)
            if status != 204:
                raise RuntimeError(f"{url} answered {status}: {text[:200]!r}")
    finally:
        writer.close()
        await writer.wait_closed()


async def send_all(url: str, shards: list[list[bytes]]) -> float:
    """Seconds to get every body answered 204; one sequential sender per shard."""
    started = time.perf_counter()
    await asyncio.gather(*(_sender(url, bodies) for bodies in shards))
    return time.perf_counter() - started
