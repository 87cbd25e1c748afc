"""groundlink's own MQTT 3.1.1 broker: asyncio, loopback, a few microseconds per message.

The embedded broker (:mod:`controller.telemetry.broker`) runs this by default. It is a
broker for one machine: anonymous clients, no TLS, no persistence across restarts. What
it implements of MQTT 3.1.1 (protocol level 4, and level 3 ``MQIsdp``):

* CONNECT/CONNACK with the refusal codes for an unsupported protocol level (1) and an
  empty client id without a clean session (2); a second connection with a client id
  that is connected already takes the session over and closes the first one;
* the will (topic, payload, QoS, retain), published when a connection ends for any
  reason but DISCONNECT: socket closed, keep-alive expired (1.5x the keep-alive with
  nothing received), protocol error, take-over;
* PUBLISH at QoS 0, 1 (PUBACK) and 2 (PUBREC/PUBREL/PUBCOMP) in both directions, each
  delivery at min(publish QoS, subscription QoS), with per-session packet ids;
* SUBSCRIBE/SUBACK (granted QoS = min(requested, 2); 0x80 for an invalid filter),
  UNSUBSCRIBE/UNSUBACK, ``+``/``#`` wildcards, and the ``$`` rule (a filter that starts
  with a wildcard does not match a topic that starts with ``$``);
* retained messages (an empty payload deletes one), sent with the retain flag on
  subscription;
* clean_session = 0: subscriptions, unacknowledged deliveries and QoS 1/2 messages
  that arrive while the client is away (up to ``max_queued`` per session) are kept
  and delivered, in order, when it comes back;
* a malformed packet closes that connection only, with one log line that names the
  client and the problem.

Speed comes from doing little per message: an :class:`asyncio.Protocol` per connection
that parses every packet in each read from one buffer; a routing cache from topic bytes
to the subscribing sessions (rebuilt on the first message after any (un)subscription);
a QoS 0 message that arrives as a QoS 0 packet is forwarded as the very bytes received;
everything one read produces for any connection goes out in one write per connection;
and a client that sends packet after packet (a station at 1,000x real time) has its
reads held for ``read_hold_s`` (2 ms) so that one wake-up and one recv serve several
packets. No task and no log line per message.

A subscriber that cannot keep up (its socket's send buffer past ``high_water_bytes``)
loses QoS 0 messages, counted in :attr:`MqttBroker.stats`; its QoS 1/2 messages wait in
the session's queue, as do those beyond ``max_inflight`` unacknowledged ones.

Time: keep-alive deadlines are read from the injected :class:`Clock` (a
:class:`SystemClock` unless given) by one sweeper task; MQTT keep-alive is real time for
the clients, so a daemon on a virtual clock still gives its broker a system clock. A
read hold is a pause in socket I/O, so it is timed like one, by the event loop
(``call_later``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from firmware_bridge.clock import Clock, SystemClock

__all__ = ["BrokerStats", "MqttBroker", "MqttBrokerError"]

_log = logging.getLogger(__name__)

# Packet types (the high nibble of the first byte).
CONNECT: Final = 1
CONNACK: Final = 2
PUBLISH: Final = 3
PUBACK: Final = 4
PUBREC: Final = 5
PUBREL: Final = 6
PUBCOMP: Final = 7
SUBSCRIBE: Final = 8
SUBACK: Final = 9
UNSUBSCRIBE: Final = 10
UNSUBACK: Final = 11
PINGREQ: Final = 12
PINGRESP: Final = 13
DISCONNECT: Final = 14

_NAMES: Final = {
    CONNECT: "CONNECT",
    CONNACK: "CONNACK",
    PUBLISH: "PUBLISH",
    PUBACK: "PUBACK",
    PUBREC: "PUBREC",
    PUBREL: "PUBREL",
    PUBCOMP: "PUBCOMP",
    SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK",
    UNSUBSCRIBE: "UNSUBSCRIBE",
    UNSUBACK: "UNSUBACK",
    PINGREQ: "PINGREQ",
    PINGRESP: "PINGRESP",
    DISCONNECT: "DISCONNECT",
}

# CONNACK return codes (MQTT 3.1.1, 3.2.2.3).
ACCEPTED: Final = 0
REFUSED_PROTOCOL_LEVEL: Final = 1
REFUSED_IDENTIFIER: Final = 2

_PINGRESP: Final = b"\xd0\x00"
_ROUTE_CACHE_MAX: Final = 65536
# Read holds (see _Connection.data_received): the span over which a client's packet rate
# is measured, and the packets per hold that make holding worth its timer and syscalls.
_RATE_WINDOW_S: Final = 0.01
_HOLD_MIN_BATCH: Final = 4
_SWEEP_MIN_S: Final = 0.02
_SWEEP_MAX_S: Final = 0.5


class MqttBrokerError(RuntimeError):
    """The broker could not start (address in use, ...)."""


class _ProtocolError(Exception):
    """A client broke MQTT 3.1.1: its connection is closed (the message says why)."""


@dataclass(slots=True)
class BrokerStats:
    """Counters since the broker started."""

    connections: int = 0
    publishes_received: int = 0
    deliveries: int = 0
    dropped_qos0: int = 0
    dropped_queue_full: int = 0
    protocol_errors: int = 0
    wills_published: int = 0
    keepalive_expired: int = 0
    read_holds: int = 0


# A message on its way to one session: topic bytes, payload, delivery QoS, retain flag.
_Msg = tuple[bytes, bytes, int, bool]
# A topic's subscribers: (session, maximum granted QoS) once per session.
_Route = tuple[tuple["_Session", int], ...]


class _Sink(Protocol):
    """Where a connection's bytes go: an asyncio transport, or the WebSocket adapter."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def close(self) -> None: ...


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _publish_head(topic_b: bytes, payload_bytes: int, qos: int, retain: bool, dup: bool) -> bytes:
    """A PUBLISH packet up to its packet id (QoS 1/2) or payload (QoS 0)."""
    head = 0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    length = 2 + len(topic_b) + payload_bytes + (2 if qos else 0)
    if length < 0x80:
        fixed = bytes((head, length))
    elif length < 0x4000:
        fixed = bytes((head, (length & 0x7F) | 0x80, length >> 7))
    else:
        fixed = bytes((head,)) + _varint(length)
    return fixed + len(topic_b).to_bytes(2, "big") + topic_b


def _publish_packet(
    topic_b: bytes, payload: bytes, qos: int, retain: bool, pid: int, dup: bool
) -> bytes:
    head = _publish_head(topic_b, len(payload), qos, retain, dup)
    if qos:
        return head + pid.to_bytes(2, "big") + payload
    return head + payload


def _long_length(buf: bytes, pos: int, n: int) -> tuple[int, int] | None:
    """(remaining length, where the body starts) of the packet at ``pos``; None if the
    length bytes are not all here yet."""
    length = 0
    shift = 0
    i = pos + 1
    while True:
        if i >= n:
            return None
        byte = buf[i]
        i += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, i
        shift += 7
        if shift > 21:
            raise _ProtocolError("remaining length longer than 4 bytes")


def _topic_filter_levels(topic_filter: str) -> tuple[str, ...] | None:
    """The levels of a valid topic filter, None if it is not one."""
    if not topic_filter or "\x00" in topic_filter:
        return None
    levels = tuple(topic_filter.split("/"))
    for i, level in enumerate(levels):
        if level == "#":
            if i != len(levels) - 1:
                return None
        elif level != "+" and ("+" in level or "#" in level):
            return None
    return levels


def _filter_matches(levels: tuple[str, ...], topic_levels: Sequence[str]) -> bool:
    if topic_levels[0].startswith("$") and levels[0] in ("+", "#"):
        return False  # MQTT 4.7.2: wildcards at the start never match $ topics
    n = len(topic_levels)
    for i, level in enumerate(levels):
        if level == "#":
            return True  # "a/#" matches "a" too (the parent level)
        if i >= n:
            return False
        if level != "+" and level != topic_levels[i]:
            return False
    return len(levels) == n


def _decode_topic_name(raw: bytes) -> str | None:
    """The topic name of a PUBLISH or will, or None if it is not a valid one."""
    try:
        topic = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        return None
    return topic


class _Session:
    """What the broker keeps for one client id (across connections if not clean)."""

    __slots__ = (
        "clean",
        "client_id",
        "conn",
        "incoming_qos2",
        "inflight",
        "next_pid",
        "queue",
        "released",
        "subscriptions",
    )

    def __init__(self, client_id: str, clean: bool) -> None:
        self.client_id = client_id
        self.clean = clean
        self.subscriptions: dict[str, int] = {}
        self.conn: _Connection | None = None
        self.next_pid = 0
        # Sent, not yet acknowledged: QoS 1 awaiting PUBACK, QoS 2 awaiting PUBREC.
        self.inflight: dict[int, _Msg] = {}
        # QoS 2 sent and PUBREC'd: PUBREL sent, awaiting PUBCOMP.
        self.released: set[int] = set()
        self.queue: deque[_Msg] = deque()
        # QoS 2 packet ids received (and delivered) whose PUBREL has not come yet.
        self.incoming_qos2: set[int] = set()


def _next_pid(session: _Session) -> int:
    """The session's next packet id: 1-65535, cycling, skipping ids still in flight (the
    in-flight window is far below 65535, so one is always free)."""
    pid = session.next_pid
    inflight = session.inflight
    released = session.released
    while True:
        pid = pid + 1 if pid < 65535 else 1
        if pid not in inflight and pid not in released:
            session.next_pid = pid
            return pid


class _Connection(asyncio.Protocol):
    """One client connection (TCP, or WebSocket through :class:`_WsSink`)."""

    def __init__(self, broker: MqttBroker, transport_name: str) -> None:
        self._broker = broker
        self._transport_name = transport_name
        self.sink: _Sink | None = None
        self.peer = "?"
        self.session: _Session | None = None
        self.client_id: str | None = None
        self.out = bytearray()
        self.paused = False
        self.closed = False
        self.keepalive_s = 0.0
        self.last_rx = 0.0
        self.connected_at = 0.0
        self._will: _Msg | None = None
        self._partial = bytearray()
        self._need = 0
        # TCP only: the transport whose reading a read hold pauses (see data_received).
        self._readable: asyncio.ReadTransport | None = None
        self._held = False
        self._busy = False
        self._after_hold = False
        self._window_start = 0.0
        self._window_packets = 0

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the broker; CONNECT must come within its connect timeout."""
        self.sink = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if isinstance(transport, asyncio.WriteTransport):
            high = self._broker.high_water_bytes
            transport.set_write_buffer_limits(high=high, low=high // 4)
        if isinstance(transport, asyncio.ReadTransport):
            self._readable = transport
        self._broker._accept(self)

    def data_received(self, data: bytes) -> None:
        """Parse and handle every complete packet received so far."""
        if self.closed:
            return
        broker = self._broker
        now = self.last_rx = broker._now()
        if self._partial:
            # Accumulate until the packet we stopped in is complete: one copy per packet,
            # not one per read, for a large packet that spans many reads.
            self._partial += data
            if len(self._partial) < self._need:
                return
            data = bytes(self._partial)
            self._partial = bytearray()
        packets = 0
        try:
            packets = self._parse(data)
        except _ProtocolError as exc:
            self.protocol_error(str(exc))
        broker._flush()
        hold_s = broker.read_hold_s
        if self._readable is None or self.closed or not hold_s:
            return
        # A client writing packet after packet (a station at 1,000x) costs a wake-up, a
        # recv and often a send per packet, several times the work of the packet itself.
        # From a client that sent at least _HOLD_MIN_BATCH packets per read_hold_s over
        # the last _RATE_WINDOW_S, take its packets after letting them gather in the
        # socket for read_hold_s; slower clients are served at once. A hold that gathered
        # a single packet (a client waiting for each reply) ends holding until the next
        # measurement.
        self._window_packets += packets
        elapsed_s = now - self._window_start
        if elapsed_s >= _RATE_WINDOW_S:
            self._busy = self._window_packets * hold_s >= _HOLD_MIN_BATCH * elapsed_s
            self._window_start = now
            self._window_packets = 0
        elif self._after_hold and packets < 2:
            self._busy = False
        self._after_hold = False
        if self._busy:
            broker.stats.read_holds += 1
            self._readable.pause_reading()
            self._held = True
            asyncio.get_running_loop().call_later(hold_s, self._release)

    def _release(self) -> None:
        if self._held and not self.closed and self._readable is not None:
            self._held = False
            self._after_hold = True
            self._readable.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone: publish the will unless the client said DISCONNECT."""
        self.closed = True
        self._broker._lost(self)
        self._broker._flush()

    def pause_writing(self) -> None:
        """The socket's send buffer is full: QoS 0 is dropped, QoS 1/2 queued meanwhile."""
        self.paused = True

    def resume_writing(self) -> None:
        """The send buffer drained: deliver what was queued."""
        self.paused = False
        if self.session is not None and self.session.conn is self:
            self._broker._pump(self.session)
            self._broker._flush()

    # -- parsing ------------------------------------------------------------------------
    def _parse(self, buf: bytes) -> int:
        """Handle every complete packet in ``buf``; keep the rest. Returns the count."""
        n = len(buf)
        pos = 0
        count = 0
        broker = self._broker
        max_bytes = broker.max_packet_bytes
        while n - pos >= 2:
            head = buf[pos]
            length = buf[pos + 1]
            if length < 0x80:
                start = pos + 2
            elif n - pos >= 3 and buf[pos + 2] < 0x80:
                # Two length bytes: every telemetry message of a few hundred bytes.
                length = (length & 0x7F) | (buf[pos + 2] << 7)
                start = pos + 3
            else:
                decoded = _long_length(buf, pos, n)
                if decoded is None:
                    break  # the length itself is incomplete
                length, start = decoded
            if length > max_bytes:
                raise _ProtocolError(
                    f"{_NAMES.get(head >> 4, 'packet')} of {length} bytes exceeds the "
                    f"broker's limit of {max_bytes} bytes"
                )
            end = start + length
            if end > n:
                break
            kind = head >> 4
            if kind == PUBLISH:
                if self.session is None:
                    raise _ProtocolError("PUBLISH before CONNECT")
                broker._on_publish(self, head, buf, pos, start, end)
            elif head == 0x40 and length == 2 and self.session is not None:
                # PUBACK, one per QoS 1 delivery: settled here without the general path.
                session = self.session
                acked = session.inflight.pop((buf[start] << 8) | buf[start + 1], None)
                if acked is not None and session.queue:
                    broker._pump(session)
            else:
                self._control(kind, head & 0x0F, buf[start:end])
            if self.closed:
                return count
            pos = end
            count += 1
        if pos < n:
            self._partial = bytearray(buf[pos:])
            # Bytes needed before parsing again: the whole packet if its length is known.
            self._need = max(2, self._packet_size(self._partial))
        return count

    @staticmethod
    def _packet_size(buf: bytearray) -> int:
        if len(buf) < 2:
            return 2
        length, shift, i = 0, 0, 1
        while i < len(buf):
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if not byte & 0x80:
                return i + length
        return len(buf) + 1

    def _control(self, kind: int, flags: int, body: bytes) -> None:
        name = _NAMES.get(kind)
        if name is None:
            raise _ProtocolError(f"reserved packet type {kind}")
        expected_flags = 2 if kind in (PUBREL, SUBSCRIBE, UNSUBSCRIBE) else 0
        if flags != expected_flags:
            raise _ProtocolError(
                f"{name} with fixed-header flags {flags:#x} (must be {expected_flags:#x})"
            )
        broker = self._broker
        if kind == CONNECT:
            if self.session is not None:
                raise _ProtocolError("second CONNECT on one connection")
            broker._on_connect(self, body)
            return
        session = self.session
        if session is None:
            raise _ProtocolError(f"{name} before CONNECT")
        if kind in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            if len(body) != 2:
                raise _ProtocolError(f"{name} with {len(body)} bytes of body (must be 2)")
            pid = (body[0] << 8) | body[1]
            if kind == PUBACK:
                if session.inflight.pop(pid, None) is not None and session.queue:
                    broker._pump(session)
            elif kind == PUBREC:
                if session.inflight.pop(pid, None) is not None or pid in session.released:
                    session.released.add(pid)
                    self.send(b"\x62\x02" + body)
            elif kind == PUBREL:
                session.incoming_qos2.discard(pid)
                self.send(b"\x70\x02" + body)
            else:
                session.released.discard(pid)
                if session.queue:
                    broker._pump(session)
        elif kind == SUBSCRIBE:
            broker._on_subscribe(self, session, body)
        elif kind == UNSUBSCRIBE:
            broker._on_unsubscribe(self, session, body)
        elif kind == PINGREQ:
            self.send(_PINGRESP)
        elif kind == DISCONNECT:
            self._will = None
            self.close()
        else:
            raise _ProtocolError(f"{name} is sent by servers, not clients")

    # -- output -------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Queue bytes for the write at the end of this round of input."""
        if not self.out:
            self._broker._dirty.append(self)
        self.out += data

    def set_will(self, will: _Msg | None) -> None:
        """The message to publish if this connection ends without DISCONNECT."""
        self._will = will

    def take_will(self) -> _Msg | None:
        """The will, once (None after DISCONNECT)."""
        will, self._will = self._will, None
        return will

    @property
    def name(self) -> str:
        """How log lines name this client."""
        who = f"client {self.client_id!r}" if self.client_id is not None else "client"
        return f"{who} ({self._transport_name} {self.peer})"

    def protocol_error(self, problem: str) -> None:
        """Log the problem and close this connection (its will is published)."""
        self._broker.stats.protocol_errors += 1
        _log.warning("MQTT broker: closing %s: %s", self.name, problem)
        self.close()

    def close(self) -> None:
        """Flush what is queued, then close the socket."""
        if self.closed:
            return
        self.closed = True
        sink = self.sink
        if sink is not None:
            if self.out:
                sink.write(self.out)
                self.out = bytearray()
            sink.close()


class _WsSink:
    """A connection's output through a WebSocket (binary messages), by one sender task."""

    def __init__(self, ws: Any, conn: _Connection, high_water_bytes: int) -> None:
        self._ws = ws
        self._conn = conn
        self._pending = bytearray()
        self._wake = asyncio.Event()
        self._closing = False
        self._high = high_water_bytes

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending += data
        self._wake.set()
        if len(self._pending) > self._high and not self._conn.paused:
            self._conn.pause_writing()

    def close(self) -> None:
        self._closing = True
        self._wake.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._ws.remote_address
        return default

    async def run(self) -> None:
        """Send what is written until closed (then close the WebSocket)."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._pending:
                    data, self._pending = bytes(self._pending), bytearray()
                    await self._ws.send(data)
                    if self._conn.paused and len(self._pending) <= self._high // 4:
                        self._conn.resume_writing()
                if self._closing and not self._pending:
                    await self._ws.close()
                    return
        except ConnectionClosed:
            return


def _string(body: bytes, pos: int, what: str) -> tuple[bytes, int]:
    if pos + 2 > len(body):
        raise _ProtocolError(f"{what} is cut short")
    size = (body[pos] << 8) | body[pos + 1]
    end = pos + 2 + size
    if end > len(body):
        raise _ProtocolError(f"{what} of {size} bytes runs past the end of the packet")
    return body[pos + 2 : end], end


def _utf8(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _ProtocolError(f"{what} is not valid UTF-8") from None
    if "\x00" in text:
        raise _ProtocolError(f"{what} contains U+0000")
    return text


class MqttBroker:
    """The broker: sessions, subscriptions, retained messages, and its listeners."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        max_queued: int = 10_000,
        max_inflight: int = 1000,
        max_packet_bytes: int = 16 * 1024 * 1024,
        high_water_bytes: int = 4 * 1024 * 1024,
        connect_timeout_s: float = 10.0,
        read_hold_s: float = 0.002,
    ) -> None:
        for name, value in (
            ("max_queued", max_queued),
            ("max_inflight", max_inflight),
            ("max_packet_bytes", max_packet_bytes),
            ("high_water_bytes", high_water_bytes),
        ):
            if value < 1:
                raise ValueError(f"MqttBroker {name} must be at least 1, not {value}")
        if not 0 <= read_hold_s <= 0.1:
            raise ValueError(f"MqttBroker read_hold_s must be 0-0.1 s, not {read_hold_s}")
        if max_inflight > 65000:
            raise ValueError(f"MqttBroker max_inflight must be at most 65000, not {max_inflight}")
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._now: Callable[[], float] = self._clock.monotonic
        self.max_queued = max_queued
        self.max_inflight = max_inflight
        self.max_packet_bytes = max_packet_bytes
        self.high_water_bytes = high_water_bytes
        self.connect_timeout_s = connect_timeout_s
        # Fewer, larger reads from fast clients for at most read_hold_s more latency (0: off).
        self.read_hold_s = read_hold_s
        self.stats = BrokerStats()
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        # filter -> {session: granted QoS}; the levels of each filter.
        self._subscriptions: dict[str, dict[_Session, int]] = {}
        self._filter_levels: dict[str, tuple[str, ...]] = {}
        # topic bytes -> (topic, subscribers), or None for an invalid topic name.
        self._routes: dict[bytes, tuple[str, _Route] | None] = {}
        self._retained: dict[str, tuple[bytes, bytes, int]] = {}
        self._dirty: list[_Connection] = []
        self._auto_ids = itertools.count(1)
        self._tcp: asyncio.Server | None = None
        self._ws: Any = None
        self._sweeper: asyncio.Task[None] | None = None
        self._ws_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.tcp_port: int | None = None
        self.ws_port: int | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self, host: str, port: int, ws_port: int | None = None) -> None:
        """Listen on ``host:port`` (TCP) and, if given, ``host:ws_port`` (WebSocket)."""
        if self._tcp is not None:
            raise MqttBrokerError("the broker is already running")
        loop = asyncio.get_running_loop()
        self._stopping = False
        try:
            self._tcp = await loop.create_server(
                lambda: _Connection(self, "tcp"), host, port, reuse_address=True
            )
            self.tcp_port = int(self._tcp.sockets[0].getsockname()[1])
            if ws_port is not None:
                from websockets.asyncio.server import serve

                self._ws = await serve(
                    self._ws_session,
                    host,
                    ws_port,
                    select_subprotocol=_select_mqtt,
                    compression=None,
                    ping_interval=None,  # MQTT has its own keep-alive
                    max_size=self.max_packet_bytes + 5,
                )
                self.ws_port = int(next(iter(self._ws.sockets)).getsockname()[1])
        except OSError as exc:
            await self.stop()
            raise MqttBrokerError(str(exc)) from exc
        self._sweeper = asyncio.create_task(self._sweep(), name="mqtt-broker-keepalive")

    async def stop(self) -> None:
        """Close the listeners and every connection (no wills: the broker is going)."""
        self._stopping = True
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        tcp, self._tcp = self._tcp, None
        ws, self._ws = self._ws, None
        if tcp is not None:
            tcp.close()
        for conn in list(self._connections):
            conn.set_will(None)
            conn.close()
        if ws is not None:
            ws.close()
            await ws.wait_closed()
        if tcp is not None:
            await tcp.wait_closed()
        if self._ws_tasks:
            await asyncio.wait(self._ws_tasks)
        self._connections.clear()
        self._sessions.clear()
        self._subscriptions.clear()
        self._routes.clear()
        self._retained.clear()
        self.tcp_port = self.ws_port = None

    async def _sweep(self) -> None:
        """Close connections whose keep-alive ran out or that never sent CONNECT.

        It wakes at the earliest deadline it knows of, at least every ``_SWEEP_MAX_S`` (for
        connections made meanwhile): at most that late, and idle when nothing is due.
        """
        wait_s = _SWEEP_MAX_S
        while True:
            await self._clock.sleep(wait_s)
            now = self._now()
            wait_s = _SWEEP_MAX_S
            for conn in list(self._connections):
                if conn.closed:
                    continue
                if conn.session is None:
                    left_s = conn.connected_at + self.connect_timeout_s - now
                    if left_s < 0:
                        conn.protocol_error(f"no CONNECT within {self.connect_timeout_s:g} s")
                    else:
                        wait_s = min(wait_s, left_s)
                    continue
                if not conn.keepalive_s:
                    continue
                left_s = conn.last_rx + 1.5 * conn.keepalive_s - now
                if left_s >= 0:
                    wait_s = min(wait_s, left_s)
                else:
                    self.stats.keepalive_expired += 1
                    _log.info(
                        "MQTT broker: closing %s: nothing received for %.1f s (keep-alive %g s)",
                        conn.name,
                        now - conn.last_rx,
                        conn.keepalive_s,
                    )
                    conn.close()
                    if isinstance(conn.sink, asyncio.Transport):
                        # An unresponsive peer may never let a graceful close finish.
                        conn.sink.abort()
            wait_s = max(wait_s, _SWEEP_MIN_S)
            self._flush()

    async def _ws_session(self, ws: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._ws_tasks.add(task)
        conn = _Connection(self, "websocket")
        sink = _WsSink(ws, conn, self.high_water_bytes)
        conn.connection_made(sink)  # type: ignore[arg-type]
        sender = asyncio.create_task(sink.run())
        from websockets.exceptions import ConnectionClosed

        try:
            async for frame in ws:
                if isinstance(frame, str):
                    conn.protocol_error("text WebSocket message (MQTT needs binary)")
                    break
                conn.data_received(frame)
                if conn.closed:
                    break
        except ConnectionClosed:
            pass
        finally:
            sink.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sender, 5.0)
            conn.connection_lost(None)
            if task is not None:
                self._ws_tasks.discard(task)

    # -- connections --------------------------------------------------------------------
    def _accept(self, conn: _Connection) -> None:
        if self._stopping:
            conn.close()
            return
        conn.connected_at = conn.last_rx = self._now()
        self._connections.add(conn)
        self.stats.connections += 1

    def _lost(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        session = conn.session
        if session is None or self._stopping:
            return
        will = conn.take_will()
        if session.conn is conn:
            session.conn = None
            if session.clean:
                self._discard(session)
        if will is not None:
            self._publish_will(will)

    def _flush(self) -> None:
        dirty = self._dirty
        if not dirty:
            return
        self._dirty = []
        for conn in dirty:
            out = conn.out
            if out and not conn.closed and conn.sink is not None:
                conn.out = bytearray()
                conn.sink.write(out)

    def _on_connect(self, conn: _Connection, body: bytes) -> None:
        name_raw, pos = _string(body, 0, "CONNECT protocol name")
        if pos + 4 > len(body):
            raise _ProtocolError("CONNECT variable header is cut short")
        level, flags = body[pos], body[pos + 1]
        keepalive = (body[pos + 2] << 8) | body[pos + 3]
        pos += 4
        if name_raw not in (b"MQTT", b"MQIsdp"):
            raise _ProtocolError(f"CONNECT protocol name {name_raw!r} (expected 'MQTT')")
        if (name_raw, level) not in ((b"MQTT", 4), (b"MQIsdp", 3)):
            conn.send(bytes((CONNACK << 4, 2, 0, REFUSED_PROTOCOL_LEVEL)))
            conn.protocol_error(
                f"CONNECT protocol {name_raw.decode(errors='replace')} level {level} "
                "(this broker speaks MQTT 3.1.1, level 4, and 3.1, level 3)"
            )
            return
        if flags & 0x01:
            raise _ProtocolError("CONNECT reserved flag is set")
        clean = bool(flags & 0x02)
        will_flag = bool(flags & 0x04)
        will_qos = (flags >> 3) & 0x03
        will_retain = bool(flags & 0x20)
        has_password = bool(flags & 0x40)
        has_user = bool(flags & 0x80)
        if will_qos == 3:
            raise _ProtocolError("CONNECT will QoS 3")
        if not will_flag and (will_qos or will_retain):
            raise _ProtocolError("CONNECT will QoS or retain set without a will")
        if has_password and not has_user:
            raise _ProtocolError("CONNECT password without a user name")
        raw_id, pos = _string(body, pos, "CONNECT client id")
        client_id = _utf8(raw_id, "CONNECT client id")
        conn.client_id = client_id or None
        will: _Msg | None = None
        if will_flag:
            raw_topic, pos = _string(body, pos, "CONNECT will topic")
            if _decode_topic_name(raw_topic) is None:
                raise _ProtocolError(f"CONNECT will topic {raw_topic!r} is not a valid topic name")
            will_payload, pos = _string(body, pos, "CONNECT will message")
            will = (raw_topic, will_payload, will_qos, will_retain)
        if has_user:
            _, pos = _string(body, pos, "CONNECT user name")
        if has_password:
            _, pos = _string(body, pos, "CONNECT password")
        if pos != len(body):
            raise _ProtocolError(f"CONNECT has {len(body) - pos} unexpected trailing bytes")
        if not client_id:
            if not clean:
                conn.send(bytes((CONNACK << 4, 2, 0, REFUSED_IDENTIFIER)))
                conn.protocol_error("empty client id with clean_session = 0")
                return
            client_id = f"groundlink-auto-{next(self._auto_ids)}-{id(conn):x}"
        conn.client_id = client_id
        conn.keepalive_s = float(keepalive)
        conn.set_will(will)
        previous = self._sessions.get(client_id)
        if previous is not None and previous.conn is not None:
            # MQTT 3.1.4-2: the new connection takes over; the old one is closed (and,
            # not having said DISCONNECT, its will is published).
            old = previous.conn
            previous.conn = None
            _log.info("MQTT broker: %s takes over from %s", conn.name, old.name)
            old.close()
            old_will = old.take_will()
            if old_will is not None:
                self._publish_will(old_will)
            if previous.clean:
                self._discard(previous)
                previous = None
        if previous is not None and clean:
            self._discard(previous)
            previous = None
        present = previous is not None
        session = previous if previous is not None else _Session(client_id, clean)
        session.clean = clean
        session.conn = conn
        self._sessions[client_id] = session
        conn.session = session
        conn.send(bytes((CONNACK << 4, 2, 1 if present else 0, ACCEPTED)))
        if present:
            # Unacknowledged deliveries again, in packet-id order, then the queue.
            for pid in sorted(session.inflight):
                topic_b, payload, qos, retain = session.inflight[pid]
                conn.send(_publish_packet(topic_b, payload, qos, retain, pid, True))
            for pid in sorted(session.released):
                conn.send(b"\x62\x02" + pid.to_bytes(2, "big"))
            self._pump(session)

    def _discard(self, session: _Session) -> None:
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]
        for topic_filter in session.subscriptions:
            members = self._subscriptions.get(topic_filter)
            if members is not None:
                members.pop(session, None)
                if not members:
                    del self._subscriptions[topic_filter]
                    self._filter_levels.pop(topic_filter, None)
        if session.subscriptions:
            self._routes.clear()
        session.subscriptions.clear()
        session.queue.clear()

    # -- subscriptions ------------------------------------------------------------------
    def _on_subscribe(self, conn: _Connection, session: _Session, body: bytes) -> None:
        if len(body) < 2:
            raise _ProtocolError("SUBSCRIBE without a packet id")
        pid = (body[0] << 8) | body[1]
        if pid == 0:
            raise _ProtocolError("SUBSCRIBE with packet id 0")
        pos = 2
        granted = bytearray()
        accepted: list[tuple[str, tuple[str, ...], int]] = []
        while pos < len(body):
            raw, pos = _string(body, pos, "SUBSCRIBE topic filter")
            if pos >= len(body):
                raise _ProtocolError("SUBSCRIBE topic filter without its QoS byte")
            requested = body[pos]
            pos += 1
            if requested & 0xFC:
                raise _ProtocolError(f"SUBSCRIBE QoS byte {requested:#04x} (reserved bits set)")
            if requested == 3:
                raise _ProtocolError("SUBSCRIBE QoS 3")
            topic_filter = _utf8(raw, "SUBSCRIBE topic filter")
            levels = _topic_filter_levels(topic_filter)
            if levels is None:
                granted.append(0x80)  # failure, for this filter only
                continue
            granted.append(requested)
            accepted.append((topic_filter, levels, requested))
        if not granted:
            raise _ProtocolError("SUBSCRIBE without any topic filter")
        for topic_filter, levels, qos in accepted:
            session.subscriptions[topic_filter] = qos
            self._subscriptions.setdefault(topic_filter, {})[session] = qos
            self._filter_levels[topic_filter] = levels
        if accepted:
            self._routes.clear()
        conn.send(bytes((SUBACK << 4,)) + _varint(2 + len(granted)) + body[:2] + bytes(granted))
        # Retained messages matching each new filter, with the retain flag set.
        for _filter, levels, qos in accepted:
            for topic, (topic_b, payload, msg_qos) in self._retained.items():
                if _filter_matches(levels, topic.split("/")):
                    self._deliver(session, (topic_b, payload, min(qos, msg_qos), True))

    def _on_unsubscribe(self, conn: _Connection, session: _Session, body: bytes) -> None:
        if len(body) < 2:
            raise _ProtocolError("UNSUBSCRIBE without a packet id")
        if body[0] == 0 and body[1] == 0:
            raise _ProtocolError("UNSUBSCRIBE with packet id 0")
        pos = 2
        count = 0
        while pos < len(body):
            raw, pos = _string(body, pos, "UNSUBSCRIBE topic filter")
            topic_filter = _utf8(raw, "UNSUBSCRIBE topic filter")
            count += 1
            if session.subscriptions.pop(topic_filter, None) is not None:
                members = self._subscriptions.get(topic_filter)
                if members is not None:
                    members.pop(session, None)
                    if not members:
                        del self._subscriptions[topic_filter]
                        self._filter_levels.pop(topic_filter, None)
                self._routes.clear()
        if not count:
            raise _ProtocolError("UNSUBSCRIBE without any topic filter")
        conn.send(b"\xb0\x02" + body[:2])

    # -- messages -----------------------------------------------------------------------
    def _route(self, topic_b: bytes) -> tuple[str, _Route] | None:
        routes = self._routes
        topic = _decode_topic_name(topic_b)
        if topic is None:
            route = None
        else:
            topic_levels = topic.split("/")
            best: dict[_Session, int] = {}
            levels_of = self._filter_levels
            for topic_filter, members in self._subscriptions.items():
                if _filter_matches(levels_of[topic_filter], topic_levels):
                    for session, qos in members.items():
                        if qos > best.get(session, -1):
                            best[session] = qos
            route = (topic, tuple(best.items()))
        if len(routes) >= _ROUTE_CACHE_MAX:
            routes.clear()
        routes[topic_b] = route
        return route

    def _on_publish(
        self, conn: _Connection, head: int, buf: bytes, pos: int, start: int, end: int
    ) -> None:
        """One PUBLISH from a client (the hot path)."""
        qos = (head >> 1) & 0x03
        if end - start < 2:
            raise _ProtocolError("PUBLISH without a topic")
        t_end = start + 2 + ((buf[start] << 8) | buf[start + 1])
        p_start = t_end + 2 if qos else t_end
        if p_start > end:
            raise _ProtocolError("PUBLISH topic (and packet id) run past the end of the packet")
        topic_b = buf[start + 2 : t_end]
        try:
            route = self._routes[topic_b]
        except KeyError:
            route = self._route(topic_b)
        if route is None:
            raise _ProtocolError(f"PUBLISH to {topic_b!r}: not a valid topic name")
        if qos:
            if qos == 3:
                raise _ProtocolError("PUBLISH with QoS 3")
            pid_b = buf[t_end:p_start]
            if pid_b == b"\x00\x00":
                raise _ProtocolError(f"PUBLISH QoS {qos} with packet id 0")
            if qos == 1:
                conn.send(b"\x40\x02" + pid_b)
            else:
                conn.send(b"\x50\x02" + pid_b)
                incoming = conn.session.incoming_qos2  # type: ignore[union-attr]
                pid = (pid_b[0] << 8) | pid_b[1]
                if pid in incoming:
                    return  # a resend before our PUBREC arrived: delivered already
                incoming.add(pid)
        self.stats.publishes_received += 1
        retain = head & 0x01
        subscribers = route[1]
        if not subscribers and not retain:
            return
        payload = buf[p_start:end]
        if retain:
            if payload:
                self._retained[route[0]] = (topic_b, payload, qos)
            else:
                self._retained.pop(route[0], None)
        if subscribers:
            # A QoS 0 packet without retain is, byte for byte, what QoS 0 subscribers get.
            packet0 = buf[pos:end] if head == 0x30 else None
            self._fan_out(topic_b, payload, qos, subscribers, packet0)

    def _publish_will(self, will: _Msg) -> None:
        """Publish a connection's will (as if its client had sent it)."""
        topic_b, payload, qos, retain = will
        self.stats.wills_published += 1
        route = self._routes[topic_b] if topic_b in self._routes else self._route(topic_b)
        if route is None:
            return  # checked at CONNECT: cannot happen
        if retain:
            if payload:
                self._retained[route[0]] = (topic_b, payload, qos)
            else:
                self._retained.pop(route[0], None)
        if route[1]:
            self._fan_out(topic_b, payload, qos, route[1], None)

    def _fan_out(
        self,
        topic_b: bytes,
        payload: bytes,
        qos: int,
        subscribers: _Route,
        packet0: bytes | None,
    ) -> None:
        stats = self.stats
        # What each QoS 1/2 delivery shares: the message, and the packet up to its id.
        msg: _Msg | None = None
        head = b""
        for session, sub_qos in subscribers:
            q = qos if qos < sub_qos else sub_qos
            conn = session.conn
            if q == 0:
                if conn is None or conn.paused:
                    stats.dropped_qos0 += 1
                    continue
                if packet0 is None:
                    packet0 = _publish_packet(topic_b, payload, 0, False, 0, False)
                if not conn.out:
                    self._dirty.append(conn)
                conn.out += packet0
                stats.deliveries += 1
                continue
            if msg is None or msg[2] != q:
                msg = (topic_b, payload, q, False)
                head = _publish_head(topic_b, len(payload), q, False, False)
            inflight = session.inflight
            released = session.released
            if (
                conn is None
                or conn.paused
                or session.queue
                or len(inflight) + len(released) >= self.max_inflight
            ):
                self._deliver(session, msg)
                continue
            # _send_now, inline: this runs once per QoS 1/2 delivery.
            pid = _next_pid(session)
            inflight[pid] = msg
            out = conn.out
            if not out:
                self._dirty.append(conn)
            out += head
            out += pid.to_bytes(2, "big")
            out += payload
            stats.deliveries += 1

    def _deliver(self, session: _Session, msg: _Msg) -> None:
        """Send ``msg`` to the session now, or queue it (QoS 1/2) if it cannot take it."""
        conn = session.conn
        if msg[2] == 0:
            if conn is None or conn.paused:
                self.stats.dropped_qos0 += 1
            else:
                self._send_now(session, conn, msg)
            return
        if (
            conn is None
            or conn.paused
            or session.queue
            or len(session.inflight) + len(session.released) >= self.max_inflight
        ):
            if len(session.queue) >= self.max_queued:
                self.stats.dropped_queue_full += 1
            else:
                session.queue.append(msg)
            return
        self._send_now(session, conn, msg)

    def _send_now(self, session: _Session, conn: _Connection, msg: _Msg) -> None:
        topic_b, payload, qos, retain = msg
        pid = 0
        if qos:
            pid = _next_pid(session)
            session.inflight[pid] = msg
        conn.send(_publish_packet(topic_b, payload, qos, retain, pid, False))
        self.stats.deliveries += 1

    def _pump(self, session: _Session) -> None:
        """Send queued messages while the session's window and socket allow."""
        conn = session.conn
        queue = session.queue
        limit = self.max_inflight
        while queue and conn is not None and not conn.paused and not conn.closed:
            if len(session.inflight) + len(session.released) >= limit:
                return
            self._send_now(session, conn, queue.popleft())


def _select_mqtt(connection: Any, subprotocols: Sequence[str]) -> Any:
    """Pick the ``mqtt`` subprotocol when offered; a client offering none is served too."""
    return "mqtt" if "mqtt" in subprotocols else None
