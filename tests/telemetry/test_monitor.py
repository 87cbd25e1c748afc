"""The monitor dashboard: its state from topics alone, its rendering, and a live run."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

from rich.console import Console

from controller.telemetry.broker import EmbeddedBroker
from controller.telemetry.monitor import MonitorState, run_monitor
from controller.telemetry.mqtt import MqttPublisher
from controller.telemetry.payloads import Pointing, Status
from controller.telemetry.sink import InMemorySink
from controller.telemetry.topics import TopicTree
from firmware_bridge.clock import SystemClock, VirtualClock

from ._samples import T0, samples
from .conftest import DEADLINE_S, fast_config, free_port


def _render(state: MonitorState, clock: VirtualClock) -> str:
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    console.print(state.render(clock.now()))
    return console.export_text()


def _fed(clock: VirtualClock) -> tuple[MonitorState, InMemorySink]:
    sink = InMemorySink(clock, "gs1")
    for payload in samples():
        sink.send(payload)
    state = MonitorState(TopicTree.for_station("gs1"))
    for msg in sink.messages:
        state.ingest(msg.topic, msg.payload)
    return state, sink


def test_state_is_built_from_the_topics() -> None:
    """Every sample lands in the matching part of the dashboard state."""
    clock = VirtualClock(T0)
    state, sink = _fed(clock)
    assert state.status is not None
    assert state.status.state == "ready"
    assert state.info is not None
    assert state.info.station_id == "gs1"
    assert set(state.antennas) == {"a1", "a2"}
    assert set(state.pointing) == {"a1", "a2"}
    assert state.links["a1"].snr_measured_db == 16.9
    assert state.radios["r1"].satellite_mode is True
    assert [type(e).__name__.removesuffix("Message") for e in state.events] == [
        "PassEvent", "PassEvent", "PassEvent", "Event", "Reply", "Reply",
    ]  # fmt: skip
    assert state.received == len(sink.messages)
    assert (state.invalid, sum(state.seq_gaps.values())) == (0, 0)


def test_render_shows_status_antennas_links_tracks_and_events() -> None:
    """The rendered dashboard carries the numbers the topics carried."""
    clock = VirtualClock(T0)
    state, _ = _fed(clock)
    text = _render(state, clock)
    for needle in (
        "READY",
        "Weilheim",
        "371.4 / 23.3",  # a1 as the rotator reports it (overlap range)
        "11.5 / 23.4",  # a1 target
        "ISS (ZARYA) 25544",
        "+2533",  # Doppler down
        "18.2 / 16.9",  # SNR predicted / measured
        "145,800,000",
        "ISS (ZARYA) (25544)",  # next track
        "10.0 min",  # AOS in
        "ABORTED 25544 on a1: operator abort",
        "unknown_verb",
        "TLE of 25544 is 15 days old",
    ):
        assert needle in text, needle


def test_stale_stream_samples_are_marked() -> None:
    """A pointing sample older than three periods is shown as stale."""
    clock = VirtualClock(T0)
    state, _ = _fed(clock)
    assert "(stale)" not in _render(state, clock)
    clock.jump_wall(0.2 * 3 + 0.1)  # a1 samples every 0.2 s; a2 every 1 s
    text = _render(state, clock)
    assert "tracking (stale)" in text
    assert "idle (stale)" not in text


def test_seq_gaps_count_lost_stream_and_event_messages_only() -> None:
    """Gaps in seq are counted on streams and events, not on coalesced state topics."""
    clock = VirtualClock(T0)
    sink = InMemorySink(clock, "gs1")
    state = MonitorState(sink.topics)
    point = next(p for p in samples() if isinstance(p, Pointing) and p.antenna == "a1")
    for n in range(1, 8):
        sink.send(point)
        sink.send(Status(state="ready"))
        if n in (3, 4, 6):
            continue  # "lost" in transit
        for msg in sink.messages[-2:]:
            state.ingest(msg.topic, msg.payload)
    assert dict(state.seq_gaps) == {"groundlink/gs1/antenna/a1/pointing": 3}


def test_bad_payloads_are_counted_not_raised() -> None:
    """Garbage on a station topic is counted and shown; other stations are ignored."""
    clock = VirtualClock(T0)
    state = MonitorState(TopicTree.for_station("gs1"))
    state.ingest("groundlink/gs1/status", b"\xff\xfe not json")
    state.ingest("groundlink/gs1/status", b'{"schema": "groundlink.status/1", "state": "?"}')
    state.ingest("groundlink/gs2/status", b"whatever")
    state.ingest("groundlink/gs1/cmd/stow", b"{}")
    assert (state.invalid, state.received, state.status) == (2, 2, None)
    assert "2 invalid" in _render(state, clock)


async def test_run_monitor_shows_a_live_station(embedded_broker: EmbeddedBroker) -> None:
    """run_monitor subscribes, builds its state from the broker and renders it."""
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    clock = SystemClock()
    async with MqttPublisher(fast_config(embedded_broker.url), "gs1", clock) as publisher:
        await asyncio.wait_for(publisher.wait_connected(), DEADLINE_S)
        for payload in samples():
            publisher.send(payload)
        await asyncio.wait_for(publisher.flush(), DEADLINE_S)
        state = await asyncio.wait_for(
            run_monitor(
                embedded_broker.url,
                "gs1",
                clock=clock,
                duration_s=DEADLINE_S,
                console=console,
                until=lambda s: (
                    s.status is not None and len(s.antennas) == 2 and s.info is not None
                ),
            ),
            DEADLINE_S + 5,
        )
    assert state.status is not None
    assert state.status.state == "ready"
    assert "connected to mqtt://127.0.0.1" in state.connection
    assert "READY" in out.getvalue()
    assert len(state.schemas) == 23


async def test_run_monitor_stops_after_its_duration_without_a_broker() -> None:
    """With no broker it ends after duration_s of the injected clock, not before."""
    clock = VirtualClock(T0)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    task = asyncio.create_task(
        run_monitor(
            f"mqtt://127.0.0.1:{free_port()}", "gs1", clock=clock, duration_s=30.0, console=console
        )
    )
    await clock.run_until(T0 + timedelta(seconds=29.9))
    assert not task.done()
    await clock.run_until(T0 + timedelta(seconds=30.1))
    state = await asyncio.wait_for(task, DEADLINE_S)
    assert not state.connection.startswith("connected")
    assert state.status is None
