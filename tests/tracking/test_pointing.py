"""Pointing plans: properties over random passes and rotators, and the hard passes."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import structlog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from controller.tracking.config import PointingSettings
from controller.tracking.pointing import (
    PointingPlan,
    PointingPlanner,
    axis_reach_deg,
    axis_travel_time_s,
    outage_lower_bound_s,
    travel_time_s,
)
from controller.tracking.sky import SkyTrack
from firmware_bridge.drivers.rotator import Position, RotatorCapabilities
from firmware_bridge.simulators.rotator import AxisMotion
from tests.tracking.conftest import Seed, caps, seed

EPS = 1e-6


@cache
def pool() -> tuple[SkyTrack, ...]:
    """Real passes of every kind: a spread over max elevation, plus the hard passes."""
    s = seed()
    by_el = sorted((p for p in s.passes if not p.flags), key=lambda p: p.max_el_deg)
    picks = [by_el[i] for i in np.linspace(0, len(by_el) - 1, 16).astype(int)]
    picks += [p for p, _ in s.hard]
    return tuple(SkyTrack.from_pass(s.predictor, s.station, p) for p in picks)


@st.composite
def rotators(draw: st.DrawFn) -> RotatorCapabilities:
    """Random rotators: az ranges from 360 to 540 deg wide starting at -180..0, elevation to
    90..180, rates 1..20 deg/s, accelerations 1..30 deg/s^2, resolutions 0.01..1 deg."""
    az_min = draw(st.sampled_from([-180.0, -90.0, 0.0]))
    span = draw(st.sampled_from([360.0, 400.0, 450.0, 540.0]))
    el_max = draw(st.sampled_from([90.0, 120.0, 180.0]))
    rate = draw(st.floats(1.0, 20.0))
    accel = draw(st.floats(1.0, 30.0))
    res = draw(st.sampled_from([0.01, 0.1, 0.5, 1.0]))
    return RotatorCapabilities(
        az_min_deg=az_min,
        az_max_deg=az_min + span,
        el_min_deg=0.0,
        el_max_deg=el_max,
        az_rate_deg_s=rate,
        el_rate_deg_s=draw(st.floats(1.0, 20.0)),
        az_accel_deg_s2=accel,
        el_accel_deg_s2=draw(st.floats(1.0, 30.0)),
        az_resolution_deg=res,
        el_resolution_deg=res,
        park_az_deg=max(0.0, az_min),
        park_el_deg=90.0,
    )


def within(caps_: RotatorCapabilities, p: Position) -> bool:
    """True if a position is inside the rotator's limits."""
    return (
        caps_.az_min_deg - EPS <= p.az_deg <= caps_.az_max_deg + EPS
        and caps_.el_min_deg - EPS <= p.el_deg <= caps_.el_max_deg + EPS
    )


def continuous_windows(
    track: SkyTrack, c: RotatorCapabilities, *, flipped: bool = False
) -> list[tuple[float, float]]:
    """Independently of the planner: the azimuth spans of every whole-turn shift of the sky
    path (and of the flipped path, where the elevation axis goes over) that fits the range.

    ``flipped``: the azimuths of a plan that took the flipped path; they count even where
    the elevation axis cannot reach 180 - el, because the planner may take that path and
    accept pointing error at low elevation (seen with a slow rotator parked near the
    flipped AOS azimuth). Whether elevations stay inside the limits is the separate limit
    property of the test."""
    inside = (track.t_s >= track.aos_s) & (track.t_s <= track.los_s)
    az = np.degrees(np.unwrap(np.radians(track.az_deg[inside])))
    paths = [az]
    if flipped or c.el_max_deg >= 180.0 - float(track.el_deg[inside].min()):
        paths.append(az + 180.0)
    out = []
    for path in paths:
        for turns in range(-3, 4):
            shifted = path + 360.0 * turns
            if shifted.min() >= c.az_min_deg and shifted.max() <= c.az_max_deg:
                out.append((float(shifted.min()), float(shifted.max())))
    return out


def sky_span_deg(track: SkyTrack) -> float:
    """How far the satellite's azimuth turns from AOS to LOS (unwrapped)."""
    inside = (track.t_s >= track.aos_s) & (track.t_s <= track.los_s)
    az = np.degrees(np.unwrap(np.radians(track.az_deg[inside])))
    return float(az.max() - az.min())


def commands_over_pass(plan: PointingPlan, lead_s: float) -> list[Position]:
    """Every command the plan gives when asked each tick from pre-position to LOS."""
    out: list[Position] = [plan.start_position]
    last: Position | None = plan.start_position
    last_aim: float | None = plan.aos_s
    t = plan.preposition_start_s
    while t <= plan.los_s:
        cmd = plan.next_command(t, last, lead_s, last_aim)
        if cmd is not None:
            out.append(cmd.position)
            last, last_aim = cmd.position, cmd.aim_s
        t += plan.tick_s
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, 10_000),
    rotator=rotators(),
    beam=st.sampled_from([2.0, 12.0, 30.0]),
    lead_s=st.floats(0.0, 0.5),
    start_frac=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    before_s=st.floats(5.0, 900.0),
)
# Found by Hypothesis: a north-crossing pass that needs 1 deg beyond a 0..450 rotator's stop,
# a slow rotator at (0, 0) 5 s before AOS. The planner holds at the stop for the last
# second (143 s late) rather than take the continuous flipped path (162 s late).
@example(
    index=3583,
    rotator=RotatorCapabilities(
        az_min_deg=0.0,
        az_max_deg=450.0,
        el_min_deg=0.0,
        el_max_deg=180.0,
        az_rate_deg_s=2.0,
        el_rate_deg_s=1.0,
        az_accel_deg_s2=1.0,
        el_accel_deg_s2=1.0,
        az_resolution_deg=0.01,
        el_resolution_deg=0.01,
        park_az_deg=0.0,
        park_el_deg=90.0,
    ),
    beam=2.0,
    lead_s=0.0,
    start_frac=(0.0, 0.0),
    before_s=5.0,
)
def test_plan_properties_over_random_passes_and_rotators(
    index: int,
    rotator: RotatorCapabilities,
    beam: float,
    lead_s: float,
    start_frac: tuple[float, float],
    before_s: float,
) -> None:
    """No command outside the limits, ever; no stop crossed mid-pass when a continuous path
    exists; and the AOS point reached before AOS whenever the rotator can get there in time
    (checked with the simulator's own trapezoidal axis physics)."""
    track = pool()[index % len(pool())]
    planner = PointingPlanner(rotator, beam)
    start = Position(
        rotator.az_min_deg + start_frac[0] * (rotator.az_max_deg - rotator.az_min_deg),
        rotator.el_min_deg + start_frac[1] * (rotator.el_max_deg - rotator.el_min_deg),
    )
    now_s = track.aos_s - before_s
    plan = planner.plan(track, now_s=now_s, position=start)
    # 1. limits: the plan and every command it gives.
    assert all(
        within(rotator, Position(float(a), float(e)))
        for a, e in zip(plan.az_deg, plan.el_deg, strict=True)
    )
    assert all(within(rotator, cmd) for cmd in commands_over_pass(plan, lead_s))
    # 2. no unwinding during the pass when a continuous path exists: the plan stays within a
    #    quarter turn of one such path's azimuths (a full-turn swing cannot fit in that).
    windows = continuous_windows(track, rotator, flipped=plan.variant.startswith("flip"))
    if windows:
        lo, hi = float(plan.az_deg.min()), float(plan.az_deg.max())
        near_window = any(
            lo >= w_lo - 90.0 - EPS and hi <= w_hi + 90.0 + EPS for w_lo, w_hi in windows
        )
        # A path held at a stop never crosses it; it may still be the better choice when
        # the continuous path is the other variant's (a slow axis to get there). Then no
        # unwinding means its azimuths span no more than the sky path's plus a quarter
        # turn (an unwinding swings through a whole turn).
        held_in_one_turn = (
            "held-at-stop" in plan.variant and hi - lo <= sky_span_deg(track) + 90.0 + EPS
        )
        assert near_window or held_in_one_turn, (plan.variant, (lo, hi), windows)
    # 3. pre-position: start in time, arrive before AOS when physics allows.
    target = plan.start_position
    travel = travel_time_s(rotator, start, target)
    assert plan.preposition_start_s >= now_s - EPS
    az = AxisMotion(
        min_deg=rotator.az_min_deg,
        max_deg=rotator.az_max_deg,
        rate_deg_s=rotator.az_rate_deg_s,
        accel_deg_s2=rotator.az_accel_deg_s2,
        start_deg=start.az_deg,
        t0=now_s,
    )
    el = AxisMotion(
        min_deg=rotator.el_min_deg,
        max_deg=rotator.el_max_deg,
        rate_deg_s=rotator.el_rate_deg_s,
        accel_deg_s2=rotator.el_accel_deg_s2,
        start_deg=start.el_deg,
        t0=now_s,
    )
    az.command(plan.preposition_start_s, target.az_deg)
    el.command(plan.preposition_start_s, target.el_deg)
    if travel <= track.aos_s - now_s:
        assert az.position(plan.aos_s) == pytest.approx(target.az_deg, abs=1e-6)
        assert el.position(plan.aos_s) == pytest.approx(target.el_deg, abs=1e-6)
    else:
        # Too far to make it: the move starts at once.
        assert plan.preposition_start_s == pytest.approx(now_s)


def test_trapezoid_helpers_agree_with_the_simulator_physics() -> None:
    """Travel time and reach are inverses, and the HAL's axis needs exactly that long."""
    for distance in (0.5, 3.0, 40.0, 300.0):
        t = axis_travel_time_s(distance, 6.0, 4.0)
        assert axis_reach_deg(t, 6.0, 4.0) == pytest.approx(distance)
        axis = AxisMotion(min_deg=-400, max_deg=400, rate_deg_s=6.0, accel_deg_s2=4.0)
        axis.command(0.0, distance)
        assert axis.position(t) == pytest.approx(distance)
        assert axis.position(t * 0.99) < distance - 1e-6


def _plan(s: Seed, category: str, c: RotatorCapabilities, beam: float = 2.0) -> PointingPlan:
    track = SkyTrack.from_pass(s.predictor, s.station, s.first(category))
    return PointingPlanner(c, beam).plan(track, now_s=-600.0, position=c.park)


def test_overhead_pass_on_a_flip_rotator_has_no_keyhole(seed_data: Seed) -> None:
    """Within 1 deg of the zenith on 0..450/0..180: no predicted outage, and the azimuth does
    not swing through the keyhole (it stays within a few degrees; the elevation goes over)."""
    plan = _plan(seed_data, "overhead", caps())
    assert seed_data.first("overhead").max_el_deg >= 89.0
    assert plan.evaluation.outage_s == 0.0
    assert float(np.ptp(plan.az_deg)) < 20.0
    assert float(plan.el_deg.max()) > 150.0


def test_overhead_pass_on_a_0_90_rotator_starts_the_swing_early(seed_data: Seed) -> None:
    """On 0..360/0..90 the keyhole costs time, but no more than 10 % over what the azimuth
    slew rate allows at best; the normal path would lose far more."""
    c = caps(360.0, 90.0)
    plan = _plan(seed_data, "overhead", c)
    track = plan.track
    bound = outage_lower_bound_s(track, c, beamwidth_deg=2.0, step_s=0.5)
    assert bound > 0
    assert bound - 1.0 <= plan.evaluation.outage_s <= 1.1 * bound + 1.0
    normal = [e for name, e in plan.alternatives if name.startswith("normal")]
    assert normal
    assert min(e.outage_s for e in normal) > 2 * plan.evaluation.outage_s


def test_north_crossing_uses_the_overlap(seed_data: Seed) -> None:
    """A pass through north on 0..450/0..90: tracked through 360 in the overlap, without a
    swing; what it loses (this one needs 451 deg at LOS) is no more than any path could."""
    p = seed_data.first("north")
    assert seed_data.crosses_north(p)
    c = caps(450.0, 90.0)
    plan = _plan(seed_data, "north", c)
    assert float(plan.az_deg.max()) > 360.0
    assert float(np.max(np.abs(np.diff(plan.az_deg)))) < 10.0
    bound = outage_lower_bound_s(plan.track, c, beamwidth_deg=2.0, step_s=0.5)
    assert plan.evaluation.outage_s <= bound + 1.0


def test_north_crossing_on_0_360_0_180_flips_like_gpredict(seed_data: Seed) -> None:
    """Through north on 0..360 with an elevation axis to 180: the flipped path fits."""
    plan = _plan(seed_data, "north", caps(360.0, 180.0))
    assert plan.variant.startswith("flip")
    assert plan.evaluation.outage_s == 0.0


def test_pass_starting_at_the_stop_with_the_rotator_at_the_far_stop(seed_data: Seed) -> None:
    """A pass rising at north, rotator waiting at the far stop (450): the plan picks the side
    it can reach in time and loses nothing."""
    p = seed_data.first("wrap-stop")
    assert min(p.aos_az_deg % 360, 360 - p.aos_az_deg % 360) <= 2.0
    c = caps(450.0, 180.0)
    track = SkyTrack.from_pass(seed_data.predictor, seed_data.station, p)
    plan = PointingPlanner(c, 2.0).plan(track, now_s=-120.0, position=Position(450.0, 0.0))
    assert plan.evaluation.outage_s == 0.0
    assert plan.evaluation.late_s == 0.0


def test_back_to_back_from_opposite_sides_moves_at_once(seed_data: Seed) -> None:
    """The second of a back-to-back pair, planned at the first's LOS from its LOS point:
    pre-positioning starts immediately and the antenna arrives as early as physics allows."""
    first, second = [p for p, c in seed_data.hard if c == "back-to-back"]
    c = caps(450.0, 180.0, rate=3.0, accel=3.0)
    p1 = _plan(seed_data, "back-to-back", c)
    t2 = SkyTrack.from_pass(seed_data.predictor, seed_data.station, second)
    now_s = t2.at_time(first.los)
    plan = PointingPlanner(c, 2.0).plan(t2, now_s=now_s, position=p1.end_position)
    travel = travel_time_s(c, p1.end_position, plan.start_position)
    if travel + 10.0 > t2.aos_s - now_s:
        assert plan.preposition_start_s == pytest.approx(now_s)
    assert plan.evaluation.late_s <= max(0.0, travel - (t2.aos_s - now_s)) + 1.0


def test_choice_is_logged_with_its_reason(seed_data: Seed) -> None:
    """The planner logs the variant and why (with the alternative it beat)."""
    structlog.reset_defaults()
    with capture_logs() as logs:
        plan = _plan(seed_data, "north", caps(360.0, 180.0))
    events = [e for e in logs if e["event"] == "pointing plan"]
    assert events
    assert events[0]["variant"] == plan.variant
    assert plan.variant in events[0]["reason"]
    assert "would" in events[0]["reason"]


def test_deadband_and_tick_scale_with_beam_and_rotator(seed_data: Seed) -> None:
    """A narrow beam gets a finer deadband and faster ticks; a coarse rotator a coarser one."""
    track = SkyTrack.from_pass(seed_data.predictor, seed_data.station, seed_data.first("north"))
    narrow = PointingPlanner(caps(), 2.0).plan(track, now_s=-600, position=Position(0, 90))
    wide = PointingPlanner(caps(), 30.0).plan(track, now_s=-600, position=Position(0, 90))
    coarse = PointingPlanner(caps(resolution=1.0), 2.0).plan(
        track, now_s=-600, position=Position(0, 90)
    )
    assert narrow.deadband_deg < wide.deadband_deg
    assert narrow.tick_s <= wide.tick_s
    assert coarse.deadband_deg >= 2.0  # two resolution steps of a whole-degree controller
    # With a link budget the deadband follows the margin: wider where the range is short.
    allowed = 2.0 * np.sqrt(
        np.maximum(0.0, 3.0 + 20 * np.log10(track.range_km.max() / track.range_km)) / 12
    )
    budgeted = PointingPlanner(caps(), 2.0).plan(
        track, now_s=-600, position=Position(0, 90), allowed_error_deg=allowed
    )
    assert budgeted.local_deadband_deg is not None
    tca = int(np.argmin(np.abs(budgeted.t_s - track.tca_s)))
    assert budgeted.local_deadband_deg[tca] > budgeted.local_deadband_deg[0]
    assert float(budgeted.local_deadband_deg.max()) <= 0.75 * 2.0 + EPS


def test_settings_are_validated() -> None:
    """Inconsistent settings are refused with the field names."""
    with pytest.raises(ValueError, match="tick_min_s"):
        PointingSettings(tick_min_s=2.0, tick_max_s=1.0)
    with pytest.raises(ValueError, match="safe_az_deg"):
        PointingSettings(safe_az_deg=10.0)
    with pytest.raises(ValueError, match="beamwidth_deg"):
        PointingPlanner(caps(), 0.0)
    assert math.isfinite(PointingPlanner(caps(), 5.0).deadband_deg)


def _two_sided(seed_data: Seed) -> tuple[SkyTrack, RotatorCapabilities, float, float]:
    """A pass and a -180..540 rotator (ant2's) on which it fits on two wrap sides: the
    track, the rotator and the two sides' start azimuths (the lower first)."""
    c = caps(540.0, 90.0, rate=4.0, accel=4.0, az_min=-180.0)
    p = next(p for p in seed_data.passes if not p.flags and 20.0 < p.max_el_deg < 60.0)
    track = SkyTrack.from_pass(seed_data.predictor, seed_data.station, p)
    plan = PointingPlanner(c, 6.0).plan(track, now_s=-600.0, position=Position(0.0, 90.0))
    start = plan.start_position.az_deg
    other = start - 360.0 if start - 360.0 >= c.az_min_deg else start + 360.0
    assert c.az_min_deg <= other <= c.az_max_deg
    return track, c, min(start, other), max(start, other)


def test_the_schedules_wrap_side_wins_over_a_shorter_move(seed_data: Seed) -> None:
    """With the rotator next to one wrap side, the plan takes that side unless the schedule
    names the other (its next slew was timed from there), which it then keeps, losing
    nothing and saying why."""
    track, c, low, high = _two_sided(seed_data)
    planner = PointingPlanner(c, 6.0)
    near_low = Position(low + 5.0, 20.0)
    free = planner.plan(track, now_s=-600.0, position=near_low)
    assert abs(free.start_position.az_deg - low) < 1.0
    kept = planner.plan(track, now_s=-600.0, position=near_low, side_az_deg=high)
    assert abs(kept.start_position.az_deg - high) < 1.0
    assert kept.evaluation.outage_s == 0.0
    assert "schedule's wrap side" in kept.reason
    near_high = Position(high - 5.0, 20.0)
    back = planner.plan(track, now_s=-600.0, position=near_high, side_az_deg=low)
    assert abs(back.start_position.az_deg - low) < 1.0


def test_a_schedule_side_out_of_reach_in_time_is_not_kept(seed_data: Seed) -> None:
    """Two seconds before AOS at one side's start, the other side (360 deg away, 90 s at
    4 deg/s) would lose the pass's start: the plan stays on the side it is at."""
    track, c, low, high = _two_sided(seed_data)
    planner = PointingPlanner(c, 6.0)
    at_low = planner.plan(track, now_s=-600.0, position=Position(0.0, 90.0), side_az_deg=low)
    there = at_low.start_position
    late = planner.plan(track, now_s=track.aos_s - 2.0, position=there, side_az_deg=high)
    assert abs(late.start_position.az_deg - low) < 1.0
    assert late.evaluation.late_s < 5.0
