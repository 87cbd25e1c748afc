"""The scheduling model: rotator travel, pointing plans, windows, pointing and bad input."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from controller.config import load_config
from controller.orbit.catalog import Catalog
from controller.orbit.predictor import Pass, PassPredictor, Station
from controller.scheduler.model import (
    Antenna,
    Plan,
    Reservation,
    RotatorModel,
    Satellite,
    SatellitePointing,
    SchedulerInputError,
    Settings,
    antenna_serves,
    antennas_from_config,
    build_problem,
    satellites_from_config,
)
from tests.scheduler import START, move_time_s

ROOT = Path(__file__).resolve().parents[2]
TLE = [ROOT / "seeds/tle/eu_constellation.tle", ROOT / "seeds/tle/jp_groups.tle"]


def _simulated_move_s(dist: float, rate: float, accel: float, dt: float = 1e-4) -> float:
    """Time to cover ``dist`` stepping a bang-bang profile: speed up, cruise, brake."""
    pos, vel, t = 0.0, 0.0, 0.0
    while True:
        if dist - pos <= vel * vel / (2 * accel):
            new = vel - accel * dt
            if new <= 0:
                return t + vel / accel
        else:
            new = min(vel + accel * dt, rate)
        pos += (vel + new) / 2 * dt
        vel = new
        t += dt


@pytest.mark.parametrize(
    ("dist", "rate", "accel"), [(3.0, 6.0, 6.0), (120.0, 6.0, 6.0), (40.0, 3.0, 1.0)]
)
def test_axis_time_matches_a_simulated_trapezoid(dist: float, rate: float, accel: float) -> None:
    """The closed-form move time agrees with a step-by-step simulation of the profile."""
    rot = RotatorModel(
        slew_az_deg_s=rate, accel_az_deg_s2=accel, slew_el_deg_s=90, accel_el_deg_s2=360
    )
    model = float(rot.travel_s(0.0, 45.0, dist, 45.0))
    assert model == pytest.approx(_simulated_move_s(dist, rate, accel), abs=2e-3)


def test_travel_is_the_slower_axis_and_reach_inverts_it() -> None:
    """Axes move at once (max of the two); reach_deg is the inverse of the move time."""
    rot = RotatorModel(0, 450, 0, 180, 6.0, 3.0, 6.0, 2.0)
    t = float(rot.travel_s(10.0, 10.0, 70.0, 40.0))
    assert t == pytest.approx(max(move_time_s(60, 6, 6), move_time_s(30, 3, 2)))
    for budget in (0.5, 3.0, 20.0):
        az, el = rot.reach_deg(budget)
        assert float(rot.travel_s(0, 0, az, 0)) == pytest.approx(budget)
        assert float(rot.travel_s(0, 0, 0, el)) == pytest.approx(budget)
    assert rot.reach_deg(-1.0) == (-1.0, -1.0)
    assert rot.max_travel_s == pytest.approx(max(move_time_s(450, 6, 6), move_time_s(180, 3, 2)))


def test_plans_use_the_overlap_and_flip_only_when_needed() -> None:
    """0..450 gives two wrap sides near north; a north-crossing path fits only one way."""
    over = RotatorModel(0, 450, 0, 90)
    assert over.plans_for(20, 80, 10, 60) == [Plan(0.0, False), Plan(360.0, False)]
    assert over.plans_for(300, 400, 10, 60) == [Plan(0.0, False)]
    plain = RotatorModel(0, 360, 0, 90)
    assert plain.plans_for(300, 400, 10, 60) == []
    flip = RotatorModel(0, 360, 0, 180)
    # Crossing north does not fit unflipped; flipped it runs 120..220.
    assert flip.plans_for(300, 400, 10, 60) == [Plan(-360.0, True)]
    # Between two low satellites either side of north: 20 deg over the flip side.
    assert flip.shortest_travel_s(350, 10, 10, 10) == pytest.approx(move_time_s(20, 5, 10))


def test_rotator_and_antenna_errors_name_the_field() -> None:
    """Bad rotator rates, empty bands and park outside the ranges are refused by name."""
    with pytest.raises(SchedulerInputError, match="slew_az_deg_s"):
        RotatorModel(slew_az_deg_s=0.0)
    with pytest.raises(SchedulerInputError, match="bands_hz is empty"):
        Antenna("s", "a", RotatorModel(), bands_hz=())
    with pytest.raises(SchedulerInputError, match="park"):
        Antenna("s", "a", RotatorModel(), park_el_deg=120.0)


def test_band_compatibility() -> None:
    """An antenna serves a satellite when every given frequency is inside one of its bands."""
    ant = Antenna("s", "a", RotatorModel(), bands_hz=((144e6, 146e6), (435e6, 438e6)))
    assert antenna_serves(ant, Satellite(1, "x", downlink_hz=437e6, uplink_hz=145.9e6))
    assert not antenna_serves(ant, Satellite(2, "y", downlink_hz=2.2e9))
    assert antenna_serves(ant, Satellite(3, "z"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The seed constellation."""
    return Catalog.from_files(TLE)


def test_pointing_matches_the_predictor(catalog: Catalog) -> None:
    """Interpolated look angles stay within 0.005 deg of direct SGP4 look angles."""
    station = Station(47.88, 11.08, 600.0)
    pointing = SatellitePointing(list(catalog), START)
    predictor = PassPredictor(list(catalog))
    t = np.arange(0.0, 6 * 3600.0, 37.0)
    az, el = pointing.sample(station, 81101, t)
    ref = predictor.look_angles(81101, station, [START + timedelta(seconds=float(x)) for x in t])
    up = ref.el_deg > 0
    assert np.abs(el - ref.el_deg).max() < 0.005
    d_az = (az - ref.az_deg + 180.0) % 360.0 - 180.0
    assert (np.abs(d_az) * np.cos(np.radians(ref.el_deg)))[up].max() < 0.005


def _one_station_problem(catalog: Catalog, **kw: object) -> tuple[list[Pass], object]:
    station = Station(47.88, 11.08, 600.0, station_id="de")
    end = START + timedelta(hours=3)
    passes = PassPredictor(list(catalog)).passes(station, START, end).passes
    return passes, build_problem(
        start=START,
        end=end,
        settings=Settings(resolution_s=20.0),
        stations={"de": station},
        passes={"de": passes},
        pointing=SatellitePointing(list(catalog), START),
        **kw,  # type: ignore[arg-type]
    )


def test_windows_respect_elevation_bands_and_maintenance(catalog: Catalog) -> None:
    """Windows are inside passes, above both minimum elevations, in band, not in maintenance."""
    rot = RotatorModel(0, 450, 0, 90, 6, 6, 6, 6)
    busy = (START + timedelta(minutes=60), START + timedelta(minutes=90))
    ants = [
        Antenna("de", "low", rot, min_el_deg=5.0, unavailable=(busy,)),
        Antenna("de", "sband", rot, min_el_deg=10.0, bands_hz=((2.2e9, 2.3e9),)),
    ]
    sats = [
        Satellite(
            e.norad_id,
            e.name,
            min_el_deg=20.0 if e.norad_id == 80001 else 0.0,
            downlink_hz=437e6 if e.norad_id % 2 else None,
        )
        for e in catalog
    ]
    _passes, problem = _one_station_problem(catalog, antennas=ants, satellites=sats)
    grid = problem.grid  # type: ignore[attr-defined]
    assert problem.windows  # type: ignore[attr-defined]
    for w in problem.windows:  # type: ignore[attr-defined]
        ant = ants[w.antenna]
        sat = sats[w.sat]
        t0, t1 = grid.time(w.first), grid.time(w.last)
        assert w.pass_aos <= t0 < t1 <= w.pass_los
        true_el = 180.0 - w.el_rot_deg if w.plan.flipped else w.el_rot_deg
        assert true_el.min() >= max(ant.min_el_deg, sat.min_el_deg) - 1e-6
        assert antenna_serves(ant, sat)
        assert not (t0 < busy[1] and busy[0] < t1) or w.antenna == 1
        assert (w.last - w.first) * 20.0 >= sat.min_contact_s
        assert (rot.az_min_deg <= w.az_rot_deg).all()
        assert (w.az_rot_deg <= rot.az_max_deg).all()
    odd = {w.sat for w in problem.windows if w.antenna == 1}  # type: ignore[attr-defined]
    assert all(sats[s].norad_id % 2 == 0 for s in odd)


def test_reservation_conflicts_are_refused(catalog: Catalog) -> None:
    """Two reservations on one antenna at once, or one satellite on two antennas, fail."""
    rot = RotatorModel(0, 450, 0, 90, 6, 6, 6, 6)
    ants = [Antenna("de", "a", rot), Antenna("de", "b", rot)]
    sats = [Satellite(e.norad_id, e.name) for e in catalog]
    passes, _ = _one_station_problem(catalog, antennas=ants, satellites=sats)
    # Two satellites up together for 6 minutes: reserve both on antenna a.
    p1, p2 = next(
        (p, q)
        for p in passes
        for q in passes
        if p.norad_id < q.norad_id
        and q.aos + timedelta(minutes=8) < p.los
        and p.aos < q.aos
        and p.max_el_deg > 20
        and q.max_el_deg > 20
    )
    t = q_t = p2.aos + timedelta(minutes=1)
    clash = [
        Reservation("de", "a", p1.norad_id, t, t + timedelta(minutes=5)),
        Reservation("de", "a", p2.norad_id, q_t + timedelta(minutes=2), q_t + timedelta(minutes=6)),
    ]
    with pytest.raises(SchedulerInputError, match="overlaps"):
        _one_station_problem(catalog, antennas=ants, satellites=sats, reservations=clash)
    twice = [
        Reservation("de", "a", p1.norad_id, t, t + timedelta(minutes=5)),
        Reservation("de", "b", p1.norad_id, t, t + timedelta(minutes=5)),
    ]
    with pytest.raises(SchedulerInputError, match="one antenna per satellite"):
        _one_station_problem(catalog, antennas=ants, satellites=sats, reservations=twice)
    unknown = [Reservation("de", "zz", p1.norad_id, t, t + timedelta(minutes=5))]
    with pytest.raises(SchedulerInputError, match="unknown antenna"):
        _one_station_problem(catalog, antennas=ants, satellites=sats, reservations=unknown)
    below = [
        Reservation(
            "de", "a", p1.norad_id, p1.los + timedelta(minutes=5), p1.los + timedelta(minutes=9)
        )
    ]
    with pytest.raises(SchedulerInputError, match="below the rotator's elevation range"):
        _one_station_problem(catalog, antennas=ants, satellites=sats, reservations=below)


def test_horizon_of_zero_and_naive_times_are_refused(catalog: Catalog) -> None:
    """A zero horizon and a naive start are errors that say what to give instead."""
    ants = [Antenna("de", "a", RotatorModel())]
    sats = [Satellite(e.norad_id, e.name) for e in catalog]
    common = {
        "settings": Settings(),
        "antennas": ants,
        "satellites": sats,
        "stations": {"de": Station(47.88, 11.08, 600.0)},
        "passes": {"de": []},
        "pointing": SatellitePointing(list(catalog), START),
    }
    with pytest.raises(SchedulerInputError, match="horizon of zero"):
        build_problem(start=START, end=START, **common)  # type: ignore[arg-type]
    with pytest.raises(SchedulerInputError, match="naive"):
        build_problem(start=datetime(2026, 11, 26), end=START, **common)  # type: ignore[arg-type]


def test_config_inputs_unknown_satellite_and_antenna_without_bands(catalog: Catalog) -> None:
    """A priority for a satellite not in the catalog, and an antenna with no bands, fail."""
    cfg = load_config(ROOT / "configs" / "simulated.toml")
    single = next(s for s in cfg.satellites if s.norad_id == 80001)  # its own entry
    bad_sat = single.model_copy(update={"norad_id": 12345})
    with pytest.raises(SchedulerInputError, match=r"satellites\[4\].norad_id = 12345"):
        satellites_from_config(list(catalog), [bad_sat], source="x.toml")
    # Only 80001 configured: every other satellite takes the default weight.
    sats = satellites_from_config(list(catalog), [single], default_weight=2.0)
    assert {s.norad_id: s.weight for s in sats}[80001] == 5.0
    assert {s.norad_id: s.weight for s in sats}[80002] == 2.0
    no_bands = cfg.antennas[0].model_copy(update={"bands_hz": []})
    with pytest.raises(SchedulerInputError, match=r"antennas\[0\].*bands_hz is empty"):
        antennas_from_config("demo", [no_bands], source="x.toml")
    ants = antennas_from_config("demo", cfg.antennas)
    assert [a.antenna_id for a in ants] == ["ant1", "ant2"]
    assert ants[0].rotator.az_max_deg == 450.0
