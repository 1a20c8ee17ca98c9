"""Varied spans for ``bench/trace_by_id.py``: services, pods, span names and whole traces.

Not one span repeated: random 128-bit trace ids and 64-bit span ids, 2-18 spans per trace
(mean 10) over 40 services in 3 clusters with 5 pods each, 8-22 span names per service,
varied kinds, 3 % errors (status message and an exception event), HTTP attributes with ids
and user ids, SQL text of varying length. Trace ids and span counts come from their own
seeded stream (``IdStream``) so the reader can list every written trace again cheaply.
"""

from __future__ import annotations

import random

from collectors._core.model import (
    AttributeValue,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    StatusCode,
    TraceId,
)

WORDS = ("cart", "checkout", "payment", "user", "auth", "search", "catalog", "shipping", "order")
ROUTES = ("items", "orders", "users", "carts", "payments", "products", "reviews", "sessions")
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
KINDS = tuple(SpanKind)
STATUS = (200, 200, 200, 200, 201, 204, 301, 400, 404, 500, 503)


class Universe:
    """Services, their span names and their pods' resources, the same for every writer."""

    def __init__(self, rng: random.Random) -> None:
        self.services = [f"{WORDS[i % len(WORDS)]}-{i}" for i in range(40)]
        self.ops = {
            svc: [self._op(rng) for _ in range(rng.randint(8, 22))] for svc in self.services
        }
        self.pods: dict[str, list[dict[str, AttributeValue]]] = {}
        for k, svc in enumerate(self.services):
            cluster = f"cluster-{k % 3}"
            self.pods[svc] = [
                {
                    "service.name": svc,
                    "service.version": f"1.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
                    "k8s.namespace.name": f"ns-{k % 7}",
                    "k8s.pod.name": f"{svc}-{rng.getrandbits(40):010x}",
                    "k8s.cluster.name": cluster,
                    "host.name": f"node-{rng.randint(0, 60)}.{cluster}",
                }
                for _ in range(5)
            ]

    @staticmethod
    def _op(rng: random.Random) -> str:
        kind = rng.randrange(3)
        route = rng.choice(ROUTES)
        if kind == 0:
            return f"{rng.choice(METHODS)} /api/v{rng.randint(1, 3)}/{route}/{{id}}"
        if kind == 1:
            return f"SELECT {route}"
        return f"grpc.{route.capitalize()}Service/{rng.choice(['Get', 'List', 'Update'])}"


class IdStream:
    """Trace ids (odd 128-bit numbers) and span counts of one writer, in writing order."""

    def __init__(self, writer: int) -> None:
        self._rng = random.Random(7919 * writer + 1)

    def next(self) -> tuple[int, int]:
        return self._rng.getrandbits(128) | 1, self._rng.randint(2, 18)


def replay(writer: int, traces: int) -> tuple[list[int], bytearray]:
    """The first ``traces`` trace ids and span counts ``IdStream(writer)`` produced."""
    ids = IdStream(writer)
    out: list[int] = []
    counts = bytearray()
    for _ in range(traces):
        tid, count = ids.next()
        out.append(tid)
        counts.append(count)
    return out, counts


def make_trace(u: Universe, rng: random.Random, tid: TraceId, count: int, start: int) -> list[Span]:
    """One trace: a server root and children with varied services and attributes."""
    ids = [SpanId(f"{rng.getrandbits(64) | 1:016x}") for _ in range(count)]
    spans: list[Span] = []
    for i in range(count):
        svc = rng.choice(u.services)
        name = rng.choice(u.ops[svc])
        begin = start + i * rng.randint(10_000, 2_000_000)
        error = rng.random() < 0.03
        attrs: dict[str, AttributeValue] = {
            "http.method": rng.choice(METHODS),
            "http.status_code": 500 if error else rng.choice(STATUS),
            "http.route": name,
            "http.target": f"/api/{rng.choice(ROUTES)}/{rng.getrandbits(32)}",
            "user.id": rng.randrange(1_000_000),
        }
        if name.startswith("SELECT"):
            attrs["db.statement"] = f"{name} WHERE id IN ({','.join('?' * rng.randint(1, 60))})"
        events: tuple[SpanEvent, ...] = ()
        if error:
            events = (SpanEvent(begin + 1000, "exception", {"exception.type": "Timeout"}),)
        spans.append(
            Span(
                trace_id=tid,
                span_id=ids[i],
                parent_span_id=ids[rng.randrange(i)] if i else None,
                name=name,
                start_time_unix_nano=begin,
                end_time_unix_nano=begin + int(rng.lognormvariate(15, 1.2)),
                kind=SpanKind.SERVER if i == 0 else rng.choice(KINDS),
                status_code=StatusCode.ERROR if error else StatusCode.UNSET,
                status_message="upstream timed out" if error else "",
                attributes=attrs,
                resource=rng.choice(u.pods[svc]),
                scope_name="io.opentelemetry.http",
                scope_version="1.2.0",
                events=events,
            )
        )
    return spans
