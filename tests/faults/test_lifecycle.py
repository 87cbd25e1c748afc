"""Lifecycle faults of the running daemon (issue 8, scenarios 14-17).

Already proven elsewhere: SIGTERM mid-pass on a real process (stowed, retained offline,
exit 0): ``tests/daemon/test_signals.py::
test_sigterm_mid_pass_stows_publishes_offline_and_exits_0``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.tracking.tracker import TrackJob, TrackReport
from firmware_bridge.clock import VirtualClock
from tests.faults.conftest import (
    PREFIX,
    ROOT,
    MosquittoBroker,
    Subscriber,
    drive,
    drive_wire,
    faults_config_text,
    make_daemon,
    pty_rotator,
    start_daemon,
    start_wired,
    stop_daemon,
    stop_wired,
    tracking,
    wired_config_text,
    write_config,
)
from tests.telemetry.conftest import Received


async def test_a_crashing_antenna_task_is_restarted_with_an_alarm_the_rest_unaffected(
    tmp_path: Path, clock: VirtualClock, mosquitto: MosquittoBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scenario 17: ant1's tracking raises an unexpected error once: alarm, the track
    reported aborted with the error, the antenna supervisor restarts it; ant2 never notices
    and the daemon never exits."""
    daemon = make_daemon(write_config(tmp_path), clock, tmp_path, mosquitto.url)
    task = await start_daemon(daemon, clock)
    ant1 = daemon.antennas["ant1"]
    tracker = ant1.require_tracker()
    real_track: Callable[[TrackJob], Any] = tracker.track
    crashes: list[TrackJob] = []

    async def crash_once(job: TrackJob) -> TrackReport:
        if not crashes:
            crashes.append(job)
            raise RuntimeError("injected bug")
        report: TrackReport = await real_track(job)
        return report

    monkeypatch.setattr(tracker, "track", crash_once)
    await drive(clock, task, condition=lambda: "antenna-ant1" in daemon.alarms.active, step_s=1.0)
    assert "RuntimeError: injected bug" in daemon.alarms.active["antenna-ant1"].message
    crashed = [o for o in daemon.outcomes if o.reason and "injected bug" in o.reason]
    assert [(o.antenna, o.norad_id) for o in crashed] == [("ant1", crashes[0].pass_.norad_id)]
    assert ant1.current is None
    # Restarted: the next pass is tracked, and the alarm cleared once it is done.
    await drive(
        clock,
        task,
        condition=lambda: any(
            o.antenna == "ant1" and o.status == "executed" for o in daemon.outcomes
        ),
        step_s=2.0,
        limit_s=3600,
    )
    assert "antenna-ant1" not in daemon.alarms.active
    assert any(o.antenna == "ant2" and o.status == "executed" for o in daemon.outcomes)
    assert not [o for o in daemon.outcomes if o.antenna == "ant2" and o.status == "aborted"]
    assert daemon.tasks_healthy()
    assert await stop_daemon(daemon, clock, task) == 0


async def test_wall_clock_steps_raise_an_alarm_and_replan_without_touching_timeouts(
    tmp_path: Path, clock: VirtualClock, mosquitto: MosquittoBroker
) -> None:
    """Scenario 15: the wall clock steps ten minutes forward, then twenty back: each step is
    a clock-jump alarm within one health period and a new plan from the new time; device
    timeouts (monotonic) never fire, and tracks go on being executed."""
    daemon = make_daemon(write_config(tmp_path), clock, tmp_path, mosquitto.url)
    task = await start_daemon(daemon, clock)
    period_s = daemon.settings.health_period_s
    await drive(clock, task, until=clock.now() + timedelta(seconds=60), step_s=1.0)
    for step_s in (600.0, -1200.0):
        plans = daemon.plans
        clock.jump_wall(step_s)
        stepped_at = clock.monotonic()

        def replanned(before: int = plans) -> bool:
            return daemon.plans > before and "clock-jump" in daemon.alarms.active

        await drive(
            clock,
            task,
            condition=replanned,
            step_s=0.5,
            limit_s=2 * period_s,
        )
        assert clock.monotonic() - stepped_at <= period_s + 1.0
        message = daemon.alarms.active["clock-jump"].message
        assert f"{step_s:+.1f} s" in message, message
        assert daemon.schedule is not None
        assert daemon.schedule.start >= clock.now() - timedelta(seconds=1)
    await drive(
        clock,
        task,
        condition=lambda: any(o.status == "executed" for o in daemon.outcomes),
        step_s=2.0,
        limit_s=3600,
    )
    for ant in daemon.antennas.values():
        assert ant.rotator.link is not None
        assert ant.rotator.link.counters.timeouts == 0
    assert await stop_daemon(daemon, clock, task) == 0


CHILD = """
import sys
from pathlib import Path
from controller.demo import run_demo
from controller.logs import configure_logging
configure_logging("debug", json_lines=True)
sys.exit(run_demo(Path(sys.argv[1]), 60.0, 0.0, sys.argv[2], True, live=False))
"""


def _aos_then_los(messages: list[Received]) -> bool:
    """True once some track's LOS event followed its AOS event."""
    opened: set[tuple[str, int]] = set()
    for m in messages:
        if m.topic != PREFIX + "pass/event":
            continue
        body = m.json()
        key = (body["antenna"], body["norad_id"])
        if body["event"] == "aos":
            opened.add(key)
        elif body["event"] == "los" and key in opened:
            return True
    return False


async def test_logging_to_a_full_disk_does_not_stop_the_tracking(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Scenario 16: a real daemon process (accelerated clock) logging at debug to a stderr
    that is /dev/full: it tracks through AOS and LOS and exits 0 on SIGTERM. (Its stdout,
    the demo's summary table, is not the log destination.)"""
    config = write_config(tmp_path, faults_config_text(horizon_h=2.0))
    env = dict(os.environ, GROUNDLINK_RUN_DIR=str(tmp_path / "run"), PYTHONPATH=str(ROOT))
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        async with Subscriber(mosquitto.port, [PREFIX + "pass/event", PREFIX + "status"]) as sub:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CHILD,
                str(config),
                mosquitto.url,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=full,
            )
            try:
                # The demo starts at the real time, perhaps mid-pass (a track joined late
                # has no AOS): wait for the LOS of a track whose AOS came through too.
                await sub.wait_for(_aos_then_los, timeout_s=90)
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 60)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            assert proc.returncode == 0
            await sub.wait_for(
                lambda ms: any(
                    m.topic == PREFIX + "status" and m.json()["state"] == "offline" for m in ms
                )
            )
    finally:
        os.close(full)
    events = [m.json()["event"] for m in sub.on(PREFIX + "pass/event")]
    assert "aos" in events
    assert "los" in events


async def test_stop_while_a_rotator_is_lost_stows_the_rest_and_exits_0_within_the_grace(
    tmp_path: Path, clock: VirtualClock, wire_link: Path, mosquitto: MosquittoBroker
) -> None:
    """Scenario 14 (device faulted): SIGTERM while ant1's serial rotator is gone mid-pass:
    ant2 is stowed for real, the retained offline state is published, and the daemon exits
    0 within its grace period although ant1 never answers."""
    async with pty_rotator(clock, wire_link) as (_twin, server):
        path = write_config(tmp_path, wired_config_text(f"serial://{wire_link}"))
        # A stow timeout covering ant2's longest stow (540 deg of azimuth at 4 deg/s), so
        # "stowed for real" holds wherever the pass has taken it.
        daemon = make_daemon(
            path, clock, tmp_path, mosquitto.url, grace_period_s=200.0, stow_timeout_s=150.0
        )
        task = await start_wired(daemon, clock)
        await drive_wire(
            clock, task, daemon, condition=tracking(daemon, "ant1", "ant2"), step_s=1.0
        )
        await server.drop()
        await drive_wire(
            clock, task, daemon, condition=lambda: "antenna-ant1" in daemon.alarms.active
        )
        stop_at = clock.monotonic()
        assert await stop_wired(daemon, clock, task) == 0
        assert clock.monotonic() - stop_at <= daemon.settings.grace_period_s
    ant2 = daemon.antennas["ant2"]
    assert ant2.twin is not None
    where = ant2.twin.true_position()
    caps = ant2.rotator.capabilities
    # The daemon calls a rotator stowed when its reading is within 1 deg of park; the
    # reading is quantised to the controller's resolution, so the true position may be
    # half a step further.
    tol_az = 1.0 + caps.az_resolution_deg / 2
    tol_el = 1.0 + caps.el_resolution_deg / 2
    assert abs(where.az_deg - caps.park_az_deg) <= tol_az
    assert abs(where.el_deg - caps.park_el_deg) <= tol_el
    stopped = {o.antenna for o in daemon.outcomes if o.reason and "daemon stopping" in o.reason}
    assert "ant2" in stopped
    async with Subscriber(mosquitto.port, [PREFIX + "status"]) as late:
        await late.wait_for(lambda ms: bool(ms))
        assert late.messages[-1].json()["state"] == "offline"
        assert late.messages[-1].retain
