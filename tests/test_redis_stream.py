"""The stream broker on real Redis: acknowledging deletes, failed tasks come back, stop hands back,
and a live consumer's entries are never taken over while a dead one's are."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from taskiq import BrokerMessage

from adapters.redis_stream import MAX_DELIVERIES, ReliableStreamBroker, StreamTimings
from tests.worker_stack import with_database

pytestmark = pytest.mark.asyncio


def _broker(url: str, stream: str, *, reclaim: float = 1.0) -> ReliableStreamBroker:
    broker = ReliableStreamBroker(url, stream=stream, group="test", timings=StreamTimings(reclaim_seconds=reclaim,
                                                                                          block_seconds=0.1))
    broker.is_worker_process = True
    return broker


def _message(task_id: str) -> BrokerMessage:
    body = json.dumps({"task_id": task_id, "task_name": "t", "labels": {}, "args": [], "kwargs": {}}).encode()
    return BrokerMessage(task_id=task_id, task_name="t", message=body, labels={})


@pytest.fixture
async def stream(services_env):
    url = with_database(services_env["REDIS_URL"], 4)
    name = f"test-stream-{uuid.uuid4().hex[:8]}"
    yield url, name
    cleanup = _broker(url, name)
    await cleanup.redis.delete(name, f"{name}:dead")
    await cleanup.redis.aclose()


async def _next(broker: ReliableStreamBroker, listener, timeout: float = 5.0):
    return await asyncio.wait_for(anext(listener), timeout)


async def test_ack_deletes_entry(stream):
    url, name = stream
    broker = _broker(url, name)
    await broker.startup()
    for n in range(3):
        await broker.kick(_message(f"t{n}"))
    assert await broker.redis.xlen(name) == 3
    listener = broker.listen()
    for n in range(3):
        message = await _next(broker, listener)
        assert json.loads(message.data)["task_id"] == f"t{n}"
        await message.ack()
    assert await broker.redis.xlen(name) == 0
    assert (await broker.redis.xpending(name, "test"))["pending"] == 0
    await listener.aclose()
    await broker.shutdown()


async def test_failed_task_retried_then_dead_lettered(stream):
    url, name = stream
    broker = _broker(url, name, reclaim=0.5)
    await broker.startup()
    await broker.kick(_message("flaky"))
    listener = broker.listen()
    for _ in range(MAX_DELIVERIES):
        message = await _next(broker, listener)
        broker.retry_later("flaky")
        await message.ack()
        assert (await broker.redis.xpending(name, "test"))["pending"] == 1
    # The next claim finds it delivered MAX_DELIVERIES times and moves it aside.
    with pytest.raises(TimeoutError):
        await _next(broker, listener, timeout=2.0)
    assert await broker.redis.xlen(name) == 0
    [(_, dead)] = await broker.redis.xrange(f"{name}:dead")
    assert json.loads(dead[b"data"])["task_id"] == "flaky"
    assert int(dead[b"deliveries"]) == MAX_DELIVERIES + 1
    assert broker.dead_lettered == 1
    await listener.aclose()
    await broker.shutdown()


async def test_stop_hands_entries_back(stream):
    url, name = stream
    first = _broker(url, name, reclaim=60)
    await first.startup()
    await first.kick(_message("long"))
    listener = first.listen()
    await _next(first, listener)
    await listener.aclose()
    await first.shutdown()
    assert first.handed_back == 1

    second = _broker(url, name, reclaim=60)
    await second.startup()
    listener = second.listen()
    message = await _next(second, listener, timeout=2.0)
    assert json.loads(message.data)["task_id"] == "long"
    await message.ack()
    assert await second.redis.xlen(name) == 0
    await listener.aclose()
    await second.shutdown()


async def test_only_dead_consumers_lose_entries(stream):
    url, name = stream
    live, other = _broker(url, name, reclaim=1.0), _broker(url, name, reclaim=1.0)
    await live.startup()
    await other.startup()
    await live.kick(_message("held"))
    live_listener, other_listener = live.listen(), other.listen()
    held = await _next(live, live_listener)

    # Three reclaim times pass with the holder alive: its heartbeat keeps the entry.
    with pytest.raises(TimeoutError):
        await _next(other, other_listener, timeout=3.0)

    # The holder dies without acknowledging (its heartbeat stops): the other consumer takes over.
    # (A timed-out read closed the other's listener; it listens again.)
    live._heartbeat_task.cancel()
    other_listener = other.listen()
    taken = await _next(other, other_listener, timeout=5.0)
    assert taken.data == held.data
    assert other.reclaimed == 1
    await taken.ack()
    assert await other.redis.xlen(name) == 0
    for broker, listener in ((live, live_listener), (other, other_listener)):
        await listener.aclose()
    live._in_flight.clear()
    await live.shutdown()
    await other.shutdown()
