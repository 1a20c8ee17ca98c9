"""Slot numbers of the idents the owned indexes hold, shared by the indexes of all targets
(``federator.reconcile.owned``: each index keeps its objects in arrays indexed by slot)."""

from __future__ import annotations

Ident = str
"""``kind/namespace/name`` (as ``federator.reconcile.owned`` builds it)."""


class IdentSlots:
    """A slot number per ident that any target's index holds, shared by the indexes of all
    targets. Why: each index keeps its objects in arrays indexed by slot (``OwnedIndex``),
    so an ident is mapped to its place once for all targets, not once per target (a dict
    entry and a record per object were ~0.2 KB, 60,000 objects at the published shape).
    Reference-counted by the targets holding the ident; a freed slot is reused."""

    def __init__(self) -> None:
        self._slot: dict[Ident, int] = {}
        self._idents: list[Ident | None] = []
        self._refs: list[int] = []
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self._slot)

    def __getitem__(self, slot: int) -> Ident | None:
        return self._idents[slot]

    @property
    def size(self) -> int:
        """One more than the highest slot ever given (what the arrays must hold)."""
        return len(self._idents)

    def find(self, ident: Ident) -> int | None:
        return self._slot.get(ident)

    def take(self, ident: Ident) -> int:
        """The slot of ``ident``, now referenced by one more target."""
        slot = self._slot.get(ident)
        if slot is None:
            if self._free:
                slot = self._free.pop()
                self._idents[slot], self._refs[slot] = ident, 0
            else:
                slot = len(self._idents)
                self._idents.append(ident)
                self._refs.append(0)
            self._slot[ident] = slot
        self._refs[slot] += 1
        return slot

    def release(self, slot: int) -> None:
        self._refs[slot] -= 1
        if self._refs[slot] <= 0:
            ident = self._idents[slot]
            if ident is not None:
                del self._slot[ident]
            self._idents[slot] = None
            self._free.append(slot)
