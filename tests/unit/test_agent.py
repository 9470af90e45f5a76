"""The agent yields to the event loop after each batch, so the producer's sender sends a
batch's alerts while later batches wait, even when batches queue up (a worker behind)."""

from __future__ import annotations

import asyncio

from tests.unit.test_batches import fetched, started_app


async def test_other_tasks_run_between_two_queued_batches() -> None:
    app, consumer = await started_app()
    app.ledger.owned.add(0)
    queue = consumer.batches
    await queue.put(fetched(consumer, range(0, 10)))
    await queue.put(fetched(consumer, range(10, 20)))
    seen: list[int] = []

    async def watch() -> None:
        while app.ledger.offsets(0)[0] < 20:
            seen.append(app.ledger.offsets(0)[0])
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    agent = asyncio.create_task(app._agent())
    await asyncio.wait_for(watcher, 5)
    agent.cancel()

    assert 10 in seen, f"no turn of the loop between the two batches: {sorted(set(seen))}"
