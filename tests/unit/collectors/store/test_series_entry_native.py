"""The native series identity against Python's: the same id, shard and entry prefix.

A different id would split one series in two (or merge two), so every case computes both
(``meshfed_native.series_entry`` and ``fast_series_key`` + ``SampleWriter._prefix``) and
compares them; labels that JSON escapes or that Python refuses must come back ``None`` so
that Python decides. Where a Rust toolchain exists ``make setup`` builds the native module,
so its absence there is a failure, not a skip.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.store import metrics_write
from collectors.store.config import ChunkSettings, LimitSettings
from collectors.store.metrics_model import fast_series_key
from collectors.store.metrics_write import SampleWriter
from tests.helpers.native import require_native

SHARDS = 64
TENANT = "cluster"


@pytest.fixture(autouse=True)
def _native_installed() -> None:
    require_native(
        metrics_write._native_entry is not None,
        what="series_entry",
        fallback="the Python series identity",
    )


def _python(name: str, labels: dict[str, str]) -> tuple[str, int, bytes]:
    writer = SampleWriter(redis=None, chunks=ChunkSettings(shards=SHARDS), limits=LimitSettings())  # type: ignore[arg-type]
    key = fast_series_key(name, labels, shards=SHARDS, tenant_label=TENANT)
    return key.series_id, key.shard, writer._prefix(key)


def _native(name: Any, labels: dict[Any, Any]) -> tuple[str, int, bytes] | None:
    assert metrics_write._native_entry is not None
    return metrics_write._native_entry(name, labels, SHARDS, TENANT)


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        pytest.param("up", {}, id="name-only"),
        pytest.param("up", {"job": "a", "instance": "h:9100", "cluster": "c1"}, id="unsorted"),
        pytest.param("up", {"job": "a", "env": ""}, id="empty-value-dropped"),
        pytest.param("up", {"__name__": "other", "job": "a"}, id="name-label-ignored"),
        pytest.param("métrique", {"région": "zürich", "emoji": "🙂"}, id="unicode"),
        pytest.param("up", {"Z": "1", "a": "2", "_": "3"}, id="byte-order"),
        pytest.param("up", {"job": "a\x7f"}, id="delete-is-not-escaped"),
    ],
)
def test_same_identity_as_python(name: str, labels: dict[str, str]) -> None:
    assert _native(name, labels) == _python(name, labels)


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        pytest.param("up", {"job": 'a"b'}, id="quote"),
        pytest.param("up", {"job": "a\\b"}, id="backslash"),
        pytest.param("up", {"job": "a\nb"}, id="newline"),
        pytest.param("up", {"jo\x01b": "a"}, id="control-in-name"),
        pytest.param("", {"job": "a"}, id="no-name"),
        pytest.param("up", {"": "a"}, id="empty-label-name"),
        pytest.param("up", {"a\x00b": "a"}, id="nul-in-label-name"),
        pytest.param("up", {"job": "\ud800"}, id="lone-surrogate"),
        pytest.param(b"up", {"job": "a"}, id="bytes-name"),
        pytest.param("up", {"job": 1}, id="not-a-str"),
    ],
)
def test_python_decides_the_rest(name: Any, labels: dict[Any, Any]) -> None:
    assert _native(name, labels) is None


def test_zero_shards_is_refused() -> None:
    assert metrics_write._native_entry is not None
    with pytest.raises(ValueError, match="shards"):
        metrics_write._native_entry("up", {}, 0, TENANT)


_TEXT = st.text(st.characters(exclude_characters='"\\', min_codepoint=0x20, max_codepoint=0x2FFF))


@settings(max_examples=300, deadline=None)
@given(name=_TEXT.filter(bool), labels=st.dictionaries(_TEXT.filter(bool), _TEXT, max_size=8))
def test_same_identity_for_any_plain_labels(name: str, labels: dict[str, str]) -> None:
    assert _native(name, labels) == _python(name, labels)
