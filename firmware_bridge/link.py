"""``CommandLink``: one request in flight per device, timeouts, retries, resync and reconnect.

Timeouts and retries live here once, not in each driver (the pymodbus transaction-manager
idea). The link knows no protocol: it moves bytes between a :class:`ByteTransport` and a
:class:`ReplyDecoder` supplied per request.

Request cycle (``request(data, decoder=...)``)::

    take the per-device lock (one request in flight; concurrent callers queue)
    for each attempt (1 + policy.retries):
        reset_input()            stale bytes (a late reply, an unsolicited report) are dropped
        decoder.reset()
        write + drain + read, feeding every chunk to decoder.feed() until it returns a reply,
        all raced against clock.sleep(timeout_s), so a VirtualClock decides when time is up
        timeout  -> count, resync hook, retry
        garbage (decoder raised RemoteProtocolError) -> count, resync hook, retry
        DeviceRejected -> raised at once (the device is alive and said no; retrying won't help)
        TransportClosed -> the link is faulted at once (nothing to retry on)
    all attempts failed -> TransportTimeout / RemoteProtocolError naming the request

The decoder contract (:class:`ReplyDecoder`): ``reset()`` forgets partial input;
``feed(chunk)`` returns the reply once complete, ``None`` while more bytes are needed (or
for bytes that are not this reply, such as a CI-V echo), and raises
``RemoteProtocolError`` for garbage or ``DeviceRejected`` for an error reply.
:class:`EventReplyDecoder` adapts a sans-I/O host decoder (``receive_data()`` /
``next_event()``, ``Garbage`` and ``ErrorReply`` events) to that contract.

Fault handling: after ``policy.fault_after`` consecutive failed requests (or at once when
the transport closes) the link is ``faulted``: requests fail fast with ``DeviceFault`` and a
reconnect task closes the transport and calls ``connect()`` again, waiting a capped,
jittered exponential backoff on the clock between attempts (``random.Random(policy.seed)``,
so a seeded run repeats exactly). An optional ``probe`` checks the device answers before
the link is declared ``ok`` again; then the failure count is reset.

States: ``connecting`` (first connect in progress), ``ok``, ``degraded`` (ok, but a retry
or failure happened within ``policy.degraded_for_s``), ``faulted`` (reconnecting),
``closed``. Counters for health reports: :class:`LinkCounters`.

State listeners (:meth:`CommandLink.add_state_listener`) are called, synchronously and in
the order they were added, after every change of the state or of ``last_error`` that is
not a matter of time passing (``degraded`` fading back to ``ok`` is not announced): so a
supervisor reacts to a fault at once instead of polling. A listener that raises is logged
and does not disturb the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass, fields, replace
from typing import Generic, Literal, ParamSpec, Protocol, Self, TypeVar, overload

from firmware_bridge.clock import Clock
from firmware_bridge.errors import (
    BridgeError,
    DeviceFault,
    DeviceRejected,
    RemoteProtocolError,
    TransportClosed,
    TransportTimeout,
)
from firmware_bridge.protocols.base import NEED_DATA, ErrorReply, Event, Garbage, NeedData
from firmware_bridge.transports.base import ByteTransport

__all__ = [
    "Backoff",
    "CommandLink",
    "ConnectFactory",
    "EventDecoder",
    "EventReplyDecoder",
    "LinkCounters",
    "LinkHealth",
    "LinkPolicy",
    "LinkState",
    "ProbeHook",
    "ReplyDecoder",
    "ResyncHook",
    "StateListener",
    "exchange",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

ConnectFactory = Callable[[], Awaitable[ByteTransport]]
"""Opens a fresh transport to the device (e.g. ``lambda: open_transport(url, clock=c)``)."""

ResyncHook = Callable[[ByteTransport], Awaitable[None]]
"""Called before a retry, after the input was flushed (e.g. write a bare CR to end a line)."""

ProbeHook = Callable[[ByteTransport], Awaitable[object]]
"""Called on a freshly connected transport; raising means the device is not back yet."""

StateListener = Callable[[], None]
"""Called after the link's state or last error changed (see the module docstring)."""

_P = ParamSpec("_P")


class Listeners(Generic[_P]):
    """Callbacks told of a change, in the order they were added (links and drivers)."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._callbacks: list[Callable[_P, None]] = []

    def add(self, callback: Callable[_P, None]) -> None:
        """Call ``callback`` on every change from now on."""
        self._callbacks.append(callback)

    def remove(self, callback: Callable[_P, None]) -> None:
        """Stop calling ``callback``; one that was not added is ignored."""
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def notify(self, *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Call every callback; one that raises is logged, the others still run."""
        # A copy: a callback may remove itself while being called.
        for callback in tuple(self._callbacks):
            try:
                callback(*args, **kwargs)
            except Exception:
                # The owner's own bookkeeping must go on whatever a callback does.
                _log.exception("%s: a state listener failed", self._owner)


class ReplyDecoder(Protocol[T_co]):
    """Turns the bytes of one reply into a value; see the module docstring."""

    def reset(self) -> None:
        """Forget any partial input (called before every attempt)."""
        ...

    def feed(self, data: bytes) -> T_co | None:
        """Take a chunk; return the reply when complete, else None. Raise on garbage/errors."""
        ...


class EventDecoder(Protocol):
    """The host side of a sans-I/O codec, as far as the link needs it."""

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes."""
        ...

    def next_event(self) -> Event | NeedData:
        """Return the next event or NEED_DATA."""
        ...


class EventReplyDecoder(Generic[T]):
    """A :class:`ReplyDecoder` over a sans-I/O event decoder.

    ``Garbage`` events raise RemoteProtocolError, ``ErrorReply`` events raise
    DeviceRejected (with the device's code), and every other event goes to ``match``,
    which returns the reply or None to skip the event (an echo, an unrelated report).
    ``new_decoder`` is called on every ``reset()``, so no state survives a retry.
    """

    def __init__(
        self, new_decoder: Callable[[], EventDecoder], match: Callable[[Event], T | None]
    ) -> None:
        """Create the adapter; its decoder is made when the first bytes come."""
        self._new_decoder = new_decoder
        self._match = match
        # Made on first use, not here: every exchange resets the decoder before it reads,
        # and one made here would be thrown away unused (a codec per exchange, for nothing).
        self._decoder: EventDecoder | None = None

    def reset(self) -> None:
        """Start over with a new decoder."""
        self._decoder = self._new_decoder()

    def feed(self, data: bytes) -> T | None:
        """Feed bytes and return the first matching reply event, if complete."""
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = self._new_decoder()
        decoder.receive_data(data)
        while True:
            event = decoder.next_event()
            if event is NEED_DATA:
                return None
            if isinstance(event, Garbage):
                raise RemoteProtocolError(f"garbage from the device: {event.reason}", event.data)
            if isinstance(event, ErrorReply):
                raise DeviceRejected(f"the device answered with an error: {event.text}", event.code)
            reply = self._match(event)
            if reply is not None:
                return reply


class LinkState(enum.StrEnum):
    """The health of a link."""

    CONNECTING = "connecting"
    OK = "ok"
    DEGRADED = "degraded"
    FAULTED = "faulted"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Timing and fault-handling settings of a link (all times on the injected clock)."""

    timeout_s: float = 1.0
    """Time allowed for one attempt: write, drain and the whole reply."""
    retries: int = 2
    """Extra attempts after the first one."""
    fault_after: int = 3
    """Consecutive failed requests that declare the link faulted."""
    degraded_for_s: float = 30.0
    """How long after a retry or failure the state reads ``degraded``."""
    min_interval_s: float = 0.0
    """Quiet time between the end of one exchange and the next write (slow controllers)."""
    connect_timeout_s: float = 5.0
    """Time allowed for ``connect()`` plus the probe."""
    backoff_initial_s: float = 0.5
    """Nominal wait before the first reconnect attempt."""
    backoff_multiplier: float = 2.0
    """Growth of the nominal wait per failed attempt."""
    backoff_max_s: float = 30.0
    """Cap of the nominal wait."""
    backoff_jitter: float = 0.5
    """Fraction in [0, 1): each wait is drawn from [nominal * (1 - jitter), nominal]."""
    seed: int | None = None
    """Seed of the jitter; None draws one from the operating system."""

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, naming the field, the value and what is allowed."""
        positive = ("timeout_s", "connect_timeout_s", "backoff_initial_s", "backoff_max_s")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"LinkPolicy.{name}={value!r}: must be a finite number > 0")
        for name in ("degraded_for_s", "min_interval_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"LinkPolicy.{name}={value!r}: must be a finite number >= 0")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"LinkPolicy.retries={self.retries!r}: must be an integer >= 0")
        if (
            isinstance(self.fault_after, bool)
            or not isinstance(self.fault_after, int)
            or self.fault_after < 1
        ):
            raise ValueError(
                f"LinkPolicy.fault_after={self.fault_after!r}: must be an integer >= 1"
            )
        if not (math.isfinite(self.backoff_multiplier) and self.backoff_multiplier >= 1):
            raise ValueError(
                f"LinkPolicy.backoff_multiplier={self.backoff_multiplier!r}: must be >= 1"
            )
        if not 0 <= self.backoff_jitter < 1:
            raise ValueError(
                f"LinkPolicy.backoff_jitter={self.backoff_jitter!r}: must be within [0, 1)"
            )
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"LinkPolicy.backoff_max_s={self.backoff_max_s!r}: must be >= "
                f"backoff_initial_s={self.backoff_initial_s!r}"
            )


class Backoff:
    """Capped exponential backoff with downward jitter, drawn from a seeded generator."""

    def __init__(self, policy: LinkPolicy, rng: random.Random) -> None:
        """Start at attempt 0."""
        self._policy = policy
        self._rng = rng
        self._attempt = 0

    def nominal_s(self, attempt: int) -> float:
        """The un-jittered wait before attempt ``attempt`` (0-based), capped."""
        p = self._policy
        try:
            raw = p.backoff_initial_s * p.backoff_multiplier**attempt
        except OverflowError:
            # A float power overflows after ~1000 doublings; the cap applies long before.
            raw = math.inf
        return min(p.backoff_max_s, raw)

    def next_delay_s(self) -> float:
        """The wait before the next attempt, within [nominal * (1 - jitter), nominal]."""
        nominal = self.nominal_s(self._attempt)
        self._attempt += 1
        return nominal * (1.0 - self._policy.backoff_jitter * self._rng.random())

    @property
    def attempts(self) -> int:
        """Delays handed out since the last reset."""
        return self._attempt

    def reset(self) -> None:
        """Start over (after a successful reconnect)."""
        self._attempt = 0


@dataclass(slots=True)
class LinkCounters:
    """Running totals for health reports."""

    requests: int = 0
    """request() and send() calls that reached the wire."""
    retries: int = 0
    """Extra attempts made."""
    timeouts: int = 0
    """Attempts that got no complete reply in time."""
    garbage: int = 0
    """Attempts whose reply the decoder refused as garbage."""
    rejected: int = 0
    """Error replies from the device."""
    failures: int = 0
    """Requests that failed after every attempt, or because the transport closed."""
    flushed_bytes: int = 0
    """Stale input bytes dropped before attempts."""
    reconnect_attempts: int = 0
    """Calls of the connect factory after a fault."""
    reconnects: int = 0
    """Successful reconnects."""

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for telemetry)."""
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """A snapshot of a link's health."""

    name: str
    state: LinkState
    counters: LinkCounters
    consecutive_failures: int
    last_error: str | None


_TIMEOUT_GRACE_TURNS = 8
"""Turns of the event loop a fired timeout waits at most for runnable work before it cancels."""


async def _race(work: Awaitable[T], clock: Clock, timeout_s: float, what: str) -> T:
    """Await ``work`` against ``clock.timer(timeout_s)``; TransportTimeout if the clock wins.

    Not ``asyncio.timeout``: that measures real time, and a VirtualClock test must decide
    when a command times out. The work runs in the calling task and the timer cancels that
    task (as ``asyncio.timeout`` does): no task and no ``asyncio.wait`` per exchange, which
    were a tenth of a simulated station's CPU. Work that finishes before the timer's
    callback has let what is runnable run wins a tie: bytes that arrived are not thrown away.
    """
    task = asyncio.current_task()
    assert task is not None
    # Cancellations already requested (an exchange made while the task is being cancelled,
    # e.g. a stow on shutdown): only one beyond these is the timer's.
    base = task.cancelling()
    timer = clock.timer(timeout_s)
    state = [False, False]  # [finished, the timer cancelled the task]

    loop = asyncio.get_running_loop()
    # See VirtualClock.settle for why the ready queue: asyncio has no public idle query.
    ready: Sized | None = getattr(loop, "_ready", None)

    def cancel_once_settled(turns_left: int) -> None:
        if state[0]:
            return
        if turns_left > 0 and (ready is None or len(ready) > 0):
            loop.call_soon(cancel_once_settled, turns_left - 1)
            return
        state[1] = True
        task.cancel()

    def expire(_: asyncio.Future[None]) -> None:
        if not state[0] and not timer.cancelled():
            # What is runnable runs first (a few turns at most): a reply due in the same
            # turn as the timer (a free-running clock far ahead of the loop makes that
            # common) reaches the caller through the simulator's and the caller's wake-ups,
            # and wins the tie, as it did when two tasks raced.
            loop.call_soon(cancel_once_settled, _TIMEOUT_GRACE_TURNS)

    timer.add_done_callback(expire)
    try:
        return await work
    except (asyncio.CancelledError, BridgeError, OSError) as exc:
        # Work that turned the timer's cancellation into its own error timed out as well.
        if state[1]:
            state[1] = False
            if task.uncancel() <= base:
                cause = None if isinstance(exc, asyncio.CancelledError) else exc
                raise TransportTimeout(
                    f"{what}: nothing complete within {timeout_s:g} s"
                ) from cause
        raise
    finally:
        state[0] = True
        # Unhooked first, so the cancel schedules no callback that would find nothing to do.
        timer.remove_done_callback(expire)
        timer.cancel()
        if state[1]:
            # The timer fired but the work swallowed the cancellation: take it back.
            task.uncancel()


async def _write_and_read(
    transport: ByteTransport, data: bytes, decoder: ReplyDecoder[T] | None
) -> T | None:
    await transport.write(data)
    await transport.drain()
    if decoder is None:
        return None
    while True:
        reply = decoder.feed(await transport.read())
        if reply is not None:
            return reply


@overload
async def exchange(
    transport: ByteTransport,
    data: bytes,
    *,
    decoder: ReplyDecoder[T],
    clock: Clock,
    timeout_s: float,
    flush: bool = True,
) -> T: ...
@overload
async def exchange(
    transport: ByteTransport,
    data: bytes,
    *,
    decoder: None,
    clock: Clock,
    timeout_s: float,
    flush: bool = True,
) -> None: ...
async def exchange(
    transport: ByteTransport,
    data: bytes,
    *,
    decoder: ReplyDecoder[T] | None,
    clock: Clock,
    timeout_s: float,
    flush: bool = True,
) -> T | None:
    """One attempt, no retry: flush input, write, and (with a decoder) read the reply.

    What ``CommandLink`` does per attempt; also handy in probe hooks. Raises
    TransportTimeout, RemoteProtocolError, DeviceRejected or TransportClosed.
    """
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"{transport.url}: timeout_s={timeout_s!r}: must be a finite number > 0")
    if flush:
        await transport.reset_input()
    if decoder is not None:
        decoder.reset()
    return await _race(
        _write_and_read(transport, data, decoder),
        clock,
        timeout_s,
        f"{transport.url}: reply to {data!r}",
    )


class CommandLink:
    """The request/reply discipline of one device; see the module docstring."""

    def __init__(
        self,
        connect: ConnectFactory,
        *,
        clock: Clock,
        policy: LinkPolicy | None = None,
        resync: ResyncHook | None = None,
        probe: ProbeHook | None = None,
        name: str = "link",
    ) -> None:
        """Create a closed link; ``open()`` (or ``async with``) connects it."""
        self._connect = connect
        self._clock = clock
        self._policy = policy if policy is not None else LinkPolicy()
        self._resync = resync
        self._probe = probe
        self._name = name
        self._lock = asyncio.Lock()
        self._backoff = Backoff(self._policy, random.Random(self._policy.seed))
        self._counters = LinkCounters()
        self._transport: ByteTransport | None = None
        self._state = LinkState.CONNECTING
        self._opened = False
        self._consecutive_failures = 0
        self._last_trouble: float | None = None
        self._last_error: str | None = None
        self._last_exchange_end: float | None = None
        self._next_attempt_at: float | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._listeners: Listeners[[]] = Listeners(self._name)

    # -- state listeners -------------------------------------------------------------
    def add_state_listener(self, listener: StateListener) -> None:
        """Call ``listener()`` after every state (or last-error) change from now on."""
        self._listeners.add(listener)

    def remove_state_listener(self, listener: StateListener) -> None:
        """Stop calling ``listener``; a listener that was not added is ignored."""
        self._listeners.remove(listener)

    def _changed(self) -> None:
        self._listeners.notify()

    # -- read-only views -----------------------------------------------------------
    @property
    def name(self) -> str:
        """The device name used in messages."""
        return self._name

    @property
    def policy(self) -> LinkPolicy:
        """The timing and fault settings."""
        return self._policy

    @property
    def state(self) -> LinkState:
        """Current state; ``degraded`` is ``ok`` with recent trouble."""
        if (
            self._state is LinkState.OK
            and self._last_trouble is not None
            and self._clock.monotonic() - self._last_trouble < self._policy.degraded_for_s
        ):
            return LinkState.DEGRADED
        return self._state

    @property
    def counters(self) -> LinkCounters:
        """A copy of the running totals."""
        return replace(self._counters)

    @property
    def transport(self) -> ByteTransport | None:
        """The current transport (None while faulted or not yet connected)."""
        return self._transport

    def health(self) -> LinkHealth:
        """A snapshot for health reports."""
        return LinkHealth(
            name=self._name,
            state=self.state,
            counters=self.counters,
            consecutive_failures=self._consecutive_failures,
            last_error=self._last_error,
        )

    # -- lifecycle -----------------------------------------------------------------
    async def open(self) -> None:
        """Connect once. On failure the link is ``faulted`` and keeps reconnecting in the
        background (requests fail fast meanwhile) instead of giving up; use
        :meth:`wait_ready` to wait for the device.
        """
        if self._opened:
            raise RuntimeError(f"{self._name}: open() was already called; a link opens once")
        self._opened = True
        try:
            transport = await self._connect_once()
        except (BridgeError, OSError) as exc:
            self._declare_faulted(f"cannot connect: {exc}")
            return
        self._transport = transport
        self._state = LinkState.OK
        self._ready.set()
        self._changed()
        self._watch_loss(transport)

    async def wait_ready(self) -> None:
        """Wait until the link is ``ok`` (or ``degraded``)."""
        if self._state is LinkState.CLOSED:
            raise TransportClosed(f"{self._name}: the link is closed")
        await self._ready.wait()

    async def close(self) -> None:
        """Stop reconnecting and close the transport; idempotent."""
        if self._state is LinkState.CLOSED:
            return
        self._state = LinkState.CLOSED
        self._ready.clear()
        self._changed()
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    async def __aenter__(self) -> Self:
        """Open the link; it is closed on exit."""
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the link."""
        await self.close()

    # -- requests ------------------------------------------------------------------
    @overload
    async def request(
        self,
        data: bytes,
        *,
        decoder: ReplyDecoder[T],
        expect_reply: Literal[True] = True,
        timeout_s: float | None = None,
    ) -> T: ...
    @overload
    async def request(
        self,
        data: bytes,
        *,
        decoder: ReplyDecoder[T] | None = None,
        expect_reply: Literal[False],
        timeout_s: float | None = None,
    ) -> None: ...
    async def request(
        self,
        data: bytes,
        *,
        decoder: ReplyDecoder[T] | None = None,
        expect_reply: bool = True,
        timeout_s: float | None = None,
    ) -> T | None:
        """Send ``data`` and return the decoded reply, with timeout, retries and resync.

        With ``expect_reply=False`` only the write is made (no retry: nothing tells us it
        failed) and None is returned. ``timeout_s`` overrides the policy for this request.
        """
        if expect_reply and decoder is None:
            raise TypeError(f"{self._name}: request(expect_reply=True) needs decoder=...")
        timeout = self._check_timeout(timeout_s)
        async with self._lock:
            transport = self._usable_transport()
            self._counters.requests += 1
            if not expect_reply:
                await self._send_once(transport, data, timeout)
                return None
            assert decoder is not None
            return await self._request_with_retries(transport, data, decoder, timeout)

    async def send(self, data: bytes, *, timeout_s: float | None = None) -> None:
        """Write a command that has no reply (same as ``request(expect_reply=False)``)."""
        await self.request(data, expect_reply=False, timeout_s=timeout_s)

    async def _request_with_retries(
        self, transport: ByteTransport, data: bytes, decoder: ReplyDecoder[T], timeout_s: float
    ) -> T:
        attempts = 1 + self._policy.retries
        last: TransportTimeout | RemoteProtocolError | None = None
        for attempt in range(attempts):
            if attempt > 0:
                self._counters.retries += 1
                was_ok = self.state is LinkState.OK
                self._last_trouble = self._clock.monotonic()
                if was_ok:
                    self._changed()  # ok -> degraded
                await self._run_resync(transport, timeout_s)
            try:
                reply = await self._attempt(transport, data, decoder, timeout_s)
            except TransportTimeout as exc:
                self._counters.timeouts += 1
                last = exc
                _log.info("%s: attempt %d/%d timed out: %s", self._name, attempt + 1, attempts, exc)
            except RemoteProtocolError as exc:
                self._counters.garbage += 1
                last = exc
                _log.info(
                    "%s: attempt %d/%d got garbage %r: %s",
                    self._name,
                    attempt + 1,
                    attempts,
                    exc.data,
                    exc,
                )
            except DeviceRejected:
                # The device heard us and refused: the link itself is healthy.
                self._counters.rejected += 1
                self._consecutive_failures = 0
                raise
            else:
                assert reply is not None
                self._consecutive_failures = 0
                return reply
        assert last is not None
        message = f"{self._name}: request {data!r} failed after {attempts} attempt(s): {last}"
        self._record_failure(message)
        if isinstance(last, RemoteProtocolError):
            raise RemoteProtocolError(message, last.data) from last
        raise TransportTimeout(message) from last

    async def _send_once(self, transport: ByteTransport, data: bytes, timeout_s: float) -> None:
        try:
            await self._attempt(transport, data, None, timeout_s)
        except TransportTimeout as exc:
            # Only drain() can time out here: the output is not moving (flow control held).
            self._counters.timeouts += 1
            self._record_failure(f"{self._name}: write of {data!r} did not drain: {exc}")
            raise
        self._consecutive_failures = 0

    async def _attempt(
        self,
        transport: ByteTransport,
        data: bytes,
        decoder: ReplyDecoder[T] | None,
        timeout_s: float,
    ) -> T | None:
        await self._respect_min_interval()
        try:
            dropped = await transport.reset_input()
            self._counters.flushed_bytes += dropped
            if decoder is None:
                await exchange(
                    transport,
                    data,
                    decoder=None,
                    clock=self._clock,
                    timeout_s=timeout_s,
                    flush=False,
                )
                return None
            return await exchange(
                transport,
                data,
                decoder=decoder,
                clock=self._clock,
                timeout_s=timeout_s,
                flush=False,
            )
        except TransportClosed as exc:
            self._counters.failures += 1
            self._declare_faulted(f"transport lost: {exc}")
            raise
        finally:
            self._last_exchange_end = self._clock.monotonic()

    async def _run_resync(self, transport: ByteTransport, timeout_s: float) -> None:
        if self._resync is None:
            return
        try:
            await _race(self._resync(transport), self._clock, timeout_s, f"{self._name}: resync")
        except TransportTimeout as exc:
            # The retry that follows tells whether the device is back in step; a stuck resync
            # alone is no reason to give up the request.
            _log.info("%s: %s", self._name, exc)
        except TransportClosed as exc:
            self._counters.failures += 1
            self._declare_faulted(f"transport lost during resync: {exc}")
            raise

    async def _respect_min_interval(self) -> None:
        if self._policy.min_interval_s <= 0 or self._last_exchange_end is None:
            return
        wait_s = self._last_exchange_end + self._policy.min_interval_s - self._clock.monotonic()
        if wait_s > 0:
            await self._clock.sleep(wait_s)

    def _check_timeout(self, timeout_s: float | None) -> float:
        if timeout_s is None:
            return self._policy.timeout_s
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"{self._name}: timeout_s={timeout_s!r}: must be a finite number > 0")
        return timeout_s

    def _usable_transport(self) -> ByteTransport:
        if self._state is LinkState.CLOSED:
            raise TransportClosed(f"{self._name}: the link is closed; create a new CommandLink")
        if self._state is LinkState.CONNECTING:
            raise DeviceFault(f"{self._name}: not connected yet; call open() first")
        if self._state is LinkState.FAULTED or self._transport is None:
            when = ""
            if self._next_attempt_at is not None:
                wait_s = max(0.0, self._next_attempt_at - self._clock.monotonic())
                when = f"; next reconnect attempt in {wait_s:.1f} s"
            raise DeviceFault(
                f"{self._name}: faulted ({self._last_error}); reconnecting "
                f"(attempts so far: {self._counters.reconnect_attempts}){when}"
            )
        return self._transport

    # -- faults and reconnect ------------------------------------------------------
    def _record_failure(self, message: str) -> None:
        self._counters.failures += 1
        self._consecutive_failures += 1
        self._last_error = message
        self._last_trouble = self._clock.monotonic()
        if self._consecutive_failures >= self._policy.fault_after:
            self._declare_faulted(
                f"{self._consecutive_failures} consecutive failed requests; last: {message}"
            )
        else:
            self._changed()

    def _watch_loss(self, transport: ByteTransport) -> None:
        """The loss of ``transport`` (in use, the link ok) is a fault at once, not at the
        next request (a rotator polled once a second would otherwise take up to that
        second). Called once the link is ok: a transport lost already faults it at once."""

        def lost(reason: str) -> None:
            if self._transport is transport:
                self._declare_faulted(f"transport lost: {reason}")

        transport.on_lost(lost)

    def _declare_faulted(self, reason: str) -> None:
        if self._state in (LinkState.CLOSED, LinkState.FAULTED):
            return
        _log.warning("%s: link faulted: %s", self._name, reason)
        self._state = LinkState.FAULTED
        self._ready.clear()
        self._last_error = reason
        old, self._transport = self._transport, None
        self._backoff.reset()
        # The first wait is drawn now so that fail-fast errors can already say when.
        first_delay_s = self._backoff.next_delay_s()
        self._next_attempt_at = self._clock.monotonic() + first_delay_s
        self._reconnect_task = asyncio.get_running_loop().create_task(
            self._reconnect_loop(old), name=f"{self._name}-reconnect"
        )
        self._changed()

    async def _connect_once(self) -> ByteTransport:
        async def connect_and_probe() -> ByteTransport:
            transport = await self._connect()
            if self._probe is not None:
                try:
                    await self._probe(transport)
                except BaseException:
                    await transport.close()
                    raise
            return transport

        return await _race(
            connect_and_probe(),
            self._clock,
            self._policy.connect_timeout_s,
            f"{self._name}: connect",
        )

    async def _reconnect_loop(self, old: ByteTransport | None) -> None:
        if old is not None:
            with contextlib.suppress(BridgeError, OSError):
                await old.close()
        assert self._next_attempt_at is not None
        while True:
            await self._clock.sleep(self._next_attempt_at - self._clock.monotonic())
            self._counters.reconnect_attempts += 1
            try:
                transport = await self._connect_once()
            except (BridgeError, OSError) as exc:
                self._last_error = f"reconnect attempt {self._counters.reconnect_attempts}: {exc}"
                _log.info("%s: %s", self._name, self._last_error)
                self._next_attempt_at = self._clock.monotonic() + self._backoff.next_delay_s()
                self._changed()
                continue
            except Exception as exc:
                # A bug in the connect factory or probe: retrying would repeat it forever.
                self._last_error = f"reconnect loop stopped by an unexpected error: {exc!r}"
                _log.exception("%s: %s", self._name, self._last_error)
                self._changed()
                return
            break
        self._transport = transport
        self._state = LinkState.OK
        self._consecutive_failures = 0
        self._last_trouble = None
        self._next_attempt_at = None
        self._counters.reconnects += 1
        self._reconnect_task = None
        self._ready.set()
        _log.warning("%s: link restored after %d attempt(s)", self._name, self._backoff.attempts)
        self._changed()
        self._watch_loss(transport)
