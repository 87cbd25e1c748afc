"""The encoder's fast paths (cached envelope pieces, checked topic names) give the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

import pytest

from controller.telemetry.payloads import Payload, Pointing, format_ts
from controller.telemetry.sink import Encoder
from controller.telemetry.topics import Delivery, TopicError, TopicTree
from firmware_bridge.clock import VirtualClock

from ._samples import T0, samples


def _reference_ts(when: datetime) -> str:
    """The envelope time as it was first written (convert, then drop the offset)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _reference_envelope(payload: Payload, when: datetime, seq: int) -> bytes:
    """The envelope as it was first written: f-string head plus model_dump_json."""
    body = payload.model_dump_json().encode()
    head = (
        f'{{"ts":"{_reference_ts(when)}","seq":{seq},"schema":"{type(payload).schema_id()}"'
    ).encode()
    return head + b"}" if body == b"{}" else head + b"," + body[1:]


class _Empty(Payload):
    """A payload without fields (exercises the ``{}`` body branch)."""

    TYPE: ClassVar[str] = "empty"
    DELIVERY: ClassVar[Delivery] = Delivery.EVENT
    QOS: ClassVar[int] = 1

    def topic(self, tree: TopicTree) -> str:
        """``event``."""
        return tree.event


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC),  # no microseconds: still six digits
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 26, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 11, 26, 1, 30, 0, 42, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ],
)
def test_format_ts_matches_the_reference_text(when: datetime) -> None:
    """UTC and other zones format exactly as the convert-then-isoformat reference."""
    text = format_ts(when)
    assert text == _reference_ts(when)
    assert text.endswith("Z")
    assert len(text) == len("2026-11-26T12:00:00.000000Z")


def test_envelope_bytes_match_the_reference_for_every_sample() -> None:
    """Every sample payload (and a field-less one) encodes byte for byte as before."""
    clock = VirtualClock(T0 + timedelta(microseconds=250))
    encoder = Encoder(TopicTree.for_station("demo"), clock)
    for seq, payload in enumerate([*samples(), _Empty()], start=1):
        assert encoder.envelope(payload, seq) == _reference_envelope(payload, clock.now(), seq)
    assert encoder.envelope(_Empty(), 7).endswith(b'"schema":"groundlink.empty/1"}')


async def test_cached_time_follows_the_clock() -> None:
    """Messages at one instant share the time; after the clock moves the new time is used."""
    clock = VirtualClock(T0)
    encoder = Encoder(TopicTree.for_station("demo"), clock)
    sample = next(p for p in samples() if isinstance(p, Pointing))
    first = encoder.envelope(sample, 1)
    assert encoder.envelope(sample, 2) == _reference_envelope(sample, T0, 2)
    await clock.advance(0.000001)
    later = encoder.envelope(sample, 3)
    assert later == _reference_envelope(sample, T0 + timedelta(microseconds=1), 3)
    assert first != later.replace(b'"seq":3', b'"seq":1')
    clock.jump_wall(-0.000001)  # back to the first instant: the text must follow back
    assert encoder.envelope(sample, 4) == _reference_envelope(sample, T0, 4)


def test_remembered_topic_names_equal_fresh_ones() -> None:
    """Per-id topics built a second time (from memory) equal the first, for every kind."""
    tree = TopicTree.for_station("demo")
    for _ in range(2):
        assert tree.antenna_state("ant1") == "groundlink/demo/antenna/ant1/state"
        assert tree.antenna_pointing("ant1") == "groundlink/demo/antenna/ant1/pointing"
        assert tree.radio_state("r-1") == "groundlink/demo/radio/r-1/state"
        assert tree.link("ant1") == "groundlink/demo/link/ant1"
        assert tree.schema("pointing") == "groundlink/demo/schema/pointing"
        assert tree.cmd("track") == "groundlink/demo/cmd/track"
        assert tree.reply("track") == "groundlink/demo/reply/track"


@pytest.mark.parametrize("bad", ["a/b", "", "+", "ant 1", 7, None])
def test_bad_levels_are_refused_every_time(bad: object) -> None:
    """A refused name is never remembered: it is refused again, naming what it is."""
    tree = TopicTree.for_station("demo")
    tree.antenna_pointing("ant1")
    for _ in range(2):
        with pytest.raises(TopicError, match="antenna id"):
            tree.antenna_pointing(bad)  # type: ignore[arg-type]
        with pytest.raises(TopicError, match="command verb"):
            tree.reply(bad)  # type: ignore[arg-type]


def test_names_past_the_memory_bound_are_still_built_right() -> None:
    """Many distinct verbs (they come from the network) all get their own correct topic."""
    tree = TopicTree.for_station("demo")
    verbs = [f"verb{i}" for i in range(1000)]
    assert [tree.reply(v) for v in verbs] == [f"groundlink/demo/reply/{v}" for v in verbs]
    assert [tree.reply(v) for v in reversed(verbs)] == [
        f"groundlink/demo/reply/{v}" for v in reversed(verbs)
    ]
