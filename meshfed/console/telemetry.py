"""Pure shaping of the store's answers: golden-signal PromQL, self-metrics, traces and logs.

The Service page's golden signals are PromQL over Istio's standard metrics, grouped by the
``cluster`` label the collectors add: request rate, error ratio (5xx share) and p50/p99 latency
from ``istio_request_duration_milliseconds_bucket``. Telemetry health reads the collector's own
``meshfed_receiver_*`` counters from its ``/metrics`` text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

_LABEL_VALUE = re.compile(r'["\\\n]')


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + _LABEL_VALUE.sub(lambda m: "\\" + {"\n": "n"}.get(m[0], m[0]), value) + '"'


def golden_queries(name: str, namespace: str, window: str = "1m") -> dict[str, str]:
    """PromQL of the four golden signals per cluster for one service."""
    sel = (
        f'reporter="destination",destination_service_namespace={quote(namespace)},'
        f"destination_service_name={quote(name)}"
    )
    rate = f"sum by (cluster) (rate(istio_requests_total{{{sel}}}[{window}]))"
    errors = (
        f'sum by (cluster) (rate(istio_requests_total{{{sel},response_code=~"5.."}}[{window}]))'
    )
    histogram = "istio_request_duration_milliseconds_bucket"
    buckets = f"sum by (cluster, le) (rate({histogram}{{{sel}}}[{window}]))"
    return {
        "rate": rate,
        "error_ratio": f"({errors} / {rate}) or ({rate} * 0)",
        "p50": f"histogram_quantile(0.5, {buckets})",
        "p99": f"histogram_quantile(0.99, {buckets})",
    }


def matrix_series(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A ``query_range`` answer as ``[{cluster, points: [[t, v], ...]}]`` (NaN dropped)."""
    out = []
    for item in body.get("data", {}).get("result", []):
        points = []
        for t, v in item.get("values", []):
            value = float(v)
            if math.isfinite(value):
                points.append([float(t), value])
        out.append({"cluster": item.get("metric", {}).get("cluster", ""), "points": points})
    return sorted(out, key=lambda s: s["cluster"])


def vector_by(body: Mapping[str, Any], label: str) -> dict[str, float]:
    """An instant ``query`` answer as ``{label value: number}``."""
    return {
        item.get("metric", {}).get(label, ""): float(item["value"][1])
        for item in body.get("data", {}).get("result", [])
    }


RECEIVER_FAMILIES = {
    "meshfed_receiver_received": "received",
    "meshfed_receiver_stored": "stored",
    "meshfed_receiver_rejected": "rejected",
    "meshfed_receiver_dropped": "dropped",
}


def receiver_counters(text: str) -> dict[str, dict[str, Any]]:
    """Per receiver: received/stored totals and rejected/dropped totals by reason."""
    out: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        kind = RECEIVER_FAMILIES.get(family.name)
        if kind is None and family.name != "meshfed_receiver_queue_depth":
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            receiver = sample.labels.get("receiver", "")
            entry = out.setdefault(
                receiver,
                {"received": 0.0, "stored": 0.0, "rejected": {}, "dropped": {}, "queue": 0.0},
            )
            if kind is None:
                entry["queue"] += sample.value
            elif kind in ("received", "stored"):
                entry[kind] += sample.value
            else:
                reason = sample.labels.get("reason", "")
                entry[kind][reason] = entry[kind].get(reason, 0.0) + sample.value
    return out


def ingest_rates(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]], seconds: float
) -> dict[str, dict[str, Any]]:
    """Receivers' counters plus per-second rates between two reads ``seconds`` apart."""
    out: dict[str, dict[str, Any]] = {}
    for receiver, now in sorted(after.items()):
        then = before.get(receiver, {})
        row = dict(now)
        for kind in ("received", "stored"):
            delta = now[kind] - float(then.get(kind, 0.0))
            row[f"{kind}_per_s"] = max(delta, 0.0) / seconds if seconds > 0 else 0.0
        out[receiver] = row
    return out


def _attr(attributes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in attributes:
        value = kv.get("value", {})
        out[kv["key"]] = next(iter(value.values()), None) if value else None
    return out


def waterfall(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Tempo trace answer as spans ordered for a waterfall (depth, offsets in ms)."""
    spans = []
    for batch in body.get("batches", []):
        resource = _attr(batch.get("resource", {}).get("attributes", []))
        for scope in batch.get("scopeSpans", []):
            for s in scope.get("spans", []):
                attrs = _attr(s.get("attributes", []))
                spans.append(
                    {
                        "id": s["spanId"],
                        "parent": s.get("parentSpanId", ""),
                        "name": s.get("name", ""),
                        "service": str(resource.get("service.name", "")),
                        "cluster": str(resource.get("cluster", attrs.get("cluster", ""))),
                        "start": int(s["startTimeUnixNano"]),
                        "end": int(s["endTimeUnixNano"]),
                        "status": s.get("status", {}).get("code", "STATUS_CODE_UNSET")[12:].lower(),
                        "attributes": attrs,
                    }
                )
    if not spans:
        return {"spans": [], "duration_ms": 0.0, "logs": body.get("logs", [])}
    t0 = min(s["start"] for s in spans)
    t1 = max(s["end"] for s in spans)
    ids = {s["id"] for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    for s in sorted(spans, key=lambda s: s["start"]):
        children.setdefault(s["parent"] if s["parent"] in ids else "", []).append(s)
    ordered: list[dict[str, Any]] = []

    def walk(parent: str, depth: int) -> None:
        for s in children.get(parent, []):
            ordered.append(
                {
                    **{k: v for k, v in s.items() if k not in ("start", "end")},
                    "depth": depth,
                    "offset_ms": (s["start"] - t0) / 1e6,
                    "duration_ms": (s["end"] - s["start"]) / 1e6,
                }
            )
            if depth < 64:
                walk(s["id"], depth + 1)

    walk("", 0)
    return {"spans": ordered, "duration_ms": (t1 - t0) / 1e6, "logs": body.get("logs", [])}


def search_tags(cluster: str, status: str, tags: str) -> str:
    """The ``tags`` logfmt of a trace search from the page's fields."""
    parts = [tags.strip()] if tags.strip() else []
    if cluster:
        parts.append(f"cluster={quote(cluster)}")
    if status:
        parts.append(f"status.code={status}")
    return " ".join(parts)
