"""The native (Rust) split of a remote_write request, when ``meshfed_native`` is installed.

Why: per series, the pure-Python reader pays byte reads, dictionary look-ups and list
appends. ``meshfed_native.parse_remote_write`` splits the whole request in one call with
the GIL released: the distinct raw label blocks, and the samples as flat columns grouped
per block. Python then looks each distinct block up in its cache once (unknown blocks go
through the same validation as before). Bodies outside the common layout (histograms,
exemplars, long labels, truncation...) give ``None`` and the pure-Python path decodes them,
which is also the whole path where the extension is not installed.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

from collectors._core.series_batch import SeriesBatch, SeriesLabels

_Columns = tuple[list[bytes], bytes, bytes, bytes, bytes, int, bool]


def _load() -> Callable[[bytes], _Columns | None] | None:
    try:
        from meshfed_native import parse_remote_write  # noqa: PLC0415 - optional, make setup
    except ImportError:  # no Rust toolchain where this was installed: Python decodes
        return None
    native: Callable[[bytes], _Columns | None] = parse_remote_write
    return native


_parse = _load()
AVAILABLE = _parse is not None


def columns(data: bytes) -> _Columns | None:
    """The native split of ``data``, or ``None`` for the Python path."""
    return None if _parse is None else _parse(data)


def batch(columns: _Columns, labels_of: Callable[[bytes], SeriesLabels]) -> SeriesBatch | None:
    """The ``SeriesBatch`` of ``columns``, or ``None`` for the Python path.

    ``labels_of`` turns a raw label block into validated labels (cached, raising the usual
    errors); it is called once per distinct block in order of first appearance, as the
    Python reader meets them.
    """
    blocks, runs, offsets, timestamps, values, _series, _has_metadata = columns
    by_block = [labels_of(block) for block in blocks]
    refs = [by_block[i] for i in array("q", runs)]
    if len(set(refs)) != len(refs):
        return None  # one label set under two run keys: the Python path orders its samples
    return SeriesBatch(
        refs,
        array("q", offsets).tolist(),
        array("q", timestamps).tolist(),
        array("d", values).tolist(),
    )
