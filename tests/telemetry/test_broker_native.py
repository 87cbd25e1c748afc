"""groundlink's MQTT broker with real clients: aiomqtt over TCP and WebSocket, and the
station's own publisher, in-process and in the embedded broker's child process.

Waits are on messages or connection ends, each under an ``asyncio.wait_for`` deadline.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from websockets.asyncio.client import connect as ws_connect

from controller.telemetry.broker import EmbeddedBroker, EmbeddedBrokerError
from controller.telemetry.mqtt import MqttPublisher
from controller.telemetry.mqtt_broker import MqttBroker
from controller.telemetry.payloads import PassEvent, Status
from firmware_bridge.clock import SystemClock

from ._raw_mqtt import RawClient, connect_packet, publish_packet
from .conftest import DEADLINE_S, ROOT, Subscriber, fast_config, kill_station_and_see_it_lost

PREFIX = "groundlink/gs1/"


@pytest.fixture
async def broker() -> AsyncIterator[MqttBroker]:
    """A native broker on free loopback TCP and WebSocket ports."""
    broker = MqttBroker()
    await broker.start("127.0.0.1", 0, 0)
    yield broker
    await broker.stop()


def _port(broker: MqttBroker) -> int:
    assert broker.tcp_port is not None
    return broker.tcp_port


async def _take(client: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    """The next ``count`` messages of ``client``, under the deadline."""

    async def take() -> list[aiomqtt.Message]:
        got = []
        async for message in client.messages:
            got.append(message)
            if len(got) == count:
                break
        return got

    return await asyncio.wait_for(take(), DEADLINE_S)


async def test_wildcards_and_the_dollar_rule(broker: MqttBroker) -> None:
    """+ and # match by level ('a/#' includes 'a'); leading wildcards skip $ topics."""
    filters = ["a/+/c", "a/#", "#", "+/x", "$SYS/#", "+/+", "$SYS/+/load"]
    subs = {f: Subscriber(_port(broker), [f, "end"]) for f in filters}
    topics = ["a/b/c", "a", "a/b", "q/x", "$SYS/broker/load", "$SYS/x", "a/b/c/d", "/x"]
    for sub in subs.values():
        await sub.__aenter__()
    try:
        async with aiomqtt.Client("127.0.0.1", _port(broker)) as pub:
            for topic in topics:
                await pub.publish(topic, topic.encode(), qos=1)
            await pub.publish("end", b"end", qos=1)
        for sub in subs.values():
            await sub.wait_for(lambda ms: any(m.topic == "end" for m in ms))
        got = {f: [m.topic for m in sub.messages if m.topic != "end"] for f, sub in subs.items()}
    finally:
        for sub in subs.values():
            await sub.__aexit__(None, None, None)
    assert got == {
        "a/+/c": ["a/b/c"],
        "a/#": ["a/b/c", "a", "a/b", "a/b/c/d"],
        "#": ["a/b/c", "a", "a/b", "q/x", "a/b/c/d", "/x"],
        "+/x": ["q/x", "/x"],
        "$SYS/#": ["$SYS/broker/load", "$SYS/x"],
        "+/+": ["a/b", "q/x", "/x"],
        "$SYS/+/load": ["$SYS/broker/load"],
    }


async def test_subscription_after_a_topic_was_routed_is_served(broker: MqttBroker) -> None:
    """The routing cache is rebuilt on (un)subscribe: late joiners get messages, leavers none."""
    async with aiomqtt.Client("127.0.0.1", _port(broker)) as pub:
        await pub.publish("t/one", b"to nobody", qos=1)
        async with aiomqtt.Client("127.0.0.1", _port(broker)) as sub:
            await sub.subscribe("t/#", qos=1)
            await pub.publish("t/one", b"first", qos=1)
            assert [m.payload for m in await _take(sub, 1)] == [b"first"]
            await sub.unsubscribe("t/#")
            await sub.subscribe("end", qos=1)
            await pub.publish("t/one", b"after", qos=1)
            await pub.publish("end", b"end", qos=1)
            assert [m.payload for m in await _take(sub, 1)] == [b"end"]


async def test_retained_messages_set_replace_and_clear(broker: MqttBroker) -> None:
    """Retained: the latest per topic, retain flag on subscribe only, empty payload deletes."""
    async with aiomqtt.Client("127.0.0.1", _port(broker)) as pub:
        async with aiomqtt.Client("127.0.0.1", _port(broker)) as live:
            await live.subscribe("r/#", qos=1)
            await pub.publish("r/status", b"old", qos=1, retain=True)
            await pub.publish("r/status", b"new", qos=1, retain=True)
            await pub.publish("r/other", b"kept", qos=0, retain=True)
            forwarded = await _take(live, 3)
            assert [(m.payload, m.retain) for m in forwarded] == [
                (b"old", False),
                (b"new", False),
                (b"kept", False),
            ]
        async with aiomqtt.Client("127.0.0.1", _port(broker)) as late:
            await late.subscribe("r/#", qos=1)
            retained = sorted(
                (m.topic.value, m.payload, m.retain, m.qos) for m in await _take(late, 2)
            )
            assert retained == [("r/other", b"kept", True, 0), ("r/status", b"new", True, 1)]
        await pub.publish("r/status", b"", qos=1, retain=True)
        async with aiomqtt.Client("127.0.0.1", _port(broker)) as later:
            await later.subscribe("r/#", qos=1)
            await later.subscribe("r/sentinel", qos=1)
            await pub.publish("r/sentinel", b"end", qos=1)
            got = [(m.topic.value, m.payload) for m in await _take(later, 2)]
            assert got == [("r/other", b"kept"), ("r/sentinel", b"end")]


@pytest.mark.parametrize("qos", [1, 2])
async def test_qos_end_to_end_with_aiomqtt(broker: MqttBroker, qos: int) -> None:
    """aiomqtt publisher and subscriber at QoS 1 and 2: every message once, in order."""
    async with (
        aiomqtt.Client("127.0.0.1", _port(broker), identifier="sub") as sub,
        aiomqtt.Client("127.0.0.1", _port(broker), identifier="pub") as pub,
    ):
        await sub.subscribe("q/#", qos=qos)
        for n in range(50):
            await pub.publish(f"q/{n % 3}", b"%d" % n, qos=qos)
        await pub.publish("q/end", b"end", qos=qos)
        got = await _take(sub, 51)
    assert [m.payload for m in got] == [b"%d" % n for n in range(50)] + [b"end"]
    assert {m.qos for m in got} == {qos}


async def test_will_on_socket_close_but_not_on_disconnect(broker: MqttBroker) -> None:
    """A will is published when the socket just closes, not after DISCONNECT."""
    async with Subscriber(_port(broker), ["wills/#"]) as watcher:
        polite = aiomqtt.Client(
            "127.0.0.1",
            _port(broker),
            identifier="polite",
            will=aiomqtt.Will("wills/polite", b"lost", qos=1),
        )
        async with polite:
            pass  # aiomqtt's exit sends DISCONNECT
        rude = await RawClient.open(_port(broker))
        await rude.send(connect_packet("rude", will=("wills/rude", b"lost", 1, True)))
        assert (await rude.packet())[0] == 0x20
        await rude.close()
        await watcher.wait_for(lambda ms: len(ms) >= 1)
        async with aiomqtt.Client("127.0.0.1", _port(broker)) as other:
            await other.publish("wills/sentinel", b"end", qos=1)
        await watcher.wait_for(lambda ms: ms[-1].topic == "wills/sentinel")
        assert [(m.topic, m.payload) for m in watcher.messages] == [
            ("wills/rude", b"lost"),
            ("wills/sentinel", b"end"),
        ]
    async with Subscriber(_port(broker), ["wills/rude"]) as late:
        await late.wait_for(lambda ms: len(ms) == 1)
        assert late.messages[0].retain


async def test_aiomqtt_persistent_session_gets_what_it_missed(broker: MqttBroker) -> None:
    """aiomqtt, clean_session = False: QoS 1 messages sent while away arrive on reconnect."""

    def dashboard() -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1", _port(broker), identifier="dashboard", clean_session=False
        )

    async with dashboard() as dash:
        await dash.subscribe("ev", qos=1)
    async with aiomqtt.Client("127.0.0.1", _port(broker)) as pub:
        for n in range(5):
            await pub.publish("ev", b"%d" % n, qos=1)
    async with dashboard() as dash:
        got = await _take(dash, 5)
    assert [m.payload for m in got] == [b"%d" % n for n in range(5)]


async def test_slow_subscriber_loses_qos0_not_qos1() -> None:
    """A subscriber that stops reading loses QoS 0 (counted), not QoS 1; the publisher goes on."""
    broker = MqttBroker(high_water_bytes=64 * 1024)
    await broker.start("127.0.0.1", 0)
    try:
        sub = await RawClient.open(_port(broker))
        await sub.connect("slow")
        await sub.subscribe(1, ("s/#", 1))
        reading = sub.writer.transport
        assert isinstance(reading, asyncio.ReadTransport)
        reading.pause_reading()  # stop reading: the kernel buffers fill
        pub = await RawClient.open(_port(broker))
        await pub.connect("fast")
        chunk = b"x" * 8000
        n = 2000  # 16 MB: more than both loopback socket buffers hold
        for i in range(n):
            await pub.send(publish_packet("s/0", chunk))
            await pub.send(publish_packet("s/1", b"%d" % i + chunk, qos=1, pid=i % 65535 + 1))
        acks = [p for p in await pub.ping() if p[0] == 0x40]
        assert len(acks) == n  # the publisher got all its PUBACKs meanwhile
        assert broker.stats.dropped_qos0 > 0
        reading.resume_reading()
        qos1: list[int] = []
        qos0 = 0
        while len(qos1) < n:
            message = await sub.publish_received()
            if message.qos:
                qos1.append(int(message.payload[: -len(chunk)]))
                await sub.send(bytes((0x40, 2)) + message.pid.to_bytes(2, "big"))
            else:
                qos0 += 1
        assert qos1 == list(range(n))
        assert qos0 + broker.stats.dropped_qos0 == n
    finally:
        await broker.stop()


# -- WebSocket --------------------------------------------------------------------------


async def test_websocket_clients_publish_and_subscribe(broker: MqttBroker) -> None:
    """aiomqtt over WebSocket subscribes to and publishes for TCP clients."""
    assert broker.ws_port is not None
    ws_args = {"transport": "websockets", "websocket_path": "/mqtt"}
    async with (
        aiomqtt.Client("127.0.0.1", broker.ws_port, **ws_args) as browser,  # type: ignore[arg-type]
        aiomqtt.Client("127.0.0.1", _port(broker)) as station,
    ):
        await browser.subscribe("to/browser", qos=1)
        await station.subscribe("from/browser", qos=2)
        await station.publish("to/browser", b"telemetry" * 100, qos=1)
        got = await _take(browser, 1)
        assert (got[0].topic.value, got[0].payload) == ("to/browser", b"telemetry" * 100)
        await browser.publish("from/browser", b"cmd", qos=2)
        got = await _take(station, 1)
        assert (got[0].topic.value, got[0].payload, got[0].qos) == ("from/browser", b"cmd", 2)


async def test_websocket_negotiates_mqtt_and_reassembles_packets(broker: MqttBroker) -> None:
    """WebSocket: subprotocol 'mqtt'; packets split over or sharing messages are parsed."""
    connect = connect_packet("ws-raw")
    async with ws_connect(f"ws://127.0.0.1:{broker.ws_port}/", subprotocols=["mqtt"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "mqtt"
        await ws.send(connect[:5])
        await ws.send(connect[5:] + b"\xc0\x00")
        assert await asyncio.wait_for(ws.recv(), DEADLINE_S) == b"\x20\x02\x00\x00\xd0\x00"


# -- the embedded broker ----------------------------------------------------------------


async def test_embedded_broker_defaults_to_the_native_engine() -> None:
    """EmbeddedBroker runs MqttBroker unless told otherwise; an unknown engine is refused."""
    async with EmbeddedBroker(port=0, ws_port=None) as embedded:
        assert isinstance(embedded._broker, MqttBroker)
    with pytest.raises(EmbeddedBrokerError, match="engine 'mosquitto' is not one of native"):
        EmbeddedBroker(engine="mosquitto")  # type: ignore[arg-type]


async def test_amqtt_engine_is_still_available() -> None:
    """engine='amqtt' (the comparison in bench/broker.py) relays telemetry too."""
    async with EmbeddedBroker(port=0, ws_port=None, engine="amqtt") as embedded:
        assert not isinstance(embedded._broker, MqttBroker)
        async with (
            Subscriber(embedded.tcp_port, [PREFIX + "pass/event"]) as sub,
            MqttPublisher(fast_config(embedded.url), "gs1", SystemClock()) as publisher,
        ):
            await asyncio.wait_for(publisher.wait_connected(), DEADLINE_S)
            publisher.send(PassEvent(antenna="a1", norad_id=25544, event="aos"))
            await sub.wait_for(lambda ms: len(ms) == 1)


async def test_station_killed_is_marked_lost_through_the_child_broker() -> None:
    """A SIGKILLed station's will (status lost, retained) comes from the child broker."""
    async with EmbeddedBroker(port=0, ws_port=None, isolated=True) as embedded:
        await kill_station_and_see_it_lost(embedded.url, embedded.tcp_port, PREFIX)


async def test_child_broker_survives_a_malformed_client_and_logs_it() -> None:
    """The child broker drops only a malformed client and names it and the problem on stderr."""
    port_args = ["--port", "0"]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.telemetry.broker",
        *port_args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stderr is not None
        assert child.stdin is not None

        ports = json.loads(await asyncio.wait_for(child.stdout.readline(), 20))["ports"]
        port = int(ports["default"])
        bad = await RawClient.open(port)
        await bad.send(connect_packet("garbler") + b"\xf0\x00")
        await bad.closed_by_broker()
        line = await asyncio.wait_for(child.stderr.readline(), DEADLINE_S)
        assert b"client 'garbler'" in line
        assert b"reserved packet type 15" in line
        async with MqttPublisher(
            fast_config(f"mqtt://127.0.0.1:{port}"), "gs1", SystemClock()
        ) as publisher:
            await asyncio.wait_for(publisher.wait_connected(), DEADLINE_S)
            publisher.send(Status(state="ready"))
            await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        child.stdin.close()  # the parent going away: the child exits
        assert await asyncio.wait_for(child.wait(), DEADLINE_S) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
