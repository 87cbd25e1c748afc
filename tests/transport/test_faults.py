"""The FaultInjector on loop pairs: split, corrupt, drop, delay (virtual clock) and cut."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.errors import TransportClosed
from firmware_bridge.transports import FaultInjector, LoopRegistry, LoopTransport, loop_pair

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
MESSAGE = bytes(range(32, 32 + 40))


@pytest.fixture
def clock() -> VirtualClock:
    """A manual virtual clock."""
    return VirtualClock(T0)


async def read_available(end: LoopTransport, clock: VirtualClock) -> list[bytes]:
    """Read every piece that has been delivered so far (each read returns one piece)."""
    pieces: list[bytes] = []
    while True:
        pending = asyncio.ensure_future(end.read())
        await clock.settle()
        if not pending.done():
            pending.cancel()
            await clock.settle()
            return pieces
        pieces.append(pending.result())


async def test_split_delivers_small_pieces_intact(clock: VirtualClock) -> None:
    """split(3) turns a 10-byte write into pieces of at most 3 bytes that join to the original."""
    fault = FaultInjector().split(3)
    a, b = loop_pair(clock, fault=fault)
    await a.write(b"0123456789")
    pieces = await read_available(b, clock)
    assert [len(p) for p in pieces] == [3, 3, 3, 1]
    assert b"".join(pieces) == b"0123456789"


async def test_split_applies_only_to_its_direction(clock: VirtualClock) -> None:
    """A hook on a->b leaves b->a untouched."""
    a, b = loop_pair(clock, fault=FaultInjector().split(1))
    await b.write(b"reply")
    assert await read_available(a, clock) == [b"reply"]


async def test_corrupt_changes_exactly_the_chosen_positions(clock: VirtualClock) -> None:
    """corrupt(positions=...) changes those bytes (counted from the call) and no others."""
    fault = FaultInjector(seed=3)
    a, b = loop_pair(clock, fault=fault)
    await a.write(b"before")  # counted before the rule, so never corrupted
    assert await b.read() == b"before"
    fault.corrupt(positions=[0, 7, 39])
    await a.write(MESSAGE[:20])
    await a.write(MESSAGE[20:])
    got = b"".join(await read_available(b, clock))
    assert len(got) == len(MESSAGE)
    changed = [i for i, (x, y) in enumerate(zip(got, MESSAGE, strict=True)) if x != y]
    assert changed == [0, 7, 39]


async def test_corrupt_by_probability_is_seeded(clock: VirtualClock) -> None:
    """The same seed corrupts the same bytes; about the chosen share of bytes is hit."""
    data = bytes(1000)
    outputs: list[bytes] = []
    for _ in range(2):
        a, b = loop_pair(clock, fault=FaultInjector().corrupt(probability=0.25, seed=42))
        await a.write(data)
        outputs.append(await b.read(2000))
    assert outputs[0] == outputs[1]
    hits = sum(1 for x in outputs[0] if x != 0)
    assert 180 <= hits <= 320  # binomial(1000, 0.25): mean 250, sd ~14
    a, b = loop_pair(clock, fault=FaultInjector().corrupt(probability=0.25, seed=43))
    await a.write(data)
    assert await b.read(2000) != outputs[0]


async def test_drop_removes_chosen_bytes(clock: VirtualClock) -> None:
    """drop(positions=...) loses exactly those bytes; the rest arrive in order."""
    a, b = loop_pair(clock, fault=FaultInjector().drop(positions={0, 2, 5}))
    await a.write(b"abcdefgh")
    assert await b.read() == b"bdegh"


async def test_drop_everything_delivers_nothing(clock: VirtualClock) -> None:
    """drop(probability=1.0) loses whole writes: the reader keeps waiting."""
    fault = FaultInjector().drop(probability=1.0)
    a, b = loop_pair(clock, fault=fault)
    await a.write(b"lost")
    assert await read_available(b, clock) == []
    fault.clear()
    await a.write(b"kept")
    assert await b.read() == b"kept"


async def test_delay_waits_on_the_injected_clock(clock: VirtualClock) -> None:
    """delay(2.0): nothing arrives before virtual time advances 2 s, then the bytes arrive."""
    a, b = loop_pair(clock, fault=FaultInjector().delay(2.0))
    pending = asyncio.ensure_future(b.read())
    await a.write(b"late")
    await clock.settle()
    assert not pending.done()
    await clock.advance(1.999)
    assert not pending.done()
    await clock.advance(0.001)
    assert pending.done()
    assert pending.result() == b"late"
    assert clock.monotonic() == pytest.approx(2.0)


async def test_delay_keeps_order_and_counts_from_each_write(clock: VirtualClock) -> None:
    """Each write arrives its own delay after it was made, in write order."""
    a, b = loop_pair(clock, fault=FaultInjector().delay(1.0))
    await a.write(b"first")
    await clock.advance(0.5)
    await a.write(b"second")
    await clock.advance(0.5)
    assert await read_available(b, clock) == [b"first"]
    await clock.advance(0.5)
    assert await read_available(b, clock) == [b"second"]


async def test_peer_close_after_delayed_write_delivers_first(clock: VirtualClock) -> None:
    """Bytes in flight when the writer closes still arrive before TransportClosed."""
    a, b = loop_pair(clock, fault=FaultInjector().delay(1.0))
    await a.write(b"in flight")
    await a.close()
    await clock.advance(1.0)
    assert await b.read() == b"in flight"
    with pytest.raises(TransportClosed):
        await b.read()


async def test_cut_breaks_both_ends(clock: VirtualClock) -> None:
    """cut(): pending reads on both ends raise TransportClosed, and so do later writes."""
    fault = FaultInjector()
    a, b = loop_pair(clock, fault=fault)
    read_a = asyncio.ensure_future(a.read())
    read_b = asyncio.ensure_future(b.read())
    await clock.settle()
    fault.cut()
    await clock.settle()
    for pending in (read_a, read_b):
        with pytest.raises(TransportClosed, match="cut"):
            pending.result()
    for end in (a, b):
        assert end.closed
        with pytest.raises(TransportClosed, match="cut"):
            await end.write(b"x")


async def test_cut_discards_bytes_in_flight(clock: VirtualClock) -> None:
    """Delayed and buffered bytes are lost when the link is cut."""
    fault = FaultInjector()
    a, b = loop_pair(clock, fault=FaultInjector().delay(1.0), fault_back=fault)
    await b.write(b"buffered at a")
    await a.write(b"delayed to b")
    fault.cut()
    await clock.advance(2.0)
    with pytest.raises(TransportClosed):
        await a.read()
    with pytest.raises(TransportClosed):
        await b.read()


async def test_cut_injector_breaks_new_links_until_cleared(clock: VirtualClock) -> None:
    """A cut listener hook refuses each new connection until clear() lets the device back."""
    fault = FaultInjector()
    registry = LoopRegistry(clock)
    listener = registry.listen("rot1", to_client=fault)
    fault.cut()
    client = await registry.connect("rot1")
    with pytest.raises(TransportClosed, match="cut"):
        await client.read()
    fault.clear()
    client = await registry.connect("rot1")
    await listener.accept()  # the cut connection's server end
    server = await listener.accept()
    await server.write(b"back")
    assert await client.read() == b"back"
    await listener.close()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda f: f.split(0), r"split\(n=0\)"),
        (lambda f: f.corrupt(), "exactly one of"),
        (lambda f: f.drop(positions=[1], probability=0.5), "exactly one of"),
        (lambda f: f.drop(positions=[-1]), r"\[-1\].*integers >= 0"),
        (lambda f: f.corrupt(probability=1.5), r"probability=1\.5"),
        (lambda f: f.delay(-1.0), r"delay\(seconds=-1\.0\)"),
    ],
)
def test_bad_fault_settings_are_refused(
    call: Callable[[FaultInjector], object], match: str
) -> None:
    """Each injector method names the bad argument and what is allowed."""
    with pytest.raises(ValueError, match=match):
        call(FaultInjector())
