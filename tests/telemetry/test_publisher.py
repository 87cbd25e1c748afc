"""The publisher's supervisor on a virtual clock: backoff, never blocking, closing."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import random
import signal
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from controller.telemetry.config import MqttConfig
from controller.telemetry.mqtt import (
    Backoff,
    LinkState,
    MqttPublisher,
    _fixed_header,
    _topic_field,
)
from controller.telemetry.payloads import PassEvent, Pointing, Status
from controller.telemetry.sink import OutMessage, TelemetrySink
from controller.telemetry.topics import Delivery
from firmware_bridge.clock import SystemClock, VirtualClock

from ._samples import T0
from .conftest import (
    DEADLINE_S,
    MosquittoBroker,
    MosquittoFactory,
    Received,
    Subscriber,
    fast_config,
    free_port,
)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    """Delays lie in [ceiling/2, ceiling], the ceiling doubling from min_s up to max_s."""
    backoff = Backoff(0.5, 4.0, rng=random.Random(1))
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    delays = [backoff.next_delay() for _ in ceilings]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[3:])) == 3  # jittered: equal ceilings, different delays
    backoff.reset()
    assert backoff.ceiling_s == 0.5
    assert backoff.next_delay() <= 0.5


def test_backoff_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same delays (a seeded run repeats exactly)."""
    a = Backoff(1.0, 30.0, rng=random.Random(42))
    b = Backoff(1.0, 30.0, rng=random.Random(42))
    assert [a.next_delay() for _ in range(8)] == [b.next_delay() for _ in range(8)]


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_backoff_refuses_bad_bounds(lo: float, hi: float) -> None:
    """min_s must be positive and not above max_s."""
    with pytest.raises(ValueError, match="min_s"):
        Backoff(lo, hi, rng=random.Random())


def _dead_config(**overrides: object) -> MqttConfig:
    values: dict[str, object] = {
        "broker": f"mqtt://127.0.0.1:{free_port()}",  # nothing listens there
        "reconnect_min_s": 1.0,
        "reconnect_max_s": 4.0,
    }
    values.update(overrides)
    return MqttConfig.model_validate(values)


async def test_supervisor_retries_on_the_injected_clock() -> None:
    """With the broker down, each retry waits its jittered, capped delay of virtual time."""
    clock = VirtualClock(T0)
    publisher = MqttPublisher(_dead_config(), "gs1", clock, rng=random.Random(7))
    runner = asyncio.create_task(publisher.run())
    delays = []
    try:
        for attempt in range(1, 5):

            def failed_and_waiting(p: MqttPublisher, n: int = attempt) -> bool:
                return p.stats.connect_failures >= n and p.link_state is LinkState.BACKOFF

            await asyncio.wait_for(publisher.wait_for(failed_and_waiting), DEADLINE_S)
            delay = publisher.stats.last_backoff_s
            assert delay is not None
            delays.append(delay)
            # The supervisor's only sleeper is the backoff; its deadline is `delay` after
            # the failure (which may land a little before the last advance finished).
            deadline = clock.next_deadline()
            assert deadline is not None
            assert deadline - delay - 1e-9 <= clock.monotonic() <= deadline
            await clock.run_until(deadline - 0.01)
            assert publisher.stats.connect_attempts == attempt  # still waiting
            assert publisher.link_state is LinkState.BACKOFF
            await clock.run_until(deadline)
            assert publisher.stats.connect_attempts == attempt + 1  # retried on time
        for delay, ceiling in zip(delays, [1.0, 2.0, 4.0, 4.0], strict=True):
            assert ceiling / 2 <= delay <= ceiling
        assert publisher.stats.connects == 0
        assert "refused" in (publisher.stats.last_error or "").lower()
    finally:
        await asyncio.wait_for(publisher.close(timeout_s=1.0), DEADLINE_S)
        await asyncio.wait_for(runner, DEADLINE_S)


async def test_send_never_blocks_and_stays_bounded_while_the_broker_is_down() -> None:
    """Producers keep sending during an outage; the outbox keeps within its bounds."""
    clock = VirtualClock(T0)
    config = _dead_config(outbox_events=50, outbox_stream_depth=5)
    publisher = MqttPublisher(config, "gs1", clock)
    runner = asyncio.create_task(publisher.run())
    try:
        await asyncio.wait_for(
            publisher.wait_for(lambda p: p.link_state is LinkState.BACKOFF), DEADLINE_S
        )
        sample = _sample(1)
        for n in range(1, 2001):
            publisher.send(sample)
            if n % 10 == 0:
                publisher.send(PassEvent(antenna="a1", norad_id=n, event="tca"))
        stats = publisher.outbox_stats
        assert stats.events_queued == 50
        assert stats.events_dropped == 200 - 50
        assert stats.streams_queued == 5
        assert stats.stream_dropped == {"groundlink/gs1/antenna/a1/pointing": 1995}
    finally:
        await asyncio.wait_for(publisher.close(timeout_s=1.0), DEADLINE_S)
        await asyncio.wait_for(runner, DEADLINE_S)


async def test_close_during_backoff_returns_without_waiting_out_the_delay() -> None:
    """close() ends run() at once when the supervisor is waiting to retry."""
    clock = VirtualClock(T0)
    publisher = MqttPublisher(
        _dead_config(reconnect_min_s=60.0, reconnect_max_s=60.0), "gs1", clock
    )
    runner = asyncio.create_task(publisher.run())
    await asyncio.wait_for(
        publisher.wait_for(lambda p: p.link_state is LinkState.BACKOFF), DEADLINE_S
    )
    await asyncio.wait_for(publisher.close(timeout_s=5.0), DEADLINE_S)
    await asyncio.wait_for(runner, DEADLINE_S)
    assert publisher.link_state is LinkState.CLOSED
    assert clock.monotonic() == 0.0  # no virtual time had to pass
    with pytest.raises(RuntimeError, match="runs once"):
        await publisher.run()


async def test_send_works_before_run_and_status_is_remembered() -> None:
    """A publisher accepts telemetry before it ever connects (the daemon starts first)."""
    publisher = MqttPublisher(_dead_config(), "gs1", VirtualClock(T0))
    assert isinstance(publisher, TelemetrySink)
    publisher.send(Status(state="ready"))
    publisher.send(PassEvent(antenna="a1", norad_id=1, event="aos"))
    assert publisher.pending >= 2
    assert publisher.link_state is LinkState.IDLE
    await publisher.close()
    assert publisher.link_state in (LinkState.CLOSED,)  # `in`: mypy keeps the IDLE narrowing


# -- the hot path against real brokers: coalesced writes, acknowledgements, back-pressure --

PREFIX = "groundlink/gs1/"
EVENTS = PREFIX + "pass/event"
POINTING = PREFIX + "antenna/a1/pointing"


def _sample(n: int) -> Pointing:
    return Pointing(
        antenna="a1",
        mode="tracking",
        norad_id=n,
        target_az_deg=1.0,
        target_el_deg=1.0,
        commanded_az_deg=1.0,
        commanded_el_deg=1.0,
        actual_az_deg=1.0,
        actual_el_deg=1.0,
        error_deg=0.0,
        period_s=0.1,
    )


def _seqs(messages: list[Received], topic: str) -> list[int]:
    return [int(m.json()["seq"]) for m in messages if m.topic == topic]


async def test_one_write_carries_many_messages_in_order_and_every_event_is_acked(
    any_broker: tuple[str, int],
) -> None:
    """A backlog leaves in few socket writes; events arrive complete and in order, all acked."""
    url, port = any_broker
    config = fast_config(url, max_inflight=1000, outbox_stream_depth=2000)
    publisher = MqttPublisher(config, "gs1", SystemClock())
    count = 400  # with the samples, within what the brokers queue for one subscriber
    for n in range(1, count + 1):  # queued before the connection: one backlog
        publisher.send(PassEvent(antenna="a1", norad_id=n, event="tca"))
        publisher.send(_sample(n))
    async with Subscriber(port, [EVENTS, POINTING]) as sub, publisher:
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        await sub.wait_for(_every_seq_up_to(count, EVENTS))
        assert _seqs(sub.messages, EVENTS) == list(range(1, count + 1))
        samples = _seqs(sub.messages, POINTING)
        assert samples == sorted(set(samples))  # QoS 0 may be shed by a broker, never reordered
        stats = publisher.stats
        assert stats.published >= 2 * count
        assert stats.acknowledged == stats.published  # every event's PUBACK was matched
        assert publisher.pending == 0
        assert stats.writes * 20 <= stats.published  # coalesced: many packets per write
        assert stats.unsendable == 0


async def _unqueued_broker(mosquitto_factory: MosquittoFactory) -> MosquittoBroker:
    """A Mosquitto without a per-subscriber queue limit (the default holds 1000)."""
    port = free_port()
    return await mosquitto_factory(
        port=port,
        raw_config=(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest stderr\nlog_type information\nuser {getpass.getuser()}\n"
            "max_queued_messages 0\nset_tcp_nodelay true\n"
        ),
    )


@contextlib.asynccontextmanager
async def _frozen_with_backlog(
    publisher: MqttPublisher, broker: MosquittoBroker, clock: SystemClock, count: int
) -> AsyncIterator[None]:
    """Freeze the broker (SIGSTOP) and send ``count`` events until a write is deferred and
    the outbox is empty; the body runs frozen, the broker runs again on exit."""
    pipe = publisher._pipe
    assert pipe is not None
    # A small send buffer, so the frozen broker's receive buffer and ours fill quickly.
    pipe._paho._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    assert broker._proc is not None
    pid = broker._proc.pid  # the test's own Mosquitto process
    os.kill(pid, signal.SIGSTOP)
    try:
        for n in range(1, count + 1):
            publisher.send(PassEvent(antenna="a1", norad_id=n, event="tca"))

        async def deferred() -> None:
            while publisher.stats.writes_deferred == 0 or len(publisher._outbox):
                await clock.sleep(0.01)  # polls a counter nothing signals

        await asyncio.wait_for(deferred(), DEADLINE_S)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_writes_the_socket_defers_still_arrive_in_order(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """With the broker frozen the socket fills; queued writes go out in order once it runs."""
    broker = await _unqueued_broker(mosquitto_factory)
    clock = SystemClock()
    config = fast_config(broker.url, max_inflight=10_000, outbox_events=20_000)
    count = 2000
    async with (
        Subscriber(broker.port, [EVENTS]) as sub,
        MqttPublisher(config, "gs1", clock) as publisher,
    ):
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        async with _frozen_with_backlog(publisher, broker, clock, count):
            assert publisher.pending > 0
        # Keep producing while the backlog drains: new writes must queue behind it, never
        # slip onto the socket between the parts of a half-written one.
        for n in range(count + 1, 2 * count + 1):
            publisher.send(PassEvent(antenna="a1", norad_id=n, event="tca"))
            await clock.sleep(0)
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        await sub.wait_for(lambda ms: len(ms) >= 2 * count)
        assert _seqs(sub.messages, EVENTS) == list(range(1, 2 * count + 1))
        assert publisher.stats.acknowledged == publisher.stats.published
        assert publisher.stats.disconnects == 0


def _every_seq_up_to(count: int, topic: str) -> Callable[[list[Received]], bool]:
    """A predicate: seq 1..count have all arrived on ``topic`` (reads each message once)."""
    missing = set(range(1, count + 1))
    read = 0

    def check(messages: list[Received]) -> bool:
        nonlocal read
        for message in messages[read:]:
            if message.topic == topic:
                missing.discard(int(message.json()["seq"]))
        read = len(messages)
        return not missing

    return check


def _takeover(port: int, client_id: str) -> socket.socket:
    """Connect a raw MQTT client with ``client_id``: the broker drops the one holding it."""
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id.encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    sock.sendall(bytes((0x10, len(body))) + body)
    return sock


async def test_events_in_writes_cut_off_by_a_lost_connection_are_resent_in_order(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """Events in writes still queued or unacknowledged when the connection goes are resent."""
    broker = await _unqueued_broker(mosquitto_factory)
    port = broker.port
    clock = SystemClock()
    config = fast_config(broker.url, max_inflight=10_000, outbox_events=20_000)
    count = 2000
    async with (
        Subscriber(port, [EVENTS]) as sub,
        MqttPublisher(config, "gs1", clock) as publisher,
    ):
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        async with _frozen_with_backlog(publisher, broker, clock, count):
            # Waiting in the frozen broker's backlog: a client taking over our client id.
            intruder = _takeover(port, publisher.client_id)
        with intruder:
            await asyncio.wait_for(
                publisher.wait_for(lambda p: p.stats.disconnects >= 1), DEADLINE_S
            )
        assert publisher.stats.requeued > 0
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        await sub.wait_for(_every_seq_up_to(count, EVENTS))
        first_seen = list(dict.fromkeys(_seqs(sub.messages, EVENTS)))
        assert first_seen == list(range(1, count + 1))  # none lost, in order


@pytest.mark.parametrize(
    "remaining", [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455]
)
def test_fixed_header_encodes_the_remaining_length_as_mqtt_says(remaining: int) -> None:
    """The remaining length is a base-128 varint, low group first, continuation bit 0x80."""
    header = _fixed_header(0x32, remaining)
    assert header[0] == 0x32
    value, shift = 0, 0
    for i, byte in enumerate(header[1:], start=1):
        value |= (byte & 0x7F) << shift
        shift += 7
        assert bool(byte & 0x80) == (i < len(header) - 1)  # continuation on all but the last
    assert value == remaining
    assert len(header) - 1 == max(1, (remaining.bit_length() + 6) // 7)


def test_topic_field_refuses_names_mqtt_refuses() -> None:
    """Wildcards, NUL, empty and over-long names are refused; a good one is length-prefixed."""
    assert _topic_field("groundlink/gs1/event") == b"\x00\x14groundlink/gs1/event"
    for bad in ["", "a/+/b", "a/#", "a\x00b", "x" * 65_536, "\udcff"]:
        assert _topic_field(bad) is None, bad


async def test_a_message_mqtt_cannot_carry_is_counted_and_the_rest_still_go(
    mosquitto: MosquittoBroker,
) -> None:
    """An unsendable message (wildcard topic) is dropped and counted; the pump goes on."""
    publisher = MqttPublisher(fast_config(mosquitto.url), "gs1", SystemClock())
    async with Subscriber(mosquitto.port, [EVENTS]) as sub, publisher:
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        bad = OutMessage(
            topic=PREFIX + "event/#",
            payload=b"{}",
            qos=1,
            retain=False,
            delivery=Delivery.EVENT,
            seq=1,
            type_name="event",
        )
        publisher._outbox.put(bad)  # no payload type routes here: only a bug could
        publisher.send(PassEvent(antenna="a1", norad_id=1, event="aos"))
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        await sub.wait_for(_every_seq_up_to(1, EVENTS))
        assert publisher.stats.unsendable == 1
        assert publisher.stats.acknowledged == publisher.stats.published


async def test_a_stream_backlog_larger_than_the_window_drains(
    mosquitto: MosquittoBroker,
) -> None:
    """QoS 0 samples (no acknowledgement to wake the pump) beyond the window all go out."""
    config = fast_config(mosquitto.url, max_inflight=10, outbox_stream_depth=1000)
    publisher = MqttPublisher(config, "gs1", SystemClock())
    async with Subscriber(mosquitto.port, [POINTING]) as sub, publisher:
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        for n in range(1, 301):
            publisher.send(_sample(n))
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        await sub.wait_for(_every_seq_up_to(300, POINTING))
        assert publisher.pending == 0
