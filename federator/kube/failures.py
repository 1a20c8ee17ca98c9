"""How a failed apiserver response becomes one of the federator's errors (classified once,
here, for every verb of ``federator.kube.client``):

- 409 (conflict), 429 and 5xx -> ``ApiRetryableError``, with the server's ``Retry-After``;
- 410 -> ``ExpiredError`` (the watch's version is gone: relist);
- any other failure (400, 401, 403, 404, 422) -> ``ApiPermanentError``.

Connection failures and timeouts never produce a response; the client maps them to
``ApiRetryableError`` where it catches them.
"""

from __future__ import annotations

import httpx

from federator.errors import ApiPermanentError, ApiRetryableError, ExpiredError, FederatorError


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("message", body))[:500] if isinstance(body, dict) else str(body)[:300]


def classify(response: httpx.Response, what: str) -> FederatorError:
    """The federator error for a failed response."""
    code = response.status_code
    text = f"{what}: HTTP {code}: {_message(response)}"
    if code == 410:
        return ExpiredError(text)
    if code in (409, 429) or code >= 500:
        return ApiRetryableError(text, status=code, retry_after=_retry_after(response))
    return ApiPermanentError(text, status=code)
