"""Newly assigned partitions are restored side by side, not one after the other."""

from __future__ import annotations

import asyncio

from streamproc.app import Hooks, StreamprocApp
from streamproc.checkpoints import Offsets, PartitionCheckpoint
from streamproc.events import EventKind
from streamproc.settings import load_settings


class SlowRecovery:
    """Each checkpoint read takes a broker round trip, here: until ``expected`` reads are in
    flight at once (never, if the app reads one partition after the other)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.in_flight = 0
        self.all_in_flight = asyncio.Event()

    async def read_checkpoint(self, partition: int) -> PartitionCheckpoint:
        self.in_flight += 1
        if self.in_flight == self.expected:
            self.all_in_flight.set()
        await self.all_in_flight.wait()
        return PartitionCheckpoint()

    async def bounds(self, partition: int) -> tuple[Offsets, Offsets]:
        return (0, 0), (0, 0)

    async def committed(self, partition: int) -> dict[EventKind, int]:
        return {}


async def test_assigned_partitions_are_restored_side_by_side() -> None:
    recovered = asyncio.Event()
    app = StreamprocApp(load_settings(environ={}), hooks=Hooks(on_recovered=recovered.set))
    app.recovery = SlowRecovery(expected=4)  # type: ignore[assignment]

    await asyncio.wait_for(app._restore_all([0, 1, 2, 3], app._generation), timeout=5)

    assert recovered.is_set()
    assert app.owned == {0, 1, 2, 3}
