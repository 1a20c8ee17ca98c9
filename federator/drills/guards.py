"""Guard evaluation: a PromQL expression against meshfed's store over its Prometheus-compatible
HTTP API (``GET {queryUrl}/api/v1/query``). A guard *holds* when the result is non-empty.

The federator must not link the store's code, so this is a plain HTTP client. Anything that
is not a clean answer (no URL configured, connection refused, timeout, a non-200, an error
body) is an evaluation with ``holds`` unset and a message saying why: the journal then neither
advances nor resets the guard's ``for`` window, and the TTL still bounds the drill.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from federator.core.config_drills import DrillSettings, StoreTls
from federator.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Evaluation:
    holds: bool | None
    value: float | None = None
    message: str = ""


def _first_value(result: list[Any]) -> float | None:
    try:
        sample = result[0].get("value") or (result[0].get("values") or [[0, None]])[-1]
        return float(sample[1])
    except (IndexError, TypeError, ValueError, AttributeError):
        return None


def interpret(body: Any) -> Evaluation:
    """The evaluation of a ``/api/v1/query`` JSON answer."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        return Evaluation(None, message=f"query failed: {error or body!r}"[:500])
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("vector", "matrix") and isinstance(result, list):
        return Evaluation(bool(result), _first_value(result) if result else None)
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        value = float(result[1])
        return Evaluation(value != 0, value)
    return Evaluation(None, message=f"unexpected result type {kind!r}")


def store_verify(tls: StoreTls) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for the store: the system's CAs unless ``drills.tls.caFile``, and the
    client certificate when one is configured. A certificate or key that does not load is a
    ``ConfigError`` naming the file (the files were checked to exist at start-up)."""
    if not tls.configured:
        return True
    try:
        context = ssl.create_default_context(
            cafile=None if tls.ca_file is None else str(tls.ca_file)
        )
        if tls.cert_file is not None and tls.key_file is not None:
            context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"drills.tls: cannot load {tls.ca_file or ''} {tls.cert_file or ''} "
            f"{tls.key_file or ''}: {exc}; check that they are PEM files"
        ) from exc
    return context


class GuardClient:
    """Evaluates PromQL guards; ``start``/``shutdown`` own the HTTP client."""

    def __init__(self, *, settings: DrillSettings) -> None:
        self._settings = settings
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self._settings.query_timeout_seconds,
                verify=store_verify(self._settings.tls),
            )

    async def shutdown(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    def _headers(self) -> dict[str, str]:
        token_file: Path | None = self._settings.token_file
        if token_file is None:
            return {}
        return {"Authorization": f"Bearer {token_file.read_text().strip()}"}

    async def evaluate(self, expr: str) -> Evaluation:
        url = self._settings.query_url
        if not url:
            return Evaluation(None, message="drills.queryUrl is not set: guards cannot run")
        if self._http is None:
            return Evaluation(None, message="the guard client is not started")
        try:
            response = await self._http.post(
                f"{url}/api/v1/query", data={"query": expr}, headers=self._headers()
            )
        except (httpx.HTTPError, OSError) as exc:
            return Evaluation(None, message=f"store unreachable: {exc!r}"[:500])
        try:
            body = response.json()
        except ValueError:
            return Evaluation(None, message=f"HTTP {response.status_code}: not JSON")
        if response.status_code != 200:
            return Evaluation(None, message=f"HTTP {response.status_code}: {body.get('error')}")
        return interpret(body)
