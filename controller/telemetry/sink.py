"""The telemetry sink interface, the envelope encoder and an in-memory sink for tests.

Producers (trackers, drivers, the scheduler, the daemon) only see :class:`TelemetrySink`:
``sink.send(payload)`` stamps and queues one message and returns at once. It never
blocks and never raises because the network is down.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from controller.telemetry.payloads import (
    SCHEMA_TYPE,
    Payload,
    Status,
    format_ts,
    message_model,
)
from controller.telemetry.topics import Delivery, TopicTree
from firmware_bridge.clock import Clock

__all__ = [
    "Encoder",
    "InMemorySink",
    "OutMessage",
    "TelemetrySink",
]

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One encoded message on its way to the broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    delivery: Delivery
    seq: int
    type_name: str
    # Set on an ``events_dropped`` notice: (count, per-topic counts) it reports.
    notice_of: tuple[int, tuple[tuple[str, int], ...]] | None = None


@runtime_checkable
class TelemetrySink(Protocol):
    """Where producers send telemetry."""

    def send(self, payload: Payload) -> None:
        """Stamp ``payload`` (ts, seq, schema) and queue it; never blocks."""
        ...


class Encoder:
    """Stamps payloads with ``ts``/``seq``/``schema`` and routes them to their topic."""

    def __init__(self, topics: TopicTree, clock: Clock) -> None:
        self.topics = topics
        self._clock = clock
        self._seq: dict[str, int] = {}
        # Messages produced together (a tick's pointing and link samples) share one time:
        # the last time and its envelope text are kept to format each instant once.
        self._last_now: datetime | None = None
        self._last_ts = b""

    def next_seq(self, topic: str) -> int:
        """Take the next sequence number of ``topic`` (1, 2, 3, ...)."""
        seq = self._seq.get(topic, 0) + 1
        self._seq[topic] = seq
        return seq

    def encode(self, payload: Payload) -> OutMessage:
        """The wire message for ``payload`` with the next seq of its topic."""
        cls = type(payload)
        topic = payload.topic(self.topics)
        seq = self.next_seq(topic)
        return OutMessage(
            topic=topic,
            payload=self.envelope(payload, seq),
            qos=cls.QOS,
            retain=cls.DELIVERY is Delivery.STATE,
            delivery=cls.DELIVERY,
            seq=seq,
            type_name=cls.TYPE,
        )

    def envelope(self, payload: Payload, seq: int) -> bytes:
        """Serialise ``payload`` as one flat JSON object with the envelope first."""
        # model_dump_json() without its str round trip: the same serializer, the same bytes.
        body = payload.__pydantic_serializer__.to_json(payload)
        now = self._clock.now()
        if now != self._last_now:
            self._last_ts = b'{"ts":"' + format_ts(now).encode() + b'","seq":'
            self._last_now = now
        head = self._last_ts + str(seq).encode() + _schema_field(type(payload))
        # model_dump_json always yields an object: "{}" or "{...}".
        return head + b"}" if body == b"{}" else head + b"," + body[1:]

    def encode_schema(self, type_name: str, document: dict[str, Any]) -> OutMessage:
        """A retained ``schema/<type>`` message: the JSON Schema plus the envelope keys.

        The envelope keys are extra top-level keywords, which JSON Schema ignores, so the
        document stays a valid schema a dashboard can hand straight to a validator.
        """
        topic = self.topics.schema(type_name)
        seq = self.next_seq(topic)
        doc = {
            "ts": format_ts(self._clock.now()),
            "seq": seq,
            "schema": f"groundlink.{SCHEMA_TYPE}/1",
            **document,
        }
        return OutMessage(
            topic=topic,
            payload=json.dumps(doc, separators=(",", ":")).encode(),
            qos=1,
            retain=True,
            delivery=Delivery.STATE,
            seq=seq,
            type_name=SCHEMA_TYPE,
        )

    def will(self) -> OutMessage:
        """The last will: ``status`` = ``lost``, retained, ``seq`` 0 (sent by the broker)."""
        payload = Status(state="lost", detail="connection to the station lost")
        return OutMessage(
            topic=self.topics.status,
            payload=self.envelope(payload, 0),
            qos=1,
            retain=True,
            delivery=Delivery.STATE,
            seq=0,
            type_name=Status.TYPE,
        )


@functools.cache
def _schema_field(cls: type[Payload]) -> bytes:
    """The envelope's ``,"schema":"groundlink.<type>/<version>"`` of ``cls`` (one per class)."""
    return f',"schema":"{cls.schema_id()}"'.encode()


class InMemorySink:
    """A sink that keeps every message (for tests and for running without a broker)."""

    def __init__(self, clock: Clock, station_id: str = "test", *, prefix: str | None = None):
        self.encoder = Encoder(TopicTree.for_station(station_id, prefix), clock)
        self.messages: list[OutMessage] = []
        self.retained: dict[str, OutMessage] = {}

    @property
    def topics(self) -> TopicTree:
        """The topic tree messages are routed into."""
        return self.encoder.topics

    def send(self, payload: Payload) -> None:
        """Encode and keep ``payload``."""
        msg = self.encoder.encode(payload)
        self.messages.append(msg)
        if msg.retain:
            self.retained[msg.topic] = msg

    def on_topic(self, topic: str) -> list[OutMessage]:
        """Every message sent on ``topic`` (full name), oldest first."""
        return [m for m in self.messages if m.topic == topic]

    def decoded(self, kind: type[P]) -> list[BaseModel]:
        """Every message of payload type ``kind``, parsed back through its wire model."""
        model = message_model(kind)
        return [
            model.model_validate_json(m.payload) for m in self.messages if m.type_name == kind.TYPE
        ]
