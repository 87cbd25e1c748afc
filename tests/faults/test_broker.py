"""Broker faults under the running daemon (issue 8, scenarios 7-9).

Scenario 7 (broker down at start: the daemon starts, tracks, and publishes everything once
the broker appears) is proven by
``tests/daemon/test_lifecycle.py::test_broker_down_at_start_tracks_anyway_and_publishes_once_it_is_up``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import timedelta
from pathlib import Path

from controller.daemon import Daemon
from firmware_bridge.clock import VirtualClock
from tests.faults.conftest import (
    PREFIX,
    MosquittoFactory,
    Subscriber,
    drive,
    make_daemon,
    start_daemon,
    stop_daemon,
    tracking,
    write_config,
)
from tests.telemetry.conftest import Received

RETAINED = ("status", "info", "schedule", "catalog", "pass/current", "antenna/ant1/state")
REAL_DEADLINE_S = 30.0


def seqs(messages: list[Received], topic: str) -> list[int]:
    """The distinct sequence numbers received on ``topic``, sorted."""
    return sorted({int(m.json()["seq"]) for m in messages if m.topic == PREFIX + topic})


QOS1_EVENTS = {"pass/event": "pass_event", "event": "event"}
"""The QoS 1 event topics and their payload types."""


def sent(daemon: Daemon, topic: str) -> int:
    """How many messages the daemon produced for ``topic`` (counted by its stats sink)."""
    return daemon.stats.messages[QOS1_EVENTS[topic]]


async def reconnected(daemon: Daemon, clock: VirtualClock, task: asyncio.Task[int], n: int) -> None:
    """Step until the publisher has connected ``n`` times, then wait for its outbox."""
    publisher = daemon.publisher
    assert publisher is not None
    await drive(
        clock, task, condition=lambda: publisher.stats.connects >= n, step_s=0.5, limit_s=600
    )
    await asyncio.wait_for(publisher.flush(), REAL_DEADLINE_S)


def assert_nothing_lost(daemon: Daemon, messages: list[Received]) -> None:
    """Every QoS 1 event the daemon produced arrived (by seq), none missing."""
    assert sent(daemon, "pass/event") > 0
    for topic in QOS1_EVENTS:
        count = sent(daemon, topic)
        assert seqs(messages, topic) == list(range(1, count + 1)), topic


async def test_broker_killed_for_ten_minutes_mid_pass(
    tmp_path: Path, clock: VirtualClock, mosquitto_factory: MosquittoFactory
) -> None:
    """Scenario 8a: Mosquitto is killed mid-pass and comes back (empty) ten simulated minutes
    later: the tracks of the outage are executed, every pass event and event of the outage
    arrives afterwards, and the retained state is there again for a new subscriber."""
    broker = await mosquitto_factory()
    daemon = make_daemon(write_config(tmp_path), clock, tmp_path, broker.url)
    async with Subscriber(broker.port, [PREFIX + "#"]) as sub:
        task = await start_daemon(daemon, clock)
        await reconnected(daemon, clock, task, 1)
        await drive(clock, task, condition=tracking(daemon, "ant1"), step_s=1.0)
        before = len(daemon.outcomes)
        await broker.kill()
        await drive(clock, task, until=clock.now() + timedelta(minutes=10), step_s=1.0)
        during = list(daemon.outcomes)[before:]
        assert [o.status for o in during if o.status == "executed"], "no track ended offline"
        assert not [o for o in during if o.status == "aborted"]
        await broker.start()
        await sub.reconnect()
        await reconnected(daemon, clock, task, 2)
        await sub.wait_for(lambda ms: len(seqs(ms, "pass/event")) >= sent(daemon, "pass/event"))
        assert_nothing_lost(daemon, sub.messages)
    async with Subscriber(broker.port, [PREFIX + t for t in RETAINED]) as late:
        await late.wait_for(lambda ms: {m.topic for m in ms} >= {PREFIX + t for t in RETAINED})
        assert all(m.retain for m in late.messages)
        status = json.loads(late.on(PREFIX + "status")[-1].payload)
        assert status["state"] in ("ready", "degraded")
    assert await stop_daemon(daemon, clock, task) == 0


async def test_broker_frozen_for_two_minutes_across_aos(
    tmp_path: Path, clock: VirtualClock, mosquitto_factory: MosquittoFactory
) -> None:
    """Scenario 8b: Mosquitto is stopped (SIGSTOP) for two simulated minutes across both
    antennas' AOS: tracking goes on, and once it runs again no QoS 1 event is missing."""
    broker = await mosquitto_factory()
    daemon = make_daemon(write_config(tmp_path), clock, tmp_path, broker.url)
    async with Subscriber(broker.port, [PREFIX + "#"]) as sub:
        task = await start_daemon(daemon, clock)
        await reconnected(daemon, clock, task, 1)
        # Freeze across the later of the antennas' first AOS (the earlier one may be more
        # than the two minutes before it, and then that antenna is tracking already).
        firsts = {a.id: a.jobs[0] for a in daemon.antennas.values()}
        later_aos = max(job.aos for job in firsts.values())
        await drive(clock, task, until=later_aos - timedelta(seconds=60), step_s=1.0)
        # The broker's process, frozen like a VM paused by its host (test-owned process).
        assert broker._proc is not None
        pid = broker._proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            await drive(clock, task, until=clock.now() + timedelta(minutes=2), step_s=1.0)
            # Every antenna whose first pass is on now tracks it (the later AOS included).
            now = clock.now()
            due = [a for a, job in firsts.items() if job.aos <= now < job.los]
            assert max(firsts, key=lambda a: firsts[a].aos) in due
            assert tracking(daemon, *due)()
        finally:
            os.kill(pid, signal.SIGCONT)
        if sub.disconnected.is_set():
            await sub.reconnect()
        await drive(clock, task, until=clock.now() + timedelta(seconds=30), step_s=0.5)
        publisher = daemon.publisher
        assert publisher is not None
        await drive(
            clock,
            task,
            condition=lambda: publisher.link_state.value == "connected",
            step_s=0.5,
            limit_s=600,
        )
        await asyncio.wait_for(publisher.flush(), REAL_DEADLINE_S)
        await sub.wait_for(lambda ms: len(seqs(ms, "pass/event")) >= sent(daemon, "pass/event"))
        assert_nothing_lost(daemon, sub.messages)
        assert not [o for o in daemon.outcomes if o.status == "aborted"]
    assert await stop_daemon(daemon, clock, task) == 0


async def test_broker_restarted_without_persistence_gets_every_retained_topic_back(
    tmp_path: Path, clock: VirtualClock, mosquitto_factory: MosquittoFactory
) -> None:
    """Scenario 9: a broker restart that loses every retained message: after the reconnect a
    new subscriber sees the same retained topics as before, each with the daemon's latest."""
    broker = await mosquitto_factory()  # persistence false
    daemon = make_daemon(write_config(tmp_path), clock, tmp_path, broker.url)
    task = await start_daemon(daemon, clock)
    await reconnected(daemon, clock, task, 1)
    await drive(clock, task, condition=tracking(daemon, "ant1"), step_s=1.0)
    async with Subscriber(broker.port, [PREFIX + "#"]) as early:
        await early.wait_for(lambda ms: {m.topic for m in ms} >= {PREFIX + t for t in RETAINED})
        before = {m.topic for m in early.messages if m.retain}
    await broker.stop()
    await broker.start()
    await reconnected(daemon, clock, task, 2)
    async with Subscriber(broker.port, [PREFIX + "#"]) as late:
        await late.wait_for(lambda ms: {m.topic for m in ms if m.retain} >= before)
        state = json.loads([m for m in late.messages if m.topic == PREFIX + "status"][-1].payload)
        assert state["state"] == daemon.state
    assert await stop_daemon(daemon, clock, task) == 0
