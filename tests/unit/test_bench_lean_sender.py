"""The benchmarks' lean remote_write sender: the request head it builds and how it reads
answers (a StreamReader fed bytes: no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers.bench_scripts import load_bench_script
from tests.helpers.paths import REPO_ROOT

lean = load_bench_script(REPO_ROOT / "bench" / "lean_sender.py")


def test_the_head_carries_prometheus_remote_write_headers() -> None:
    host, port, head = lean.request_head("http://127.0.0.1:9090/api/v1/write")
    assert (host, port) == ("127.0.0.1", 9090)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/v1/write HTTP/1.1"
    assert "Host: 127.0.0.1:9090" in lines
    assert "Content-Encoding: snappy" in lines
    assert "Content-Type: application/x-protobuf" in lines
    assert "X-Prometheus-Remote-Write-Version: 0.1.0" in lines
    assert head.endswith(b"\r\n") and not head.endswith(b"\r\n\r\n")  # Content-Length follows


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://127.0.0.1:9090/api/v1/write", id="tls"),
        pytest.param("http://127.0.0.1/api/v1/write", id="no-port"),
    ],
)
def test_urls_it_cannot_send_to_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        lean.request_head(url)


def _read(wire: bytes) -> tuple[int, bytes]:
    async def read() -> tuple[int, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(wire)
        reader.feed_eof()
        answer: tuple[int, bytes] = await lean.read_answer(reader)
        return answer

    return asyncio.run(read())


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        pytest.param(b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", (204, b""), id="no-content"),
        pytest.param(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\nbad\n\nNEXT",
            (400, b"bad\n\n"),
            id="body-by-length-lowercase-header",
        ),
        pytest.param(
            b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n",
            (429, b""),
            id="empty-body",
        ),
    ],
)
def test_answers_are_read_to_their_end(wire: bytes, expected: tuple[int, bytes]) -> None:
    assert _read(wire) == expected


def test_a_chunked_answer_is_an_error_not_a_desync() -> None:
    with pytest.raises(RuntimeError, match=r"(?i)transfer-encoding"):
        _read(b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
