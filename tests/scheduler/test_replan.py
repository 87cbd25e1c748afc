"""Re-planning and several stations, on the seed constellation (a few hours, 30 s grid)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from controller.config import load_station_list
from controller.orbit.catalog import Catalog
from controller.orbit.predictor import Pass, PassPredictor, Station
from controller.scheduler.greedy import solve_greedy
from controller.scheduler.model import (
    Antenna,
    Problem,
    Reservation,
    RotatorModel,
    Satellite,
    SatellitePointing,
    Settings,
    build_problem,
)
from controller.scheduler.optimal import plain_value
from controller.scheduler.plan import Schedule, check_schedule, make_schedule, replan
from tests.scheduler import START

ROOT = Path(__file__).resolve().parents[2]
END = START + timedelta(hours=3)
ROT = RotatorModel(0, 450, 0, 180, 6.0, 6.0, 6.0, 6.0)


Seed = tuple[Catalog, dict[str, Station], dict[str, list[Pass]]]
Builder = Callable[[datetime, Sequence[Reservation]], Problem]


@pytest.fixture(scope="module")
def seed() -> Seed:
    """Catalog, the seed stations and their passes over three hours."""
    catalog = Catalog.from_files(
        [ROOT / "seeds/tle/eu_constellation.tle", ROOT / "seeds/tle/jp_groups.tle"]
    )
    stations = {s.id: s.station() for s in load_station_list(ROOT / "seeds/stations.toml")}
    predictor = PassPredictor(list(catalog))
    passes = {
        sid: predictor.passes(stations[sid], START, END).passes
        for sid in ("de-weilheim", "jp-usuda", "jp-katsuura")
    }
    return catalog, stations, passes


def _builder(
    seed: Seed, antennas: list[Antenna], weights: dict[int, float] | None = None
) -> Builder:
    catalog, stations, passes = seed
    used = {a.station_id for a in antennas}
    sats = [
        Satellite(e.norad_id, e.name, weight=(weights or {}).get(e.norad_id, 1.0)) for e in catalog
    ]

    def build(start: datetime, kept: Sequence[Reservation]) -> Problem:
        return build_problem(
            start=start,
            end=END,
            settings=Settings(resolution_s=30.0),
            antennas=antennas,
            satellites=sats,
            stations={s: stations[s] for s in used},
            passes={s: passes[s] for s in used},
            pointing=SatellitePointing(list(catalog), start),
            reservations=kept,
        )

    return build


def _key(s: Schedule, after: datetime) -> list[tuple[str, int, datetime, datetime]]:
    return [(t.antenna_id, t.norad_id, t.start, t.end) for t in s.tracks if t.start > after]


def test_replan_keeps_the_track_under_way_and_changes_nothing_else(seed: Seed) -> None:
    """Same inputs an hour later: the running track is kept whole, the rest is unchanged."""
    build = _builder(seed, [Antenna("de-weilheim", "a1", ROT, min_el_deg=5.0)])
    first = make_schedule(build(START, []))
    running = next(t for t in first.tracks if t.start > START + timedelta(minutes=50))
    now = running.start + (running.end - running.start) / 2
    second = replan(first, now, build)
    kept = [t for t in second.tracks if t.kind == "kept"]
    assert [(t.norad_id, t.start, t.end) for t in kept] == [
        (running.norad_id, running.start, running.end)
    ]
    assert _key(second, now) == _key(first, now)


def test_replan_shows_the_track_under_way_whole_when_the_satellite_comes_back_later(
    seed: Seed,
) -> None:
    """The previous plan also tracks the running track's satellite later on that antenna:
    the kept track still shows the running track's own start and end (not the later one's,
    nor the re-plan's grid start, which names no pass the daemon knows)."""
    build = _builder(seed, [Antenna("de-weilheim", "a1", ROT, min_el_deg=5.0)])
    first = make_schedule(build(START, []))
    running = next(t for t in first.tracks if t.start > START + timedelta(minutes=50))
    later = replace(
        running, start=running.start + timedelta(hours=1), end=running.end + timedelta(hours=1)
    )
    previous = replace(first, tracks=(*first.tracks, later))
    now = running.start + (running.end - running.start) / 2
    second = replan(previous, now, build)
    kept = [t for t in second.tracks if t.kind == "kept"]
    assert [(t.norad_id, t.start, t.end) for t in kept] == [
        (running.norad_id, running.start, running.end)
    ]


def test_replan_after_a_priority_change_still_keeps_the_running_track(seed: Seed) -> None:
    """A new priority changes the plan but not the track under way."""
    ants = [Antenna("de-weilheim", "a1", ROT, min_el_deg=5.0)]
    first = make_schedule(_builder(seed, ants)(START, []))
    running = next(t for t in first.tracks if t.start > START + timedelta(minutes=40))
    now = running.start + timedelta(seconds=60)
    unused = next(
        p.norad_id
        for p in seed[2]["de-weilheim"]
        if p.aos > now + timedelta(minutes=20)
        and p.max_el_deg > 30.0
        and p.norad_id not in {t.norad_id for t in first.tracks}
    )
    second = replan(first, now, _builder(seed, ants, {unused: 20.0}))
    assert any(t.norad_id == unused for t in second.tracks)
    assert any(
        t.kind == "kept"
        and (t.norad_id, t.start, t.end) == (running.norad_id, running.start, running.end)
        for t in second.tracks
    )


def test_two_stations_plan_without_redundant_contacts(seed: Seed) -> None:
    """Usuda and Katsuura see the same satellites: planned together, never both at once;
    planned apart, they would duplicate contacts. Each station executes its own part."""
    ants = [
        Antenna("jp-usuda", "u1", ROT, min_el_deg=5.0),
        Antenna("jp-katsuura", "k1", ROT, min_el_deg=5.0),
    ]
    build = _builder(seed, ants)
    problem = build(START, [])
    joint = make_schedule(problem)
    assert check_schedule(joint, problem) == []
    assert {t.station_id for t in joint.tracks} == {"jp-usuda", "jp-katsuura"}
    apart = [make_schedule(_builder(seed, [a])(START, [])) for a in ants]
    overlap_s = 0.0
    for t in apart[0].tracks:
        for u in apart[1].tracks:
            if t.norad_id == u.norad_id:
                overlap_s += max(0.0, (min(t.end, u.end) - max(t.start, u.start)).total_seconds())
    assert overlap_s > 0
    for sid in ("jp-usuda", "jp-katsuura"):
        part = joint.for_station(sid)
        assert part.tracks
        assert all(t.station_id == sid for t in part.tracks)
    # The joint plan's contacts are all distinct, so it is worth at least what the two
    # separate plans are worth without their duplicated seconds (to within set-up).
    assert joint.objective >= sum(a.objective for a in apart) - overlap_s - 1e-6 - 2 * 3600


def test_optimal_beats_greedy_on_the_seed_constellation(seed: Seed) -> None:
    """Two antennas at Weilheim, three hours: the plan is feasible, bounded, and better."""
    ants = [Antenna("de-weilheim", f"a{i}", ROT, min_el_deg=5.0) for i in range(2)]
    problem = _builder(seed, ants, {n: 4.0 for n in range(81101, 81211)})(START, [])
    sched = make_schedule(problem)
    greedy = plain_value(problem, solve_greedy(problem))
    assert sched.upper_bound is not None
    assert sched.objective <= sched.upper_bound + 1e-6
    assert sched.objective > 1.1 * greedy
