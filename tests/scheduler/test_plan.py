"""Schedules: the feasibility checker catches every broken rule; JSON and table output."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from rich.console import Console

from controller.scheduler.model import (
    Antenna,
    Grid,
    Plan,
    Problem,
    RotatorModel,
    Satellite,
    Settings,
    Window,
)
from controller.scheduler.optimal import RawTrack
from controller.scheduler.plan import (
    Schedule,
    ScheduleInfeasible,
    assert_feasible,
    check_schedule,
    make_schedule,
    render_table,
    schedule_from_raw,
)
from tests.scheduler import START

R = 30.0


def _window(antenna: int, sat: int, first: int, n: int, az: float, el: float = 40.0) -> Window:
    grid = Grid(START, R, 100)
    return Window(
        antenna,
        sat,
        first,
        np.full(n, az),
        np.full(n, el),
        Plan(0.0, False),
        grid.time(first),
        grid.time(first + n - 1),
        el,
        2,
    )


def _problem(windows: list[Window], *, caps: int | None = None) -> Problem:
    """Two antennas (2 deg/s, so 180 deg takes 91 s), satellites A, B, C; 30 s grid."""
    rot = RotatorModel(0, 360, 0, 90, 2.0, 2.0, 2.0, 2.0)
    ants = [
        Antenna("st", "a1", rot, park_az_deg=0.0, park_el_deg=40.0),
        Antenna("st", "a2", rot, park_az_deg=0.0, park_el_deg=40.0),
    ]
    sats = [
        Satellite(90001, "A", weight=2.0, min_contact_s=60.0, max_contacts_per_day=caps),
        Satellite(90002, "B", min_contact_s=60.0),
        Satellite(90003, "C", min_contact_s=60.0),
    ]
    return Problem(Grid(START, R, 100), Settings(R, 20.0, 10.0, True), ants, sats, windows)


def _sched(problem: Problem, raw: list[RawTrack]) -> Schedule:
    return schedule_from_raw(problem, raw, policy="test", upper_bound=None)


def test_a_feasible_plan_has_no_violations() -> None:
    """Tracks apart by set-up plus travel, each within its window: no violation."""
    p = _problem([_window(0, 0, 0, 20, 0.0), _window(0, 1, 10, 40, 180.0)])
    # 180 deg at 2 deg/s with 2 deg/s2: 91 s; plus 30 s set-up: 121 s -> 5 steps.
    ok = _sched(p, [RawTrack(0, 1, 10), RawTrack(1, 15, 40)])
    assert check_schedule(ok, p) == []
    short = _sched(p, [RawTrack(0, 1, 10), RawTrack(1, 14, 40)])
    assert any("shorter than set-up plus travel" in v for v in check_schedule(short, p))


def test_overlap_min_contact_window_and_grid_are_checked() -> None:
    """Overlap on one antenna, too short a track, outside the window, off the grid."""
    p = _problem([_window(0, 0, 0, 20, 0.0), _window(0, 1, 5, 40, 10.0)])
    overlap = _sched(p, [RawTrack(0, 0, 10), RawTrack(1, 8, 30)])
    assert any("overlaps" in v for v in check_schedule(overlap, p))
    short = _sched(p, [RawTrack(0, 0, 1)])
    assert any("shorter than min_contact_s" in v for v in check_schedule(short, p))
    base = _sched(p, [RawTrack(0, 2, 10)])
    t = base.tracks[0]
    outside = replace(base, tracks=(replace(t, end=t.end + timedelta(seconds=15 * R)),))
    assert any("outside its window" in v for v in check_schedule(outside, p))
    moved = replace(base, tracks=(replace(t, start=t.start + timedelta(seconds=7)),))
    assert any("not on the 30 s grid" in v for v in check_schedule(moved, p))


def test_one_satellite_on_two_antennas_is_caught() -> None:
    """The same satellite tracked by both antennas at once breaks the coupling."""
    p = _problem([_window(0, 0, 0, 30, 0.0), _window(1, 0, 0, 30, 0.0)])
    both = _sched(p, [RawTrack(0, 2, 20), RawTrack(1, 10, 28)])
    assert any("on st/a1 and st/a2 at once" in v for v in check_schedule(both, p))
    handover = _sched(p, [RawTrack(0, 2, 10), RawTrack(1, 10, 28)])
    assert check_schedule(handover, p) == []


def test_daily_limit_and_missing_reservation_are_caught() -> None:
    """More contacts than max_contacts_per_day, and a reservation left out."""
    p = _problem([_window(0, 0, 0, 40, 0.0)], caps=1)
    two = _sched(p, [RawTrack(0, 2, 10), RawTrack(0, 15, 30)])
    assert any("max_contacts_per_day is 1" in v for v in check_schedule(two, p))
    fixed = replace(_window(1, 1, 50, 10, 0.0), kind="reservation", min_steps=9)
    p2 = _problem([_window(0, 0, 0, 40, 0.0), fixed])
    missing = _sched(p2, [RawTrack(0, 2, 10)])
    assert any(
        "reservation of NORAD 90002" in v and "missing" in v for v in check_schedule(missing, p2)
    )
    with pytest.raises(ScheduleInfeasible) as info:
        assert_feasible(missing, p2)
    assert info.value.violations


def test_unreachable_from_park_is_caught() -> None:
    """The first track needs pre-pass set-up plus travel from park."""
    p = _problem([_window(0, 1, 0, 40, 180.0)])
    early = _sched(p, [RawTrack(0, 1, 20)])
    assert any("not reachable from park" in v for v in check_schedule(early, p))
    later = _sched(p, [RawTrack(0, 4, 20)])
    assert check_schedule(later, p) == []


def test_json_has_the_documented_fields_and_table_renders() -> None:
    """JSON: objective, upper_bound, policy, tracks with the issue's fields; table per antenna."""
    p = _problem([_window(0, 0, 0, 20, 0.0), _window(1, 1, 10, 40, 180.0)])
    sched = make_schedule(p)
    data = json.loads(json.dumps(sched.to_json()))
    assert {"objective", "upper_bound", "policy", "tracks"} <= set(data)
    assert data["policy"] == "optimal"
    assert data["objective"] <= data["upper_bound"] + 1e-6
    fields = {
        "station",
        "antenna",
        "norad_id",
        "name",
        "start",
        "end",
        "pass_aos",
        "pass_los",
        "max_el_deg",
        "setup_s",
        "plan",
    }
    assert data["tracks"]
    assert all(set(t) >= fields for t in data["tracks"])
    assert all(t["start"].endswith("Z") and t["end"] > t["start"] for t in data["tracks"])
    # A on a1 from step 1 (20 s pre-pass set-up from park), B on a2 for its whole window
    # (its first point is after the 91 s swing from park).
    assert sched.objective == pytest.approx(2.0 * 18 * R + 1.0 * 39 * R)
    console = Console(record=True, width=150)
    render_table(sched, console)
    text = console.export_text()
    assert "st/a1" in text
    assert "st/a2" in text
    assert "A" in text
    assert "upper bound" in text
    part = sched.for_station("st")
    assert part.objective == pytest.approx(sched.objective)
    assert sched.for_station("elsewhere").tracks == ()


def test_required_contacts_are_reported_when_unmet() -> None:
    """A satellite short of its required contacts per day gets a warning on the plan."""
    p = _problem([_window(0, 0, 0, 20, 0.0), _window(1, 1, 10, 40, 180.0)])
    p.satellites[2] = Satellite(90003, "C", required_contacts_per_day=1)
    p.satellites[0] = Satellite(90001, "A", weight=2.0, required_contacts_per_day=1)
    sched = make_schedule(p)
    assert any("NORAD 90003 (C): 0 of 1 required contacts" in w for w in sched.warnings)
    assert not any("NORAD 90001" in w for w in sched.warnings)
