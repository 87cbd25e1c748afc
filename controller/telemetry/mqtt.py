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

Why the pump hands packets to paho directly: aiomqtt 2 awaits each ``publish()`` on its
own (an Event, a ``wait_for`` task and a scan of every pending call per message), which
holds one publisher to about 4,000 messages/s here. paho's ``publish()`` queues the
packet and reports the broker's acknowledgement through ``MQTTMessageInfo``, so the
pump keeps up to ``max_inflight`` messages in paho and tracks acknowledgements in order
(:class:`_PahoPipe`). aiomqtt still owns the connection, the will, TLS, subscriptions
and incoming messages. aiomqtt 3 drops paho; this is the one place to revisit then.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, cast

import aiomqtt

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

# Messages handed to paho per pump step before yielding to the event loop so that the
# socket writer runs: large enough to amortise the loop, small enough to keep latency.
_BATCH = 64


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


def _done(info: Any) -> bool:
    """Whether paho reports the message written (QoS 0) or acknowledged (QoS 1).

    ``is_published()`` raises for a message paho refused (rc > 0, e.g. not connected);
    such a message is simply not done.
    """
    return bool(info.rc <= 0 and info.is_published())


class _PipeBroken(Exception):
    """paho refused a publish: the connection is gone."""


class _PahoPipe:
    """Publishes through the paho client inside an aiomqtt client, tracking acknowledgements.

    QoS 0 messages count as done when written to the socket, QoS 1 when the broker's
    PUBACK arrives. Both set ``MQTTMessageInfo.is_published()``; paho calls ``on_publish``
    just before, which only wakes the pump (it checks on its next step).
    """

    def __init__(self, client: aiomqtt.Client, wake: Callable[[], None]) -> None:
        self._paho: Any = cast(Any, client._client)  # see the module docstring for why
        previous: Callable[..., None] = self._paho.on_publish

        def on_publish(c: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            previous(c, userdata, mid, reason, properties)
            wake()

        self._paho.on_publish = on_publish
        self._inflight: deque[tuple[Any, OutMessage]] = deque()

    def publish(self, msg: OutMessage) -> None:
        """Hand ``msg`` to paho; raise _PipeBroken if paho refuses it."""
        info = self._paho.publish(msg.topic, msg.payload, msg.qos, msg.retain)
        self._inflight.append((info, msg))
        if info.rc != 0:
            raise _PipeBroken(f"publish refused by the MQTT client (rc={info.rc})")

    def collect(self) -> int:
        """Forget messages done at the front (in order); return how many."""
        done = 0
        inflight = self._inflight
        while inflight and _done(inflight[0][0]):
            inflight.popleft()
            done += 1
        return done

    def __len__(self) -> int:
        """Messages handed over and not yet known done."""
        return len(self._inflight)

    def unacked(self) -> list[OutMessage]:
        """Messages the broker has not acknowledged (oldest first)."""
        return [msg for info, msg in self._inflight if not _done(info)]


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
                pipe = self._pipe = _PahoPipe(client, self._wake.set)
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
            sent = 0
            while queue and len(pipe) < window and sent < _BATCH:
                pipe.publish(queue.popleft())
                sent += 1
            self.stats.published += sent
            if not queue and len(pipe) == 0:
                return
            if sent:
                await self._clock.sleep(0)  # yield so paho's socket writer runs
            else:
                await self._wake.wait()

    async def _pump(self, pipe: _PahoPipe) -> None:
        """Move the outbox to the broker; return when closing and everything is acked."""
        window = self._config.max_inflight
        while True:
            self._wake.clear()
            self.stats.acknowledged += pipe.collect()
            sent = 0
            while sent < _BATCH and len(pipe) < window:
                msg = self._outbox.take()
                if msg is None:
                    break
                pipe.publish(msg)
                sent += 1
            if sent:
                self.stats.published += sent
                self._idle = False
                await self._clock.sleep(0)  # yield so paho's socket writer runs
                continue
            idle = len(self._outbox) == 0 and len(pipe) == 0
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
