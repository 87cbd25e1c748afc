"""Tests of the injectable clock: ordering, cancellation, many sleepers, free-running mode."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from firmware_bridge.clock import Clock, ClockError, Pace, SystemClock, VirtualClock

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def test_both_clocks_satisfy_protocol() -> None:
    """SystemClock and VirtualClock are structural Clocks."""
    assert isinstance(SystemClock(), Clock)
    assert isinstance(VirtualClock(T0), Clock)


def test_naive_start_rejected() -> None:
    """A naive start datetime is refused with a message that says what to do."""
    with pytest.raises(ClockError, match="timezone-aware"):
        VirtualClock(datetime(2026, 1, 1))


def test_system_clock_now_is_aware_utc() -> None:
    """SystemClock.now() carries the UTC timezone."""
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


async def test_virtual_time_stands_still_until_advanced() -> None:
    """Manual virtual time moves only when advanced."""
    clock = VirtualClock(T0)
    assert clock.now() == T0
    assert clock.monotonic() == 0.0
    await clock.advance(90.5)
    assert clock.monotonic() == 90.5
    assert clock.now() == T0 + timedelta(seconds=90.5)


async def test_wakeups_in_deadline_order_and_see_their_deadline() -> None:
    """Sleepers wake in deadline order, each seeing now() equal to its deadline."""
    clock = VirtualClock(T0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [
        asyncio.create_task(sleeper("c", 30)),
        asyncio.create_task(sleeper("a", 10)),
        asyncio.create_task(sleeper("b", 20)),
    ]
    await clock.advance(25)
    assert woke == [("a", 10.0), ("b", 20.0)]
    await clock.advance(10)
    assert woke == [("a", 10.0), ("b", 20.0), ("c", 30.0)]
    await asyncio.gather(*tasks)


async def test_equal_deadlines_wake_in_sleep_order() -> None:
    """Ties wake in the order the sleepers went to sleep."""
    clock = VirtualClock(T0)
    woke: list[int] = []

    async def sleeper(i: int) -> None:
        await clock.sleep(5)
        woke.append(i)

    tasks = [asyncio.create_task(sleeper(i)) for i in range(20)]
    await clock.settle()
    await clock.advance(5)
    assert woke == list(range(20))
    await asyncio.gather(*tasks)


async def test_cancelled_sleeper_never_wakes_and_others_do() -> None:
    """A cancelled sleeper is dropped; the others still wake in order."""
    clock = VirtualClock(T0)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    keep = asyncio.create_task(sleeper("keep", 10))
    drop = asyncio.create_task(sleeper("drop", 5))
    await clock.settle()
    assert clock.pending == 2
    drop.cancel()
    await clock.settle()
    assert clock.pending == 1
    await clock.advance(20)
    assert woke == ["keep"]
    assert drop.cancelled()
    await keep


async def test_periodic_loop_runs_exact_number_of_ticks() -> None:
    """A task that re-sleeps after every wake-up is honoured within one advance()."""
    clock = VirtualClock(T0)
    ticks: list[float] = []

    async def loop() -> None:
        while True:
            await clock.sleep(0.25)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(loop())
    await clock.advance(3600)
    task.cancel()
    assert len(ticks) == 14400
    assert ticks[0] == 0.25
    assert ticks[-1] == pytest.approx(3600.0)


async def test_many_concurrent_sleepers() -> None:
    """Five thousand sleepers with random deadlines all wake, sorted by deadline."""
    import random

    rng = random.Random(7)
    clock = VirtualClock(T0)
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.monotonic())

    delays = [rng.uniform(0.001, 1000.0) for _ in range(5000)]
    tasks = [asyncio.create_task(sleeper(d)) for d in delays]
    await clock.advance(1000.0)
    await asyncio.gather(*tasks)
    assert woke == sorted(delays)


async def test_sleep_until_datetime_and_run_until() -> None:
    """sleep_until wakes at the datetime; run_until accepts datetimes."""
    clock = VirtualClock(T0)
    seen: list[datetime] = []

    async def waiter() -> None:
        await clock.sleep_until(T0 + timedelta(minutes=5))
        seen.append(clock.now())

    task = asyncio.create_task(waiter())
    await clock.run_until(T0 + timedelta(minutes=10))
    await task
    assert seen == [T0 + timedelta(minutes=5)]
    assert clock.now() == T0 + timedelta(minutes=10)


async def test_sleep_until_past_returns_immediately() -> None:
    """sleep_until a past time does not block."""
    clock = VirtualClock(T0)
    await clock.advance(10)
    await asyncio.wait_for(clock.sleep_until(T0), timeout=1)


async def test_time_cannot_run_backwards() -> None:
    """advance() with a negative value and run_until() into the past are refused."""
    clock = VirtualClock(T0)
    await clock.advance(10)
    with pytest.raises(ClockError):
        await clock.advance(-1)
    with pytest.raises(ClockError, match="past"):
        await clock.run_until(T0)


async def test_wall_jump_moves_now_not_monotonic() -> None:
    """jump_wall steps now() like an NTP step while monotonic() stays put."""
    clock = VirtualClock(T0)
    clock.jump_wall(-30)
    assert clock.monotonic() == 0.0
    assert clock.now() == T0 - timedelta(seconds=30)


async def test_free_running_mode_wakes_in_order_at_speed() -> None:
    """At 10000x, a 100 s virtual sleep takes about 10 ms of real time and keeps order."""
    clock = VirtualClock(T0)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    clock.start_free_running(10000.0)
    real = SystemClock()
    started = real.monotonic()
    await asyncio.wait_for(
        asyncio.gather(sleeper("late", 100.0), sleeper("early", 50.0)), timeout=5
    )
    elapsed = real.monotonic() - started
    assert woke == ["early", "late"]
    assert clock.monotonic() >= 100.0
    assert elapsed < 2.0
    clock.stop_free_running()
    frozen = clock.monotonic()
    assert clock.monotonic() == frozen


async def test_manual_driving_refused_while_free_running() -> None:
    """advance() while free-running is a usage error with a clear message."""
    clock = VirtualClock(T0)
    clock.start_free_running(2.0)
    with pytest.raises(ClockError, match="free-running"):
        await clock.advance(1)
    clock.stop_free_running()


async def test_switch_to_free_running_arms_existing_sleepers() -> None:
    """Sleepers already waiting in manual mode wake once the clock free-runs."""
    clock = VirtualClock(T0)
    task = asyncio.create_task(clock.sleep(30))
    await clock.settle()
    clock.start_free_running(100000.0)
    await asyncio.wait_for(task, timeout=5)
    assert clock.monotonic() >= 30.0


async def test_timers_fire_in_deadline_order_with_the_sleepers() -> None:
    """A VirtualClock timer is done exactly when virtual time reaches it, in deadline order
    with the sleepers (ties in creation order); a cancelled one is dropped; NaN is refused."""
    clock = VirtualClock(T0)
    order: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append(name)

    tasks = [asyncio.ensure_future(sleeper("s2", 2.0)), asyncio.ensure_future(sleeper("s1", 1.0))]
    await clock.settle()
    t1 = clock.timer(1.0)
    t15 = clock.timer(1.5)
    dropped = clock.timer(0.5)
    for name, timer in (("t1", t1), ("t1.5", t15), ("dropped", dropped)):
        timer.add_done_callback(lambda f, n=name: order.append(n) if not f.cancelled() else None)
    dropped.cancel()
    await clock.advance(0.999)
    assert order == []
    assert not t1.done()
    await clock.advance(0.001)
    assert order == ["s1", "t1"]
    await clock.advance(1.0)
    assert order == ["s1", "t1", "t1.5", "s2"]
    await asyncio.gather(*tasks)
    with pytest.raises(ClockError, match="NaN"):
        clock.timer(float("nan"))


async def test_timers_fire_free_running_and_on_the_system_clock() -> None:
    """A timer fires on a free-running VirtualClock (100 virtual s at 10,000x) and on the
    SystemClock (a few real milliseconds); cancelling a SystemClock timer drops its handle."""
    clock = VirtualClock(T0)
    clock.start_free_running(10000.0)
    await asyncio.wait_for(clock.timer(100.0), timeout=5)
    assert clock.monotonic() >= 100.0
    clock.stop_free_running()
    real = SystemClock()
    started = real.monotonic()
    await asyncio.wait_for(real.timer(0.005), timeout=5)
    assert real.monotonic() - started >= 0.004
    cancelled = real.timer(0.001)
    cancelled.cancel()
    await asyncio.wait_for(real.timer(0.005), timeout=5)
    assert cancelled.cancelled()


async def test_a_cancelled_timer_wakes_no_manual_sleeper_after_free_running_stops() -> None:
    """A timer cancelled while free-running (a reply beat the timeout) leaves no loop timer
    behind that wakes a manual-mode sleeper before its deadline once free-running stops."""
    clock = VirtualClock(T0)
    clock.start_free_running(10.0)
    timer = clock.timer(2.0)
    timer.cancel()
    await asyncio.sleep(0)
    clock.next_deadline()  # drops the cancelled entry from the heap, as any wake-up does
    clock.stop_free_running()
    sleeper = asyncio.ensure_future(clock.sleep(1.5))
    # Real time: the old 2 s virtual timer at 10x would have fired after 0.2 s.
    await SystemClock().timer(0.3)
    done = sleeper.done()
    sleeper.cancel()
    assert not done, "a manual sleeper woke while virtual time stood still"


async def test_a_cancelled_timer_leaves_no_loop_timer_while_free_running() -> None:
    """Cancelling a free-running timer drops its loop timer (as SystemClock.timer does)."""
    clock = VirtualClock(T0)
    clock.start_free_running(1.0)
    loop = asyncio.get_running_loop()
    before = _live_loop_timers(loop)
    await _cancel_and_settle([clock.timer(60.0) for _ in range(100)])
    live = _live_loop_timers(loop)
    clock.stop_free_running()
    assert live <= before, f"{live - before} loop timers outlive cancelled clock timers"


def _live_loop_timers(loop: asyncio.AbstractEventLoop) -> int:
    """Loop timers scheduled and not cancelled (asyncio has no public count)."""
    return sum(not h.cancelled() for h in loop._scheduled)  # type: ignore[attr-defined]


async def _cancel_and_settle(timers: list[asyncio.Future[None]]) -> None:
    """Cancel every timer and let their done-callbacks run."""
    for t in timers:
        t.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_timer_made_before_free_running_leaves_no_loop_timer_once_cancelled() -> None:
    """A timer made on the manual clock (which hooks nothing on it) and armed when
    free-running starts drops its loop timer when cancelled; on the manual clock a cancel
    schedules nothing at all."""
    clock = VirtualClock(T0)
    loop = asyncio.get_running_loop()
    ready = loop._ready  # type: ignore[attr-defined]
    quiet = clock.timer(60.0)
    queued = len(ready)
    quiet.cancel()
    assert len(ready) == queued, "a manual-mode cancel scheduled a callback"
    before = _live_loop_timers(loop)
    timers = [clock.timer(60.0) for _ in range(50)]
    clock.start_free_running(1.0)
    armed = _live_loop_timers(loop)
    await _cancel_and_settle(timers)
    live = _live_loop_timers(loop)
    clock.stop_free_running()
    assert armed >= before + 50
    assert live <= before, f"{live - before} loop timers outlive cancelled clock timers"


async def test_free_running_lag_counts_wake_ups_the_loop_delivered_late() -> None:
    """At 10x an idle loop wakes a sleeper on time; at 1000x a loop blocked for 30 ms of
    real time wakes a 1 s (virtual) sleeper at least 25 s late, and the clock's lag says so
    (each start of free-running starts a new measurement)."""
    clock = VirtualClock(T0)
    clock.start_free_running(10.0)
    await clock.sleep(0.5)  # 50 ms real; late would take 100 ms more
    on_time = clock.lag
    assert (on_time.wakeups, on_time.late) == (1, 0)
    clock.start_free_running(1000.0)
    assert clock.lag.wakeups == 0
    real = SystemClock()
    sleeper = asyncio.ensure_future(clock.sleep(1.0))
    await clock.sleep(0)  # the sleeper is asleep, its deadline 1 s (1 ms real) away
    start = real.monotonic()
    while real.monotonic() - start < 0.03:
        pass  # the loop is busy: no callback runs, as on a machine that cannot keep up
    await sleeper
    lag = clock.lag
    assert (lag.wakeups, lag.late) == (1, 1)
    assert lag.late_max_s >= 25.0
    assert lag.late_fraction == 1.0
    clock.stop_free_running()


async def test_compute_runs_inline_when_stepped_and_off_the_loop_otherwise() -> None:
    """compute() runs its work in the loop's own thread on a stepped clock (deterministic),
    and in a worker thread on a free-running and on the system clock."""
    clock = VirtualClock(T0)
    here = threading.get_ident()
    assert await clock.compute(threading.get_ident) == here
    clock.start_free_running(100.0)
    assert await clock.compute(threading.get_ident) != here
    clock.stop_free_running()
    assert await SystemClock().compute(threading.get_ident) != here


async def test_free_running_compute_leaves_the_loop_running() -> None:
    """While a free-running clock's compute() works, other tasks keep waking: the work
    below can only end after a sleeper on the loop woke and said so."""
    clock = VirtualClock(T0)
    clock.start_free_running(1000.0)
    woke = threading.Event()

    async def other() -> None:
        await clock.sleep(1.0)  # 1 ms of real time
        woke.set()

    task = asyncio.ensure_future(other())
    # A blocking wait stands for CPU work; inline it would hang the loop (10 s timeout).
    assert await clock.compute(woke.wait, 10.0) is True
    await task
    clock.stop_free_running()


async def test_paced_stepping_never_runs_ahead_of_the_speed_and_wakes_on_time() -> None:
    """Paced at 200x, a 1 s periodic loop wakes at exactly each of its deadlines, and
    virtual time never gets ahead of 200 x the real time elapsed."""
    clock = VirtualClock(T0)
    real = SystemClock()
    pace = Pace(200.0)
    seen: list[float] = []
    ahead: list[float] = []
    start = real.monotonic()

    async def loop() -> None:
        for k in range(1, 41):
            await clock.sleep(1.0)
            seen.append(clock.monotonic() - k)
            ahead.append(clock.monotonic() - 200.0 * (real.monotonic() - start))

    pacer = asyncio.ensure_future(clock.run_paced(200.0, pace=pace))
    await loop()
    pacer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pacer
    assert seen == [0.0] * 40  # each wake-up at its own deadline
    assert max(ahead) <= 1e-6  # never ahead of the pace
    assert 150.0 < pace.achieved <= 200.0 * 1.001
    assert pace.behind == 0


async def test_paced_stepping_on_a_slow_machine_stays_exact_and_forgives_the_shortfall() -> None:
    """At 2000x with 2 ms of real work per 1 s step (about 500x at most), every wake-up is
    still at its own deadline; the pace counts the shortfall and the achieved speed shows
    it, and no burst follows (the clock is never more than max_behind_s behind)."""
    clock = VirtualClock(T0)
    real = SystemClock()
    pace = Pace(2000.0)
    late: list[float] = []

    async def busy() -> None:
        for k in range(1, 101):
            await clock.sleep(1.0)
            late.append(clock.monotonic() - k)
            t = real.monotonic()
            while real.monotonic() - t < 0.002:
                pass  # CPU work the machine cannot do at 2000x

    pacer = asyncio.ensure_future(clock.run_paced(2000.0, pace=pace))
    await busy()
    pacer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pacer
    assert late == [0.0] * 100
    assert pace.behind > 0
    assert pace.behind_s > 0.0
    assert pace.achieved < 1000.0
    assert pace.virtual_s == pytest.approx(100.0, abs=1.0)
    # Refused while free-running (the steps would fight the free-running timers).
    clock.start_free_running(10.0)
    with pytest.raises(ClockError, match="free-running"):
        await clock.run_paced(100.0)
    clock.stop_free_running()
