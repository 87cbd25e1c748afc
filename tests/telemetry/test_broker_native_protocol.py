"""groundlink's MQTT broker at the byte level: CONNECT edge cases, QoS 2 handshakes,
packet ids, persistent sessions, keep-alive, and malformed packets.

Every test runs its own broker in-process on a free loopback port and talks to it with
raw sockets (:mod:`._raw_mqtt`), so each case sends exactly the bytes it is about.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import sys
from collections.abc import AsyncIterator

import pytest

from controller.telemetry.mqtt_broker import MqttBroker, MqttBrokerError
from firmware_bridge.clock import SystemClock, VirtualClock

from ._raw_mqtt import (
    RawClient,
    ack_packet,
    connect_packet,
    packet,
    publish_packet,
    string,
    subscribe_packet,
    unsubscribe_packet,
)
from ._samples import T0
from .conftest import DEADLINE_S


@pytest.fixture
async def broker() -> AsyncIterator[MqttBroker]:
    """A native broker on a free loopback port (no WebSocket)."""
    broker = MqttBroker()
    await broker.start("127.0.0.1", 0)
    yield broker
    await broker.stop()


async def _client(broker: MqttBroker, client_id: str, **options: object) -> RawClient:
    assert broker.tcp_port is not None
    client = await RawClient.open(broker.tcp_port)
    assert await client.connect(client_id, **options) == (0, 0)
    return client


# -- CONNECT ----------------------------------------------------------------------------


async def test_unsupported_protocol_level_is_refused_with_code_1(broker: MqttBroker) -> None:
    """MQTT level 5 gets CONNACK return code 1, then the connection is closed."""
    assert broker.tcp_port is not None
    client = await RawClient.open(broker.tcp_port)
    await client.send(connect_packet("v5", level=5))
    assert await client.closed_by_broker() == b"\x20\x02\x00\x01"


async def test_mqtt_3_1_mqisdp_level_3_is_accepted(broker: MqttBroker) -> None:
    """A 3.1 client (MQIsdp, level 3) connects and gets its subscriptions served."""
    client = await _client(broker, "old-client", name=b"MQIsdp", level=3)
    assert await client.subscribe(1, ("old/topic", 1)) == [1]
    await client.send(publish_packet("old/topic", b"hi", qos=1, pid=9))
    head, body = await client.packet()
    assert (head, body) == (0x40, b"\x00\x09")  # PUBACK of our publish
    received = await client.publish_received()
    assert (received.topic, received.payload, received.qos) == ("old/topic", b"hi", 1)
    await client.close()


async def test_empty_client_id_needs_a_clean_session(broker: MqttBroker) -> None:
    """An empty client id: accepted with clean_session = 1, code 2 and closed without."""
    assert broker.tcp_port is not None
    anonymous = await _client(broker, "", clean=True)
    await anonymous.ping()
    refused = await RawClient.open(broker.tcp_port)
    await refused.send(connect_packet("", clean=False))
    assert await refused.closed_by_broker() == b"\x20\x02\x00\x02"
    await anonymous.close()


async def test_duplicate_client_id_takes_over_and_fires_the_old_will(
    broker: MqttBroker,
) -> None:
    """A second CONNECT with a client id closes the first (will sent) and takes its session."""
    watcher = await _client(broker, "watcher")
    await watcher.subscribe(1, ("wills/#", 1), ("data", 1))
    first = await _client(broker, "station", clean=False, will=("wills/station", b"gone", 1, False))
    assert await first.subscribe(1, ("data", 1)) == [1]
    assert broker.tcp_port is not None
    second = await RawClient.open(broker.tcp_port)
    assert await second.connect("station", clean=False) == (1, 0)  # session present
    assert await first.closed_by_broker() == b""
    will = await watcher.publish_received()
    assert (will.topic, will.payload) == ("wills/station", b"gone")
    # The session's subscription now delivers to the second connection.
    await watcher.send(publish_packet("data", b"x", qos=1, pid=2))
    assert (await watcher.packet())[0] == 0x40
    delivered = await second.publish_received()
    assert (delivered.topic, delivered.payload) == ("data", b"x")
    for client in (watcher, second):
        await client.close()


# -- QoS and packet ids -----------------------------------------------------------------


async def test_inbound_qos2_is_delivered_once_even_when_resent(broker: MqttBroker) -> None:
    """Inbound QoS 2: PUBREC, a DUP resend not delivered twice, PUBREL -> PUBCOMP."""
    sub = await _client(broker, "sub")
    await sub.subscribe(1, ("q2/#", 2))
    pub = await _client(broker, "pub")
    await pub.send(publish_packet("q2/a", b"once", qos=2, pid=77))
    assert await pub.packet() == (0x50, b"\x00\x4d")
    await pub.send(publish_packet("q2/a", b"once", qos=2, pid=77, dup=True))
    assert await pub.packet() == (0x50, b"\x00\x4d")
    await pub.send(ack_packet(6, 77))
    assert await pub.packet() == (0x70, b"\x00\x4d")
    await pub.send(publish_packet("q2/a", b"sentinel", qos=0))
    first = await sub.publish_received()
    assert (first.payload, first.qos) == (b"once", 2)
    assert (await sub.publish_received()).payload == b"sentinel"  # no second "once"
    await sub.send(ack_packet(5, first.pid))
    assert await sub.packet() == (0x62, struct.pack("!H", first.pid))  # PUBREL
    await sub.send(ack_packet(7, first.pid))
    assert await sub.ping() == []
    for client in (sub, pub):
        await client.close()


async def test_packet_ids_are_per_session_and_never_zero(broker: MqttBroker) -> None:
    """Two subscribers each see ids 1, 2, 3 for the same three QoS 1 messages."""
    subs = [await _client(broker, f"s{i}") for i in range(2)]
    for sub in subs:
        await sub.subscribe(1, ("ids", 1))
    pub = await _client(broker, "pub")
    for n in range(3):
        await pub.send(publish_packet("ids", b"%d" % n, qos=1, pid=500 + n))
    for sub in subs:
        got = [await sub.publish_received() for _ in range(3)]
        assert [(m.pid, m.payload) for m in got] == [(1, b"0"), (2, b"1"), (3, b"2")]
    for client in (*subs, pub):
        await client.close()


async def test_packet_ids_wrap_around_past_ids_still_in_flight() -> None:
    """After 65535 the ids start again at 1, skipping an id whose PUBACK never came."""
    n = 65537
    broker = MqttBroker(max_queued=n)  # the whole burst waits in the queue, none dropped
    await broker.start("127.0.0.1", 0)
    try:
        sub = await _client(broker, "sub")
        await sub.subscribe(1, ("w", 1))
        pub = await _client(broker, "pub")
        burst = b"".join(publish_packet("w", b"", qos=1, pid=i % 65535 + 1) for i in range(n))
        await pub.send(burst)
        first = await sub.publish_received()
        assert first.pid == 1  # never acknowledged
        pids: list[int] = []
        while len(pids) < n - 1:
            batch = [await sub.publish_received() for _ in range(min(500, n - 1 - len(pids)))]
            pids += [m.pid for m in batch]
            await sub.send(b"".join(ack_packet(4, m.pid) for m in batch))
        assert pids[:3] == [2, 3, 4]
        assert pids[-3:] == [65535, 2, 3]
    finally:
        await broker.stop()


async def test_delivery_qos_is_the_lower_of_publish_and_subscription(
    broker: MqttBroker,
) -> None:
    """min(publish QoS, granted QoS) for each pair."""
    subs = {}
    for qos in (0, 1, 2):
        subs[qos] = await _client(broker, f"sub{qos}")
        assert await subs[qos].subscribe(1, ("m", qos)) == [qos]
    pub = await _client(broker, "pub")
    for pub_qos in (0, 1, 2):
        await pub.send(publish_packet("m", b"%d" % pub_qos, qos=pub_qos, pid=10 + pub_qos))
    for sub_qos, sub in subs.items():
        got = []
        for _ in range(3):
            message = await sub.publish_received()
            got.append((message.payload, message.qos))
            if message.qos == 1:
                await sub.send(ack_packet(4, message.pid))
        assert got == [(b"%d" % q, min(q, sub_qos)) for q in (0, 1, 2)]


async def test_subscribe_grants_qos_and_rejects_invalid_filters_only(
    broker: MqttBroker,
) -> None:
    """SUBACK: the requested QoS per valid filter, 0x80 for invalid ones; QoS 3 closes."""
    client = await _client(broker, "subber")
    codes = await client.subscribe(
        3, ("a", 0), ("b/+", 1), ("c/#", 2), ("d/#/e", 1), ("f+", 0), ("", 1)
    )
    assert codes == [0, 1, 2, 0x80, 0x80, 0x80]
    await client.send(subscribe_packet(4, ("g", 3)))
    assert await client.closed_by_broker() == b""


async def test_unsubscribe_stops_delivery_and_is_acknowledged(broker: MqttBroker) -> None:
    """UNSUBACK carries the packet id; the filter delivers nothing afterwards."""
    client = await _client(broker, "unsub")
    await client.subscribe(1, ("u/#", 0), ("sentinel", 0))
    await client.send(publish_packet("u/1", b"before"))
    assert (await client.publish_received()).payload == b"before"
    await client.send(unsubscribe_packet(0x1234, "u/#", "never/subscribed"))
    assert await client.packet() == (0xB0, b"\x12\x34")
    await client.send(publish_packet("u/1", b"after"))
    await client.send(publish_packet("sentinel", b"end"))
    assert (await client.publish_received()).payload == b"end"


async def test_pingreq_gets_pingresp(broker: MqttBroker) -> None:
    """PINGREQ -> PINGRESP."""
    client = await _client(broker, "pinger")
    await client.send(b"\xc0\x00")
    assert await client.packet() == (0xD0, b"")


# -- persistent sessions ----------------------------------------------------------------


async def test_persistent_session_queues_qos1_and_qos2_while_offline(
    broker: MqttBroker,
) -> None:
    """clean_session = 0 keeps subscriptions and queues QoS 1/2 (not 0) while offline."""
    sub = await _client(broker, "dash", clean=False)
    await sub.subscribe(1, ("ev/#", 2))
    await sub.send(b"\xe0\x00")  # DISCONNECT
    assert await sub.closed_by_broker() == b""
    pub = await _client(broker, "pub")
    await pub.send(publish_packet("ev/a", b"1", qos=1, pid=1))
    await pub.send(publish_packet("ev/a", b"zero", qos=0))
    await pub.send(publish_packet("ev/b", b"2", qos=2, pid=2))
    await pub.send(publish_packet("ev/a", b"3", qos=1, pid=3))
    await pub.ping()
    assert broker.tcp_port is not None
    back = await RawClient.open(broker.tcp_port)
    assert await back.connect("dash", clean=False) == (1, 0)
    got = [await back.publish_received() for _ in range(3)]
    assert [(m.payload, m.qos) for m in got] == [(b"1", 1), (b"2", 2), (b"3", 1)]
    await back.send(publish_packet("ev/live", b"live", qos=0))
    live = await back.publish_received()
    assert live.payload == b"live"  # the QoS 0 one was not queued: this came next
    await back.close()
    # A clean session discards it: no session present, no subscription left.
    fresh = await _client(broker, "dash", clean=True)
    await fresh.send(publish_packet("ev/a", b"nobody", qos=0))
    await fresh.ping()
    await fresh.send(b"\xe0\x00")
    assert await fresh.closed_by_broker() == b""
    again = await RawClient.open(broker.tcp_port)
    assert await again.connect("dash", clean=False) == (0, 0)


async def test_offline_queue_is_bounded() -> None:
    """Beyond max_queued, further messages for an offline session are dropped, counted."""
    broker = MqttBroker(max_queued=3)
    await broker.start("127.0.0.1", 0)
    try:
        sub = await _client(broker, "dash", clean=False)
        await sub.subscribe(1, ("ev", 1))
        await sub.send(b"\xe0\x00")  # DISCONNECT: once closed, the session is offline
        assert await sub.closed_by_broker() == b""
        pub = await _client(broker, "pub")
        for n in range(5):
            await pub.send(publish_packet("ev", b"%d" % n, qos=1, pid=n + 1))
        await pub.ping()
        assert broker.tcp_port is not None
        back = await RawClient.open(broker.tcp_port)
        assert await back.connect("dash", clean=False) == (1, 0)
        got = [(await back.publish_received()).payload for _ in range(3)]
        assert got == [b"0", b"1", b"2"]
        await back.send(subscribe_packet(2, ("other", 0)))
        assert (await back.packet())[0] == 0x90  # the SUBACK, not a fourth message
        assert broker.stats.dropped_queue_full == 2
    finally:
        await broker.stop()


async def test_unacknowledged_deliveries_are_resent_with_dup_on_reconnect(
    broker: MqttBroker,
) -> None:
    """Unacknowledged QoS 1 (DUP PUBLISH) and QoS 2 (PUBREL) are retried on reconnect."""
    sub = await _client(broker, "dash", clean=False)
    await sub.subscribe(1, ("r/#", 2))
    pub = await _client(broker, "pub")
    await pub.send(publish_packet("r/1", b"one", qos=1, pid=1))
    await pub.send(publish_packet("r/2", b"two", qos=2, pid=2))
    first = await sub.publish_received()
    second = await sub.publish_received()
    await sub.send(ack_packet(5, second.pid))  # PUBREC
    assert await sub.packet() == (0x62, struct.pack("!H", second.pid))
    await sub.close()
    assert broker.tcp_port is not None
    back = await RawClient.open(broker.tcp_port)
    assert await back.connect("dash", clean=False) == (1, 0)
    again = await back.publish_received()
    assert (again.pid, again.payload, again.dup, again.qos) == (first.pid, b"one", True, 1)
    assert await back.packet() == (0x62, struct.pack("!H", second.pid))


async def test_inflight_window_queues_the_rest_until_acknowledged() -> None:
    """With max_inflight = 2, a third QoS 1 message waits for a PUBACK."""
    broker = MqttBroker(max_inflight=2)
    await broker.start("127.0.0.1", 0)
    try:
        sub = await _client(broker, "sub")
        await sub.subscribe(1, ("w", 1), ("w0", 0))
        pub = await _client(broker, "pub")
        for n in range(3):
            await pub.send(publish_packet("w", b"%d" % n, qos=1, pid=n + 1))
        await pub.send(publish_packet("w0", b"qos0", qos=0))
        got = [await sub.publish_received() for _ in range(3)]
        assert [m.payload for m in got] == [b"0", b"1", b"qos0"]
        await sub.send(ack_packet(4, got[0].pid))
        third = await sub.publish_received()
        assert third.payload == b"2"
    finally:
        await broker.stop()


# -- will and keep-alive ----------------------------------------------------------------


async def test_keepalive_expiry_closes_the_client_and_publishes_its_will(
    broker: MqttBroker,
) -> None:
    """Nothing received for 1.5x keep-alive (1 s): the broker closes and sends the will."""
    watcher = await _client(broker, "watcher", keepalive_s=0)
    await watcher.subscribe(1, ("lost/#", 1))
    clock = SystemClock()
    started = clock.monotonic()
    silent = await _client(broker, "silent", keepalive_s=1, will=("lost/silent", b"lost", 1, False))
    will = await watcher.publish_received()
    waited_s = clock.monotonic() - started
    assert (will.topic, will.payload) == ("lost/silent", b"lost")
    assert 1.5 <= waited_s < 5.0
    assert await silent.closed_by_broker() == b""
    assert broker.stats.keepalive_expired == 1


async def test_a_client_that_pings_is_kept_past_its_keepalive(broker: MqttBroker) -> None:
    """PINGREQs every half keep-alive keep a 1 s client connected for over 3 s."""
    client = await _client(broker, "pinger", keepalive_s=1)
    clock = SystemClock()
    started = clock.monotonic()
    while clock.monotonic() - started < 3.0:
        # Waiting on the broker's reply (real I/O) paces the pings, not a sleep: a read
        # that times out after 0.5 s is the interval.
        with pytest.raises(TimeoutError):
            await client.packet(timeout_s=0.5)
        await client.ping()
    assert broker.stats.keepalive_expired == 0


# -- malformed packets ------------------------------------------------------------------

MALFORMED = {
    "reserved packet type": (b"\xf0\x00", "reserved packet type 15"),
    "subscribe flags": (packet(0x80, b"\x00\x01" + string("a") + b"\x00"), "flags"),
    "publish qos 3": (b"\x36\x05" + string("a") + b"\x00\x01", "QoS 3"),
    "wildcard topic": (publish_packet("a/+/c", b"x"), "not a valid topic name"),
    "bad utf-8 topic": (publish_packet(b"a\xff", b"x"), "not a valid topic name"),
    "length > 4 bytes": (b"\x30\xff\xff\xff\xff\x01", "remaining length"),
    "second connect": (connect_packet("again"), "second CONNECT"),
    "qos1 packet id 0": (publish_packet("a", b"x", qos=1, pid=0), "packet id 0"),
    "server packet": (b"\x90\x03\x00\x01\x00", "sent by servers"),
    "oversized": (b"\x30\xff\xff\xff\x7f", "exceeds the broker's limit"),
    "topic past end": (b"\x30\x04\x00\x09ab", "past the end"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_packet_closes_only_that_client(
    broker: MqttBroker, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed packet closes that client only (will sent), logged with its name and why."""
    data, problem = MALFORMED[case]
    bystander = await _client(broker, "bystander")
    await bystander.subscribe(1, ("#", 1))
    bad = await _client(broker, "offender", will=("wills/offender", b"lost", 0, False))
    with caplog.at_level(logging.WARNING, logger="controller.telemetry.mqtt_broker"):
        await bad.send(data)
        await bad.closed_by_broker()
    lines = [r.getMessage() for r in caplog.records if "offender" in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert problem in lines[0]
    will = await bystander.publish_received()
    assert (will.topic, will.payload) == ("wills/offender", b"lost")
    newcomer = await _client(broker, "newcomer")
    await newcomer.send(publish_packet("still/alive", b"yes", qos=1, pid=1))
    assert (await bystander.publish_received()).payload == b"yes"


async def test_packet_before_connect_is_refused(
    broker: MqttBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Anything but CONNECT first closes the connection, logged with the peer address."""
    assert broker.tcp_port is not None
    client = await RawClient.open(broker.tcp_port)
    with caplog.at_level(logging.WARNING, logger="controller.telemetry.mqtt_broker"):
        await client.send(publish_packet("a", b"x"))
        assert await client.closed_by_broker() == b""
    assert "PUBLISH before CONNECT" in caplog.text
    assert "tcp 127.0.0.1:" in caplog.text


async def test_packets_split_across_reads_and_many_per_read_are_parsed(
    broker: MqttBroker,
) -> None:
    """A large PUBLISH sent a byte at a time, and 200 small ones in one write, all arrive."""
    sub = await _client(broker, "sub")
    await sub.subscribe(1, ("big", 0), ("small", 0))
    pub = await _client(broker, "pub")
    big = publish_packet("big", bytes(range(256)) * 300, qos=1, pid=1)
    for i in range(0, len(big), 997):
        await pub.send(big[i : i + 997])
    assert await pub.packet() == (0x40, b"\x00\x01")
    await pub.send(b"".join(publish_packet("small", b"%d" % n) for n in range(200)))
    received = await sub.publish_received()
    assert received.payload == bytes(range(256)) * 300
    smalls = [(await sub.publish_received()).payload for _ in range(200)]
    assert smalls == [b"%d" % n for n in range(200)]


async def test_no_connect_within_the_timeout_closes_the_socket() -> None:
    """A TCP connection that never sends CONNECT is closed after connect_timeout_s."""
    broker = MqttBroker(connect_timeout_s=0.3)
    await broker.start("127.0.0.1", 0)
    try:
        assert broker.tcp_port is not None
        client = await RawClient.open(broker.tcp_port)
        assert await asyncio.wait_for(client.closed_by_broker(), 5.0) == b""
    finally:
        await broker.stop()


def test_bad_broker_settings_are_named() -> None:
    """A limit below 1 (or an in-flight window beyond the packet ids) names the setting."""
    with pytest.raises(ValueError, match="max_queued must be at least 1, not 0"):
        MqttBroker(max_queued=0)
    with pytest.raises(ValueError, match="max_inflight must be at most 65000, not 70000"):
        MqttBroker(max_inflight=70000)


async def test_a_taken_port_is_reported_and_a_second_start_refused(broker: MqttBroker) -> None:
    """start() on a port in use fails with the OS's reason; start() twice is an error."""
    other = MqttBroker()
    with pytest.raises(MqttBrokerError, match="address already in use"):
        await other.start("127.0.0.1", _port_of(broker))
    with pytest.raises(MqttBrokerError, match="already running"):
        await broker.start("127.0.0.1", 0)


def _port_of(broker: MqttBroker) -> int:
    assert broker.tcp_port is not None
    return broker.tcp_port


# -- read holds -------------------------------------------------------------------------

# A publisher in its own process writing one QoS 0 packet per send(), as fast as it can,
# then a PINGREQ; it exits once the PINGRESP says the broker has handled everything.
_FAST_PUBLISHER = """
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(bytes.fromhex(sys.argv[3]))
assert s.recv(4) == b"\\x20\\x02\\x00\\x00"
for i in range(n):
    body = struct.pack("!H", 4) + b"fast" + b"%08d" % i + b"x" * 280
    s.sendall(bytes((0x30, (len(body) & 0x7F) | 0x80, len(body) >> 7)) + body)
s.sendall(b"\\xc0\\x00")
while s.recv(65536) != b"\\xd0\\x00":
    pass
"""


async def test_a_fast_publisher_is_read_in_batches_and_loses_nothing(
    broker: MqttBroker,
) -> None:
    """One packet per send() at full speed: reads are held to batch them, nothing is lost."""
    sub = await _client(broker, "sub")
    await sub.subscribe(1, ("fast", 0))
    n = 20_000
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _FAST_PUBLISHER, str(_port_of(broker)), str(n),
        connect_packet("fast-pub").hex(),
    )  # fmt: skip
    try:
        got = [int((await sub.publish_received()).payload[:8]) for _ in range(n)]
        assert await asyncio.wait_for(child.wait(), DEADLINE_S) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert got == list(range(n))
    assert broker.stats.read_holds > 0


async def test_a_client_waiting_for_each_reply_is_not_held_at_every_read() -> None:
    """A client awaiting each PUBACK stops being held after a hold that gathered one packet."""
    # The broker measures client rates on its clock: a virtual one makes this client send
    # exactly 10,000 packets/s as the broker sees it, fast enough for holds (2,000/s).
    clock = VirtualClock(T0)
    broker = MqttBroker(clock=clock, read_hold_s=0.002)
    await broker.start("127.0.0.1", 0)
    try:
        client = await _client(broker, "sequential")
        n = 400
        for i in range(n):
            await clock.advance(0.0001)
            await client.send(publish_packet("seq", b"x", qos=1, pid=i + 1))
            assert await client.packet() == (0x40, struct.pack("!H", i + 1))
        # One hold per 10 ms rate window: 3 here; were every read after a hold that
        # gathered one packet held too, it would be nearly all of them.
        assert 0 < broker.stats.read_holds <= n / 50
    finally:
        await broker.stop()
