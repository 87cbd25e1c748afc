"""The bounded outbox between the station and the network.

Three kinds of topic, three policies (see :class:`~controller.telemetry.topics.Delivery`):

* ``state`` (retained): latest value wins. The outbox keeps the latest message of every
  state topic for good (it is the in-memory state re-published on every reconnect) and
  a set of topics whose latest value is not yet on the broker. A value replaced before it
  was sent counts in ``state_superseded``.
* ``stream`` (QoS 0 samples): one ring of ``stream_depth`` samples per topic; when full,
  the oldest sample goes and ``stream_dropped[topic]`` counts it.
* ``event`` (QoS 1 events and replies): one FIFO of at most ``events_max`` messages, in
  production order. When full, the *oldest* event is dropped and counted; as soon as
  ``take`` frees a slot an ``events_dropped`` event (built by the ``drop_notice``
  callback) is appended, saying how many were lost on which topics. Because it is
  appended at the tail, it takes the next ``seq`` of its topic without breaking order.

``put`` never blocks and never waits: a tracker calling ``sink.send`` is never slowed
down by the network. ``take`` hands out events first, then state, then streams (round
robin across stream topics). Events a connection lost before the broker acknowledged
them come back to the front with :meth:`Outbox.requeue`, still in order.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from controller.telemetry.sink import OutMessage
from controller.telemetry.topics import Delivery

__all__ = ["DropNotice", "Outbox", "OutboxStats"]

DropNotice = Callable[[int, dict[str, int]], OutMessage]
"""Builds the ``events_dropped`` event: (count, dropped per topic) -> message."""


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters for health reports and tests."""

    events_queued: int
    events_dropped: int
    state_pending: int
    state_superseded: int
    streams_queued: int
    stream_dropped: dict[str, int] = field(default_factory=dict)
    stream_lost_in_flight: int = 0


class Outbox:
    """Bounded, never-blocking queue of encoded messages, one policy per delivery kind."""

    def __init__(
        self,
        *,
        events_max: int,
        stream_depth: int,
        drop_notice: DropNotice,
        on_put: Callable[[], None] | None = None,
    ) -> None:
        if events_max < 2:
            raise ValueError(
                f"events_max must be at least 2 (one slot for the notice), got {events_max}"
            )
        if stream_depth < 1:
            raise ValueError(f"stream_depth must be at least 1, got {stream_depth}")
        self._events_max = events_max
        self._stream_depth = stream_depth
        self._drop_notice = drop_notice
        self._on_put = on_put
        self._events: deque[OutMessage] = deque()
        self._retained: dict[str, OutMessage] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set
        self._streams: dict[str, deque[OutMessage]] = {}
        self._stream_ready: dict[str, None] = {}  # topics with samples, round-robin order
        self._streams_queued = 0
        self._pending_dropped = 0
        self._pending_by_topic: Counter[str] = Counter()
        self._events_dropped = 0
        self._state_superseded = 0
        self._stream_dropped: Counter[str] = Counter()
        self._stream_lost = 0

    # -- producer side -----------------------------------------------------------------
    def put(self, msg: OutMessage) -> None:
        """Queue ``msg`` under its topic's policy; never blocks."""
        if msg.delivery is Delivery.EVENT:
            if len(self._events) >= self._events_max:
                lost = self._events.popleft()
                if lost.notice_of is not None:
                    # A dropped notice is not lost news: its counts go into the next one.
                    count, by_topic = lost.notice_of
                    self._pending_dropped += count
                    self._pending_by_topic.update(dict(by_topic))
                else:
                    self._pending_dropped += 1
                    self._pending_by_topic[lost.topic] += 1
                    self._events_dropped += 1
            self._events.append(msg)
        elif msg.delivery is Delivery.STATE:
            if msg.topic in self._dirty:
                self._state_superseded += 1
            self._retained[msg.topic] = msg
            self._dirty[msg.topic] = None
        else:
            ring = self._streams.get(msg.topic)
            if ring is None:
                ring = self._streams[msg.topic] = deque(maxlen=self._stream_depth)
            if len(ring) == self._stream_depth:
                self._stream_dropped[msg.topic] += 1
                self._streams_queued -= 1
            ring.append(msg)
            self._streams_queued += 1
            self._stream_ready.setdefault(msg.topic, None)
        if self._on_put is not None:
            self._on_put()

    # -- network side ------------------------------------------------------------------
    def take(self) -> OutMessage | None:
        """The next message to publish (events, then state, then streams), or None."""
        if self._events:
            msg = self._events.popleft()
            self._maybe_add_notice()
            return msg
        if self._dirty:
            topic = next(iter(self._dirty))
            del self._dirty[topic]
            return self._retained[topic]
        while self._stream_ready:
            topic = next(iter(self._stream_ready))
            del self._stream_ready[topic]
            ring = self._streams[topic]
            if not ring:
                continue
            msg = ring.popleft()
            self._streams_queued -= 1
            if ring:
                self._stream_ready[topic] = None  # back of the round-robin
            return msg
        return None

    def take_many(self, limit: int) -> list[OutMessage]:
        """Up to ``limit`` messages, in the order ``limit`` calls of :meth:`take` give."""
        out: list[OutMessage] = []
        events = self._events
        if events and limit > 0:
            # Events leave in one sweep. take() would add a pending drop notice at the
            # tail after the first one; after the sweep the tail is the same place.
            out = [events.popleft() for _ in range(min(limit, len(events)))]
            self._maybe_add_notice()
        take = self.take
        while len(out) < limit:
            msg = take()
            if msg is None:
                break
            out.append(msg)
        return out

    def requeue(self, unacked: Iterable[OutMessage]) -> None:
        """Give back messages a lost connection did not get acknowledged, oldest first.

        Events go back to the front in their original order. State needs nothing (every
        retained topic is re-published on reconnect); stream samples are counted lost.
        """
        events = []
        for msg in unacked:
            if msg.delivery is Delivery.EVENT:
                events.append(msg)
            elif msg.delivery is Delivery.STREAM:
                self._stream_lost += 1
        self._events.extendleft(reversed(events))
        if events and self._on_put is not None:
            self._on_put()

    def replay(self, *, exclude: Iterable[str] = ()) -> list[OutMessage]:
        """Every retained message (latest per topic) for re-publishing after a (re)connect.

        The returned topics are no longer pending: the caller publishes them now.
        """
        skip = set(exclude)
        out = [m for t, m in self._retained.items() if t not in skip]
        for msg in out:
            self._dirty.pop(msg.topic, None)
        return out

    def latest(self, topic: str) -> OutMessage | None:
        """The latest message of a state topic, if any."""
        return self._retained.get(topic)

    def __len__(self) -> int:
        """Messages waiting to be published."""
        return len(self._events) + len(self._dirty) + self._streams_queued

    @property
    def stats(self) -> OutboxStats:
        """A snapshot of the counters."""
        return OutboxStats(
            events_queued=len(self._events),
            events_dropped=self._events_dropped,
            state_pending=len(self._dirty),
            state_superseded=self._state_superseded,
            streams_queued=self._streams_queued,
            stream_dropped=dict(self._stream_dropped),
            stream_lost_in_flight=self._stream_lost,
        )

    def _maybe_add_notice(self) -> None:
        if self._pending_dropped and len(self._events) < self._events_max:
            by_topic = dict(self._pending_by_topic)
            notice = replace(
                self._drop_notice(self._pending_dropped, by_topic),
                notice_of=(self._pending_dropped, tuple(sorted(by_topic.items()))),
            )
            self._pending_dropped = 0
            self._pending_by_topic.clear()
            self._events.append(notice)
