"""The native (Rust) split of a remote_write request, when ``meshfed_native`` is installed.

Why: per series, the pure-Python reader pays byte reads, dictionary look-ups and list
appends. ``meshfed_native.LabelBlocks.split`` splits the whole request in one call with the
GIL released, into the samples as flat columns grouped per label block. The label blocks
Python has validated are cached on the native side with their series objects, so a request
whose series are all known comes back with its series list made. A new block that is
plainly valid (sorted, valid names, UTF-8: what Python accepts without an error) is
validated natively too (``native/src/labels.rs``), its ``SeriesLabels`` made there; only a
request with a block that is not hands Python its distinct raw blocks: those go through
the Python validation, which raises the sender's error, and are then ``learn``-ed. Bodies
outside the common
layout (histograms, exemplars, long labels, truncation...) give ``None`` and the
pure-Python path decodes them, which is also the whole path where the extension is not
installed.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

from collectors._core.series_batch import SeriesBatch, SeriesLabels

Columns = tuple[list[SeriesLabels] | None, list[bytes], bytes, bytes, bytes, bytes, int, bool]
"""(series per run or ``None``, distinct blocks when one is new, run block indexes,
offsets, timestamps, values, series count, has metadata): see ``LabelBlocks.split``."""


def _load() -> Any:
    try:
        from meshfed_native import LabelBlocks  # noqa: PLC0415 - optional, make setup
    except ImportError:  # no Rust toolchain where this was installed: Python decodes
        return None
    return LabelBlocks


_LabelBlocks = _load()
AVAILABLE = _LabelBlocks is not None


def label_blocks(max_cached: int) -> Any:
    """A native cache of at most ``max_cached`` validated blocks; ``None`` without the
    extension, or with ``AVAILABLE`` switched off (tests and benchmarks compare paths)."""
    if not AVAILABLE or _LabelBlocks is None:
        return None
    return _LabelBlocks(max_cached, SeriesLabels)


def columns(data: bytes, blocks: Any) -> Columns | None:
    """The native split of ``data`` against the cache ``blocks``, or ``None`` for Python."""
    split: Columns | None = blocks.split(data)
    return split


def batch(columns: Columns, labels_of: Callable[[bytes], SeriesLabels]) -> SeriesBatch | None:
    """The ``SeriesBatch`` of ``columns``, or ``None`` for the Python path.

    With a new block, ``labels_of`` turns each raw label block into validated labels (from
    the native cache, or validated and then learnt there, raising the usual errors); it is
    called once per distinct block in order of first appearance, as the Python reader meets
    them.
    """
    refs, raw_blocks, runs, offsets, timestamps, values, _series, _has_metadata = columns
    if refs is None:
        by_block = [labels_of(block) for block in raw_blocks]
        refs = [by_block[i] for i in array("q", runs)]
        if len(set(refs)) != len(refs):
            return None  # one label set under two run keys: the Python path orders them
    return SeriesBatch(
        refs,
        array("q", offsets).tolist(),
        array("q", timestamps).tolist(),
        array("d", values).tolist(),
    )
