"""The command link's exchange race (every rotator and radio request of a track goes through it).

``exchange`` races the reply against a sleep on the injected clock. These tests pin what
any cheaper way of racing must keep: the reply is returned, the caller is not left
cancelled, a cancel from outside still cancels, and a missing reply times out on the clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.errors import TransportClosed, TransportTimeout
from firmware_bridge.link import exchange
from firmware_bridge.transports import ByteTransport, loop_pair

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class LineDecoder:
    """A whole line is the reply."""

    def __init__(self) -> None:
        """Start empty."""
        self._buffer = b""

    def reset(self) -> None:
        """Forget partial input."""
        self._buffer = b""

    def feed(self, data: bytes) -> bytes | None:
        """The line once it is complete."""
        self._buffer += data
        if b"\n" not in self._buffer:
            return None
        return self._buffer.split(b"\n", 1)[0]


async def _echo(device: ByteTransport, clock: VirtualClock, delay_s: float) -> None:
    """Answer every line with ``OK <line>`` after ``delay_s`` of the clock."""
    buffer = b""
    while True:
        buffer += await device.read()
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            await clock.sleep(delay_s)
            await device.write(b"OK " + line + b"\n")


async def test_replies_are_returned_and_leave_no_cancel_behind() -> None:
    """Many exchanges in one task: each returns its reply; the task is never left cancelling."""
    clock = VirtualClock(T0)
    host, device = loop_pair(clock, name="race")
    echo = asyncio.ensure_future(_echo(device, clock, 0.05))

    async def caller() -> list[bytes]:
        replies = []
        for i in range(20):
            reply = await exchange(
                host, b"Q%d\n" % i, decoder=LineDecoder(), clock=clock, timeout_s=1.0
            )
            replies.append(reply)
            current = asyncio.current_task()
            assert current is not None
            assert current.cancelling() == 0
        # A later plain sleep must run its full length (no stray cancel from a wake-up).
        start = clock.monotonic()
        await clock.sleep(2.0)
        replies.append(b"slept %.2f" % (clock.monotonic() - start))
        return replies

    task = asyncio.ensure_future(caller())
    while not task.done():
        await clock.advance(0.01)
    assert task.result() == [b"OK Q%d" % i for i in range(20)] + [b"slept 2.00"]
    echo.cancel()


async def test_a_reply_just_before_the_deadline_wins() -> None:
    """A reply 1 ms before the timeout ends is returned, and the clock ends at the deadline."""
    clock = VirtualClock(T0)
    host, device = loop_pair(clock, name="race")
    echo = asyncio.ensure_future(_echo(device, clock, 0.999))
    task = asyncio.ensure_future(
        exchange(host, b"EDGE\n", decoder=LineDecoder(), clock=clock, timeout_s=1.0)
    )
    await clock.advance(1.0)
    assert task.result() == b"OK EDGE"
    echo.cancel()


async def test_no_reply_times_out_on_the_clock() -> None:
    """Without a reply the exchange raises TransportTimeout exactly at timeout_s."""
    clock = VirtualClock(T0)
    host, _device = loop_pair(clock, name="race")
    task = asyncio.ensure_future(
        exchange(host, b"LOST\n", decoder=LineDecoder(), clock=clock, timeout_s=0.5)
    )
    await clock.advance(0.499)
    assert not task.done()
    await clock.advance(0.001)
    with pytest.raises(TransportTimeout, match=r"nothing complete within 0\.5 s"):
        task.result()


async def test_a_cancel_from_outside_still_cancels() -> None:
    """Cancelling the caller mid-exchange cancels it (not a timeout, not a reply)."""
    clock = VirtualClock(T0)
    host, device = loop_pair(clock, name="race")
    echo = asyncio.ensure_future(_echo(device, clock, 0.3))
    task = asyncio.ensure_future(
        exchange(host, b"SLOW\n", decoder=LineDecoder(), clock=clock, timeout_s=1.0)
    )
    await clock.advance(0.1)
    task.cancel()
    await clock.advance(0.5)
    assert task.cancelled()
    echo.cancel()


async def test_a_cancel_in_the_step_the_reply_lands_still_cancels() -> None:
    """The reply is in and the caller is cancelled from outside before it resumes: the
    outside cancel is not swallowed (nor turned into a timeout) by the exchange."""
    clock = VirtualClock(T0)
    host, device = loop_pair(clock, name="race")
    task = asyncio.ensure_future(
        exchange(host, b"BOTH\n", decoder=LineDecoder(), clock=clock, timeout_s=1.0)
    )
    await clock.settle()
    assert await device.read() == b"BOTH\n"
    await device.write(b"OK BOTH\n")
    # The caller has not run since the reply went out: cancel it before it resumes.
    assert not task.done()
    task.cancel()
    await clock.settle()
    assert task.cancelled()
    outer = asyncio.current_task()
    assert outer is not None
    assert outer.cancelling() == 0


async def test_a_reply_due_with_the_timeout_in_one_loop_turn_wins() -> None:
    """Free-running far ahead of the loop (1e6x: 0.9 s of reply latency and the 1 s timeout
    are both due within microseconds, so they fire in the same turn of the event loop): the
    reply that arrived wins, as it did when the exchange raced two tasks."""
    clock = VirtualClock(T0)
    host, device = loop_pair(clock, name="race")
    echo = asyncio.ensure_future(_echo(device, clock, 0.9))
    clock.start_free_running(1e6)
    try:
        replies = [
            await exchange(host, b"TIE%d\n" % i, decoder=LineDecoder(), clock=clock, timeout_s=1.0)
            for i in range(20)
        ]
    finally:
        clock.stop_free_running()
        echo.cancel()
    assert replies == [b"OK TIE%d" % i for i in range(20)]


@pytest.mark.parametrize("timeout_s", [float("nan"), 0.0, -1.0, float("inf")])
async def test_a_bad_timeout_is_refused_by_name(timeout_s: float) -> None:
    """An exchange with a timeout that is not a finite number > 0 is refused up front with
    an error naming the transport and timeout_s (nothing is written)."""
    clock = VirtualClock(T0)
    host, device = loop_pair(clock, name="race")
    with pytest.raises(ValueError, match=r"loop://race: timeout_s=.*must be a finite number > 0"):
        await exchange(host, b"X\n", decoder=LineDecoder(), clock=clock, timeout_s=timeout_s)
    await host.close()
    with pytest.raises(TransportClosed):
        await device.read()
