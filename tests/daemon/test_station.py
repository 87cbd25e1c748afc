"""The daemon end to end on a stepped virtual clock, with a real Mosquitto."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from controller.config import GroundlinkConfig
from controller.daemon import Daemon
from controller.telemetry.payloads import decode_message
from firmware_bridge.clock import VirtualClock
from tests.daemon.conftest import (
    drive,
    errors_logged,
    fast_settings,
    start_daemon,
    stop_daemon,
)
from tests.telemetry._jsonschema import validate
from tests.telemetry.conftest import MosquittoFactory, Subscriber

PREFIX = "groundlink/demo/"


def _parked(daemon: Daemon) -> list[str]:
    """Antennas whose twin really stands at its park position."""
    out = []
    for ant in daemon.antennas.values():
        assert ant.twin is not None
        where = ant.twin.true_position()
        caps = ant.rotator.capabilities
        if (
            abs(where.az_deg - caps.park_az_deg) <= 1.0
            and abs(where.el_deg - caps.park_el_deg) <= 1.0
        ):
            out.append(ant.id)
    return out


async def test_simulated_hours_track_publish_and_stop_mid_pass(
    tmp_path: Path,
    config: GroundlinkConfig,
    config_path: Path,
    clock: VirtualClock,
    mosquitto_factory: MosquittoFactory,
    log_lines: io.StringIO,
) -> None:
    """A simulated hour: every scheduled track executed or aborted with a reason, every
    message valid against its published schema, no error logged; a stop mid-pass stows both
    antennas, publishes the retained offline state and exits 0."""
    broker = await mosquitto_factory()
    async with Subscriber(broker.port, [PREFIX + "#"]) as sub:
        daemon = Daemon(
            config,
            clock=clock,
            config_path=config_path,
            settings=fast_settings(tmp_path / "run"),
            broker_url=broker.url,
        )
        task = await start_daemon(daemon, clock)
        end = clock.now() + timedelta(hours=1)
        await drive(clock, task, until=end, step_s=5.0)
        # Then on to the middle of a pass, and stop there.
        await drive(
            clock,
            task,
            condition=lambda: any(
                a.tracker is not None and a.tracker.mode == "tracking"
                for a in daemon.antennas.values()
            ),
            step_s=1.0,
            limit_s=3 * 3600,
        )
        tracking = [a.id for a in daemon.antennas.values() if a.current is not None]
        stop_at = clock.now()
        code = await stop_daemon(daemon, clock, task)
        assert code == 0
        await sub.wait_for(
            lambda ms: any(
                m.topic == PREFIX + "status" and m.json()["state"] == "offline" for m in ms
            )
        )

    # Every track that was due ended one way or the other, with a reason when aborted.
    due = [
        (ant.id, job.pass_.norad_id, job.aos)
        for ant in daemon.antennas.values()
        for job in ant.jobs
        if job.aos <= stop_at
    ]
    ended = {(o.antenna, o.norad_id, o.start) for o in daemon.outcomes}
    assert due
    assert set(due) <= ended
    executed = [o for o in daemon.outcomes if o.status == "executed"]
    assert {o.antenna for o in executed} == {"ant1", "ant2"}
    for outcome in daemon.outcomes:
        if outcome.status == "aborted":
            assert outcome.reason
    stopped = [o for o in daemon.outcomes if o.reason and o.reason.startswith("daemon stopping")]
    assert {o.antenna for o in stopped} == set(tracking)
    # Every track was flown on the schedule's wrap side: the slews between an antenna's
    # tracks were timed for it (another side may end 360 deg away from the next start).
    for ant in daemon.antennas.values():
        assert ant.tracker is not None
        sides = {(j.pass_.norad_id, j.aos): j.side_az_deg for j in ant.jobs}
        flown = [r for r in ant.tracker.reports if r.plan is not None]
        assert flown
        for report in flown:
            side = sides[(report.norad_id, report.aos)]
            assert side is not None
            assert report.plan is not None
            assert abs(float(report.plan.az_deg[0]) - side) <= 90.0, (ant.id, report.variant)
    # The simulated radios' sky was computed ahead, window by window: no reading of the
    # meter propagated it (each such reading held every loop up for tens of milliseconds).
    truth = daemon.sky_truth
    assert truth is not None
    assert truth.watched()
    assert truth.propagated == 0
    # Stowed for real (the twins), and said so.
    assert sorted(_parked(daemon)) == ["ant1", "ant2"]
    # Telemetry: the topics of the MQTT issue, each message valid against its schema.
    schemas: dict[str, dict[str, Any]] = {}
    for m in sub.messages:
        if m.topic.startswith(PREFIX + "schema/"):
            schemas[m.topic.removeprefix(PREFIX + "schema/")] = m.json()
    seen: set[str] = set()
    for m in sub.messages:
        rel = m.topic.removeprefix(PREFIX)
        if rel.startswith("schema/"):
            continue
        body = m.json()
        decode_message(m.payload)  # the model accepts it
        type_name = body["schema"].removeprefix("groundlink.").split("/")[0]
        validate(body, schemas[type_name])  # and so does the published JSON Schema
        seen.add(rel)
    expected = {
        "status",
        "info",
        "health",
        "schedule",
        "catalog",
        "pass/current",
        "pass/event",
        "antenna/ant1/state",
        "antenna/ant2/state",
        "antenna/ant1/pointing",
        "antenna/ant2/pointing",
        "link/ant1",
        "link/ant2",
    }
    assert expected <= seen, expected - seen
    last_state = {
        rel: json.loads(m.payload)
        for m in sub.messages
        if (rel := m.topic.removeprefix(PREFIX)) in ("antenna/ant1/state", "antenna/ant2/state")
    }
    assert {s["mode"] for s in last_state.values()} == {"stowed"}
    assert errors_logged(log_lines) == []
