"""The MQTT publisher: an aiomqtt client under a supervisor, fed by the bounded outbox.

Life of a connection (one :meth:`MqttPublisher._session`)::

    connect (clean session, stable client id, keepalive, will: status = lost, retained)
    subscribe cmd/+ (QoS 1)
    re-publish every retained topic from memory (the broker may have lost them), wait
    for every acknowledgement, then publish a fresh status (e.g. ready)
    pump: outbox -> broker, until the connection drops or close() has drained the outbox
    a lost connection raises in the reader; unacknowledged events go back to the outbox

Between connections the supervisor waits a jittered, capped exponential backoff on the
injected clock. Producers never wait for any of this: ``send()`` encodes the message and
puts it in the outbox, connected or not, so the daemon starts and tracks with the broker
down and catches up when it comes back.

Why the pump writes PUBLISH packets itself: aiomqtt 2 awaits each ``publish()`` on its
own (an Event, a ``wait_for`` task and a scan of every pending call per message), which
holds one publisher to about 4,000 messages/s here; paho's own ``publish()`` still
makes a message-info object with a lock, one ``send`` system call and a callback with
properties objects per message, and reads each 4-byte PUBACK with three ``recv`` calls
in a loop iteration of its own. So each pump pass takes every message the in-flight
window has room for, builds their PUBLISH packets and writes them in one ``send``;
PUBACKs are read ahead and settled in bulk (:class:`_PahoPipe`). The pump keeps at most
``max_inflight`` messages unacknowledged and retires them in order. aiomqtt (and paho
under it) still owns the connection, the will, TLS, authentication, subscriptions,
keepalive and incoming messages. aiomqtt 3 drops paho; this is the one place to revisit
then.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, cast

import aiomqtt
import paho.mqtt.client as paho_mqtt

from controller.telemetry.commands import (
    COMMAND_MODELS,
    CommandDispatcher,
    CommandHandler,
    CommandIntake,
)
from controller.telemetry.config import MqttConfig, MqttConfigError
from controller.telemetry.outbox import Outbox, OutboxStats
from controller.telemetry.payloads import PAYLOAD_TYPES, Event, Payload, Status, schema_document
from controller.telemetry.sink import Encoder, OutMessage
from controller.telemetry.topics import TopicTree
from firmware_bridge.clock import Clock

__all__ = ["Backoff", "LinkState", "MqttPublisher", "PublisherStats"]

_log = logging.getLogger(__name__)

# Messages written per pump pass (one socket write) before yielding to the event loop:
# large enough to amortise the pass, small enough that producers and the reader of
# acknowledgements run often (256 telemetry messages are about 80 KiB).
_BATCH = 256


class LinkState(StrEnum):
    """Where the supervisor is."""

    IDLE = "idle"  # run() not started
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    CLOSED = "closed"


@dataclass
class PublisherStats:
    """Counters of the publisher (for health reports and tests)."""

    connect_attempts: int = 0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    published: int = 0
    acknowledged: int = 0
    requeued: int = 0
    writes: int = 0  # socket writes: each carries every message one pump pass had ready
    writes_deferred: int = 0  # writes the socket could not take at once (broker behind)
    unsendable: int = 0  # messages MQTT cannot carry (invalid topic name, too large)
    commands_received: int = 0
    last_error: str | None = None
    last_backoff_s: float | None = None


class Backoff:
    """Capped exponential backoff with equal jitter: delay in [ceiling/2, ceiling]."""

    def __init__(
        self, min_s: float, max_s: float, *, rng: random.Random, factor: float = 2.0
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"backoff needs 0 < min_s <= max_s, got {min_s} and {max_s}")
        if factor < 1.0:
            raise ValueError(f"backoff factor must be >= 1, got {factor}")
        self.min_s = min_s
        self.max_s = max_s
        self._factor = factor
        self._rng = rng
        self._ceiling = min_s

    @property
    def ceiling_s(self) -> float:
        """The upper bound of the next delay."""
        return self._ceiling

    def next_delay(self) -> float:
        """The next delay; each call doubles the ceiling up to ``max_s``."""
        ceiling = self._ceiling
        self._ceiling = min(self.max_s, ceiling * self._factor)
        return self._rng.uniform(ceiling / 2.0, ceiling)

    def reset(self) -> None:
        """Start again from ``min_s`` (after a successful connection)."""
        self._ceiling = self.min_s


class _PipeBroken(Exception):
    """The connection is gone: paho has no socket, or writing to it failed."""


_PUBLISH = 0x30
_MAX_REMAINING = 268_435_455  # the largest MQTT remaining length (4 varint bytes)
_READ_AHEAD = 1 << 16


class _Chunk:
    """One socket write carrying several PUBLISH packets.

    paho calls ``_set_as_published()`` on the ``info`` of a QoS 0 PUBLISH it finished
    writing from its output queue; a chunk the socket could not take at once waits there
    posing as one such packet, so it still reports when its last byte is out.
    """

    __slots__ = ("wake", "written")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.written = False
        self.wake = wake

    def _set_as_published(self) -> None:
        self.written = True
        self.wake()


class _PahoPipe:
    """Publishes through the socket of the paho client inside an aiomqtt client.

    Writing: :meth:`publish_many` builds the PUBLISH packets itself and hands them all
    to the socket in one write (or, when paho has bytes of its own waiting, to paho's
    output queue as one entry behind them, so packets never interleave). No per-message
    ``MQTTMessageInfo``, lock, callback or properties object is made. Packet ids come
    from paho's own counter, shared with its SUBSCRIBE, so ids in flight stay unique.

    Acknowledgements: QoS 0 messages count as done when their chunk is written, QoS 1
    messages when the broker's PUBACK arrives. paho's PUBACK handler is wrapped to
    settle our packet ids (paho never knew them) and pass anything else on.

    Reading: paho reads a packet with three ``recv`` calls (type, length, body) and
    handles one packet per readable event, so a stream of 4-byte PUBACKs costs a loop
    iteration and three system calls each. Its ``_sock_recv`` is wrapped to read ahead
    up to 64 KiB and serve paho's small reads from that buffer, and ``loop_read`` to
    keep going while read-ahead bytes remain: whenever paho is between packets, a run of
    PUBACKs for our ids is settled straight from the buffer; anything else (SUBACK,
    PINGRESP, incoming commands, a PUBACK split across reads) is left to paho.
    """

    def __init__(
        self, client: aiomqtt.Client, wake: Callable[[], None], stats: PublisherStats
    ) -> None:
        paho: Any = cast(Any, client._client)  # see the module docstring for why
        self._paho = paho
        self._wake = wake
        # (packet id, or 0 for QoS 0; message; the chunk it went out in), oldest first.
        self._inflight: deque[tuple[int, OutMessage, _Chunk]] = deque()
        self._awaiting_ack: set[int] = set()
        self._topics: dict[str, bytes] = {}  # topic -> its length-prefixed UTF-8 form
        self._stats = stats  # writes, writes_deferred and unsendable are counted here
        awaiting = self._awaiting_ack
        handle_ack: Callable[[str], Any] = paho._handle_pubackcomp
        success = paho_mqtt.MQTT_ERR_SUCCESS

        def handle_pubackcomp(cmd: str) -> Any:
            packet = paho._in_packet["packet"]
            if cmd == "PUBACK" and len(packet) >= 2:
                mid = (packet[0] << 8) | packet[1]
                if mid in awaiting:
                    awaiting.discard(mid)
                    wake()
                    return success
            return handle_ack(cmd)

        sock_recv: Callable[[int], bytes] = paho._sock_recv
        ahead = [b"", 0]  # read-ahead bytes and the position served up to

        def read_ahead(bufsize: int) -> bytes:
            data, pos = cast(bytes, ahead[0]), cast(int, ahead[1])
            if pos >= len(data):
                data, pos = sock_recv(_READ_AHEAD), 0  # raises BlockingIOError when dry
                ahead[0] = data
            out = data[pos : pos + bufsize]
            ahead[1] = pos + len(out)
            return out

        loop_read: Callable[[int], Any] = paho.loop_read

        def loop_read_all(max_packets: int = 1) -> Any:
            rc = loop_read(max_packets)  # reads the socket (through read_ahead)
            while rc == success:
                data, pos = cast(bytes, ahead[0]), cast(int, ahead[1])
                if paho._in_packet["command"] == 0:
                    # paho is between packets: settle a run of our PUBACKs (40 02 id id)
                    # right here, without paho's per-packet reads, dicts and logging.
                    start, end = pos, len(data) - 3
                    while pos < end and data[pos] == 0x40 and data[pos + 1] == 2:
                        mid = (data[pos + 2] << 8) | data[pos + 3]
                        if mid not in awaiting:
                            break
                        awaiting.discard(mid)
                        pos += 4
                    if pos != start:
                        ahead[1] = pos
                        wake()
                if pos >= len(data):
                    break
                rc = loop_read(max_packets)  # anything else: paho reads and handles it
            return rc

        paho._handle_pubackcomp = handle_pubackcomp
        paho._sock_recv = read_ahead
        paho.loop_read = loop_read_all

    def publish_many(self, messages: Iterable[OutMessage]) -> int:
        """Send ``messages`` in one socket write; return how many went.

        Raises _PipeBroken when the connection is gone; the messages are in flight by
        then, so :meth:`unacked` gives them back.
        """
        paho = self._paho
        chunk = _Chunk(self._wake)
        parts: list[bytes] = []
        inflight = self._inflight
        awaiting = self._awaiting_ack
        topics = self._topics
        count = 0
        for msg in messages:
            topic = topics.get(msg.topic)
            if topic is None:
                topic = _topic_field(msg.topic)
                if topic is None:
                    self._skip(msg, "its topic is not a valid MQTT topic name")
                    continue
                topics[msg.topic] = topic
            payload = msg.payload
            length = len(topic) + len(payload)
            if msg.qos:
                length += 2
                if length > _MAX_REMAINING:
                    self._skip(msg, "it is larger than MQTT allows")
                    continue
                mid = paho._mid_generate()
                while mid in awaiting:  # only when 65,535 ids are in flight
                    mid = paho._mid_generate()
                awaiting.add(mid)
                parts += (_fixed_header(0x32 | msg.retain, length), topic, _MIDS[mid], payload)
            else:
                if length > _MAX_REMAINING:
                    self._skip(msg, "it is larger than MQTT allows")
                    continue
                mid = 0
                parts += (_fixed_header(_PUBLISH | msg.retain, length), topic, payload)
            inflight.append((mid, msg, chunk))
            count += 1
        if count:
            self._write(b"".join(parts), chunk)
        return count

    def _skip(self, msg: OutMessage, why: str) -> None:
        self._stats.unsendable += 1
        _log.error("MQTT message on %r not sent: %s", msg.topic, why)

    def _write(self, data: bytes, chunk: _Chunk) -> None:
        paho = self._paho
        if paho._sock is None:
            raise _PipeBroken("the MQTT connection is closed")
        sent = 0
        if not paho._out_packet:  # no packet of paho's half-written: write straight away
            try:
                sent = paho._sock_send(data)
            except BlockingIOError:
                sent = 0  # paho has registered for writability; queue it below
            except OSError as exc:
                raise _PipeBroken(f"writing to the MQTT connection failed: {exc}") from exc
        self._stats.writes += 1
        if sent == len(data):
            chunk.written = True
            return
        self._stats.writes_deferred += 1
        paho._out_packet.append(
            {
                "command": _PUBLISH,  # a QoS 0 PUBLISH to paho: it calls info when written
                "mid": 0,
                "qos": 0,
                "pos": sent,
                "to_process": len(data) - sent,
                "packet": data,
                "info": chunk,
            }
        )
        paho._call_socket_register_write()

    def collect(self) -> int:
        """Forget messages done at the front (in order); return how many."""
        done = 0
        inflight = self._inflight
        awaiting = self._awaiting_ack
        while inflight:
            mid, _, chunk = inflight[0]
            if (mid in awaiting) if mid else not chunk.written:
                break
            inflight.popleft()
            done += 1
        return done

    def __len__(self) -> int:
        """Messages handed over and not yet known done."""
        return len(self._inflight)

    def unacked(self) -> list[OutMessage]:
        """Messages not acknowledged (QoS 1) or not written (QoS 0), oldest first."""
        awaiting = self._awaiting_ack
        return [
            msg
            for mid, msg, chunk in self._inflight
            if ((mid in awaiting) if mid else not chunk.written)
        ]


_MIDS = [mid.to_bytes(2, "big") for mid in range(65_536)]  # packet id -> its 2 bytes


def _topic_field(topic: str) -> bytes | None:
    """The length-prefixed UTF-8 topic of a PUBLISH, or None if MQTT refuses the name."""
    try:
        raw = topic.encode()
    except UnicodeEncodeError:
        return None
    if not raw or len(raw) > 65_535 or "+" in topic or "#" in topic or "\x00" in topic:
        return None
    return len(raw).to_bytes(2, "big") + raw


def _fixed_header(head: int, remaining: int) -> bytes:
    """A packet's first byte and its remaining length (1 to 4 varint bytes)."""
    if remaining < 128:
        return bytes((head, remaining))
    if remaining < 16_384:  # telemetry messages: two length bytes
        return bytes((head, (remaining & 0x7F) | 0x80, remaining >> 7))
    out = bytearray((head,))
    while True:
        byte, remaining = remaining & 0x7F, remaining >> 7
        out.append(byte | 0x80 if remaining else byte)
        if not remaining:
            return bytes(out)


class MqttPublisher:
    """The station's MQTT side: telemetry out (a :class:`TelemetrySink`), commands in.

    Run it as a task (``tg.create_task(publisher.run(), name="mqtt")``) and stop it with
    :meth:`close`, or use it as an async context manager. ``send()`` works before,
    during and after connections.
    """

    def __init__(
        self,
        config: MqttConfig,
        station_id: str,
        clock: Clock,
        *,
        handler: CommandHandler | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self.station_id = station_id
        self.topics = TopicTree.for_station(station_id, config.prefix)
        self.client_id = config.client_id_for(station_id)
        self._encoder = Encoder(self.topics, clock)
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._outbox = Outbox(
            events_max=config.outbox_events,
            stream_depth=config.outbox_stream_depth,
            drop_notice=self._drop_notice,
            on_put=self._wake.set,
        )
        self.dispatcher = CommandDispatcher(
            handler,
            clock,
            max_age_s=config.command_max_age_s,
            max_bytes=config.command_max_bytes,
            enabled=frozenset(config.commands_enabled),
            timeout_s=config.command_timeout_s,
        )
        self._intake = CommandIntake(self.dispatcher, self.send)
        self._backoff = Backoff(
            config.reconnect_min_s, config.reconnect_max_s, rng=rng or random.Random()
        )
        self.stats = PublisherStats()
        self._state = LinkState.IDLE
        self._status = Status(state="starting")
        self._pipe: _PahoPipe | None = None
        self._idle = False  # connected, nothing queued, nothing unacknowledged
        self._ready = False  # connected and the retained state re-published
        self._running = False
        self._closing = False
        self._close_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._session_task: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[None] | None = None
        for cls in PAYLOAD_TYPES:
            self._outbox.put(self._encoder.encode_schema(cls.TYPE, schema_document(cls)))
        for verb, model in COMMAND_MODELS.items():
            self._outbox.put(self._encoder.encode_schema(f"cmd_{verb}", schema_document(model)))

    # -- producer side (TelemetrySink) -------------------------------------------------
    def send(self, payload: Payload) -> None:
        """Stamp and queue ``payload``; returns at once, connected or not."""
        if isinstance(payload, Status):
            self._status = payload
        self._outbox.put(self._encoder.encode(payload))

    # -- observation -------------------------------------------------------------------
    @property
    def link_state(self) -> LinkState:
        """Where the supervisor is."""
        return self._state

    @property
    def outbox_stats(self) -> OutboxStats:
        """The outbox counters (queued, dropped, superseded)."""
        return self._outbox.stats

    @property
    def pending(self) -> int:
        """Messages queued or handed to the client and not yet acknowledged."""
        return len(self._outbox) + (len(self._pipe) if self._pipe is not None else 0)

    async def wait_for(self, predicate: Callable[[MqttPublisher], bool]) -> None:
        """Return once ``predicate(self)`` holds (re-checked on every state change)."""
        while True:
            changed = self._changed
            if predicate(self):
                return
            await changed.wait()

    async def wait_connected(self) -> None:
        """Return once connected and the retained state has been re-published."""
        await self.wait_for(lambda p: p._state is LinkState.CONNECTED and p._ready)

    async def flush(self) -> None:
        """Return once connected with nothing queued and everything acknowledged."""
        await self.wait_for(
            lambda p: p._state is LinkState.CONNECTED and p._idle and p.pending == 0
        )

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, publish and reconnect until :meth:`close`; re-entry is an error."""
        if self._running or self._state is LinkState.CLOSED:
            raise RuntimeError("MqttPublisher.run() runs once; create a new publisher instead")
        self._running = True
        intake = asyncio.create_task(self._intake.run(), name="mqtt-commands")
        try:
            while not self._closing:
                connects_before = self.stats.connects
                self._session_task = asyncio.create_task(self._session(), name="mqtt-session")
                try:
                    await self._session_task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise
                    break  # close() gave up waiting and cancelled the session
                except Exception as exc:  # any failure ends one connection, never the loop
                    self._record_failure(exc, was_connected=self.stats.connects > connects_before)
                if self._closing:
                    break
                delay = self._backoff.next_delay()
                self.stats.last_backoff_s = delay
                self._set_state(LinkState.BACKOFF)
                await self._race(self._clock.sleep(delay), self._close_requested.wait())
        finally:
            intake.cancel()
            await asyncio.gather(intake, return_exceptions=True)
            self._set_state(LinkState.CLOSED)
            self._stopped.set()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Publish ``status`` = offline, drain what the broker can take, disconnect.

        Waits at most ``timeout_s`` on the clock for the drain; then the connection is
        cut. Messages still queued are counted in :attr:`pending`.
        """
        if not self._closing:
            self.send(Status(state="offline", detail="publisher closed"))
            self._closing = True
            self._close_requested.set()
            self._wake.set()
        if self._running:
            finished = await self._race(self._stopped.wait(), self._clock.sleep(timeout_s))
            if not finished and self._session_task is not None:
                self._session_task.cancel()
                await self._stopped.wait()
        else:
            self._set_state(LinkState.CLOSED)

    async def __aenter__(self) -> Self:
        """Start :meth:`run` in a task."""
        self._run_task = asyncio.create_task(self.run(), name=f"mqtt-{self.station_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close and wait for :meth:`run` to end."""
        await self.close()
        if self._run_task is not None:
            await self._run_task

    # -- one connection ----------------------------------------------------------------
    def _make_client(self) -> aiomqtt.Client:
        cfg = self._config
        address = cfg.address
        tls = None
        if address.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        will = self._encoder.will()
        return aiomqtt.Client(
            address.host,
            address.port,
            identifier=self.client_id,
            username=cfg.username,
            password=cfg.read_password(),
            will=aiomqtt.Will(will.topic, will.payload, will.qos, will.retain),
            clean_session=True,
            keepalive=cfg.keepalive_s,
            timeout=cfg.connect_timeout_s,
            tls_params=tls,
            # The pump bounds what is in flight itself (max_inflight); with a limit of
            # its own paho rescans every queued message on each PUBACK (O(n) per ack).
            max_inflight_messages=0,
            # Small telemetry packets must leave at once: with Nagle a sample can wait
            # for the broker's delayed ACK (40 ms on Linux), far beyond a 10 ms budget.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
            logger=_log,
        )

    async def _session(self) -> None:
        self._set_state(LinkState.CONNECTING)
        self.stats.connect_attempts += 1
        self._config.check_files()
        client = self._make_client()
        pipe: _PahoPipe | None = None
        try:
            async with client:
                pipe = self._pipe = _PahoPipe(client, self._wake.set, self.stats)
                self.stats.connects += 1
                self._backoff.reset()
                self._set_state(LinkState.CONNECTED)
                async with asyncio.TaskGroup() as tg:
                    reader = tg.create_task(self._read(client), name="mqtt-read")
                    await client.subscribe(self.topics.commands, qos=1)
                    # The broker may have lost the retained state (restart without
                    # persistence) and the will replaced status: put it all back, status
                    # last, so "ready" never shows on top of missing state.
                    replay = [m for m in self._outbox.replay() if m.topic != self.topics.status]
                    await self._publish_all(pipe, replay)
                    self._outbox.put(self._encoder.encode(self._status))
                    self._ready = True
                    self._notify()
                    await self._pump(pipe)
                    reader.cancel()
        finally:
            self._idle = self._ready = False
            self._pipe = None
            if pipe is not None:
                unacked = pipe.unacked()
                self.stats.requeued += len(unacked)
                self._outbox.requeue(unacked)
            if not self._closing:
                self._set_state(LinkState.CONNECTING)

    async def _read(self, client: aiomqtt.Client) -> None:
        """Feed commands to the intake; raises when the connection is lost."""
        async for message in client.messages:
            verb = self.topics.verb_of(message.topic.value)
            if verb is None:
                continue
            raw = message.payload
            payload = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
            self.stats.commands_received += 1
            self._intake.submit(verb, payload, retained=bool(message.retain))

    async def _publish_all(self, pipe: _PahoPipe, messages: list[OutMessage]) -> None:
        """Publish ``messages`` within the window and wait until all are acknowledged."""
        window = self._config.max_inflight
        queue = deque(messages)
        while True:
            self._wake.clear()
            self.stats.acknowledged += pipe.collect()
            room = min(_BATCH, window - len(pipe), len(queue))
            batch = [queue.popleft() for _ in range(room)] if room > 0 else []
            if batch:
                self.stats.published += pipe.publish_many(batch)
            if not queue and len(pipe) == 0:
                return
            if batch:
                await self._clock.sleep(0)  # let the reader take the acknowledgements
            else:
                await self._wake.wait()

    async def _pump(self, pipe: _PahoPipe) -> None:
        """Move the outbox to the broker; return when closing and everything is acked.

        Each pass settles what the broker acknowledged, then sends every message the
        window has room for (up to ``_BATCH``) in one socket write. The pump is woken by
        ``put`` and by acknowledgements; nothing set between ``clear()`` and ``wait()``
        is missed, as the loop only runs callbacks while the pump awaits.
        """
        window = self._config.max_inflight
        outbox = self._outbox
        while True:
            self._wake.clear()
            self.stats.acknowledged += pipe.collect()
            batch = outbox.take_many(min(_BATCH, window - len(pipe)))
            if batch:
                # (Messages MQTT cannot carry are dropped and counted, not published.)
                self.stats.published += pipe.publish_many(batch)
                self._idle = False
                self.stats.acknowledged += pipe.collect()  # QoS 0 written at once: done
                if len(outbox) and len(pipe) < window:
                    await self._clock.sleep(0)  # more to send: let producers, reader run
                    continue
                # Nothing more to send now: wait as below, which saves the event loop a
                # pass per batch at a steady rate.
            idle = len(outbox) == 0 and len(pipe) == 0
            if idle and self._closing:
                return
            if idle != self._idle:
                self._idle = idle
                self._notify()
            await self._wake.wait()

    # -- helpers -----------------------------------------------------------------------
    def _drop_notice(self, count: int, by_topic: dict[str, int]) -> OutMessage:
        detail: dict[str, str | int | float | bool | None] = {"dropped": count}
        for topic, n in sorted(by_topic.items()):
            detail[self.topics.relative(topic) or topic] = n
        return self._encoder.encode(
            Event(
                kind="events_dropped",
                severity="warning",
                message=(
                    f"{count} queued event(s) were dropped: the outbox holds at most "
                    f"{self._config.outbox_events} (mqtt.outbox_events)"
                ),
                source="mqtt",
                details=detail,
            )
        )

    def _record_failure(self, exc: BaseException, *, was_connected: bool) -> None:
        text = _describe(exc)
        self.stats.last_error = text
        if was_connected:
            self.stats.disconnects += 1
        else:
            self.stats.connect_failures += 1
        expected = (aiomqtt.MqttError, OSError, MqttConfigError, _PipeBroken)
        if _all_of(exc, expected):
            _log.warning("MQTT %s: %s", self._config.address.url, text)
        else:
            _log.error("MQTT session failed unexpectedly", exc_info=exc)
        self._notify()

    def _set_state(self, state: LinkState) -> None:
        if state is not self._state:
            self._state = state
            self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _race(self, first: Awaitable[Any], second: Awaitable[Any]) -> bool:
        """Await whichever finishes first, cancel the other; True if ``first`` won."""
        a = asyncio.ensure_future(first)
        b = asyncio.ensure_future(second)
        try:
            await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            a.cancel()
            b.cancel()
        return a.done() and not a.cancelled()


def _all_of(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_all_of(e, kinds) for e in exc.exceptions)
    return isinstance(exc, kinds)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
