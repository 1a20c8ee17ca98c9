from __future__ import annotations

import pytest

from collectors._core.errors import ConfigError, PermanentError
from collectors._core.log_batch import LogBatch
from collectors._core.model import LogRecord, Sample, Span, SpanId, TraceId
from collectors.pipeline.normalize import (
    ResourceSettings,
    add_to_log_batch,
    add_to_samples,
    add_to_spans,
    check_samples,
)

EXTRA = ResourceSettings(cluster="c1", region="r1", static_labels={"env": "prod"}).labels()


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({}, {"cluster": "c1", "region": "r1", "env": "prod"}, id="all-added"),
        pytest.param(
            {"cluster": "mine"},
            {"cluster": "mine", "region": "r1", "env": "prod"},
            id="sender-cluster-kept",
        ),
        pytest.param(
            {"cluster": ""},
            {"cluster": "c1", "region": "r1", "env": "prod"},
            id="empty-value-counts-as-absent",
        ),
        pytest.param(
            {"job": "x", "env": "dev"},
            {"job": "x", "env": "dev", "cluster": "c1", "region": "r1"},
            id="static-label-not-overridden",
        ),
    ],
)
def test_sample_labels(labels: dict[str, str], expected: dict[str, str]) -> None:
    [out] = add_to_samples([Sample("up", labels, 1, 1.0)], EXTRA)
    assert dict(out.labels) == expected


def test_samples_unchanged_without_resource() -> None:
    s = Sample("up", {"a": "b"}, 1, 1.0)
    assert add_to_samples([s], ResourceSettings().labels()) == [s]


def test_samples_sharing_labels_share_the_merged_labels() -> None:
    labels = {"job": "x"}
    out = add_to_samples([Sample("up", labels, 1, 1.0), Sample("up", labels, 2, 2.0)], EXTRA)
    assert out[0].labels is out[1].labels
    assert labels == {"job": "x"}  # the input is not modified


def test_span_and_log_resource() -> None:
    span = Span(TraceId("0" * 32), SpanId("1" * 16), "op", 1, 2, resource={"cluster": "own"})
    [out_span] = add_to_spans([span], EXTRA)
    assert out_span.resource == {"cluster": "own", "region": "r1", "env": "prod"}
    [out_log] = add_to_log_batch(LogBatch.of([LogRecord(1, "hello")]), EXTRA)
    assert out_log.resource == {"cluster": "c1", "region": "r1", "env": "prod"}


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(ResourceSettings(static_labels={"1x": "v"}), id="bad-label-name"),
        pytest.param(ResourceSettings(static_labels={"__x": "v"}), id="reserved-label"),
        pytest.param(
            ResourceSettings(cluster="c", static_labels={"cluster": "d"}), id="cluster-twice"
        ),
    ],
)
def test_resource_validation(settings: ResourceSettings) -> None:
    with pytest.raises(ConfigError):
        settings.validate()


@pytest.mark.parametrize(
    "sample",
    [
        pytest.param(Sample("", {}, 1, 1.0), id="no-name"),
        pytest.param(Sample("up", {"": "v"}, 1, 1.0), id="empty-label-name"),
        pytest.param(Sample("up", {"a\x00": "v"}, 1, 1.0), id="nul-in-label-name"),
    ],
)
def test_check_samples_refuses(sample: Sample) -> None:
    with pytest.raises(PermanentError):
        check_samples([sample])
