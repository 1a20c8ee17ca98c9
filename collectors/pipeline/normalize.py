"""Resource labels: every record leaves the pipeline knowing its cluster and region.

Pure functions. A sender's own labels win (``unless present``): a Prometheus that already
sets ``cluster`` keeps it, and records without one get the collector's. Empty configured
values are not added, so a collector without a cluster name adds nothing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from collectors._core.errors import ConfigError, PermanentError
from collectors._core.log_batch import LogBatch
from collectors._core.model import CLUSTER_LABEL, REGION_LABEL, LogRecord, Sample, Span
from collectors._core.series_batch import SeriesBatch, SeriesLabels, derived_per_series

R = TypeVar("R", Span, LogRecord)
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
SERIES_CACHE_MAX = 200_000
"""Series whose normalized labels a ``SeriesNormalizer`` remembers; cleared when full."""


@dataclass(frozen=True, slots=True)
class ResourceSettings:
    """Labels this collector adds to every sample, span resource and log resource."""

    cluster: str = ""
    """The cluster the telemetry comes from (label ``cluster``); empty: not added."""
    region: str = ""
    """The region (label ``region``); empty: not added."""
    static_labels: Mapping[str, str] = field(default_factory=dict)
    """More labels added the same way (e.g. ``env: prod``)."""

    def labels(self) -> dict[str, str]:
        """The labels to add, static first so that ``cluster``/``region`` win over them."""
        out = {k: v for k, v in self.static_labels.items() if v}
        if self.cluster:
            out[CLUSTER_LABEL] = self.cluster
        if self.region:
            out[REGION_LABEL] = self.region
        return out

    def validate(self) -> None:
        for key, value in self.static_labels.items():
            if not _LABEL_NAME.fullmatch(key):
                raise ConfigError(
                    f"resource.static_labels: {key!r} is not a valid label name"
                    " ([a-zA-Z_][a-zA-Z0-9_]*); rename it"
                )
            if key.startswith("__"):
                raise ConfigError(
                    f"resource.static_labels: {key!r} starts with '__' (reserved); rename it"
                )
            if not isinstance(value, str):
                raise ConfigError(f"resource.static_labels.{key} must be a string")
        if self.cluster and self.static_labels.get(CLUSTER_LABEL):
            raise ConfigError("set the cluster in resource.cluster, not resource.static_labels")
        if self.region and self.static_labels.get(REGION_LABEL):
            raise ConfigError("set the region in resource.region, not resource.static_labels")


def add_to_samples(samples: Sequence[Sample], extra: Mapping[str, str]) -> list[Sample]:
    """``samples`` with each ``extra`` label a sample does not already carry."""
    if not extra:
        return list(samples)
    out: list[Sample] = []
    cache: dict[int, Mapping[str, str]] = {}  # samples of one series share their labels object
    for s in samples:
        labels = cache.get(id(s.labels))
        if labels is None:
            labels = _merged(s.labels, extra)
            cache[id(s.labels)] = labels
        out.append(s if labels is s.labels else Sample(s.name, labels, s.timestamp_ms, s.value))
    return out


def _merged(labels: Mapping[str, str], extra: Mapping[str, str]) -> Mapping[str, str]:
    missing = {k: v for k, v in extra.items() if not labels.get(k)}
    if not missing:
        return labels
    return {**labels, **missing}


class SeriesNormalizer:
    """Checks and relabels ``SeriesBatch`` runs once per series object, not per sample.

    Receivers hand the same ``SeriesLabels`` object for a series they saw before, so the
    checked, relabelled result is remembered per object (bounded; cleared when full).
    """

    def __init__(self, *, extra: Mapping[str, str], max_series: int = SERIES_CACHE_MAX) -> None:
        self._extra = dict(extra)
        self._max = max_series
        self._known: dict[SeriesLabels, SeriesLabels] = {}

    def __call__(self, batch: SeriesBatch) -> SeriesBatch:
        """``batch`` with ``extra`` labels added; ``PermanentError`` for an invalid series."""
        series = batch.series
        out = derived_per_series(self._known, series, self._learn)
        if all(map(operator.is_, out, series)):  # a C-level loop, as the look-ups
            return batch
        return batch.with_series(out)

    def _learn(self, ref: SeriesLabels) -> SeriesLabels:
        found = self._normalized(ref)
        if len(self._known) >= self._max:
            self._known.clear()
        self._known[ref] = found
        return found

    def _normalized(self, ref: SeriesLabels) -> SeriesLabels:
        _check(ref.name, ref.labels)
        if not self._extra:
            return ref
        labels = _merged(ref.labels, self._extra)
        return ref if labels is ref.labels else SeriesLabels(ref.name, labels)


def add_to_spans(spans: Sequence[Span], extra: Mapping[str, str]) -> list[Span]:
    """``spans`` whose resource has each ``extra`` attribute it lacked."""
    return _add_resource(spans, extra)


def add_to_log_batch(batch: LogBatch, extra: Mapping[str, str]) -> LogBatch:
    """``batch`` whose parts' resources have each ``extra`` attribute they lacked (merged
    once per distinct resource object, so parts that shared one keep sharing the result)."""
    if not extra:
        return batch
    merge = _ResourceMerger(extra)
    parts = []
    for part in batch.parts:
        resource = merge(part.resource)
        parts.append(part if resource is part.resource else part.with_resource(resource))
    return LogBatch(parts)


def _add_resource(records: Sequence[R], extra: Mapping[str, str]) -> list[R]:
    """Records of one batch usually share one resource object (a Forward message, an OTLP
    ResourceSpans): merge each distinct resource once, so they keep sharing the merged one
    (the log store encodes a shared resource once per stream entry)."""
    if not extra:
        return list(records)
    merge = _ResourceMerger(extra)
    out: list[R] = []
    for record in records:
        resource = merge(record.resource)
        out.append(record if resource is record.resource else replace(record, resource=resource))
    return out


class _ResourceMerger:
    """``resource`` plus each ``extra`` attribute it lacked, computed once per distinct
    resource object of a batch (the same input object always gets the same output object)."""

    def __init__(self, extra: Mapping[str, str]) -> None:
        self._extra = extra
        self._seen: dict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}

    def __call__(self, resource: Mapping[str, Any]) -> Mapping[str, Any]:
        hit = self._seen.get(id(resource))
        if hit is None or hit[0] is not resource:
            missing = {k: v for k, v in self._extra.items() if resource.get(k) in (None, "")}
            hit = (resource, {**resource, **missing} if missing else resource)
            self._seen[id(resource)] = hit
        return hit[1]


def check_samples(samples: Sequence[Sample]) -> None:
    """Refuse (``PermanentError``) what the store would refuse, before batches are merged.

    Checked here so that one caller's bad sample fails that caller only, not every caller
    whose records were coalesced into the same store write.
    """
    seen: set[int] = set()
    for s in samples:
        if not s.name:
            raise PermanentError("a sample needs a metric name")
        if id(s.labels) in seen:
            continue
        seen.add(id(s.labels))
        _check(s.name, s.labels)


def _check(name: str, labels: Mapping[str, str]) -> None:
    if not name:
        raise PermanentError("a sample needs a metric name")
    for key in labels:
        if not key or "\x00" in key:
            raise PermanentError(f"invalid label name {key!r} in metric {name!r}")
