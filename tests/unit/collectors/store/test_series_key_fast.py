"""The write path's ``fast_series_key`` gives exactly ``series_key``'s bytes and id."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors._core.errors import PermanentError
from collectors.store.metrics_model import fast_series_key, series_key


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param({"job": "api", "tenant": "t1"}, id="plain"),
        pytest.param({"q": 'say "hi"', "b": "back\\slash"}, id="escaped"),
        pytest.param({"nl": "a\nb", "nul": "\x00", "tab": "\t"}, id="control"),
        pytest.param({"u": "ünï ✓ \u2028"}, id="unicode"),
        pytest.param({"empty": "", "__name__": "ignored"}, id="dropped"),
        pytest.param({}, id="none"),
    ],
)
def test_same_as_series_key(labels: dict[str, str]) -> None:
    args = {"shards": 16, "tenant_label": "tenant"}
    assert fast_series_key("m", labels, **args) == series_key("m", labels, **args)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.dictionaries(st.text(min_size=1), st.text(), max_size=5))
def test_same_as_series_key_for_any_text(name: str, labels: dict[str, str]) -> None:
    try:
        expected = series_key(name, labels, shards=7, tenant_label="t")
    except (PermanentError, UnicodeEncodeError) as e:
        with pytest.raises(type(e)):
            fast_series_key(name, labels, shards=7, tenant_label="t")
        return
    assert fast_series_key(name, labels, shards=7, tenant_label="t") == expected
