"""CommandLink on loop pairs with a small scripted device, all on a virtual clock.

The device speaks a toy line protocol (it is not any real protocol on purpose: the link
must not depend on one): each request is a line; a reply ``OK <text>`` is a success,
``ERR <code>`` a rejection, anything else garbage.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.errors import (
    DeviceFault,
    DeviceRejected,
    RemoteProtocolError,
    TransportClosed,
    TransportTimeout,
)
from firmware_bridge.link import (
    Backoff,
    CommandLink,
    EventReplyDecoder,
    LinkPolicy,
    LinkState,
    ProbeHook,
    ResyncHook,
    exchange,
)
from firmware_bridge.protocols.base import Decoder, ErrorReply, Event, Garbage
from firmware_bridge.transports import ByteTransport, FaultInjector, loop_pair

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class LineDecoder:
    """Test decoder for the toy protocol: 'OK x' -> 'x', 'ERR n' -> DeviceRejected(n)."""

    def __init__(self) -> None:
        """Start empty."""
        self._buffer = b""

    def reset(self) -> None:
        """Forget partial input."""
        self._buffer = b""

    def feed(self, data: bytes) -> str | None:
        """Return the reply text once a whole line is in."""
        self._buffer += data
        if b"\n" not in self._buffer:
            return None
        line = self._buffer.split(b"\n", 1)[0]
        if line.startswith(b"OK "):
            return line[3:].decode()
        if line.startswith(b"ERR "):
            raise DeviceRejected("device error", int(line[4:]))
        raise RemoteProtocolError("not an OK/ERR line", line)


@dataclass(frozen=True)
class Reply:
    """What the scripted device does with one request: reply (or not) after a delay."""

    data: bytes | None
    delay_s: float = 0.0


class ScriptedDevice:
    """Reads request lines; answers from a script, then with 'OK <request>' by default."""

    def __init__(
        self, transport: ByteTransport, clock: VirtualClock, script: list[Reply] | None = None
    ) -> None:
        """Serve ``transport``; ``wire`` logs ("rx"|"tx", bytes, virtual time)."""
        self.transport = transport
        self.clock = clock
        self.script = list(script or [])
        self.wire: list[tuple[str, bytes, float]] = []
        self.task = asyncio.ensure_future(self._run())

    def requests(self) -> list[bytes]:
        """The request lines received, in order."""
        return [data for kind, data, _ in self.wire if kind == "rx"]

    async def _run(self) -> None:
        buffer = b""
        try:
            while True:
                buffer += await self.transport.read()
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self.wire.append(("rx", line, self.clock.monotonic()))
                    if line == b"SYNC":
                        continue  # the resync hook's line gets no answer
                    reply = self.script.pop(0) if self.script else Reply(b"OK " + line + b"\n")
                    if reply.delay_s:
                        await self.clock.sleep(reply.delay_s)
                    if reply.data is not None:
                        self.wire.append(("tx", reply.data, self.clock.monotonic()))
                        await self.transport.write(reply.data)
        except TransportClosed:
            return


class Bench:
    """A clock, a connect factory handing out loop pairs with scripted devices, and records."""

    def __init__(self) -> None:
        """Nothing is connected until the link calls connect()."""
        self.clock = VirtualClock(T0)
        self.devices: list[ScriptedDevice] = []
        self.connect_times: list[float] = []
        self.device_present = True
        self.next_script: list[Reply] = []
        self.next_fault: FaultInjector | None = None

    async def connect(self) -> ByteTransport:
        """The link's connect factory: fails while the device is absent."""
        self.connect_times.append(self.clock.monotonic())
        if not self.device_present:
            raise TransportClosed("loop://dev: nothing is listening (device absent)")
        host, dev = loop_pair(self.clock, fault_back=self.next_fault, name="dev")
        self.devices.append(ScriptedDevice(dev, self.clock, self.next_script))
        self.next_script = []
        return host

    @property
    def device(self) -> ScriptedDevice:
        """The most recently connected device."""
        return self.devices[-1]

    def link(
        self,
        policy: LinkPolicy,
        *,
        resync: ResyncHook | None = None,
        probe: ProbeHook | None = None,
    ) -> CommandLink:
        """A link using this bench's clock and connect factory."""
        return CommandLink(
            self.connect, clock=self.clock, policy=policy, resync=resync, probe=probe, name="dev"
        )


async def start(link: CommandLink, clock: VirtualClock, data: bytes) -> asyncio.Future[str]:
    """Start a request in the background and let it reach the wire."""
    task: asyncio.Future[str] = asyncio.ensure_future(link.request(data, decoder=LineDecoder()))
    await clock.settle()
    return task


def state_of(link: CommandLink) -> LinkState:
    """The link's state, read afresh (keeps mypy from narrowing it across awaits)."""
    return link.state


POLICY = LinkPolicy(timeout_s=1.0, retries=2, fault_after=3, degraded_for_s=10.0, seed=1)


async def test_request_returns_decoded_reply() -> None:
    """A plain request gets its reply; the link is ok and counts one request."""
    bench = Bench()
    async with bench.link(POLICY) as link:
        assert state_of(link) is LinkState.OK
        assert await link.request(b"PING\n", decoder=LineDecoder()) == "PING"
        assert bench.device.requests() == [b"PING"]
        assert link.counters.requests == 1
        assert link.counters.retries == 0


async def test_timeout_then_retry_succeeds() -> None:
    """No answer within timeout_s (virtual) -> one retry, which succeeds; state degraded."""
    bench = Bench()
    bench.next_script = [Reply(None)]
    async with bench.link(POLICY) as link:
        task = await start(link, bench.clock, b"GET\n")
        await bench.clock.advance(0.999)
        assert not task.done()
        assert bench.device.requests() == [b"GET"]
        await bench.clock.advance(0.001)
        assert task.done()
        assert task.result() == "GET"
        assert bench.device.requests() == [b"GET", b"GET"]
        assert bench.device.wire[1][2] == pytest.approx(1.0)  # the retry went out at t = 1 s
        counters = link.counters
        assert (counters.timeouts, counters.retries, counters.failures) == (1, 1, 0)
        assert state_of(link) is LinkState.DEGRADED
        await bench.clock.advance(10.0)
        assert state_of(link) is LinkState.OK


async def test_all_attempts_time_out() -> None:
    """A device that never answers costs (1 + retries) x timeout, then TransportTimeout."""
    bench = Bench()
    bench.next_script = [Reply(None)] * 3
    async with bench.link(POLICY) as link:
        task = await start(link, bench.clock, b"GET\n")
        await bench.clock.advance(2.999)
        assert not task.done()
        await bench.clock.advance(0.001)
        with pytest.raises(
            TransportTimeout, match=r"dev: request b'GET\\n' failed after 3 attempt"
        ):
            task.result()
        assert link.counters.timeouts == 3
        assert link.health().consecutive_failures == 1
        assert state_of(link) is LinkState.DEGRADED


async def test_garbage_then_resync_and_retry() -> None:
    """Garbage counts, the resync hook runs before the retry, and the retry's reply is used."""
    bench = Bench()
    bench.next_script = [Reply(b"#%&!\n")]
    resyncs: list[float] = []

    async def resync(transport: ByteTransport) -> None:
        resyncs.append(bench.clock.monotonic())
        await transport.write(b"SYNC\n")

    async with bench.link(POLICY, resync=resync) as link:
        assert await link.request(b"GET\n", decoder=LineDecoder()) == "GET"
        assert [(kind, data) for kind, data, _ in bench.device.wire] == [
            ("rx", b"GET"),
            ("tx", b"#%&!\n"),
            ("rx", b"SYNC"),
            ("rx", b"GET"),
            ("tx", b"OK GET\n"),
        ]
        assert len(resyncs) == 1
        assert (link.counters.garbage, link.counters.retries) == (1, 1)


async def test_garbage_on_every_attempt_raises_remote_protocol_error() -> None:
    """Persistent garbage ends in RemoteProtocolError carrying the offending bytes."""
    bench = Bench()
    bench.next_script = [Reply(b"??\n")] * 3
    async with bench.link(POLICY) as link:
        with pytest.raises(RemoteProtocolError, match="failed after 3 attempt") as info:
            await link.request(b"GET\n", decoder=LineDecoder())
        assert info.value.data == b"??"
        assert link.counters.garbage == 3


async def test_stale_input_is_flushed_before_the_request() -> None:
    """An unsolicited line waiting in the input is dropped, not taken as the reply."""
    bench = Bench()
    async with bench.link(POLICY) as link:
        await bench.device.transport.write(b"OK stale\n")
        await bench.clock.settle()
        assert await link.request(b"FRESH\n", decoder=LineDecoder()) == "FRESH"
        assert link.counters.flushed_bytes == len(b"OK stale\n")


async def test_device_rejection_is_raised_at_once() -> None:
    """An error reply raises DeviceRejected with the device's code, without retries."""
    bench = Bench()
    bench.next_script = [Reply(b"ERR 7\n")]
    async with bench.link(POLICY) as link:
        with pytest.raises(DeviceRejected) as info:
            await link.request(b"MOVE 999\n", decoder=LineDecoder())
        assert info.value.code == 7
        assert bench.device.requests() == [b"MOVE 999"]
        assert (link.counters.rejected, link.counters.retries) == (1, 0)
        assert state_of(link) is LinkState.OK


async def test_one_request_in_flight() -> None:
    """Two concurrent requests never interleave: B is written only after A's reply."""
    bench = Bench()
    bench.next_script = [Reply(b"OK a\n", delay_s=0.5), Reply(b"OK b\n", delay_s=0.5)]
    async with bench.link(POLICY) as link:
        task_a = await start(link, bench.clock, b"A\n")
        task_b = await start(link, bench.clock, b"B\n")
        assert bench.device.requests() == [b"A"]
        await bench.clock.advance(0.5)
        await bench.clock.advance(0.5)
        assert (task_a.result(), task_b.result()) == ("a", "b")
        assert [(kind, data) for kind, data, _ in bench.device.wire] == [
            ("rx", b"A"),
            ("tx", b"OK a\n"),
            ("rx", b"B"),
            ("tx", b"OK b\n"),
        ]


async def test_min_interval_spaces_commands() -> None:
    """min_interval_s keeps the next write that long after the previous exchange ended."""
    bench = Bench()
    policy = LinkPolicy(timeout_s=1.0, min_interval_s=0.25, seed=1)
    async with bench.link(policy) as link:
        first = await start(link, bench.clock, b"A\n")
        assert first.result() == "A"
        second = await start(link, bench.clock, b"B\n")
        assert not second.done()
        await bench.clock.advance(0.25)
        assert second.result() == "B"
        times = [t for kind, _, t in bench.device.wire if kind == "rx"]
        assert times == [0.0, pytest.approx(0.25)]


async def test_send_writes_without_waiting_for_a_reply() -> None:
    """send() puts the bytes on the wire and returns without reading."""
    bench = Bench()
    bench.next_script = [Reply(None)]
    async with bench.link(POLICY) as link:
        await link.send(b"STOP\n")
        await bench.clock.settle()
        assert bench.device.requests() == [b"STOP"]
        assert link.counters.requests == 1
        assert bench.clock.monotonic() == 0.0


async def test_faulted_after_n_failures_then_reconnects_with_backoff() -> None:
    """N failures -> faulted; requests fail fast; reconnect waits a capped, jittered backoff."""
    bench = Bench()
    policy = LinkPolicy(
        timeout_s=1.0,
        retries=1,
        fault_after=2,
        backoff_initial_s=1.0,
        backoff_multiplier=2.0,
        backoff_max_s=4.0,
        backoff_jitter=0.5,
        seed=7,
    )
    bench.next_script = [Reply(None)] * 4
    async with bench.link(policy) as link:
        first_device = bench.device
        for _ in range(2):
            task = await start(link, bench.clock, b"GET\n")
            await bench.clock.advance(2.0)
            with pytest.raises(TransportTimeout):
                task.result()
        faulted_at = bench.clock.monotonic()
        assert state_of(link) is LinkState.FAULTED
        bench.device_present = False

        # Fail fast: no virtual time passes and nothing reaches the wire.
        with pytest.raises(DeviceFault, match=r"dev: faulted \(2 consecutive failed requests"):
            await link.request(b"GET\n", decoder=LineDecoder())
        assert bench.clock.monotonic() == faulted_at
        assert first_device.task.done()  # the old transport was closed

        await bench.clock.advance(20.0)
        attempts = bench.connect_times[1:]
        assert len(attempts) >= 5
        gaps = [t - prev for prev, t in zip([faulted_at, *attempts], attempts, strict=False)]
        for k, gap in enumerate(gaps):
            nominal = min(4.0, 1.0 * 2.0**k)
            assert nominal * 0.5 - 1e-9 <= gap <= nominal + 1e-9, (k, gap)
        assert max(gaps) <= 4.0
        assert len(set(gaps)) == len(gaps)  # jittered, not a fixed schedule
        assert state_of(link) is LinkState.FAULTED
        assert "device absent" in (link.health().last_error or "")

        bench.device_present = True
        await bench.clock.advance(4.0)
        assert state_of(link) is LinkState.OK
        assert link.counters.reconnects == 1
        assert link.health().consecutive_failures == 0
        assert link.counters.reconnect_attempts == len(bench.connect_times) - 1
        assert await link.request(b"BACK\n", decoder=LineDecoder()) == "BACK"
        assert bench.device is not first_device


async def test_backoff_is_seeded_and_bounded() -> None:
    """The same seed gives the same delays; every delay lies in [nominal*(1-j), nominal]."""
    policy = LinkPolicy(backoff_initial_s=0.5, backoff_max_s=8.0, backoff_jitter=0.3, seed=11)
    runs = []
    for _ in range(2):
        backoff = Backoff(policy, random.Random(policy.seed))
        runs.append([backoff.next_delay_s() for _ in range(12)])
    assert runs[0] == runs[1]
    for k, delay in enumerate(runs[0]):
        nominal = min(8.0, 0.5 * 2.0**k)
        assert nominal * 0.7 <= delay <= nominal


async def test_lost_transport_faults_at_once() -> None:
    """A link cut mid-request raises TransportClosed and faults without waiting for N failures."""
    bench = Bench()
    cutter = FaultInjector()
    bench.next_fault = cutter
    bench.next_script = [Reply(None)]
    async with bench.link(POLICY) as link:
        task = await start(link, bench.clock, b"GET\n")
        cutter.cut()
        await bench.clock.settle()
        with pytest.raises(TransportClosed, match="cut"):
            task.result()
        assert state_of(link) is LinkState.FAULTED
        bench.next_fault = None
        await bench.clock.advance(POLICY.backoff_initial_s)
        assert state_of(link) is LinkState.OK
        assert await link.request(b"AGAIN\n", decoder=LineDecoder()) == "AGAIN"


async def test_open_failure_keeps_reconnecting() -> None:
    """A device absent at start: open() does not give up; wait_ready() returns once it is back."""
    bench = Bench()
    bench.device_present = False
    link = bench.link(POLICY)
    await link.open()
    assert state_of(link) is LinkState.FAULTED
    with pytest.raises(DeviceFault, match="next reconnect attempt in"):
        await link.request(b"GET\n", decoder=LineDecoder())
    ready = asyncio.ensure_future(link.wait_ready())
    await bench.clock.advance(5.0)
    assert not ready.done()
    bench.device_present = True
    await bench.clock.advance(30.0)
    assert ready.done()
    assert await link.request(b"GET\n", decoder=LineDecoder()) == "GET"
    await link.close()


async def test_probe_must_pass_before_ok() -> None:
    """With a probe, a reconnect counts only once the device answers it."""
    bench = Bench()
    probes: list[str] = []

    async def probe(transport: ByteTransport) -> None:
        probes.append(
            await exchange(
                transport, b"HELLO\n", decoder=LineDecoder(), clock=bench.clock, timeout_s=0.5
            )
        )

    link = bench.link(POLICY, probe=probe)
    await link.open()
    assert probes == ["HELLO"]
    assert state_of(link) is LinkState.OK
    await link.close()


async def test_closed_link_refuses_requests() -> None:
    """After close() a request raises TransportClosed and the transport is closed."""
    bench = Bench()
    link = bench.link(POLICY)
    await link.open()
    transport = link.transport
    await link.close()
    await link.close()
    assert state_of(link) is LinkState.CLOSED
    assert transport is not None
    assert transport.closed
    with pytest.raises(TransportClosed, match="link is closed"):
        await link.request(b"GET\n", decoder=LineDecoder())


async def test_counters_and_health_snapshot() -> None:
    """health() reports name, state, counters and the last error; counters copy out."""
    bench = Bench()
    bench.next_script = [Reply(None), Reply(b"OK x\n")]
    async with bench.link(POLICY) as link:
        task = await start(link, bench.clock, b"X\n")
        await bench.clock.advance(1.0)
        assert task.result() == "x"
        health = link.health()
        assert (health.name, health.state) == ("dev", LinkState.DEGRADED)
        assert health.counters.as_dict()["timeouts"] == 1
        snapshot = link.counters
        snapshot.requests = 99
        assert link.counters.requests == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout_s": 0.0}, r"LinkPolicy\.timeout_s=0\.0: must be a finite number > 0"),
        ({"retries": -1}, r"LinkPolicy\.retries=-1: must be an integer >= 0"),
        ({"fault_after": 0}, r"LinkPolicy\.fault_after=0: must be an integer >= 1"),
        ({"backoff_jitter": 1.0}, r"LinkPolicy\.backoff_jitter=1\.0: must be within \[0, 1\)"),
        ({"backoff_max_s": 0.1}, r"LinkPolicy\.backoff_max_s=0\.1: must be >= backoff_initial_s"),
        ({"min_interval_s": float("nan")}, r"LinkPolicy\.min_interval_s=nan"),
    ],
)
def test_bad_policy_is_refused(kwargs: dict[str, float], match: str) -> None:
    """Each impossible policy value is named with what is allowed."""
    with pytest.raises(ValueError, match=match):
        LinkPolicy(**kwargs)  # type: ignore[arg-type]


# -- EventReplyDecoder over a sans-I/O decoder ------------------------------------------
@dataclass(frozen=True, slots=True)
class Text(Event):
    """A toy reply event."""

    text: str


class ToyEvents(Decoder):
    """A toy event decoder: 'E<code>' -> ErrorReply, '#...' -> Garbage, 'echo...' skipped."""

    def _parse(self) -> Event | None:
        line = self._buffer.take_until(b"\n")
        if line is None:
            return None
        body = line[:-1]
        if body.startswith(b"E"):
            return ErrorReply(int(body[1:]), "toy error")
        if body.startswith(b"#"):
            return Garbage(body, "not a toy line")
        return Text(body.decode())


def match_text(event: Event) -> str | None:
    """Accept Text events that are not echoes."""
    if isinstance(event, Text) and not event.text.startswith("echo"):
        return event.text
    return None


def make_decoder() -> EventReplyDecoder[str]:
    """The adapter under test."""
    new: Callable[[], ToyEvents] = ToyEvents
    return EventReplyDecoder(new, match_text)


def test_event_decoder_skips_unmatched_and_waits_for_more() -> None:
    """Echo events are skipped, partial lines need more data, the matching event is returned."""
    decoder = make_decoder()
    assert decoder.feed(b"echo GET\nPOS 1") is None
    assert decoder.feed(b"80\n") == "POS 180"


def test_event_decoder_maps_garbage_and_errors() -> None:
    """Garbage events raise RemoteProtocolError with the bytes; ErrorReply raises DeviceRejected."""
    decoder = make_decoder()
    with pytest.raises(RemoteProtocolError, match="not a toy line") as garbage:
        decoder.feed(b"#junk\n")
    assert garbage.value.data == b"#junk"
    decoder.reset()
    with pytest.raises(DeviceRejected) as rejected:
        decoder.feed(b"E12\n")
    assert rejected.value.code == 12


def test_event_decoder_reset_forgets_partial_input() -> None:
    """reset() starts a new decoder, so a partial line from a failed attempt is gone."""
    decoder = make_decoder()
    assert decoder.feed(b"POS 1") is None
    decoder.reset()
    assert decoder.feed(b"POS 2\n") == "POS 2"


async def test_a_request_made_while_its_task_is_being_cancelled_still_times_out() -> None:
    """A request from cleanup code of a task being cancelled (a stow on shutdown) gets its
    TransportTimeout, not a CancelledError, and leaves the task's cancel count as it was;
    the timeout cancels no other request of the same task afterwards."""
    bench = Bench()
    bench.next_script = [Reply(None)]
    policy = LinkPolicy(timeout_s=1.0, retries=0, fault_after=10, seed=1)
    seen: list[object] = []

    async def cleanup_after_cancel(link: CommandLink) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            seen.append(task.cancelling())
            try:
                await link.request(b"STOW\n", decoder=LineDecoder())
            except TransportTimeout as exc:
                seen.append(type(exc).__name__)
            seen.append(task.cancelling())
            seen.append(await link.request(b"PARK\n", decoder=LineDecoder()))
            raise

    async with bench.link(policy) as link:
        task = asyncio.ensure_future(cleanup_after_cancel(link))
        await bench.clock.settle()
        task.cancel()
        await bench.clock.advance(1.0)
        assert seen == [1, "TransportTimeout", 1, "PARK"]
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_cancelling_a_request_from_outside_is_a_cancellation_not_a_timeout() -> None:
    """A request cancelled by its caller before the timeout raises CancelledError, and the
    timer it armed wakes nobody later (the next request on the link works)."""
    bench = Bench()
    bench.next_script = [Reply(None)]
    async with bench.link(POLICY) as link:
        task = await start(link, bench.clock, b"GET\n")
        await bench.clock.advance(0.5)
        task.cancel()
        await bench.clock.settle()
        assert task.cancelled()
        second = await start(link, bench.clock, b"NEXT\n")
        await bench.clock.advance(2.0)
        assert second.result() == "NEXT"
        assert link.counters.timeouts == 0


async def test_the_loss_of_the_transport_faults_the_link_without_a_request() -> None:
    """The device hangs up while nothing is asked: the link is faulted at once (naming the
    loss) and reconnects; a transport already gone when it is handed over (the probe
    passed, then the device left) faults the link as it opens instead of leaving it ok."""
    bench = Bench()
    async with bench.link(POLICY) as link:
        assert state_of(link) is LinkState.OK
        await bench.device.transport.close()
        assert state_of(link) is LinkState.FAULTED
        assert "transport lost" in (link.health().last_error or "")
        await bench.clock.advance(5.0)
        assert state_of(link) is LinkState.OK
        assert link.counters.reconnects == 1

    gone = Bench()

    async def connect_then_leave() -> ByteTransport:
        host = await gone.connect()
        await gone.device.transport.close()
        return host

    link = CommandLink(connect_then_leave, clock=gone.clock, policy=POLICY, name="dev")
    await link.open()
    try:
        assert state_of(link) is LinkState.FAULTED
        assert "transport lost" in (link.health().last_error or "")
    finally:
        await link.close()
