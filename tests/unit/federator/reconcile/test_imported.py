"""The reconciler's record of which services have objects in which target."""

from __future__ import annotations

from federator.core.model import ClusterId, ServiceKey
from federator.reconcile.imported import ImportedIndex

C1, C2, C3 = ClusterId("c1"), ClusterId("c2"), ClusterId("c3")
A, B = ServiceKey("shop", "a"), ServiceKey("shop", "b")


def test_adds_and_discards_per_target_with_counts() -> None:
    index = ImportedIndex((C1, C2, C3))
    index.add(C1, A)
    index.add(C1, A)  # twice: counted once
    index.add(C3, A)
    index.add(C2, B)
    assert (index.count(C1), index.count(C2), index.count(C3)) == (1, 1, 1)
    assert index.holds(C1, A) and index.holds(C3, A) and not index.holds(C2, A)
    assert set(index.keys()) == {A, B}
    assert not index.holds(C1, B)
    index.discard(C1, A)
    index.discard(C1, A)  # twice: no negative count
    index.discard(C2, A)  # never there
    assert (index.count(C1), index.count(C2), index.count(C3)) == (0, 1, 1)
    assert index.anywhere(A)  # still in c3
    index.discard(C3, A)
    assert not index.anywhere(A)
    assert set(index.keys()) == {B}
