"""Device faults under the running daemon (issue 8, scenarios 1-6).

Scenario 1 goes over the serial path: the test serves ant1's GS-232B twin on a real
pseudo-terminal and closes it mid-pass. The others inject faults into the twins the daemon
serves itself over ``loop://`` (``daemon.antennas[...].twin``), so they run on the virtual
clock alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from controller.config import load_config
from controller.daemon import Daemon
from controller.telemetry.sink import InMemorySink
from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers.base import Driver, DriverState
from firmware_bridge.drivers.rotator import Position
from firmware_bridge.protocols.base import Axis, GetPosition, Park, SetPosition, Stop
from tests.faults.conftest import (
    PREFIX,
    MosquittoBroker,
    MosquittoFactory,
    SensorTwin,
    Subscriber,
    drive,
    drive_wire,
    fast_settings,
    make_daemon,
    pty_radio,
    pty_rotator,
    radio_wired_config_text,
    start_daemon,
    start_wired,
    stop_daemon,
    stop_wired,
    tracking,
    wired_config_text,
    write_config,
)


def state_of(driver: Driver) -> DriverState:
    """The driver's state, read afresh (keeps mypy from narrowing it across awaits)."""
    return driver.state


async def test_rotator_pty_closed_mid_pass_faults_then_rejoins_the_track(
    tmp_path: Path, clock: VirtualClock, wire_link: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """Scenario 1: the pty goes away mid-pass: alarm and fault state within a second, the
    link retries with growing backoff; once it is back the antenna rejoins the same pass."""
    broker = await mosquitto_factory()
    async with pty_rotator(clock, wire_link) as (_twin, server):
        path = tmp_path / "station.toml"
        path.write_text(wired_config_text(f"serial://{wire_link}"))
        daemon = Daemon(
            load_config(path),
            clock=clock,
            config_path=path,
            settings=fast_settings(tmp_path / "run"),
            broker_url=broker.url,
        )
        async with Subscriber(broker.port, [PREFIX + "alarms"]) as alarms:
            task = await start_wired(daemon, clock)
            ant = daemon.antennas["ant1"]
            tracker = ant.require_tracker()
            await drive_wire(
                clock,
                task,
                daemon,
                condition=lambda: tracker.mode == "tracking",
                step_s=1.0,
                limit_s=1800,
            )
            assert ant.current is not None
            job = ant.current
            # Late in the pass, so that the rejoined part is short (a few real seconds).
            await drive_wire(
                clock, task, daemon, until=job.los - timedelta(seconds=150), step_s=1.0
            )
            dropped_at = clock.now()
            await server.drop()
            await drive_wire(
                clock,
                task,
                daemon,
                condition=lambda: "antenna-ant1" in daemon.alarms.active,
                step_s=0.05,
                limit_s=5,
            )
            assert (clock.now() - dropped_at).total_seconds() <= 1.0
            assert ant.health == "fault"
            assert ant.rotator.state is DriverState.FAULTED
            await alarms.wait_for(lambda ms: any(b"antenna-ant1" in m.payload for m in ms))
            # Down for 40 s: reconnect attempts on a growing backoff, none succeeds.
            await drive_wire(
                clock, task, daemon, until=clock.now() + timedelta(seconds=40), step_s=0.5
            )
            link = ant.rotator.link
            assert link is not None
            attempts = link.counters.reconnect_attempts
            assert 2 <= attempts <= 8  # backoff 0.5 s doubling to a 30 s cap, not a busy loop
            assert ant.current is None or ant.current is not job
            await server.restore()
            await drive_wire(
                clock,
                task,
                daemon,
                condition=lambda: tracker.mode == "tracking" and ant.current is not None,
                limit_s=120,
            )
            assert clock.now() < job.los
            assert ant.current is not None
            assert ant.current.pass_.norad_id == job.pass_.norad_id
            assert link.counters.reconnects == 1
            await drive_wire(clock, task, daemon, condition=lambda: ant.current is None, step_s=1.0)
            assert "antenna-ant1" not in daemon.alarms.active
            rejoined = [
                o
                for o in daemon.outcomes
                if o.norad_id == job.pass_.norad_id and o.antenna == "ant1"
            ]
            assert [o.status for o in rejoined] == ["aborted", "executed"]
            assert await stop_wired(daemon, clock, task) == 0


async def test_garbage_and_partial_frames_are_retried_and_never_acted_on(
    tmp_path: Path, clock: VirtualClock, config_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Scenario 3: garbage (GS-232B) and cut-short binary frames (Rot2Prog) mid-pass cost
    retries only: both passes are executed, no reading or error reaches the tracker."""
    daemon = make_daemon(config_path, clock, tmp_path, mosquitto.url)
    task = await start_daemon(daemon, clock)
    await drive(clock, task, condition=tracking(daemon, "ant1", "ant2"), step_s=1.0)
    ant1, ant2 = daemon.antennas["ant1"], daemon.antennas["ant2"]
    assert ant1.twin is not None
    assert ant2.twin is not None
    jobs = {a.id: a.current for a in (ant1, ant2)}
    ant1.twin.faults.garbage_replies(3)
    ant2.twin.faults.truncate_replies(3)
    await drive(
        clock,
        task,
        condition=lambda: (
            ant1.twin is not None
            and ant2.twin is not None
            and ant1.twin.faults.garbled == 3
            and ant2.twin.faults.truncated == 3
        ),
        step_s=0.1,
        limit_s=60,
    )
    await drive(
        clock,
        task,
        condition=lambda: all(a.current is not jobs[a.id] for a in (ant1, ant2)),
        step_s=2.0,
    )
    for ant in (ant1, ant2):
        job = jobs[ant.id]
        assert job is not None
        ends = [o for o in daemon.outcomes if (o.antenna, o.start) == (ant.id, job.aos)]
        assert [o.status for o in ends] == ["executed"], ends
        # The link absorbed every bad frame: the tracker never saw a failed or bad reading.
        assert ant.require_tracker().counters.rotator_errors == 0
        assert f"antenna-{ant.id}" not in {a.id for a in daemon.alarms.history}
    assert ant1.rotator.link is not None
    assert ant2.rotator.link is not None
    assert ant1.rotator.link.counters.garbage >= 3
    assert ant2.rotator.link.counters.timeouts >= 3  # a cut-short frame never completes
    assert await stop_daemon(daemon, clock, task) == 0


async def test_stalled_axis_is_detected_after_the_debounce_alarmed_and_stopped(
    tmp_path: Path, clock: VirtualClock, config_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Scenario 5: the azimuth jams mid-pass: not before the stall timeout, but soon after
    it, the track is aborted with an alarm naming the stall and the rotator is stopped."""
    daemon = make_daemon(config_path, clock, tmp_path, mosquitto.url)
    task = await start_daemon(daemon, clock)
    ant = daemon.antennas["ant1"]
    await drive(clock, task, condition=tracking(daemon, "ant1"), step_s=1.0)
    await drive(clock, task, until=clock.now() + timedelta(seconds=20), step_s=0.5)
    assert ant.twin is not None
    job = ant.current
    assert job is not None
    twin = ant.twin
    seen = twin.command_count
    twin.stall(Axis.AZ)
    jammed_az = twin.reported_position().az_deg
    resolution_deg = ant.rotator.capabilities.az_resolution_deg
    # The stall counts from the first target the jammed axis should move to (the tracker
    # commands at its own pace, up to half a minute apart): note when the driver has one.
    moved_at: list[datetime] = []

    def alarm_or_command() -> bool:
        target = ant.rotator.target
        if not moved_at and target is not None and abs(target.az_deg - jammed_az) > resolution_deg:
            moved_at.append(clock.now())
        return "antenna-ant1" in daemon.alarms.active

    await drive(clock, task, condition=alarm_or_command, step_s=0.25, limit_s=300)
    assert moved_at, "the alarm came before any command asked the jammed axis to move"
    after_s = (clock.now() - moved_at[0]).total_seconds()
    timeout_s = ant.rotator.stall_timeout_s
    assert timeout_s <= after_s <= timeout_s + 2.0, (after_s, timeout_s)
    assert "stalled" in daemon.alarms.active["antenna-ant1"].message
    await drive(clock, task, condition=lambda: ant.current is None, step_s=0.25, limit_s=30)
    since = list(ant.twin.commands)[-(ant.twin.command_count - seen) :]
    assert any(isinstance(c, Stop) for c in since)
    ends = [o for o in daemon.outcomes if (o.antenna, o.start) == ("ant1", job.aos)]
    assert [o.status for o in ends] == ["aborted"]
    assert ends[0].reason is not None
    assert "stalled" in ends[0].reason
    assert ant.rejoin_job is None  # a jammed axis is not taken up again by itself
    assert await stop_daemon(daemon, clock, task) == 0


async def test_position_outside_the_limits_is_a_fault_and_never_commanded_after(
    tmp_path: Path, clock: VirtualClock, wire_link: Path, mosquitto: MosquittoBroker
) -> None:
    """Scenario 6: the controller reports an elevation past the 90 deg stop mid-pass: a
    fault with an alarm; after it only a stop goes out, no target, not even park."""
    async with pty_rotator(clock, wire_link, sensor=True, el_max_deg=90.0) as (twin, _server):
        assert isinstance(twin, SensorTwin)
        path = write_config(tmp_path, wired_config_text(f"serial://{wire_link}", el_max_deg=90.0))
        daemon = make_daemon(path, clock, tmp_path, mosquitto.url)
        task = await start_wired(daemon, clock)
        ant = daemon.antennas["ant1"]
        await drive_wire(clock, task, daemon, condition=tracking(daemon, "ant1"), step_s=1.0)
        seen = twin.command_count
        twin.sensor_offset = Position(0.0, 100.0)
        await drive_wire(
            clock,
            task,
            daemon,
            condition=lambda: "antenna-ant1" in daemon.alarms.active,
            step_s=0.1,
            limit_s=10,
        )
        assert "outside the limits" in daemon.alarms.active["antenna-ant1"].message
        await drive_wire(clock, task, daemon, until=clock.now() + timedelta(seconds=60))
        since = list(twin.commands)[-(twin.command_count - seen) :]
        # The first read after the offset is the one that showed the bad position.
        first = next(i for i, c in enumerate(since) if isinstance(c, GetPosition))
        after = since[first + 1 :]
        assert any(isinstance(c, Stop) for c in after)
        assert not [c for c in after if isinstance(c, SetPosition | Park)]
        assert ant.rotator.state is DriverState.FAULTED
        assert await stop_wired(daemon, clock, task) == 0


async def test_slow_replies_cost_retries_and_a_degraded_state_then_recover(
    tmp_path: Path, clock: VirtualClock, config_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Scenario 4: ant1's controller answers later than the link's timeout for a while:
    attempts time out and are retried, the device and the station read degraded; once it
    answers in time again both are ok, and the pass is executed."""
    daemon = make_daemon(config_path, clock, tmp_path, mosquitto.url, health_period_s=5.0)
    task = await start_daemon(daemon, clock)
    ant = daemon.antennas["ant1"]
    link = ant.rotator.link
    assert link is not None
    assert ant.twin is not None
    twin = ant.twin
    await drive(clock, task, condition=tracking(daemon, "ant1"), step_s=1.0)
    job = ant.current
    assert job is not None
    twin.faults.late_replies(link.policy.timeout_s * 1.5)
    await drive(clock, task, condition=lambda: link.counters.timeouts >= 2, step_s=0.1)
    twin.faults.clear()
    await drive(clock, task, condition=lambda: daemon.state == "degraded", step_s=0.5, limit_s=15)
    assert link.counters.retries >= 2
    assert state_of(ant.rotator) is DriverState.DEGRADED
    health = {c.name: c.state for c in daemon._components()}
    assert health["ant1-rotator"] == "degraded"
    await drive(
        clock,
        task,
        condition=lambda: daemon.state == "ready",
        step_s=1.0,
        limit_s=link.policy.degraded_for_s + 15,
    )
    assert state_of(ant.rotator) is DriverState.OK
    await drive(clock, task, condition=lambda: ant.current is not job, step_s=2.0)
    ends = [o for o in daemon.outcomes if (o.antenna, o.start) == ("ant1", job.aos)]
    assert [o.status for o in ends] == ["executed"]
    assert await stop_daemon(daemon, clock, task) == 0


async def test_radio_pty_closed_mid_pass_alarm_then_frequencies_restored(
    tmp_path: Path, clock: VirtualClock, mosquitto: MosquittoBroker
) -> None:
    """Scenario 2: ant1's IC-9700 (serial) vanishes mid-pass: an alarm, no frequency reaches
    it, the rotator tracks on; once back it reconnects, the alarm clears and the radio is
    set to the Doppler-corrected frequency of that moment again."""
    link = tmp_path / "rig1"
    async with pty_radio(clock, link) as (twin, server):
        sink = InMemorySink(clock, "demo")
        # The first pass of ant1 (NORAD 80047) gets 80001's frequencies: a Doppler pass.
        text = radio_wired_config_text(f"serial://{link}")
        path = write_config(tmp_path, text.replace("norad_id = 80001", "norad_id = 80047"))
        daemon = make_daemon(path, clock, tmp_path, mosquitto.url, extra_sinks=[sink])
        task = await start_wired(daemon, clock)
        ant = daemon.antennas["ant1"]
        tracker = ant.require_tracker()
        await drive_wire(clock, task, daemon, condition=tracking(daemon, "ant1"), step_s=1.0)
        await drive_wire(
            clock, task, daemon, condition=lambda: tracker.counters.frequency_commands > 0
        )
        await drive_wire(clock, task, daemon, until=clock.now() + timedelta(seconds=5))
        dropped_at = clock.now()
        await server.drop()
        await drive_wire(
            clock,
            task,
            daemon,
            condition=lambda: "radio-rig1" in daemon.alarms.active,
            step_s=0.05,
            limit_s=5,
        )
        assert (clock.now() - dropped_at).total_seconds() <= 1.0
        frozen = {band: twin.vfo(band).freq_hz for band in twin.bands}
        received = twin.command_count
        await drive_wire(clock, task, daemon, until=clock.now() + timedelta(seconds=30))
        assert twin.command_count == received  # nothing reached the vanished radio
        assert tracker.mode == "tracking"
        states_before = len(sink.on_topic(PREFIX + "radio/rig1/state"))
        await server.restore()
        await drive_wire(
            clock,
            task,
            daemon,
            condition=lambda: (
                "radio-rig1" not in daemon.alarms.active
                and len(sink.on_topic(PREFIX + "radio/rig1/state")) > states_before
            ),
            limit_s=120,
        )
        latest = json.loads(sink.on_topic(PREFIX + "radio/rig1/state")[-1].payload)
        now_set = {band: twin.vfo(band).freq_hz for band in twin.bands}
        assert latest["downlink_hz"] in now_set.values()
        assert now_set != frozen  # the Doppler moved on while it was away, and was caught up
        assert ant.current is not None
        assert await stop_wired(daemon, clock, task) == 0
