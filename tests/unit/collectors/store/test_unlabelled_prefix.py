"""``unlabelled`` and ``relabel``: entries that leave the labels out, and putting them back.

An entry without labels must keep its id, tenant and records; ``relabel`` must give back
exactly the bytes the labelled entry had, entry by entry, whatever mix of the two a write
argument holds.
"""

from __future__ import annotations

import struct

import pytest

from collectors.store.metrics_pack import relabel, unlabelled


def _prefix(sid: str, tenant: str, labels: str) -> bytes:
    s, t, lab = sid.encode(), tenant.encode(), labels.encode()
    return (
        struct.pack(">H", len(s))
        + s
        + struct.pack(">I", len(t))
        + t
        + struct.pack(">I", len(lab))
        + lab
    )


def _records(n: int) -> bytes:
    return struct.pack(">I", 16 * n) + b"".join(
        struct.pack(">qd", 1000 + i, float(i)) for i in range(n)
    )


SERIES = {
    "a1": _prefix("a1", "c1", '[["__name__","up"],["job","a"]]'),
    "b22": _prefix("b22", "", '[["__name__","up"],["job","é"]]'),
    "c333": _prefix("c333", "tenant-3", "[]"),
}


def test_unlabelled_keeps_id_and_tenant_and_has_no_labels() -> None:
    short = unlabelled(SERIES["a1"])
    assert short == struct.pack(">H", 2) + b"a1" + struct.pack(">I", 2) + b"c1" + b"\0\0\0\0"


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param([("a1", True, 1)], id="one-without-labels"),
        pytest.param([("a1", False, 2)], id="one-with-labels-unchanged"),
        pytest.param([("a1", True, 1), ("b22", False, 3), ("c333", True, 0)], id="mixed"),
        pytest.param([], id="empty"),
    ],
)
def test_relabel_gives_back_the_labelled_bytes(plan: list[tuple[str, bool, int]]) -> None:
    sent = b"".join(
        (unlabelled(SERIES[s]) if short else SERIES[s]) + _records(n) for s, short, n in plan
    )
    want = b"".join(SERIES[s] + _records(n) for s, _, n in plan)
    assert relabel(sent, SERIES) == want


def test_relabel_of_an_unknown_series_raises_key_error() -> None:
    with pytest.raises(KeyError):
        relabel(unlabelled(_prefix("zz", "", "[]")) + _records(1), SERIES)
