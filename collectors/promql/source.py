"""What the PromQL engine reads: label matchers in, series of (timestamp, value) out.

The engine is pure: it first collects every selector of a query, asks a ``SeriesSource``
for the data they need (the only I/O), then evaluates over the returned arrays. The Redis
store implements ``SeriesSource``; unit tests use an in-memory one.

The HTTP API's listing routes (``/series``, ``/labels``, ``/label/<name>/values``,
``/metadata``) need more: reads bounded by a limit that say whether they were cut. A
``PagedSeriesSource`` offers them as ``Page`` objects, so a store with millions of series never
materialises them all to answer a listing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from collectors._core.model import MetricMetadata
from collectors.promql.regex import compile_anchored

T = TypeVar("T")


class MatchType(enum.Enum):
    """The four PromQL label matchers."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """``name <op> "value"``. Regexes are fully anchored with RE2's meaning, as in Prometheus
    2.42 (``regex``); one Python cannot express that way raises ``BadQueryError``."""

    name: str
    type: MatchType
    value: str
    dotall: bool = False
    """Prometheus 3: ``.`` also matches a newline (2.42: it does not)."""
    _compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            object.__setattr__(self, "_compiled", compile_anchored(self.value, dotall=self.dotall))

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when the label is absent) satisfies the matcher."""
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._compiled is not None
        found = self._compiled.match(value) is not None
        return found if self.type is MatchType.REGEX else not found


@dataclass(frozen=True, slots=True)
class SeriesData:
    """One series' samples inside a requested window, sorted by time, no duplicates.

    ``labels`` include ``__name__``. Stale markers (Prometheus's special NaN) are kept as
    they were written so the engine can end a series the way Prometheus does.
    """

    labels: Mapping[str, str]
    timestamps_ms: Sequence[int]
    values: Sequence[float]


class SeriesSource(Protocol):
    """Anything that can answer selectors over a time window (the Redis store, a test fake)."""

    async def select(
        self, matchers: Sequence[LabelMatcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        """Series matching all ``matchers`` with their samples in ``[start_ms, end_ms]``."""
        ...

    async def label_names(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        """Sorted label names of series matching any of the matcher sets (all when empty)."""
        ...

    async def label_values(
        self, name: str, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        """Sorted values of label ``name`` among series matching any matcher set."""
        ...


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A bounded read: ``items`` and whether more existed than were returned."""

    items: list[T]
    truncated: bool = False


class PagedSeriesSource(SeriesSource, Protocol):
    """A ``SeriesSource`` that also answers the API's listings with bounded pages.

    ``limit`` bounds the items returned (``None``: the source's own hard bound);
    ``truncated`` says that more matched.
    """

    async def series(
        self,
        matchers: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[dict[str, str]]:
        """Label sets (with ``__name__``) of series matching any matcher set that have
        samples in the window, sorted."""
        ...

    async def label_names_page(
        self,
        matchers: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[str]:
        """Sorted label names of series matching any matcher set (all when empty)."""
        ...

    async def label_values_page(
        self,
        name: str,
        matchers: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[str]:
        """Sorted values of label ``name`` among series matching any matcher set."""
        ...

    async def metadata(
        self, metric: str | None = None, limit: int | None = None
    ) -> Page[MetricMetadata]:
        """One entry per metric family name (only ``metric`` when given), sorted by name."""
        ...
