"""In-memory loop pairs and the loop registry: round trips, closing, reset, iteration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.errors import TransportClosed, TransportUrlError
from firmware_bridge.transports import LoopRegistry, loop_pair, open_transport

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> VirtualClock:
    """A manual virtual clock."""
    return VirtualClock(T0)


async def test_round_trip_both_directions(clock: VirtualClock) -> None:
    """Bytes written on one end are read, unchanged, on the other, in both directions."""
    a, b = loop_pair(clock)
    await a.write(b"P 180.0 45.0\n")
    assert await b.read() == b"P 180.0 45.0\n"
    await b.write(b"RPRT 0\n")
    assert await a.read() == b"RPRT 0\n"


async def test_read_waits_for_data(clock: VirtualClock) -> None:
    """A read on an empty pipe waits until the peer writes."""
    a, b = loop_pair(clock)
    pending = asyncio.ensure_future(b.read())
    await clock.settle()
    assert not pending.done()
    await a.write(b"x")
    await clock.settle()
    assert pending.result() == b"x"


async def test_read_respects_max_bytes(clock: VirtualClock) -> None:
    """A read returns at most max_bytes; the rest stays for the next read."""
    a, b = loop_pair(clock)
    await a.write(b"abcdef")
    assert await b.read(4) == b"abcd"
    assert await b.read(4) == b"ef"
    with pytest.raises(ValueError, match="max_bytes"):
        await b.read(0)


async def test_peer_close_delivers_buffered_then_raises(clock: VirtualClock) -> None:
    """After the peer closes, bytes it sent are still read, then TransportClosed, never b''."""
    a, b = loop_pair(clock)
    await a.write(b"last words")
    await a.close()
    assert await b.read() == b"last words"
    with pytest.raises(TransportClosed, match="peer closed"):
        await b.read()
    with pytest.raises(TransportClosed):
        await b.write(b"anyone?")
    assert b.closed


async def test_close_is_idempotent_and_fails_pending_read(clock: VirtualClock) -> None:
    """Closing an end makes its own pending read raise; closing twice is harmless."""
    a, b = loop_pair(clock)
    pending = asyncio.ensure_future(a.read())
    await clock.settle()
    await a.close()
    await a.close()
    await clock.settle()
    with pytest.raises(TransportClosed, match="closed locally"):
        pending.result()
    with pytest.raises(TransportClosed):
        await a.write(b"x")
    assert a.closed
    await b.close()


async def test_reset_input_drops_unread_bytes(clock: VirtualClock) -> None:
    """reset_input() discards delivered bytes, reports how many, and later bytes still arrive."""
    a, b = loop_pair(clock)
    await a.write(b"stale1")
    await a.write(b"stale22")
    assert await b.reset_input() == 13
    await a.write(b"fresh")
    assert await b.read() == b"fresh"


async def test_context_manager_closes_and_refuses_reentry(clock: VirtualClock) -> None:
    """async with closes the end on exit; entering twice or entering a closed end is refused."""
    a, b = loop_pair(clock)
    async with a as entered:
        assert entered is a
        with pytest.raises(RuntimeError, match="already inside"):
            await a.__aenter__()
    assert a.closed
    with pytest.raises(TransportClosed, match="closed transport"):
        await a.__aenter__()
    await b.close()


async def test_async_for_raises_when_link_lost(clock: VirtualClock) -> None:
    """Iterating an end yields chunks, and the peer hanging up raises inside the loop."""
    a, b = loop_pair(clock)
    await a.write(b"one")
    await a.write(b"two")
    await a.close()
    got: list[bytes] = []

    async def collect() -> None:
        async for chunk in b:
            got.append(chunk)

    with pytest.raises(TransportClosed):
        await collect()
    assert got == [b"one", b"two"]


async def test_two_concurrent_readers_is_an_error(clock: VirtualClock) -> None:
    """A second task reading the same end while one waits gets a clear error."""
    a, b = loop_pair(clock)
    first = asyncio.ensure_future(b.read())
    await clock.settle()
    with pytest.raises(RuntimeError, match="already waiting"):
        await b.read()
    await a.write(b"z")
    assert await first == b"z"


async def test_registry_connects_client_to_listener(clock: VirtualClock) -> None:
    """A simulator listening on loop://rot1 accepts a driver that opened that URL."""
    registry = LoopRegistry(clock)
    async with registry.listen("rot1") as listener:
        assert registry.names == ["rot1"]
        client = await open_transport("loop://rot1", clock=clock, loop_registry=registry)
        server = await listener.accept()
        await client.write(b"C2\r")
        assert await server.read() == b"C2\r"
        await server.write(b"+0180+0045\r")
        assert await client.read() == b"+0180+0045\r"
        assert client.url == "loop://rot1"
    assert registry.names == []


async def test_registry_refuses_unknown_and_duplicate_names(clock: VirtualClock) -> None:
    """Connecting to a silent name is TransportClosed; listening twice on one name is refused."""
    registry = LoopRegistry(clock)
    listener = registry.listen("rig1")
    with pytest.raises(TransportClosed, match=r"loop://rot9: nothing is listening.*loop://rig1"):
        await open_transport("loop://rot9", clock=clock, loop_registry=registry)
    with pytest.raises(TransportUrlError, match="already listening"):
        registry.listen("rig1")
    await listener.close()
    with pytest.raises(TransportClosed, match="listener is closed"):
        await listener.accept()


async def test_registry_listener_close_closes_unaccepted(clock: VirtualClock) -> None:
    """A connection nobody accepted is closed with the listener, so its client is told."""
    registry = LoopRegistry(clock)
    listener = registry.listen("rot2")
    client = await registry.connect("rot2")
    await listener.close()
    with pytest.raises(TransportClosed):
        await client.read()


async def test_loop_url_needs_a_registry(clock: VirtualClock) -> None:
    """open_transport('loop://...') without a registry says what to pass."""
    with pytest.raises(TransportUrlError, match="loop_registry"):
        await open_transport("loop://rot1", clock=clock)
