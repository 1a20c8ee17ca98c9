"""OTLP decoding: JSON with hex ids, partial conversion, settings, and fuzzing every decoder
(random bytes -> PermanentError, i.e. 400 / INVALID_ARGUMENT, never another exception)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors._core.errors import ConfigError, PermanentError
from collectors.codecs.otlp_proto import logs_from_otlp_partial, spans_from_otlp_partial
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.otlp.http import _decompress
from collectors.receivers.otlp.ingest import LOGS, METRICS, SIGNALS, TRACES, decode_request
from collectors.receivers.otlp.protocol.metrics import samples_from_otlp


def test_json_hex_ids_become_bytes() -> None:
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "",
                                "kind": 2,
                                "name": "x",
                                "startTimeUnixNano": "1544712660000000000",
                                "links": [
                                    {"traceId": "00" * 16, "spanId": "01" * 8, "newField": 1}
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    request = decode_request(TRACES, json.dumps(body).encode(), json=True)
    [span] = request.resource_spans[0].scope_spans[0].spans
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.links[0].span_id == b"\x01" * 8
    assert span.start_time_unix_nano == 1544712660000000000


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b"{", id="not-json"),
        pytest.param(
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "xyz"}]}]}]}',
            id="id-not-hex",
        ),
        pytest.param(b'{"resourceSpans": 3}', id="wrong-type"),
        pytest.param(b"[" * 50_000 + b"]" * 50_000, id="deep-nesting"),
        pytest.param(b'{"a":' * 200 + b"1" + b"}" * 200, id="deep-objects"),
    ],
)
def test_bad_json_is_permanent(body: bytes) -> None:
    with pytest.raises(PermanentError):
        decode_request(TRACES, body, json=True)


def test_partial_spans_and_logs() -> None:
    request = decode_request(
        TRACES,
        json.dumps(
            {
                "resourceSpans": [
                    {
                        "scopeSpans": [
                            {
                                "spans": [
                                    {"traceId": "01" * 16, "spanId": "02" * 8, "name": "ok"},
                                    {"traceId": "01" * 16, "spanId": "02" * 3, "name": "bad"},
                                ]
                            }
                        ]
                    }
                ]
            }
        ).encode(),
        json=True,
    )
    spans, rejected, why = spans_from_otlp_partial(request.resource_spans)
    assert ([s.name for s in spans], rejected) == (["ok"], 1)
    assert "span id" in why
    logs = decode_request(
        LOGS,
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": ['
        b'{"body": {"stringValue": "a"}}, {"traceId": "0102", "body": {"stringValue": "b"}}]}]}]}',
        json=True,
    )
    records, rejected, _ = logs_from_otlp_partial(logs.resource_logs)
    assert ([r.body for r in records], rejected) == (["a"], 1)


@pytest.mark.parametrize(
    ("encoding", "body", "limit", "error"),
    [
        pytest.param(
            "gzip", gzip.compress(b"\x00" * 100_000), 50_000, "more than", id="bomb-stops-at-limit"
        ),
        pytest.param("gzip", gzip.compress(b"abc")[:-4], 1000, "truncated", id="truncated"),
        pytest.param("gzip", b"not gzip", 1000, "invalid gzip", id="garbage"),
        pytest.param("zstd", b"", 1000, "not supported", id="unknown-encoding"),
    ],
)
def test_decompress_refusals(encoding: str, body: bytes, limit: int, error: str) -> None:
    with pytest.raises(PermanentError, match=error):
        _decompress(body, encoding, limit)


def test_decompress_concatenated_gzip_members() -> None:
    body = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert _decompress(body, "gzip", 100) == b"abcd"


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        pytest.param({"grpc_listen": "nohost"}, "otlp.grpc_listen", id="listen"),
        pytest.param({"max_message_bytes": 10}, "otlp.max_message_bytes", id="tiny-limit"),
        pytest.param({"max_concurrent_requests": 0}, "otlp.max_concurrent_requests", id="conc"),
        pytest.param({"tls_cert_file": "/nonexistent"}, "otlp.tls_cert_file", id="cert-alone"),
        pytest.param({"tls_client_ca_file": "/x"}, "otlp.tls_client_ca_file", id="ca-alone"),
        pytest.param({"bogus": 1}, "otlp.bogus", id="unknown-key"),
        pytest.param({"retry_after_s": "2"}, "otlp.retry_after_s", id="wrong-type"),
    ],
)
def test_settings_errors_name_the_field(mapping: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        OtlpSettings.from_mapping(mapping)


def test_settings_from_mapping(tmp_path: Path) -> None:
    for name in ("c.pem", "k.pem"):
        (tmp_path / name).write_text("x")
    s = OtlpSettings.from_mapping(
        {
            "grpc_listen": "127.0.0.1:0",
            "max_message_bytes": 2048,
            "tls_cert_file": str(tmp_path / "c.pem"),
            "tls_key_file": str(tmp_path / "k.pem"),
        }
    )
    assert s.grpc_address == ("127.0.0.1", 0)
    assert s.tls_enabled


def _convert(signal: Any, request: Any) -> None:
    if signal is TRACES:
        spans_from_otlp_partial(request.resource_spans)
    elif signal is METRICS:
        samples_from_otlp(request.resource_metrics)
    else:
        logs_from_otlp_partial(request.resource_logs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SIGNALS), st.binary(max_size=512), st.booleans())
def test_fuzz_random_bytes_never_crash(signal: Any, body: bytes, as_json: bool) -> None:
    try:
        request = decode_request(signal, body, json=as_json)
    except PermanentError:
        return
    _convert(signal, request)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "resourceMetrics",
                    "resourceLogs",
                    "scopeSpans",
                    "spans",
                    "traceId",
                    "spanId",
                    "metrics",
                    "gauge",
                    "dataPoints",
                    "asInt",
                    "attributes",
                    "key",
                    "value",
                    "stringValue",
                    "logRecords",
                    "scopeLogs",
                    "scopeMetrics",
                    "histogram",
                    "bucketCounts",
                    "explicitBounds",
                    "timeUnixNano",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SIGNALS), _json_values)
def test_fuzz_otlp_shaped_json_never_crashes(signal: Any, document: Any) -> None:
    body = json.dumps(document).encode()
    try:
        request = decode_request(signal, body, json=True)
    except PermanentError:
        return
    _convert(signal, request)
