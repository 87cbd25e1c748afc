"""The bounded outbox: latest-value-wins state, stream rings, the event FIFO and its notice."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.telemetry.outbox import Outbox
from controller.telemetry.payloads import AntennaState, Event, PassEvent, Pointing
from controller.telemetry.sink import Encoder, OutMessage
from controller.telemetry.topics import TopicTree
from firmware_bridge.clock import VirtualClock

from ._samples import T0


def _setup(events_max: int = 100, stream_depth: int = 4) -> tuple[Encoder, Outbox]:
    encoder = Encoder(TopicTree.for_station("gs1"), VirtualClock(T0))

    def notice(count: int, by_topic: dict[str, int]) -> OutMessage:
        details: dict[str, str | int | float | bool | None] = {"dropped": count, **by_topic}
        return encoder.encode(
            Event(kind="events_dropped", severity="warning", message="dropped", details=details)
        )

    return encoder, Outbox(events_max=events_max, stream_depth=stream_depth, drop_notice=notice)


def _pass_event(n: int) -> PassEvent:
    return PassEvent(antenna="a1", norad_id=n, event="tca")


def _pointing(az: float) -> Pointing:
    return Pointing(
        antenna="a1",
        mode="tracking",
        norad_id=1,
        target_az_deg=az,
        target_el_deg=10.0,
        commanded_az_deg=az,
        commanded_el_deg=10.0,
        actual_az_deg=az,
        actual_el_deg=10.0,
        error_deg=0.0,
        period_s=0.1,
    )


def _drain(outbox: Outbox) -> list[OutMessage]:
    out = []
    while (msg := outbox.take()) is not None:
        out.append(msg)
    return out


def test_state_topics_keep_only_the_latest_value() -> None:
    """Two updates of one state topic before a take yield one message: the latest."""
    encoder, outbox = _setup()
    for mode in ("idle", "prepositioning", "tracking"):
        state = AntennaState(antenna="a1", mode=mode, az_deg=1.0, el_deg=2.0)
        outbox.put(encoder.encode(state))
    out = _drain(outbox)
    assert [json.loads(m.payload)["mode"] for m in out] == ["tracking"]
    assert out[0].seq == 3  # the gap tells a subscriber two values were coalesced
    assert outbox.stats.state_superseded == 2
    assert outbox.latest(out[0].topic) is out[0]


def test_stream_ring_drops_oldest_samples_and_counts_them() -> None:
    """A stream ring of depth 4 fed 7 samples keeps the newest 4 and counts 3 drops."""
    encoder, outbox = _setup(stream_depth=4)
    for az in range(7):
        outbox.put(encoder.encode(_pointing(float(az))))
    out = _drain(outbox)
    assert [m.seq for m in out] == [4, 5, 6, 7]
    assert outbox.stats.stream_dropped == {"groundlink/gs1/antenna/a1/pointing": 3}


def test_streams_are_taken_round_robin_across_topics() -> None:
    """A chatty stream cannot starve another stream topic."""
    encoder, outbox = _setup(stream_depth=10)
    for az in range(3):
        outbox.put(encoder.encode(_pointing(float(az))))
    outbox.put(encoder.encode(_pointing(9.0).model_copy(update={"antenna": "a2"})))
    topics = [m.topic.split("/")[3] for m in _drain(outbox)]
    assert topics[:2] == ["a1", "a2"]


def test_events_come_first_and_in_production_order() -> None:
    """Events are taken before state and streams, oldest first."""
    encoder, outbox = _setup()
    outbox.put(encoder.encode(_pointing(1.0)))
    outbox.put(encoder.encode(AntennaState(antenna="a1", mode="idle", az_deg=0.0, el_deg=0.0)))
    for n in range(1, 4):
        outbox.put(encoder.encode(_pass_event(n)))
    kinds = [m.type_name for m in _drain(outbox)]
    assert kinds == ["pass_event", "pass_event", "pass_event", "antenna_state", "pointing"]


def test_event_overflow_drops_oldest_and_appends_an_events_dropped_notice() -> None:
    """With room for 5, eight events lose the oldest three, and a notice says so in order."""
    encoder, outbox = _setup(events_max=5)
    for n in range(1, 9):
        outbox.put(encoder.encode(_pass_event(n)))
    assert outbox.stats.events_queued == 5
    out = _drain(outbox)
    pass_seqs = [m.seq for m in out if m.type_name == "pass_event"]
    assert pass_seqs == [4, 5, 6, 7, 8]
    notices = [json.loads(m.payload) for m in out if m.type_name == "event"]
    assert len(notices) == 1
    assert notices[0]["kind"] == "events_dropped"
    assert notices[0]["details"]["dropped"] == 3
    assert notices[0]["details"]["groundlink/gs1/pass/event"] == 3
    assert outbox.stats.events_dropped == 3


def test_requeued_events_go_back_to_the_front_in_order() -> None:
    """Events a lost connection did not get acknowledged are retried first, in order."""
    encoder, outbox = _setup()
    for n in range(1, 6):
        outbox.put(encoder.encode(_pass_event(n)))
    first = [outbox.take(), outbox.take(), outbox.take()]
    outbox.requeue([m for m in first[1:] if m is not None])  # 1 was acked, 2 and 3 were not
    assert [m.seq for m in _drain(outbox)] == [2, 3, 4, 5]


def test_replay_returns_every_retained_topic_and_clears_pending() -> None:
    """After a reconnect every retained topic is re-published once, from memory."""
    encoder, outbox = _setup()
    outbox.put(encoder.encode(AntennaState(antenna="a1", mode="idle", az_deg=0.0, el_deg=0.0)))
    outbox.put(encoder.encode(AntennaState(antenna="a2", mode="idle", az_deg=0.0, el_deg=0.0)))
    sent_before = _drain(outbox)
    assert len(sent_before) == 2
    outbox.put(encoder.encode(AntennaState(antenna="a1", mode="fault", az_deg=0.0, el_deg=0.0)))
    replay = outbox.replay()
    assert sorted((m.topic.split("/")[3], m.seq) for m in replay) == [("a1", 2), ("a2", 1)]
    assert len(outbox) == 0


def test_put_never_blocks_and_stays_bounded() -> None:
    """Producing 20,000 messages with nobody taking keeps the outbox within its bounds."""
    encoder, outbox = _setup(events_max=50, stream_depth=8)
    for n in range(20_000):
        outbox.put(
            encoder.encode(_pointing(float(n % 360)))
            if n % 2
            else encoder.encode(_pass_event(n + 1))
        )
    stats = outbox.stats
    assert stats.events_queued == 50
    assert stats.streams_queued == 8
    assert stats.events_dropped == 10_000 - 50
    assert len(outbox) == 58


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.sampled_from(["pass", "event"])),
        st.tuples(st.just("take"), st.integers(1, 5)),
        st.tuples(st.just("requeue"), st.integers(0, 3)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(ops=_OPS, events_max=st.integers(2, 8))
def test_event_accounting_holds_for_any_interleaving(
    ops: list[tuple[str, object]], events_max: int
) -> None:
    """Every produced event is delivered or reported dropped; per-topic seq never goes back."""
    encoder, outbox = _setup(events_max=events_max)
    produced = 0
    delivered: list[OutMessage] = []
    unacked: list[OutMessage] = []
    for op, arg in ops:
        if op == "event":
            produced += 1
            payload = _pass_event(produced) if arg == "pass" else Event(kind="x", message="m")
            outbox.put(encoder.encode(payload))
        elif op == "take":
            for _ in range(int(arg)):  # type: ignore[call-overload]
                msg = outbox.take()
                if msg is not None:
                    unacked.append(msg)
        else:
            # A connection drop: the last `arg` taken messages were not acknowledged.
            k = min(int(arg), len(unacked))  # type: ignore[call-overload]
            delivered += unacked[: len(unacked) - k]
            outbox.requeue(unacked[len(unacked) - k :])
            unacked = []
        assert outbox.stats.events_queued <= events_max + 3  # requeue may add a window
    delivered += unacked + _drain(outbox)
    notices = [json.loads(m.payload) for m in delivered if b"events_dropped" in m.payload]
    reported = sum(n["details"]["dropped"] for n in notices)
    real = [m for m in delivered if b"events_dropped" not in m.payload]
    assert len({(m.topic, m.seq) for m in real}) == len(real)  # each delivered exactly once
    assert len(real) + reported == produced
    assert reported == outbox.stats.events_dropped
    for topic in {m.topic for m in delivered}:
        seqs = [m.seq for m in delivered if m.topic == topic]
        assert seqs == sorted(seqs), topic


_MIXED_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["pass", "event", "state", "stream"]), st.sampled_from(["a1", "a2"])
        ),
        st.tuples(st.just("take"), st.integers(0, 7)),
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(ops=_MIXED_OPS, events_max=st.integers(2, 6), stream_depth=st.integers(1, 4))
def test_take_many_gives_what_as_many_takes_give(
    ops: list[tuple[str, object]], events_max: int, stream_depth: int
) -> None:
    """take_many(k) hands out the very messages, in the order, that k calls of take() do."""
    one_by_one = _setup(events_max=events_max, stream_depth=stream_depth)
    in_bulk = _setup(events_max=events_max, stream_depth=stream_depth)
    for op, arg in ops:
        if op == "take":
            k = int(arg)  # type: ignore[call-overload]
            singles = [m for m in (one_by_one[1].take() for _ in range(k)) if m is not None]
            bulk = in_bulk[1].take_many(k)
            assert bulk == singles
        else:
            antenna = str(arg)
            for encoder, outbox in (one_by_one, in_bulk):
                if op == "pass":
                    payload: PassEvent | Event | AntennaState | Pointing = _pass_event(1)
                elif op == "event":
                    payload = Event(kind="x", message=antenna)
                elif op == "state":
                    payload = AntennaState(antenna=antenna, mode="idle", az_deg=0.0, el_deg=0.0)
                else:
                    payload = _pointing(1.0).model_copy(update={"antenna": antenna})
                outbox.put(encoder.encode(payload))
        assert in_bulk[1].stats == one_by_one[1].stats
    assert in_bulk[1].take_many(10_000) == _drain(one_by_one[1])
