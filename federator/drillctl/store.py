"""The telemetry store's HTTP API, as the drill CLI reads it (thin I/O over httpx).

The federator may not import the collectors, so it speaks the store's public protocols:
the Prometheus HTTP API (``/api/v1/query``, ``/api/v1/query_range``) for guards and golden
signals, Tempo's ``/api/search`` and ``/api/traces/<id>?logs=true`` for exemplar traces and
the log lines that belong to them. Every failure is a ``StoreError`` with the URL and the
store's own message, so a report can say what it could not include instead of failing.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from federator.drillctl.signals import Points, matrix_points

STORE_ENV = "MESHFED_STORE_URL"
"""Environment variable with the store's base URL (``--store`` wins)."""
STORE_TOKEN_ENV = "MESHFED_STORE_TOKEN"  # noqa: S105 - a variable name, not a secret
"""Environment variable with the store's bearer token (its ``--token-file``), if it has one."""
STORE_CA_ENV = "MESHFED_STORE_CA"
"""Environment variable with the CA file (PEM) that signed the store's HTTPS certificate."""


class StoreError(Exception):
    """The store did not answer, or answered with an error."""


@dataclass(frozen=True, slots=True)
class TraceRef:
    trace_id: str
    root: str
    start: float
    duration_ms: float


@dataclass(frozen=True, slots=True)
class LogLine:
    at: float
    cluster: str
    severity: str
    body: str


class StoreClient:
    """Synchronous client of one store (``base``: ``http://host:port``). Use as a context."""

    def __init__(
        self,
        base: str,
        *,
        timeout: float = 10.0,
        token: str | None = None,
        ca: str | None = None,
        cert: tuple[str, str] | None = None,
    ) -> None:
        """``ca``: CA bundle of an https store (else the system's); ``cert``: client certificate
        and key files, for a store that requires mutual TLS."""
        self.base = base.rstrip("/")
        headers = {"Authorization": f"Bearer {token.strip()}"} if token else {}
        verify: ssl.SSLContext | bool = True
        if ca or cert:
            verify = ssl.create_default_context(cafile=ca)
            if cert:
                verify.load_cert_chain(*cert)
        self._http = httpx.Client(
            base_url=self.base, timeout=timeout, headers=headers, verify=verify
        )

    def __enter__(self) -> StoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (idempotent)."""
        self._http.close()

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.base}{path}: {exc!r}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:300]}
        if response.status_code != 200:
            message = body.get("error", body) if isinstance(body, dict) else body
            raise StoreError(f"{self.base}{path}: HTTP {response.status_code}: {message}")
        return body

    def query(self, expr: str, at: float) -> list[Mapping[str, Any]]:
        """Instant query: the result vector (a scalar becomes a one-element vector)."""
        body = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        data = body.get("data") or {}
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": data.get("result")}]
        return list(data.get("result") or [])

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> dict[str, Points]:
        """Range query: points per ``source_cluster``."""
        body = self._get(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return matrix_points((body.get("data") or {}).get("result") or [])

    def error_traces(self, *, service: str, start: float, end: float, limit: int) -> list[TraceRef]:
        """Traces with an error span of ``service`` (its ``service.name``) in [start, end]
        (Tempo search, ``status.code=error``)."""
        body = self._get(
            "/api/search",
            {
                "service": service,
                "tags": "status.code=error",
                "start": str(int(start)),
                "end": str(int(end) + 1),
                "limit": str(limit),
            },
        )
        return [
            TraceRef(
                trace_id=str(t.get("traceID", "")),
                root=str(t.get("rootServiceName", "")),
                start=int(t.get("startTimeUnixNano", 0)) / 1e9,
                duration_ms=float(t.get("durationMs", 0)),
            )
            for t in body.get("traces") or []
        ]

    def trace_logs(self, trace_id: str, *, limit: int) -> list[LogLine]:
        """The log lines correlated with one trace (at most ``limit``)."""
        body = self._get(f"/api/traces/{trace_id}", {"logs": "true"})
        out: list[LogLine] = []
        for log in (body.get("logs") or [])[:limit]:
            nanos = int(log.get("timeUnixNano") or 0)
            out.append(
                LogLine(
                    at=nanos / 1e9,
                    cluster=str(log.get("cluster", "")),
                    severity=str(log.get("severityText", "")),
                    body=str(log.get("body", ""))[:300],
                )
            )
        return out

    def trace_url(self, trace_id: str) -> str:
        return f"{self.base}/api/traces/{trace_id}?logs=true"
