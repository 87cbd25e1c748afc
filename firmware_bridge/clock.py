"""Injectable time: the only module allowed to read the wall clock or to sleep.

Everything in groundlink that waits or reads the time takes a :class:`Clock`.

* :class:`SystemClock` is real time (``datetime.now(UTC)``, ``time.monotonic``,
  ``asyncio.sleep``).
* :class:`VirtualClock` is simulated time. In *manual* mode (the default) time
  stands still until a test calls :meth:`VirtualClock.advance` or
  :meth:`VirtualClock.run_until`; these wake sleepers strictly in deadline order
  (ties in the order they went to sleep, woken in one step, as loop timers due at
  the same instant run in one pass), and every woken sleeper sees ``now()``
  equal to its own deadline. In *free-running* mode
  (:meth:`VirtualClock.start_free_running`) virtual time follows the real
  monotonic clock multiplied by a speed factor, so a daemon can run a whole pass
  at 1000x while still doing real socket and pty I/O.

The monotonic time of a ``VirtualClock`` starts at 0.0 and ``now()`` is always
``start + monotonic()``: the virtual wall clock never jumps unless a test asks
for it with :meth:`VirtualClock.jump_wall`, which (like a real NTP step) moves
``now()`` but not ``monotonic()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar, runtime_checkable

_T = TypeVar("_T")

__all__ = [
    "LATE_S",
    "Clock",
    "ClockError",
    "ClockLag",
    "Pace",
    "SystemClock",
    "VirtualClock",
    "ensure_utc",
]

_SETTLE_ROUNDS = 1000
"""Rounds after which a settling gives up waiting for the loop to go idle (a busy task)."""


class ClockError(ValueError):
    """A clock was used wrongly (naive datetime, time running backwards, ...)."""


def ensure_utc(when: datetime, *, name: str = "datetime") -> datetime:
    """Return ``when`` as an aware UTC datetime; refuse naive datetimes."""
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ClockError(
            f"{name} {when.isoformat()} is naive; pass a timezone-aware UTC datetime "
            "(e.g. datetime(..., tzinfo=UTC))"
        )
    return when.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """What every loop and simulator needs from time."""

    def now(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (for timeouts and rates)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's monotonic time."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Wait until ``now()`` reaches ``when`` (returns at once if already past)."""
        ...

    def timer(self, seconds: float) -> asyncio.Future[None]:
        """A future done after ``seconds`` of this clock's monotonic time; cancel it to
        drop the timer. For timeouts that need no task of their own."""
        ...

    async def compute(self, fn: Callable[..., _T], /, *args: object) -> _T:
        """``fn(*args)``: CPU work of tens of milliseconds or more (a pass's pointing plan,
        a simulated sky) that must not hold up the other loops while time flows."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        """Current UTC time from the operating system."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """The operating system's monotonic clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))

    def timer(self, seconds: float) -> asyncio.Future[None]:
        """A future done after ``seconds`` of real time (a loop timer; cancelling drops it)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(max(0.0, seconds), _finish, future)
        future.add_done_callback(lambda _: handle.cancel())
        return future

    async def compute(self, fn: Callable[..., _T], /, *args: object) -> _T:
        """Run ``fn(*args)`` in a worker thread: a 10 Hz loop of another antenna keeps its
        timing meanwhile (the thread hands the interpreter back every few milliseconds)."""
        return await asyncio.to_thread(fn, *args)

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until the wall clock reaches ``when``.

        Sleeps in slices of at most 1 s so that a wall-clock step (NTP) is noticed
        instead of oversleeping by the size of the step.
        """
        when = ensure_utc(when, name="sleep_until")
        while True:
            remaining = (when - self.now()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 1.0))


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _disarm(sleeper: _Sleeper) -> None:
    if sleeper.handle is not None:
        sleeper.handle.cancel()
        sleeper.handle = None


LATE_S = 1.0
"""Virtual seconds after its deadline from which a free-running wake-up counts as late."""


@dataclass(slots=True)
class ClockLag:
    """Lateness of a free-running VirtualClock's wake-ups (virtual seconds)."""

    wakeups: int = 0
    """Sleepers woken while free-running."""
    late: int = 0
    """Of these, woken more than ``LATE_S`` after their deadline."""
    late_max_s: float = 0.0
    """The latest wake-up, after its deadline."""

    @property
    def late_fraction(self) -> float:
        """The share of wake-ups that were late (0 with none)."""
        return self.late / self.wakeups if self.wakeups else 0.0


@dataclass(slots=True)
class Pace:
    """How a paced run (:meth:`VirtualClock.run_paced`) went."""

    speed: float
    """The speed asked for (virtual seconds per real second, at most)."""
    virtual_s: float = 0.0
    real_s: float = 0.0
    behind: int = 0
    """Times the machine fell more than ``max_behind_s`` behind the pace (then forgiven)."""
    behind_s: float = 0.0
    """Virtual seconds forgiven so: the machine's shortfall against the asked speed."""

    @property
    def achieved(self) -> float:
        """Virtual seconds per real second so far (0 before any real time passed)."""
        return self.virtual_s / self.real_s if self.real_s > 0 else 0.0


@dataclass(slots=True)
class _Sleeper:
    deadline: float
    future: asyncio.Future[None]
    handle: asyncio.TimerHandle | None = None
    timer: bool = False
    """A :meth:`VirtualClock.timer` (nobody awaits it to disarm its loop timer)."""
    disarm_hooked: bool = False
    """True once a timer's done-callback drops its loop timer (armed again, not hooked twice)."""


# Heap entries: (deadline, sequence number, sleeper). Plain tuples because the heap compares
# them on every push and pop, and tuple comparison runs in C; the sequence number keeps
# ties in the order the sleepers went to sleep (and is never equal, so sleepers are never
# compared themselves).
_Entry = tuple[float, int, _Sleeper]


class VirtualClock:
    """Simulated time with deterministic, deadline-ordered wake-ups."""

    def __init__(self, start: datetime) -> None:
        self._start = ensure_utc(start, name="VirtualClock start")
        self._mono = 0.0
        self._wall_offset_s = 0.0
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        # Free-running mode: virtual = _fr_virtual0 + speed * (real - _fr_real0).
        self._speed: float | None = None
        self._lag = ClockLag()
        self._fr_real0 = 0.0
        self._fr_virtual0 = 0.0

    # -- reading -------------------------------------------------------------
    def monotonic(self) -> float:
        """Virtual seconds since the clock was created."""
        if self._speed is not None:
            return self._fr_virtual0 + self._speed * (time.monotonic() - self._fr_real0)
        return self._mono

    def now(self) -> datetime:
        """Virtual UTC time: start + monotonic (+ any wall-clock jump)."""
        return self._start + timedelta(seconds=self.monotonic() + self._wall_offset_s)

    @property
    def speed(self) -> float | None:
        """The free-running speed factor, or None in manual mode."""
        return self._speed

    @property
    def pending(self) -> int:
        """Number of sleepers not yet woken (cancelled ones excluded)."""
        return sum(1 for _, _, s in self._heap if not s.future.done())

    def next_deadline(self) -> float | None:
        """Monotonic deadline of the earliest live sleeper, if any."""
        self._drop_done()
        return self._heap[0][0] if self._heap else None

    # -- sleeping ------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time (0 or less still yields once)."""
        if seconds != seconds:  # NaN would never wake
            raise ClockError("sleep(NaN): the duration must be a number of seconds")
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._sleep_to(self.monotonic() + seconds)

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until the virtual ``now()`` reaches ``when``."""
        when = ensure_utc(when, name="sleep_until")
        await self.sleep((when - self.now()).total_seconds())

    def timer(self, seconds: float) -> asyncio.Future[None]:
        """A future done when virtual time reaches ``seconds`` from now, woken in deadline
        order with the sleepers; cancelling it drops it."""
        if seconds != seconds:
            raise ClockError("timer(NaN): the duration must be a number of seconds")
        loop = asyncio.get_running_loop()
        sleeper = _Sleeper(self.monotonic() + max(0.0, seconds), loop.create_future(), timer=True)
        heapq.heappush(self._heap, (sleeper.deadline, next(self._seq), sleeper))
        if self._speed is not None:
            self._arm(sleeper, loop)
        return sleeper.future

    async def compute(self, fn: Callable[..., _T], /, *args: object) -> _T:
        """Run ``fn(*args)``: inline when stepped (virtual time stands still meanwhile, and
        a thread would finish at a step that depends on the machine), in a worker thread
        when free-running (at 150x, 0.1 s of work inline is 15 s in which no other loop
        runs; in a thread they get the interpreter back every few milliseconds)."""
        if self._speed is None:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def _sleep_to(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        sleeper = _Sleeper(deadline, loop.create_future())
        heapq.heappush(self._heap, (deadline, next(self._seq), sleeper))
        if self._speed is not None:
            self._arm(sleeper, loop)
        try:
            await sleeper.future
        finally:
            # A cancelled sleeper is dropped lazily from the heap; its timer goes now.
            if sleeper.handle is not None:
                sleeper.handle.cancel()

    # -- manual driving ------------------------------------------------------
    async def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``, waking sleepers in order."""
        if seconds < 0:
            raise ClockError(f"advance({seconds}): time cannot run backwards")
        await self._run_to(self.monotonic() + seconds)

    async def run_until(self, when: datetime | float) -> None:
        """Advance to a UTC datetime or to a monotonic reading, waking sleepers in order.

        Tasks woken on the way run (and may go back to sleep with new deadlines
        that are also honoured) before time moves on.
        """
        if isinstance(when, datetime):
            target = (
                self.monotonic() + (ensure_utc(when, name="run_until") - self.now()).total_seconds()
            )
        else:
            target = float(when)
        if target < self.monotonic():
            raise ClockError(
                f"run_until target is {self.monotonic() - target:.3f} s in the past; "
                "virtual time cannot run backwards"
            )
        await self._run_to(target)

    async def settle(self, max_rounds: int = _SETTLE_ROUNDS) -> None:
        """Let every ready task run until the event loop has nothing ready left.

        Why peek at ``loop._ready``: asyncio offers no public "is idle" query, and
        without it a woken task that hops through several futures would still be
        mid-step when time moves on. Other loops fall back to a fixed number of
        yields.
        """
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        for _ in range(max_rounds):
            await asyncio.sleep(0)
            if ready is not None and len(ready) == 0:
                # One more round: callbacks scheduled by the last step may be queued
                # behind us only after we re-check.
                await asyncio.sleep(0)
                if len(ready) == 0:
                    return
        if ready is None:
            return

    async def _run_to(self, target: float) -> None:
        if self._speed is not None:
            raise ClockError("advance/run_until drive a manual clock; stop free-running first")
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        if ready is None:
            await self._run_to_by_settling(target)
            return
        done: asyncio.Future[None] = loop.create_future()
        _Stepper(self, loop, ready, target, done).schedule()
        await done

    async def _run_to_by_settling(self, target: float) -> None:
        """The stepping of :meth:`_run_to` as a task (loops without a visible ready queue)."""
        await self.settle()
        while self._wake_next(target):
            await self.settle()
        await self.settle()

    def _wake_next(self, target: float) -> bool:
        """Wake the earliest sleepers due by ``target`` (True), or move time to it (False).

        Every live sleeper with exactly the earliest deadline wakes in this one step (in the
        order they went to sleep), as loop timers due at the same instant run in one pass of
        the loop: two antennas' control loops on the same grid then run in one settling, and
        their telemetry leaves in one write, instead of one settling each.
        """
        heap = self._heap
        self._drop_done()
        if not heap or heap[0][0] > target:
            self._mono = max(self._mono, target)
            return False
        deadline = heap[0][0]
        self._mono = max(self._mono, deadline)
        while heap and heap[0][0] == deadline:
            sleeper = heapq.heappop(heap)[2]
            if not sleeper.future.done():
                sleeper.future.set_result(None)
        return True

    def _drop_done(self) -> None:
        while self._heap and self._heap[0][2].future.done():
            heapq.heappop(self._heap)

    # -- paced stepping ------------------------------------------------------
    async def run_paced(
        self,
        speed: float,
        *,
        pace: Pace | None = None,
        max_behind_s: float = LATE_S,
        slice_s: float = 0.05,
    ) -> None:
        """Step a manual clock at up to ``speed`` x real time until cancelled.

        Free-running at a speed the machine cannot sustain wakes sleepers late: at 1000x a
        loop busy for 0.1 s is 100 s in which no antenna moves, and the pointing is wrong.
        Paced, every wake-up is a step of the manual clock (each sleeper sees its own
        deadline, in deadline order, as in the tests), and steps wait in real time until
        ``speed`` allows them. A machine that cannot keep up runs as fast as it can; time
        it fell more than ``max_behind_s`` (virtual) behind is forgiven rather than caught
        up in a burst, so the achieved speed is the lower of ``speed`` and the machine's,
        with every figure exact. Between steps the loop runs real I/O (sockets, ptys) for
        up to ``slice_s`` of real time at a time. ``pace`` collects how it went.
        """
        if not speed > 0:
            raise ClockError(f"speed factor must be > 0, got {speed}")
        if self._speed is not None:
            raise ClockError("run_paced drives a manual clock; stop free-running first")
        pace = pace if pace is not None else Pace(speed)
        real0 = last_real = time.monotonic()
        virtual0 = start_v = self._mono
        try:
            while True:
                now_real = time.monotonic()
                pace.real_s += now_real - last_real
                last_real = now_real
                allowed = virtual0 + speed * (now_real - real0)
                due = self.next_deadline()
                if due is not None and due <= allowed:
                    if allowed - due > max_behind_s:
                        # Behind the pace: forgive all but max_behind_s of it (no burst).
                        forgiven = allowed - due - max_behind_s
                        pace.behind += 1
                        pace.behind_s += forgiven
                        virtual0 -= forgiven
                        allowed -= forgiven
                    await self._run_to(allowed)
                else:
                    # Nothing due yet: real I/O has the loop until it is (a slice at most).
                    wait_v = slice_s * speed if due is None else due - allowed
                    await asyncio.sleep(min(wait_v / speed, slice_s))
                pace.virtual_s = self._mono - start_v
        finally:
            pace.virtual_s = self._mono - start_v
            pace.real_s += time.monotonic() - last_real

    # -- wall-clock steps (for clock-jump tests) -----------------------------
    def jump_wall(self, seconds: float) -> None:
        """Step ``now()`` by ``seconds`` without touching ``monotonic()`` (like NTP)."""
        self._wall_offset_s += seconds

    # -- free-running mode ---------------------------------------------------
    def start_free_running(self, speed: float) -> None:
        """Let virtual time flow at ``speed`` x real time (e.g. 1000.0)."""
        if not speed > 0:
            raise ClockError(f"speed factor must be > 0, got {speed}")
        loop = asyncio.get_running_loop()
        current = self.monotonic()
        self._speed = float(speed)
        self._lag = ClockLag()  # measured at this speed from now on
        self._fr_real0 = time.monotonic()
        self._fr_virtual0 = current
        for _, _, sleeper in self._heap:
            if not sleeper.future.done():
                self._arm(sleeper, loop)

    def stop_free_running(self) -> None:
        """Freeze virtual time where it is and return to manual mode."""
        if self._speed is None:
            return
        self._mono = self.monotonic()
        self._speed = None
        for _, _, sleeper in self._heap:
            if sleeper.handle is not None:
                sleeper.handle.cancel()
                sleeper.handle = None

    def _arm(self, sleeper: _Sleeper, loop: asyncio.AbstractEventLoop) -> None:
        assert self._speed is not None
        if sleeper.handle is not None:
            sleeper.handle.cancel()
        real_delay = max(0.0, (sleeper.deadline - self.monotonic()) / self._speed)
        sleeper.handle = loop.call_later(real_delay, self._wake_free_running, sleeper.deadline)
        if sleeper.timer and not sleeper.disarm_hooked:
            # A cancelled timer may leave the heap before stop_free_running looks at it: its
            # loop timer goes with it (as _sleep_to's finally does for a sleeper). Hooked
            # only once armed: on the stepped clock a cancel then schedules no callback
            # (an exchange's timeout is cancelled on every reply).
            sleeper.disarm_hooked = True
            sleeper.future.add_done_callback(lambda _: _disarm(sleeper))

    def _wake_free_running(self, due: float) -> None:
        if self._speed is None:
            return  # a loop timer left from free-running: manual time decides now
        # Wake every sleeper that is due, in deadline order, so that two timers
        # firing in one loop iteration still wake in the right order. The loop may
        # fire a timer up to its clock resolution early, so the timer's own
        # deadline counts as reached.
        now = self.monotonic()
        horizon = max(now, due)
        lag = self._lag
        self._drop_done()
        while self._heap and self._heap[0][0] <= horizon:
            sleeper = heapq.heappop(self._heap)[2]
            if not sleeper.future.done():
                sleeper.future.set_result(None)
                late_s = now - sleeper.deadline
                lag.wakeups += 1
                lag.late_max_s = max(lag.late_max_s, late_s)
                if late_s > LATE_S:
                    lag.late += 1
            self._drop_done()

    @property
    def lag(self) -> ClockLag:
        """How late free-running wake-ups came, in virtual time, since free-running last
        started (a machine that cannot keep up with the speed shows here first: the loops
        wake late, then pointing suffers)."""
        return dataclasses.replace(self._lag)


class _Stepper:
    """Drives one :meth:`VirtualClock._run_to` from plain loop callbacks.

    Same schedule as awaiting :meth:`VirtualClock.settle` after every wake-up (the callback
    is queued exactly where the settling task's step would be, so every task runs in the
    same order), without a task step per round: a callback that re-queues itself until the
    ready queue has been empty on two consecutive rounds (the second lets I/O that became
    ready in the meantime have its turn), then wakes the next sleeper. ``settle``'s round
    limit applies to each settling too.
    """

    __slots__ = ("_clock", "_done", "_finishing", "_loop", "_quiet", "_ready", "_rounds", "_target")

    def __init__(
        self,
        clock: VirtualClock,
        loop: asyncio.AbstractEventLoop,
        ready: Sized,
        target: float,
        done: asyncio.Future[None],
    ) -> None:
        self._clock = clock
        self._loop = loop
        self._ready = ready
        self._target = target
        self._done = done
        self._quiet = 0
        self._rounds = 0
        self._finishing = False

    def schedule(self) -> None:
        """Queue the next round behind everything ready now."""
        self._loop.call_soon(self._round)

    def _round(self) -> None:
        if self._done.done():  # the caller was cancelled
            return
        try:
            self._rounds += 1
            if len(self._ready) == 0:
                self._quiet += 1
            else:
                self._quiet = 0
            if self._quiet < 2 and self._rounds < _SETTLE_ROUNDS:
                self.schedule()
                return
            self._quiet = self._rounds = 0
            if self._finishing:
                self._done.set_result(None)
                return
            if not self._clock._wake_next(self._target):
                # Time is at the target: one last settling, as after every wake-up.
                self._finishing = True
            self.schedule()
        except Exception as exc:
            # Reported to whoever awaits the advance, not lost in the loop's handler.
            self._done.set_exception(exc)
