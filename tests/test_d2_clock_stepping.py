"""The manual VirtualClock's stepping (advance/run_until), driven by loop callbacks.

What it must keep from the settle-after-every-wake-up loop it replaced: deadline order,
ties in the order the sleepers went to sleep, a woken task (and everything it sets off)
runs until it blocks before time moves on, and exactly the same interleaving of tasks.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from firmware_bridge.clock import VirtualClock

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

Trace = list[tuple[str, float]]


async def _scenario(clock: VirtualClock, advance: Callable[[float], Awaitable[None]]) -> Trace:
    """Tickers at several periods, a hand-off chain of futures and queues, ties: the trace."""
    trace: Trace = []
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def ticker(name: str, period_s: float) -> None:
        while True:
            await clock.sleep(period_s)
            trace.append((name, clock.monotonic()))
            queue.put_nowait(1)

    async def relay() -> None:
        # Several hops per wake-up: each must finish before time moves on.
        while True:
            await queue.get()
            for hop in range(3):
                await clock.sleep(0)
                trace.append((f"relay{hop}", clock.monotonic()))

    tasks = [
        asyncio.ensure_future(ticker("a", 0.25)),
        asyncio.ensure_future(ticker("b", 0.25)),  # ties with a: a went to sleep first
        asyncio.ensure_future(ticker("c", 0.1)),
        asyncio.ensure_future(ticker("d", 0.7)),
        asyncio.ensure_future(relay()),
    ]
    try:
        for _ in range(5):
            await advance(1.0)
            trace.append(("advance", clock.monotonic()))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return trace


async def test_same_interleaving_as_settling_after_every_wake_up() -> None:
    """The callback stepping runs every task in the very order the settle loop did."""
    stepped = VirtualClock(T0)
    settled = VirtualClock(T0)

    async def by_settling(seconds: float) -> None:
        await settled._run_to_by_settling(settled.monotonic() + seconds)

    fast = await _scenario(stepped, stepped.advance)
    slow = await _scenario(settled, by_settling)
    assert fast == slow
    assert len(fast) > 100
    assert stepped.monotonic() == settled.monotonic() == 5.0


async def test_woken_task_and_its_hand_offs_finish_before_time_moves() -> None:
    """Every hop a wake-up sets off runs at the wake-up's time, before the next sleeper."""
    clock = VirtualClock(T0)
    trace = await _scenario(clock, clock.advance)
    for i, (name, at) in enumerate(trace):
        if name == "relay2":
            # The last hop of a relay runs at the time of the tick that started it.
            tick = next(t for n, t in reversed(trace[:i]) if n in "abcd")
            assert at == tick
    ticks = [t for n, t in trace if n in "abcd"]
    assert ticks == sorted(ticks)
    ties = [n for n, t in trace if n in "ab" and t == pytest.approx(0.25)]
    assert ties == ["a", "b"]


async def test_a_cancelled_advance_leaves_the_clock_usable() -> None:
    """Cancelling a task blocked in advance() stops the stepping; later advances work."""
    clock = VirtualClock(T0)
    woke: list[float] = []

    async def sleeper() -> None:
        while True:
            await clock.sleep(1.0)
            woke.append(clock.monotonic())

    task = asyncio.ensure_future(sleeper())
    stepping = asyncio.ensure_future(clock.advance(100.0))
    await clock.sleep(0)
    stepping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stepping
    stopped_at = clock.monotonic()
    assert stopped_at < 100.0
    # Nothing keeps stepping behind our back.
    for _ in range(20):
        await clock.sleep(0)
    assert clock.monotonic() == stopped_at
    await clock.advance(3.0)
    assert clock.monotonic() == stopped_at + 3.0
    assert woke[-1] == pytest.approx(int(stopped_at + 3.0))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_task_that_never_blocks_does_not_hang_the_clock() -> None:
    """A task yielding forever ends each settling after the round limit; time still moves."""
    clock = VirtualClock(T0)

    async def spinner() -> None:
        while True:
            await clock.sleep(0)  # never blocks, on purpose

    spin = asyncio.ensure_future(spinner())
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(2.0)
        woke.append(clock.monotonic())

    sleep_task = asyncio.ensure_future(sleeper())
    await asyncio.wait_for(clock.advance(3.0), timeout=30.0)
    assert woke == [2.0]
    assert clock.monotonic() == 3.0
    spin.cancel()
    await asyncio.gather(spin, sleep_task, return_exceptions=True)


async def test_sleepers_past_the_target_stay_asleep() -> None:
    """advance() stops at its target: a later deadline is neither woken nor reached."""
    clock = VirtualClock(T0)
    task = asyncio.ensure_future(clock.sleep(1.5))
    await clock.advance(1.0)
    assert not task.done()
    assert clock.next_deadline() == 1.5
    assert clock.pending == 1
    await clock.advance(0.5)
    assert task.done()
    assert clock.pending == 0


async def test_bytes_over_a_real_socket_are_read_before_time_moves() -> None:
    """A write to a local socket wakes its reader (through the selector) at the same virtual
    time: the stepping gives I/O that became ready one more loop pass before moving on."""
    clock = VirtualClock(T0)
    left, right = socket.socketpair()
    reader, reader_end = await asyncio.open_connection(sock=left)
    _unused, writer = await asyncio.open_connection(sock=right)
    got: list[tuple[bytes, float]] = []

    async def talker() -> None:
        for i in range(5):
            await clock.sleep(0.5)
            writer.write(b"%d\n" % i)

    async def listener() -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            got.append((line, clock.monotonic()))

    talk = asyncio.ensure_future(talker())
    listen = asyncio.ensure_future(listener())
    await clock.advance(3.0)
    assert got == [(b"%d\n" % i, 0.5 * (i + 1)) for i in range(5)]
    for end in (writer, reader_end):
        end.close()
        await end.wait_closed()
    await asyncio.gather(talk, listen, return_exceptions=True)


async def test_sleepers_due_at_the_same_instant_wake_in_one_step() -> None:
    """Sleepers with the same deadline wake together, in the order they went to sleep (the
    first, after one yield, sees the second awake); a deadline a nanosecond later wakes in
    a step of its own, after both have settled."""
    clock = VirtualClock(T0)
    trace: list[str] = []

    async def first() -> None:
        await clock.sleep(1.0)
        trace.append("first")
        await clock.sleep(0)
        trace.append("first, after a yield")

    async def second() -> None:
        await clock.sleep(1.0)
        trace.append("second")

    async def later() -> None:
        await clock.sleep(1.0 + 1e-9)
        trace.append("later")

    tasks = [asyncio.ensure_future(f()) for f in (first, second, later)]
    await clock.sleep(0)  # all three asleep
    await clock.advance(2.0)
    assert trace == ["first", "second", "first, after a yield", "later"]
    await asyncio.gather(*tasks)
