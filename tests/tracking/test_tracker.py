"""The antenna tracker against the rotator and radio twins on a virtual clock."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest

from controller.orbit.predictor import Pass
from controller.telemetry.payloads import AntennaState, Link, PassEvent, Payload, Pointing
from controller.tracking.closed_loop import eirp_for_margin, g_over_t_for_beam
from controller.tracking.config import (
    AntennaLinkConfig,
    DialPolicy,
    DopplerSettings,
    PointingSettings,
    SatelliteLinkConfig,
    TrackingConfig,
)
from controller.tracking.doppler import downlink_at_ground_hz
from controller.tracking.link import Emitter, LinkBudget
from controller.tracking.sky import SkyTrack
from controller.tracking.tracker import REPORTS_KEPT, TrackerError, TrackJob
from firmware_bridge.drivers.rotator import Position
from firmware_bridge.errors import LimitError
from firmware_bridge.protocols.base import Axis, SetPosition
from tests.tracking.conftest import Rig, Seed, caps, rig

DOWNLINK_HZ = 437.0e6
BEAM_DEG = 12.0


def short_pass(s: Seed, min_el: float = 25.0) -> Pass:
    """The shortest whole pass of the day that climbs above ``min_el``."""
    return min(
        (p for p in s.passes if not p.flags and p.max_el_deg >= min_el),
        key=lambda p: p.duration_s,
    )


def link_setup(
    s: Seed, p: Pass, *, doppler: DopplerSettings | None = None, **pointing: float
) -> tuple[TrackingConfig, SatelliteLinkConfig, Emitter]:
    """A 12 deg antenna and a satellite whose budget closes with 6 dB at the pass's AOS."""
    antenna = AntennaLinkConfig(g_over_t_db_k=g_over_t_for_beam(BEAM_DEG))
    look = s.predictor.look_angles(p.norad_id, s.station, [p.aos])
    sat = SatelliteLinkConfig(norad_id=p.norad_id, downlink_hz=DOWNLINK_HZ)
    eirp = eirp_for_margin(
        freq_hz=DOWNLINK_HZ,
        g_over_t_db_k=antenna.g_over_t_db_k,
        bandwidth_hz=sat.bandwidth_hz,
        required_snr_db=sat.required_snr_db,
        margin_db=6.0,
        range_km=float(look.range_km[0]),
        el_deg=0.0,
        zenith_atmospheric_loss_db=antenna.zenith_atmospheric_loss_db,
    )
    sat = sat.model_copy(update={"eirp_dbw": eirp})
    config = TrackingConfig(
        pointing=PointingSettings(**pointing),
        doppler=doppler or DopplerSettings(),
        antennas={"ant1": antenna},
        satellites=[sat],
    )
    emitter = Emitter(
        p.norad_id,
        DOWNLINK_HZ,
        LinkBudget.for_link(sat, antenna, BEAM_DEG),
        p.aos - timedelta(minutes=2),
        p.los + timedelta(minutes=2),
    )
    return config, sat, emitter


def records(r: Rig, kind: type[Payload]) -> list[Any]:
    """The telemetry of one payload type, parsed back from the wire (fields read by name)."""
    return list(r.sink.decoded(kind))


def mode(r: Rig) -> str:
    """The tracker's mode now."""
    return str(r.tracker.mode)


def set_positions(r: Rig) -> list[SetPosition]:
    """Every target the rotator twin received."""
    return [e for e in r.rotator.commands if isinstance(e, SetPosition)]


async def test_track_emits_link_telemetry_events_and_stays_in_limits(seed_data: Seed) -> None:
    """One pass on a 0..360/0..90 rotator with 0.2 s of reply latency: AOS/TCA/LOS events in
    order, several pointing and link records a second, Doppler-tuned downlink with the right
    sign, the link locked, every target inside the limits, and the latency measured."""
    p = short_pass(seed_data)
    config, sat, emitter = link_setup(seed_data, p)
    c = caps(360.0, 90.0)
    async with rig(
        p.aos - timedelta(minutes=5), c, config=config, rotator_latency_s=0.2, emitters=(emitter,)
    ) as r:
        task = asyncio.ensure_future(r.tracker.track(TrackJob(p, sat)))
        await r.clock.run_until(p.los + timedelta(seconds=5))
        report = task.result()
        assert report.aborted is None
        events = [m.event for m in records(r, PassEvent)]
        assert events == ["aos", "tca", "los"]
        modes = [m.mode for m in records(r, AntennaState)]
        assert modes[:3] == ["prepositioning", "tracking", "idle"]
        links = [m for m in records(r, Link) if p.aos <= m.ts <= p.los]
        pointing = [m for m in records(r, Pointing) if p.aos <= m.ts <= p.los]
        assert len(links) >= 3 * p.duration_s
        assert len(pointing) >= 3 * p.duration_s
        tuned = [m for m in links if m.downlink_hz is not None]
        assert len(tuned) == len(links)
        # Approaching before TCA (heard high), receding after (heard low).
        first, last = links[0], links[-1]
        assert first.doppler_down_hz > 0 > last.doppler_down_hz
        locked = [m.locked for m in links]
        assert sum(locked) / len(locked) > 0.95
        measured = [m.snr_measured_db for m in links if m.snr_measured_db is not None]
        assert measured
        assert min(measured) > sat.required_snr_db - 3.0
        # Pointing: target, command and reading are all there once tracking runs.
        late = pointing[-10:]
        assert all(m.actual_az_deg is not None and m.error_deg is not None for m in late)
        assert max(m.error_deg for m in late) < BEAM_DEG / 2
        targets = set_positions(r)
        assert targets
        assert report.rotator_commands == len(targets)
        assert all(
            c.az_min_deg <= t.az_deg <= c.az_max_deg
            and t.el_deg is not None
            and c.el_min_deg <= t.el_deg <= c.el_max_deg
            for t in targets
        )
        assert 0.15 <= r.tracker.latency_s <= 0.3


async def test_parks_after_the_idle_time_and_not_between_close_passes(seed_data: Seed) -> None:
    """Back-to-back passes: no park before or between them (no time for a trip to park and
    back); after the last LOS the antenna parks once it has been idle for park_after_idle_s."""
    pair = [p for p, c in seed_data.hard if c == "back-to-back"]
    config, sat, _ = link_setup(
        seed_data, pair[0], park_after_idle_s=60.0, telemetry_period_s=5.0, readback_period_s=5.0
    )
    c = caps()
    jobs = [TrackJob(p, sat.model_copy(update={"norad_id": p.norad_id})) for p in pair]
    async with rig(pair[0].aos - timedelta(minutes=3), c, config=config) as r:
        task = asyncio.ensure_future(r.tracker.run_schedule(jobs))
        await r.clock.run_until(pair[1].los + timedelta(seconds=30))
        modes = [m.mode for m in records(r, AntennaState)]
        assert "parked" not in modes
        await r.clock.run_until(pair[1].los + timedelta(seconds=120))
        reports = task.result()
        assert [rep.aborted for rep in reports] == [None, None]
        modes = [m.mode for m in records(r, AntennaState)]
        assert modes[-1] == "parked"
        await r.clock.advance(200.0)
        here = r.rotator.true_position()
        assert (here.az_deg, here.el_deg) == pytest.approx((c.park_az_deg, c.park_el_deg))


async def test_stall_aborts_the_track_and_goes_to_the_safe_position(seed_data: Seed) -> None:
    """A jammed azimuth axis mid-pass: the track ends with an 'aborted' event naming the
    stall, the antenna reports 'fault', and the rotator is sent to the safe position."""
    p = short_pass(seed_data)
    config, sat, _ = link_setup(seed_data, p, safe_az_deg=90.0, safe_el_deg=80.0)
    async with rig(p.aos - timedelta(minutes=5), caps(), config=config) as r:
        task = asyncio.ensure_future(r.tracker.track(TrackJob(p, sat)))
        await r.clock.run_until(p.aos + timedelta(seconds=60))
        r.rotator.stall(Axis.AZ)
        await r.clock.run_until(p.los)
        report = task.result()
        assert report.aborted is not None
        assert "stalled" in report.aborted
        aborted = [m for m in records(r, PassEvent) if m.event == "aborted"]
        assert aborted
        assert "stalled" in aborted[0].reason
        states = records(r, AntennaState)
        assert any(m.mode == "fault" and m.fault for m in states)
        target = r.rotator.model.target()
        assert (target.az_deg, target.el_deg) == pytest.approx((90.0, 80.0))


async def test_manual_point_stop_and_track_now(seed_data: Seed) -> None:
    """Operator modes: point (refused outside the limits before any byte), track a satellite
    in pass now, stop it (the track reports the cancellation), and a satellite without a pass
    is refused with the reason."""
    p = short_pass(seed_data)
    config, sat, _ = link_setup(seed_data, p)
    c = caps(360.0, 90.0)
    async with rig(p.aos + timedelta(seconds=100), c, config=config) as r:
        point = asyncio.ensure_future(r.tracker.point(123.0, 45.0))
        await r.clock.advance(1.0)
        point.result()
        assert mode(r) == "manual"
        assert set_positions(r)[-1].az_deg == pytest.approx(123.0)
        count = r.rotator.command_count
        with pytest.raises(LimitError, match="outside"):
            await r.tracker.point(400.0, 45.0)
        assert r.rotator.command_count == count
        starting = asyncio.ensure_future(r.tracker.track_now(p.norad_id, sat))
        await r.clock.advance(1.0)
        track = starting.result()
        await r.clock.advance(60.0)
        assert mode(r) == "tracking"
        look = seed_data.predictor.look_angles(p.norad_id, seed_data.station, [r.clock.now()])
        here = r.rotator.true_position()
        assert abs(((here.az_deg - look.az_deg[0]) + 180) % 360 - 180) < BEAM_DEG
        stopping = asyncio.ensure_future(r.tracker.stop())
        await r.clock.advance(1.0)
        stopping.result()
        assert track.cancelled()
        assert r.tracker.reports[-1].aborted == "cancelled by the operator"
        aborted = [m for m in records(r, PassEvent) if m.event == "aborted"]
        assert aborted[-1].reason == "cancelled by the operator"
        assert mode(r) == "idle"
        await r.clock.advance(5.0)
        assert not r.rotator.model.moving()
        with pytest.raises(TrackerError, match="no pass"):
            await r.tracker.track_now(99_999)


@pytest.mark.parametrize("policy", ["follow", "ignore"])
async def test_dial_turn_is_followed_or_undone(seed_data: Seed, policy: DialPolicy) -> None:
    """The operator turns the downlink dial 3 kHz up mid-pass: 'follow' keeps tracking with
    the new offset, 'ignore' puts the Doppler frequency back; either way it is seen once."""
    p = short_pass(seed_data)
    config, sat, emitter = link_setup(
        seed_data,
        p,
        doppler=DopplerSettings(dial_policy=policy, dial_check_period_s=2.0),
    )
    async with rig(p.aos - timedelta(minutes=3), caps(), config=config, emitters=(emitter,)) as r:
        task = asyncio.ensure_future(r.tracker.track(TrackJob(p, sat)))
        await r.clock.run_until(p.aos + timedelta(seconds=100))
        r.radio.vfos["A"].freq_hz += 3000
        check = p.los - timedelta(seconds=20)
        await r.clock.run_until(check)
        track = SkyTrack.from_pass(seed_data.predictor, seed_data.station, p)
        rr = track.point(track.at_time(check)).range_rate_km_s
        doppler = downlink_at_ground_hz(DOWNLINK_HZ, rr)
        offset = r.radio.vfos["A"].freq_hz - doppler
        # The default step (bandwidth / 50) plus the dial tolerance.
        step = sat.bandwidth_hz / 50 + 5
        if policy == "follow":
            assert offset == pytest.approx(3000, abs=step + 10)
        else:
            assert abs(offset) <= step
        await r.clock.run_until(p.los + timedelta(seconds=2))
        assert task.result().aborted is None
        assert r.tracker.counters.dial_turns == 1


async def test_periodic_work_stays_on_the_clock_grid(seed_data: Seed) -> None:
    """With 0.2 s rotator replies the 4 Hz telemetry keeps falling on the clock's 0.25 s grid
    (ts a multiple of 0.25 s from the clock's start, unless an exchange of the same wake-up
    delays it) and no slot is lost: the loop does not drift by its exchanges' time, so
    activities (and antennas) with commensurate periods share wake-ups."""
    p = short_pass(seed_data)
    config, sat, emitter = link_setup(seed_data, p)
    # The clock starts 0.1 s off the pass's whole seconds, so a loop that keeps the phase
    # of its start (pre-position time, after the plan's exchanges) is off this grid.
    start = p.aos - timedelta(minutes=5, seconds=0.1)
    async with rig(
        start, caps(360.0, 90.0), config=config, rotator_latency_s=0.2, emitters=(emitter,)
    ) as r:
        task = asyncio.ensure_future(r.tracker.track(TrackJob(p, sat)))
        await r.clock.run_until(p.los + timedelta(seconds=5))
        assert task.result().aborted is None
        stamps = [m.ts for m in records(r, Pointing) if p.aos <= m.ts <= p.los]
        phases = [round((ts - start).total_seconds() % 0.25, 6) % 0.25 for ts in stamps]
        on_grid = sum(ph < 1e-3 for ph in phases)
        assert on_grid >= 0.6 * len(stamps)
        assert all(ph < 0.25 - 1e-3 for ph in phases)
        assert len(stamps) >= 4 * p.duration_s - 2


async def test_tracker_keeps_only_the_most_recent_reports(seed_data: Seed) -> None:
    """Over more tracks than REPORTS_KEPT the tracker holds the latest REPORTS_KEPT reports,
    oldest dropped first, so a months-long run does not keep every plan in memory."""
    p = short_pass(seed_data)
    config, sat, _ = link_setup(seed_data, p)
    async with rig(p.aos - timedelta(minutes=30), caps(), config=config) as r:
        started = []
        for _ in range(REPORTS_KEPT + 3):
            task = asyncio.ensure_future(r.tracker.track(TrackJob(p, sat)))
            # The track plans, then waits for its pre-position time: cancel it there.
            await r.clock.settle()
            started.append(r.tracker.reports[-1])
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert len(r.tracker.reports) == REPORTS_KEPT
        assert list(r.tracker.reports) == started[-REPORTS_KEPT:]
        assert all(rep.aborted == "cancelled by the operator" for rep in r.tracker.reports)


async def test_a_plan_made_while_the_rotator_still_parks_starts_the_preposition_in_time(
    seed_data: Seed,
) -> None:
    """The plan reads the rotator next to the pass's start, but it is on its way to park
    (the zenith, far away): the pre-position allows for that move and the antenna points at
    the satellite from AOS on."""
    p = short_pass(seed_data)
    config, sat, _ = link_setup(seed_data, p)
    look = seed_data.predictor.look_angles(p.norad_id, seed_data.station, [p.aos])
    start = Position(float(look.az_deg[0]), 1.0)
    c = caps(360.0, 90.0, rate=3.0, accel=3.0)
    async with rig(p.aos - timedelta(seconds=70), c, config=config, rotator_start=start) as r:
        parking = asyncio.ensure_future(r.tracker._park())  # what an idle antenna does
        await r.clock.advance(0.5)  # the twin's reply; the move itself takes about a minute
        parking.result()
        assert r.rotator.true_position().el_deg < 5.0  # still next to the pass's start
        task = asyncio.ensure_future(r.tracker.track(TrackJob(p, sat)))
        await r.clock.run_until(p.aos + timedelta(seconds=2))
        sky = SkyTrack.from_pass(seed_data.predictor, seed_data.station, p, step_s=1.0)
        point = sky.point(sky.at_time(r.clock.now()))
        here = r.rotator.true_position()
        # Within the pointing tolerance of a 12 deg beam (a late pre-position is tens of
        # degrees off here: it would start from the zenith just before AOS).
        assert abs(((here.az_deg - point.az_deg + 180.0) % 360.0) - 180.0) < BEAM_DEG / 2
        assert abs(here.el_deg - point.el_deg) < BEAM_DEG / 2
        await r.clock.run_until(p.los + timedelta(seconds=5))
        assert task.result().aborted is None


async def test_a_radio_that_stops_answering_costs_the_pointing_nothing(seed_data: Seed) -> None:
    """The same pass twice, once with a radio that stops answering 30 s after AOS: every
    pointing record (time, command, reading) is the same as with a healthy radio, as the
    radio's timeouts and retries run beside the control loop, not in it."""
    p = short_pass(seed_data)
    config, sat, emitter = link_setup(seed_data, p)
    runs: list[list[tuple[Any, ...]]] = []
    errors: list[int] = []
    for dead in (False, True):
        async with rig(
            p.aos - timedelta(minutes=5),
            caps(360.0, 90.0),
            config=config,
            rotator_latency_s=0.05,
            emitters=(emitter,),
        ) as r:
            task = asyncio.ensure_future(r.tracker.track(TrackJob(p, sat)))
            await r.clock.run_until(p.aos + timedelta(seconds=30))
            if dead:
                r.radio.faults.drop_replies()
            await r.clock.run_until(p.los + timedelta(seconds=5))
            assert task.result().aborted is None
            runs.append(
                [
                    (m.ts, m.commanded_az_deg, m.commanded_el_deg, m.actual_az_deg, m.error_deg)
                    for m in records(r, Pointing)
                    if p.aos <= m.ts <= p.los
                ]
            )
            errors.append(r.tracker.counters.radio_errors)
    healthy, deaf = runs
    assert len(healthy) >= 3 * p.duration_s
    assert deaf == healthy
    assert errors[0] == 0 < errors[1]
