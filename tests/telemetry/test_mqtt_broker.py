"""The publisher against real brokers: Mosquitto (plain, password, TLS, ACL) and embedded.

Each test starts its own broker on a free loopback port. Waits are on received messages
or publisher state, each under an ``asyncio.wait_for`` deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

import aiomqtt
import pytest

from controller.telemetry.broker import EmbeddedBroker, EmbeddedBrokerError
from controller.telemetry.commands import COMMAND_MODELS
from controller.telemetry.config import MqttConfig
from controller.telemetry.mqtt import LinkState, MqttPublisher
from controller.telemetry.payloads import PAYLOAD_TYPES, AntennaState, PassEvent, Status
from controller.telemetry.topics import TOPIC_TABLE
from firmware_bridge.clock import SystemClock, VirtualClock

from ._handler import VALID, RecordingHandler
from ._jsonschema import validate
from ._samples import T0, samples
from .conftest import (
    ACL_EXAMPLE,
    DEADLINE_S,
    USERS,
    MosquittoBroker,
    MosquittoFactory,
    Received,
    Subscriber,
    TlsFiles,
    fast_config,
    free_port,
    kill_station_and_see_it_lost,
    secret_file,
)

PREFIX = "groundlink/gs1/"


async def _wait(awaitable: object, timeout_s: float = DEADLINE_S) -> None:
    await asyncio.wait_for(awaitable, timeout_s)  # type: ignore[arg-type]


def _cmd(clock: SystemClock, request_id: str, ts_offset_s: float = 0.0, **fields: object) -> bytes:
    ts = clock.now() + timedelta(seconds=ts_offset_s)
    return json.dumps({"request_id": request_id, "ts": ts.isoformat(), **fields}).encode()


async def test_every_topic_validates_against_its_published_schema(
    any_broker: tuple[str, int],
) -> None:
    """Each message received on each topic satisfies the schema/<type> document received."""
    url, port = any_broker
    async with Subscriber(port, [PREFIX + "#"]) as sub:
        async with MqttPublisher(fast_config(url), "gs1", SystemClock()) as publisher:
            await _wait(publisher.wait_connected())
            sent = samples()
            for payload in sent:
                publisher.send(payload)
            await _wait(publisher.flush())
            await sub.wait_for(
                lambda ms: sum(1 for m in ms if "/schema/" not in m.topic) >= len(sent) + 1
            )
        schemas = {
            m.topic.removeprefix(PREFIX + "schema/"): m.json()
            for m in sub.messages
            if m.topic.startswith(PREFIX + "schema/")
        }
        data = [m for m in sub.messages if not m.topic.startswith(PREFIX + "schema/")]
        checked_types = set()
        for msg in data:
            body = msg.json()
            type_name = body["schema"].removeprefix("groundlink.").split("/")[0]
            validate(body, schemas[type_name])
            checked_types.add(type_name)
        spec_types = {spec.payload_type for spec in TOPIC_TABLE if spec.delivery is not None}
        assert checked_types == spec_types - {"schema"}
        assert {f"cmd_{verb}" for verb in [*VALID, "ping"]} <= set(schemas)


async def test_late_subscriber_gets_every_retained_topic_and_nothing_else(
    mosquitto: MosquittoBroker,
) -> None:
    """State topics are retained with their latest value; streams and events are not."""
    async with MqttPublisher(fast_config(mosquitto.url), "gs1", SystemClock()) as publisher:
        await _wait(publisher.wait_connected())
        for payload in samples():
            publisher.send(payload)
        publisher.send(Status(state="degraded", detail="rotator a2 slow"))
        await _wait(publisher.flush())
        state = {"status", "info", "health", "alarms", "schedule", "catalog", "pass/current",
                 "antenna/a1/state", "antenna/a2/state", "radio/r1/state"}  # fmt: skip
        schemas = {f"schema/{c.TYPE}" for c in PAYLOAD_TYPES} | {
            f"schema/cmd_{verb}" for verb in COMMAND_MODELS
        }
        async with Subscriber(mosquitto.port, [PREFIX + "#"]) as late:
            await late.wait_for(
                lambda ms: state | schemas <= {m.topic.removeprefix(PREFIX) for m in ms}
            )
            assert all(m.retain for m in late.messages)
            assert {m.topic.removeprefix(PREFIX) for m in late.messages} == state | schemas
            status = late.on(PREFIX + "status")[-1].json()
            assert (status["state"], status["detail"]) == ("degraded", "rotator a2 slow")


async def test_last_will_marks_the_station_lost_when_its_process_is_killed(
    mosquitto: MosquittoBroker,
) -> None:
    """SIGKILL of the publishing process makes the broker publish status = lost, retained."""
    lost = await kill_station_and_see_it_lost(mosquitto.url, mosquitto.port, PREFIX)
    assert lost["seq"] == 0
    assert lost["schema"] == "groundlink.status/1"


async def test_broker_restart_loses_no_event_and_restores_retained_state(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """Events produced before, during and after a broker outage all arrive, in seq order."""
    broker = await mosquitto_factory(persistence=True)
    clock = SystemClock()
    produced = 0
    stop_producing = asyncio.Event()
    progress = asyncio.Event()

    async def produce(publisher: MqttPublisher) -> None:
        nonlocal produced, progress
        while not stop_producing.is_set():
            produced += 1
            publisher.send(PassEvent(antenna="a1", norad_id=produced, event="tca"))
            progress.set()
            progress = asyncio.Event()
            await clock.sleep(0.002)  # the production rate, not a wait for a condition

    async def produced_at_least(count: int) -> None:
        while produced < count:
            await progress.wait()

    # A dashboard that must not miss events: persistent session, QoS 1.
    dashboard = Subscriber(
        broker.port, [PREFIX + "pass/event"], identifier="dash-persistent", clean_session=False
    )
    async with dashboard, MqttPublisher(fast_config(broker.url), "gs1", clock) as publisher:
        await _wait(publisher.wait_connected())
        publisher.send(AntennaState(antenna="a1", mode="tracking", az_deg=10.0, el_deg=20.0))
        producer = asyncio.create_task(produce(publisher))
        await dashboard.wait_for(lambda ms: len(ms) >= 30)
        await broker.stop()  # mid-run: the producer keeps going
        await _wait(publisher.wait_for(lambda p: p.link_state is not LinkState.CONNECTED))
        during = produced
        await _wait(publisher.wait_for(lambda p: p.stats.connect_failures >= 1))
        publisher.send(AntennaState(antenna="a1", mode="parked", az_deg=0.0, el_deg=90.0))
        publisher.send(Status(state="ready"))
        await _wait(produced_at_least(during + 40))
        await broker.start()
        await _wait(publisher.wait_connected())
        await dashboard.reconnect()
        await _wait(produced_at_least(during + 80))
        stop_producing.set()
        await producer
        await _wait(publisher.flush())
        total = produced
        await dashboard.wait_for(
            lambda ms: {m.json()["seq"] for m in ms} >= set(range(1, total + 1))
        )
        seqs = [m.json()["seq"] for m in dashboard.messages]
        first_seen = list(dict.fromkeys(seqs))
        assert first_seen == list(range(1, total + 1))  # none lost, in order
        assert publisher.stats.disconnects >= 1
        async with Subscriber(broker.port, [PREFIX + "antenna/+/state", PREFIX + "status"]) as late:
            await late.wait_for(lambda ms: len({m.topic for m in ms}) == 2)
            state = late.on(PREFIX + "antenna/a1/state")[-1].json()
            assert (state["mode"], state["seq"]) == ("parked", 2)
            assert late.on(PREFIX + "status")[-1].json()["state"] == "ready"


async def test_password_authentication(
    mosquitto_factory: MosquittoFactory, password_file: Path, tmp_path: Path
) -> None:
    """The right password (read from a file) connects; a wrong one keeps failing, retried."""
    broker = await mosquitto_factory(password_file=password_file)
    good = fast_config(broker.url, username="gs1", password_file=secret_file(tmp_path, "gs1"))
    async with MqttPublisher(good, "gs1", SystemClock()) as publisher:
        await _wait(publisher.wait_connected())
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    bad = fast_config(broker.url, username="gs1", password_file=wrong)
    async with MqttPublisher(bad, "gs1", SystemClock()) as publisher:
        await _wait(publisher.wait_for(lambda p: p.stats.connect_failures >= 2))
        assert publisher.stats.connects == 0
        assert publisher.stats.last_error is not None
        assert "authori" in publisher.stats.last_error.lower()


async def test_tls_with_a_client_certificate(
    mosquitto_factory: MosquittoFactory, tls_files: TlsFiles
) -> None:
    """mqtts:// with the CA and a client certificate connects and delivers; without it fails."""
    broker = await mosquitto_factory(tls=tls_files)
    client_tls = aiomqtt.TLSParameters(
        ca_certs=str(tls_files.ca),
        certfile=str(tls_files.client_crt),
        keyfile=str(tls_files.client_key),
    )
    config = fast_config(
        broker.url,
        ca_file=tls_files.ca,
        cert_file=tls_files.client_crt,
        key_file=tls_files.client_key,
    )
    async with (
        Subscriber(broker.port, [PREFIX + "pass/event"], tls_params=client_tls) as sub,
        MqttPublisher(config, "gs1", SystemClock()) as publisher,
    ):
        await _wait(publisher.wait_connected())
        publisher.send(PassEvent(antenna="a1", norad_id=25544, event="los"))
        await sub.wait_for(lambda ms: len(ms) == 1)
    # Without a client certificate the broker drops the connection after the handshake;
    # aiomqtt then only notices at the CONNACK deadline, so keep that short here.
    no_cert = fast_config(broker.url, ca_file=tls_files.ca, connect_timeout_s=0.5)
    async with MqttPublisher(no_cert, "gs1", SystemClock()) as publisher:
        await _wait(publisher.wait_for(lambda p: p.stats.connect_failures >= 1))
        assert publisher.stats.connects == 0


async def _raw_client(port: int, user: str) -> aiomqtt.Client:
    client = aiomqtt.Client("127.0.0.1", port, username=user, password=USERS[user])
    await asyncio.wait_for(client.__aenter__(), DEADLINE_S)
    return client


async def test_acl_keeps_each_station_in_its_own_subtree(
    mosquitto_factory: MosquittoFactory, password_file: Path
) -> None:
    """With docker/mosquitto.acl a station cannot write another station's topics."""
    broker = await mosquitto_factory(password_file=password_file, acl_file=ACL_EXAMPLE)
    async with Subscriber(
        broker.port, ["groundlink/#"], username="dashboard", password="dash-secret"
    ) as dashboard:
        station = await _raw_client(broker.port, "gs1")
        try:
            await station.publish("groundlink/gs2/status", b'{"forged": true}', qos=1)
            await station.publish("elsewhere/x", b"forged", qos=1)
            await station.publish("groundlink/gs1/event", b'{"sentinel": true}', qos=1)
            # Mosquitto forwards one client's messages in order: once the sentinel is
            # here, anything allowed before it would have arrived too.
            await dashboard.wait_for(lambda ms: any(m.topic == "groundlink/gs1/event" for m in ms))
            assert [m.topic for m in dashboard.messages] == ["groundlink/gs1/event"]
        finally:
            await station.__aexit__(None, None, None)


async def test_unauthorised_commands_never_reach_the_station(
    mosquitto_factory: MosquittoFactory, password_file: Path, tmp_path: Path
) -> None:
    """A dashboard cannot command; operators can; a station reads only its own cmd/#."""
    broker = await mosquitto_factory(password_file=password_file, acl_file=ACL_EXAMPLE)
    handler = RecordingHandler()
    clock = SystemClock()
    config = fast_config(broker.url, username="gs1", password_file=secret_file(tmp_path, "gs1"))
    async with (
        Subscriber(
            broker.port, [PREFIX + "reply/#"], username="operator", password="op-secret"
        ) as replies,
        MqttPublisher(config, "gs1", clock, handler=handler) as publisher,
    ):
        await _wait(publisher.wait_connected())
        dashboard = await _raw_client(broker.port, "dashboard")
        other = await _raw_client(broker.port, "gs2")
        operator = await _raw_client(broker.port, "operator")
        try:
            await dashboard.publish(PREFIX + "cmd/stow", _cmd(clock, "dash-1"), qos=1)
            await other.publish(PREFIX + "cmd/stow", _cmd(clock, "gs2-1"), qos=1)
            await operator.publish(PREFIX + "cmd/pause", _cmd(clock, "op-1"), qos=1)
            await replies.wait_for(lambda ms: len(ms) >= 1)
        finally:
            for client in (dashboard, other, operator):
                await client.__aexit__(None, None, None)
        assert [m.json()["request_id"] for m in replies.messages] == ["op-1"]
        assert [type(c).__name__ for c in handler.calls] == ["PauseCommand"]
        assert publisher.stats.commands_received == 1


async def test_bad_commands_over_the_broker_are_answered_and_harmless(
    any_broker: tuple[str, int],
) -> None:
    """Malformed, oversized, stale, retained, disabled and unknown commands get error replies."""
    url, port = any_broker
    clock = SystemClock()
    handler = RecordingHandler()
    # A retained command sitting on the broker before the station connects.
    async with aiomqtt.Client("127.0.0.1", port) as operator:
        await operator.publish(
            PREFIX + "cmd/pause", _cmd(clock, "retained-1", reason="old"), qos=1, retain=True
        )
    enabled = frozenset({"stow", "abort", "ping", "pause", "point"})
    config = fast_config(url, command_max_bytes=512, commands_enabled=enabled)
    async with (
        Subscriber(port, [PREFIX + "reply/#"]) as replies,
        MqttPublisher(config, "gs1", clock, handler=handler) as publisher,
    ):
        await _wait(publisher.wait_connected())
        async with aiomqtt.Client("127.0.0.1", port) as operator:
            sends = [
                ("point", b"{garbage"),
                ("point", _cmd(clock, "big-1", **VALID["point"], pad="x" * 600)),
                ("point", _cmd(clock, "stale-1", ts_offset_s=-3600, **VALID["point"])),
                ("track", _cmd(clock, "off-1", **VALID["track"])),
                ("launch", _cmd(clock, "unknown-1")),
                ("point", _cmd(clock, "good-1", **VALID["point"])),
            ]
            for verb, payload in sends:
                await operator.publish(PREFIX + f"cmd/{verb}", payload, qos=1)
            await replies.wait_for(lambda ms: len(ms) >= 7)
            await operator.publish(PREFIX + "cmd/pause", b"", qos=1, retain=True)  # clean up
        answers = sorted(
            (str(r["request_id"]), (r["error"] or {}).get("code", "ok"))
            for r in (m.json() for m in replies.messages)
        )
        assert answers == [
            ("None", "malformed"),  # no request_id can be read from garbage
            ("None", "too_large"),  # an oversized payload is not parsed at all
            ("good-1", "ok"),
            ("off-1", "not_authorised"),
            ("retained-1", "retained"),
            ("stale-1", "stale"),
            ("unknown-1", "unknown_verb"),
        ]
        assert {m.topic for m in replies.messages if m.json()["request_id"] == "unknown-1"} == {
            PREFIX + "reply/invalid"
        }
        assert [c.request_id for c in handler.calls] == ["good-1"]


async def test_embedded_broker_serves_tcp_and_websocket(embedded_broker: EmbeddedBroker) -> None:
    """A browser-style WebSocket subscriber sees what the station publishes over TCP."""
    assert embedded_broker.ws_url is not None
    assert embedded_broker.ws_url.startswith("ws://127.0.0.1:")
    ws_port = embedded_broker.ws_port
    assert ws_port is not None
    async with (
        Subscriber(ws_port, [PREFIX + "#"], transport="websockets", websocket_path="/") as sub,
        MqttPublisher(fast_config(embedded_broker.url), "gs1", SystemClock()) as publisher,
    ):
        await _wait(publisher.wait_connected())
        publisher.send(Status(state="ready"))
        publisher.send(PassEvent(antenna="a1", norad_id=25544, event="aos"))
        await sub.wait_for(
            lambda ms: (
                {PREFIX + "status", PREFIX + "pass/event"} <= {m.topic for m in ms}
                and any(m.topic == PREFIX + "status" and m.json()["state"] == "ready" for m in ms)
            )
        )


async def test_embedded_broker_refuses_non_loopback_and_double_start() -> None:
    """The embedded broker binds loopback only, and starts once."""
    with pytest.raises(EmbeddedBrokerError, match="not a loopback address"):
        EmbeddedBroker(host="0.0.0.0")
    async with EmbeddedBroker(port=0, ws_port=None) as broker:
        assert broker.ws_port is None
        with pytest.raises(EmbeddedBrokerError, match="already running"):
            await broker.start()
    with pytest.raises(EmbeddedBrokerError, match="not running"):
        _ = broker.url


def _relative(messages: list[Received]) -> list[str]:
    return [m.topic.removeprefix(PREFIX) for m in messages]


async def test_reconnect_republishes_retained_state_before_status(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """After a restart without persistence, the retained state comes back, status last."""
    broker = await mosquitto_factory(persistence=False)
    clock = VirtualClock(T0)  # the reconnect happens when the test advances it
    config = fast_config(broker.url)
    async with MqttPublisher(config, "gs1", clock) as publisher:
        await _wait(publisher.wait_connected())
        publisher.send(AntennaState(antenna="a1", mode="tracking", az_deg=1.0, el_deg=2.0))
        publisher.send(Status(state="ready"))
        await _wait(publisher.flush())
        await broker.stop()
        await _wait(publisher.wait_for(lambda p: p.link_state is LinkState.BACKOFF))
        await broker.start()  # empty: the retained store is gone
        async with Subscriber(broker.port, [PREFIX + "#"]) as sub:
            assert sub.messages == []
            await clock.advance(config.reconnect_max_s)
            await _wait(publisher.wait_connected())
            await sub.wait_for(lambda ms: PREFIX + "status" in {m.topic for m in ms})
            order = _relative(sub.messages)
            assert "antenna/a1/state" in order
            assert order.index("antenna/a1/state") < order.index("status")
            assert all(
                t.startswith("schema/") for t in order if t not in ("antenna/a1/state", "status")
            )
            assert sub.on(PREFIX + "status")[-1].json()["state"] == "ready"
        assert publisher.stats.connects == 2


async def test_clean_close_publishes_offline_and_no_will(mosquitto: MosquittoBroker) -> None:
    """close() leaves status = offline retained; the will (lost) is not sent."""
    async with Subscriber(mosquitto.port, [PREFIX + "status"]) as sub:
        async with MqttPublisher(fast_config(mosquitto.url), "gs1", SystemClock()) as publisher:
            await _wait(publisher.wait_connected())
            publisher.send(Status(state="ready"))
            await _wait(publisher.flush())
        await sub.wait_for(lambda ms: ms[-1].json()["state"] == "offline")
        # A sentinel from another client: had the will fired, it would come before this.
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as other:
            await other.publish(PREFIX + "status", b'{"sentinel": 1}', qos=1)
        await sub.wait_for(lambda ms: b"sentinel" in ms[-1].payload)
        states = [m.json().get("state") for m in sub.messages]
        assert states == ["starting", "ready", "offline", None]
        assert publisher.link_state is LinkState.CLOSED


async def test_outbox_overflow_during_an_outage_is_reported(
    mosquitto_factory: MosquittoFactory,
) -> None:
    """Beyond outbox_events, the oldest events go and an events_dropped event says how many."""
    broker = await mosquitto_factory()
    await broker.stop()
    # The publisher waits its backoff on a virtual clock, so it reconnects exactly when
    # the test advances time: after the subscriber is in place.
    clock = VirtualClock(T0)
    config = fast_config(broker.url, outbox_events=10)
    async with MqttPublisher(config, "gs1", clock) as publisher:
        await _wait(publisher.wait_for(lambda p: p.link_state is LinkState.BACKOFF))
        for n in range(1, 26):
            publisher.send(PassEvent(antenna="a1", norad_id=n, event="tca"))
        await broker.start()
        async with Subscriber(broker.port, [PREFIX + "pass/event", PREFIX + "event"]) as sub:
            await clock.advance(config.reconnect_max_s)
            await _wait(publisher.flush())
            await sub.wait_for(lambda ms: any(m.topic == PREFIX + "event" for m in ms))
            await sub.wait_for(lambda ms: len(ms) >= 11)
        seqs = [m.json()["seq"] for m in sub.on(PREFIX + "pass/event")]
        assert seqs == list(range(16, 26))
        notice = sub.on(PREFIX + "event")[0].json()
        assert notice["kind"] == "events_dropped"
        assert notice["details"] == {"dropped": 15, "pass/event": 15}


@pytest.mark.parametrize("process", [True, False])
async def test_embedded_broker_from_config_listens_where_the_config_says(process: bool) -> None:
    """[mqtt] embedded = true: the broker takes its TCP port from the broker URL, and runs
    in a child process unless embedded_process = false."""
    port = free_port()
    config = MqttConfig(
        embedded=True,
        broker=f"mqtt://127.0.0.1:{port}",
        embedded_ws_port=0,
        **({} if process else {"embedded_process": False}),
    )
    async with EmbeddedBroker.from_config(config) as broker:
        assert (broker.pid is not None) is process
        assert broker.tcp_port == port
        assert broker.ws_port not in (None, 0, port)
        async with MqttPublisher(fast_config(config.broker), "gs1", SystemClock()) as publisher:
            await _wait(publisher.wait_connected())


async def test_isolated_embedded_broker_relays_from_a_child_process() -> None:
    """isolated=True: the broker runs in its own process, relays telemetry, and exits on stop."""
    async with EmbeddedBroker(port=0, ws_port=0, isolated=True) as broker:
        pid = broker.pid
        assert pid is not None
        assert pid != os.getpid()
        ws_port = broker.ws_port
        assert ws_port not in (None, 0, broker.tcp_port)
        async with (
            Subscriber(broker.tcp_port, [PREFIX + "#"]) as sub,
            MqttPublisher(fast_config(broker.url), "gs1", SystemClock()) as publisher,
        ):
            await _wait(publisher.wait_connected())
            publisher.send(PassEvent(antenna="a1", norad_id=25544, event="aos"))
            await sub.wait_for(lambda ms: PREFIX + "pass/event" in {m.topic for m in ms})
    assert broker.pid is None
    # The child has exited and was reaped: its pid names no process any more.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_isolated_embedded_broker_reports_a_taken_port() -> None:
    """A child broker that cannot bind fails start() with the reason, not a hang."""
    async with EmbeddedBroker(port=0, ws_port=None) as first:
        taken = first.tcp_port
        with pytest.raises(EmbeddedBrokerError, match=f"could not listen on 127.0.0.1:{taken}"):
            await _wait(EmbeddedBroker(port=taken, ws_port=None, isolated=True).start())
