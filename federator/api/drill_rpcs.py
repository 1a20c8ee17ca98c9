"""The drill RPCs of ``meshfed.v1.FederationService``: ListDrills and WatchDrills.

A mixin of ``federator.api.server.FederationServicer`` (kept apart so the server module stays
about the status model): drills are read from the home cluster through
``federator.api.drill_source`` on every call, FAILED_PRECONDITION without a home cluster,
UNAVAILABLE when it cannot be listed. A WatchDrills stream counts against the same limit as
WatchEvents streams and ends when the server shuts down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from grpclib.const import Status

from federator.api import convert
from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api.drill_source import DrillChange, DrillSource
from federator.api.grpc_host import Call, abort
from federator.errors import FederatorError
from federator.lifecycle import cancel_and_wait


class _Limits(Protocol):
    @property
    def max_streams(self) -> int: ...


class DrillRpcs:
    """ListDrills and WatchDrills over ``_drills``; the servicer provides the attributes."""

    _drills: DrillSource | None
    _settings: _Limits
    _stopping: asyncio.Event
    open_streams: int

    async def _drill_source(self, context: Call) -> DrillSource:
        if self._drills is None or self._drills.client() is None:
            abort(
                Status.FAILED_PRECONDITION,
                "this federator has no home cluster, where Drill objects live "
                "(start it with --home-kubeconfig or in-cluster)",
            )
        return self._drills

    async def ListDrills(  # noqa: N802
        self, request: pb.ListDrillsRequest, context: Call
    ) -> pb.ListDrillsResponse:
        source = await self._drill_source(context)
        try:
            drills = await source.list(request.namespace)
        except FederatorError as exc:
            abort(Status.UNAVAILABLE, f"cannot list drills: {exc}")
        return pb.ListDrillsResponse(drills=[convert.drill_to_pb(d) for d in drills])

    async def WatchDrills(  # noqa: N802
        self, request: pb.WatchDrillsRequest, context: Call
    ) -> AsyncIterator[pb.DrillEvent]:
        source = await self._drill_source(context)
        if self.open_streams >= self._settings.max_streams:
            abort(
                Status.RESOURCE_EXHAUSTED,
                f"too many streams (max {self._settings.max_streams})",
            )
        self.open_streams += 1
        changes = source.changes(request.namespace)
        stop = asyncio.ensure_future(self._stopping.wait())
        step: asyncio.Future[DrillChange] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(changes))
                await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    return
                change = step.result()
                yield convert.drill_event_to_pb(change.type, change.obj)
        finally:
            self.open_streams -= 1
            stop.cancel()
            if step is not None and not step.done():
                await cancel_and_wait([step])
            await changes.aclose()
