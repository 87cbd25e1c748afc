"""Pass predictor: invariants, edge cases, agreement with skyfield (the independent reference)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sgp4.api import WGS72, Satrec
from sgp4.exporter import export_tle
from skyfield.api import EarthSatellite, load, wgs84

from controller.orbit.mask import HorizonMask, MaskError
from controller.orbit.predictor import Pass, PassPredictor, Station

T0 = datetime(2026, 11, 26, tzinfo=UTC)
# Days since 1949-12-31 00:00 UT of the sgp4init epoch used for synthetic orbits (2026-11-25).
EPOCH_1950 = (datetime(2026, 11, 25, tzinfo=UTC) - datetime(1949, 12, 31, tzinfo=UTC)).days
MU = 398600.8
RE = 6378.135


@dataclass(frozen=True)
class Sat:
    norad_id: int
    name: str
    satrec: Satrec
    line1: str
    line2: str


def make_sat(
    norad_id: int,
    alt_km: float,
    incl_deg: float,
    raan_deg: float,
    ma_deg: float,
    ecc: float = 2e-4,
    argp_deg: float = 90.0,
    bstar: float = 1e-5,
) -> Sat:
    """A satellite built with sgp4init and round-tripped through TLE text."""
    a = RE + alt_km
    n_rad_min = math.sqrt(MU / a**3) * 60.0
    rec = Satrec()
    rec.sgp4init(
        WGS72,
        "i",
        norad_id,
        EPOCH_1950,
        bstar,
        0.0,
        0.0,
        ecc,
        math.radians(argp_deg),
        math.radians(incl_deg),
        math.radians(ma_deg),
        n_rad_min,
        math.radians(raan_deg),
    )
    l1, l2 = export_tle(rec)
    return Sat(norad_id, f"SAT-{norad_id}", Satrec.twoline2rv(l1, l2), l1, l2)


@cache
def _ts() -> Any:
    # delta_t = 69.184 s makes UT1 - UTC exactly 0, the predictor's default.
    return load.timescale(delta_t=69.184)


def sky_alt_az(sat: Sat, st: Station, when: datetime) -> tuple[float, float]:
    """Skyfield's geometric altitude and azimuth (degrees)."""
    ts = _ts()
    es = EarthSatellite(sat.line1, sat.line2, sat.name, ts)
    topos = wgs84.latlon(st.lat_deg, st.lon_deg, elevation_m=st.alt_m)
    alt, az, _ = (es - topos).at(ts.from_datetime(when)).altaz()
    return float(alt.degrees), float(az.degrees)


def sky_rate(sat: Sat, st: Station, when: datetime) -> float:
    """Skyfield's altitude rate (deg/s) by central difference."""
    a1, _ = sky_alt_az(sat, st, when - timedelta(seconds=0.05))
    a2, _ = sky_alt_az(sat, st, when + timedelta(seconds=0.05))
    return (a2 - a1) / 0.1


def assert_same_passes(
    found: list[Pass], sat: Sat, st: Station, start: datetime, end: datetime, el: float
) -> None:
    """None missing: every skyfield culmination above the mask lies in one of our passes.

    None extra: skyfield's own altitude at each of our culminations is above the mask.
    """
    ts = _ts()
    es = EarthSatellite(sat.line1, sat.line2, sat.name, ts)
    topos = wgs84.latlon(st.lat_deg, st.lon_deg, elevation_m=st.alt_m)
    times, events = es.find_events(topos, ts.from_datetime(start), ts.from_datetime(end), el)
    for t, kind in zip(times.utc_datetime(), events, strict=True):
        if kind != 1:
            continue
        hits = [
            p for p in found if p.aos - timedelta(seconds=1) <= t <= p.los + timedelta(seconds=1)
        ]
        assert len(hits) == 1, f"skyfield culmination at {t} is in {len(hits)} of our passes"
    for p in found:
        alt, _ = sky_alt_az(sat, st, p.tca)
        assert alt > el - 1e-6, f"our pass {p} peaks at {alt} deg per skyfield, below {el}"


def check_invariants(
    found: list[Pass], start: datetime, end: datetime, *, flat: bool = True
) -> None:
    """AOS < TCA < LOS (TCA may sit on a clipped or masked edge), no overlaps per satellite."""
    by_sat: dict[int, list[Pass]] = {}
    for p in found:
        assert start <= p.aos <= p.tca <= p.los <= end, p
        if flat and "clipped_start" not in p.flags and "clipped_end" not in p.flags:
            assert p.aos < p.tca < p.los, p
        by_sat.setdefault(p.norad_id, []).append(p)
    for passes in by_sat.values():
        for a, b in itertools.pairwise(passes):
            assert a.los < b.aos, (a, b)
    keys = [(p.aos, p.norad_id) for p in found]
    assert keys == sorted(keys)


def test_leo_week_matches_skyfield_exactly() -> None:
    """A week of a 1200 km satellite: same passes as skyfield, AOS/LOS/TCA/max el to spec."""
    sat = make_sat(90001, 1200.0, 55.0, 40.0, 10.0)
    st = Station(47.88, 11.08, 600.0)
    end = T0 + timedelta(days=7)
    found = PassPredictor([sat]).passes(st, T0, end).passes
    check_invariants(found, T0, end)
    assert_same_passes(found, sat, st, T0, end, 0.0)
    assert len(found) > 20
    for p in found:
        for edge in (p.aos, p.los):
            alt, _ = sky_alt_az(sat, st, edge)
            # Time error = altitude error / altitude rate at the crossing.
            assert abs(alt / sky_rate(sat, st, edge)) < 0.1
        alt_tca, _ = sky_alt_az(sat, st, p.tca)
        assert abs(alt_tca - p.max_el_deg) < 0.005
        # TCA is where skyfield's altitude peaks: the rate there is ~0 (within 0.5 s).
        rate = sky_rate(sat, st, p.tca)
        peak_curv = abs(sky_rate(sat, st, p.tca + timedelta(seconds=5)) - rate) / 5.0
        assert abs(rate) <= 0.5 * max(peak_curv, 1e-9) + 1e-6


def test_pass_in_progress_at_start_and_cut_at_end_are_clipped() -> None:
    """A window starting and ending mid-pass yields clipped passes with edge AOS/LOS."""
    sat = make_sat(90002, 800.0, 70.0, 20.0, 0.0)
    st = Station(50.0, 10.0, 100.0)
    full = PassPredictor([sat]).passes(st, T0, T0 + timedelta(days=1)).passes
    target = full[3]
    mid = target.aos + (target.los - target.aos) / 2
    before = PassPredictor([sat]).passes(st, mid, mid + timedelta(hours=6)).passes
    assert before[0].aos == mid
    assert "clipped_start" in before[0].flags
    assert abs((before[0].los - target.los).total_seconds()) < 1e-3
    after = PassPredictor([sat]).passes(st, mid - timedelta(hours=6), mid).passes
    assert after[-1].los == mid
    assert "clipped_end" in after[-1].flags
    assert abs((after[-1].aos - target.aos).total_seconds()) < 1e-3


def test_geostationary_never_rises_or_never_sets() -> None:
    """A GEO satellite: no passes from the far hemisphere, one whole-window pass nearby."""
    geo = make_sat(90003, 35786.0, 0.05, 0.0, 0.0, ecc=1e-4)
    lon = float(sky_sub_lon(geo, T0))
    near = Station(0.0, lon, 0.0)
    far = Station(0.0, (lon + 180.0 + 180.0) % 360.0 - 180.0, 0.0)
    end = T0 + timedelta(days=2)
    pred = PassPredictor([geo])
    assert pred.passes(far, T0, end).passes == []
    seen = pred.passes(near, T0, end).passes
    assert len(seen) == 1
    assert seen[0].flags[:2] == ("clipped_start", "clipped_end")
    assert seen[0].max_el_deg > 80.0


def sky_sub_lon(sat: Sat, when: datetime) -> float:
    """Sub-satellite longitude per skyfield."""
    ts = _ts()
    es = EarthSatellite(sat.line1, sat.line2, sat.name, ts)
    return float(wgs84.subpoint_of(es.at(ts.from_datetime(when))).longitude.degrees)


def test_grazing_pass_is_found() -> None:
    """A pass peaking a fraction of a degree above the mask is found, with exact edges."""
    sat = make_sat(90004, 550.0, 97.6, 100.0, 30.0)
    st = Station(35.2, 140.3, 60.0)
    end = T0 + timedelta(days=3)
    found = PassPredictor([sat]).passes(st, T0, end).passes
    low = min(found, key=lambda p: p.max_el_deg)
    # Put the mask just below that pass's peak: it becomes a grazing pass.
    mask_el = low.max_el_deg - 0.05
    st_mask = Station(35.2, 140.3, 60.0, HorizonMask.flat(mask_el))
    masked = PassPredictor([sat]).passes(st_mask, low.aos, low.los).passes
    assert len(masked) == 1
    graze = masked[0]
    assert graze.duration_s < 60.0
    for edge in (graze.aos, graze.los):
        alt, _ = sky_alt_az(sat, st, edge)
        assert abs(alt - mask_el) < 1e-4
    # And a mask just above the peak removes it.
    st_above = Station(35.2, 140.3, 60.0, HorizonMask.flat(low.max_el_deg + 0.01))
    assert PassPredictor([sat]).passes(st_above, low.aos, low.los).passes == []


def test_azimuth_mask_crossings_are_on_the_mask() -> None:
    """With a non-flat mask, the elevation at AOS and LOS equals the mask at that azimuth."""
    mask = HorizonMask(((0.0, 12.0), (90.0, 2.0), (200.0, 5.0), (300.0, 15.0)))
    st = Station(36.13, 138.36, 1456.0, mask)
    sats = [
        make_sat(90010 + i, 600.0 + 100 * i, 53.0 + 5 * i, 30.0 * i, 40.0 * i) for i in range(5)
    ]
    end = T0 + timedelta(days=2)
    pred = PassPredictor(sats)
    found = pred.passes(st, T0, end).passes
    # A mask falling faster than the satellite can hide the culmination: TCA = AOS then.
    check_invariants(found, T0, end, flat=False)
    assert len(found) > 20
    by_id = {s.norad_id: s for s in sats}
    for p in found:
        for edge in (p.aos, p.los):
            alt, az = sky_alt_az(by_id[p.norad_id], st, edge)
            assert abs(alt - mask.at(az)) < 2e-3, (p, alt, az)


def test_raised_mask_matches_max_of_mask_and_floor() -> None:
    """HorizonMask.raised is exactly max(mask, floor) at every azimuth."""
    mask = HorizonMask(((0.0, 12.0), (90.0, 2.0), (200.0, 5.0), (300.0, 15.0)))
    raised = mask.raised(6.0)
    for az in np.linspace(0.0, 359.9, 721):
        assert raised.at(float(az)) == pytest.approx(max(mask.at(float(az)), 6.0), abs=1e-9)


def test_bad_masks_are_rejected_with_reason() -> None:
    """Masks with unordered azimuths or wild elevations name the bad point."""
    with pytest.raises(MaskError, match="point 1"):
        HorizonMask(((10.0, 0.0), (5.0, 0.0)))
    with pytest.raises(MaskError, match="outside"):
        HorizonMask(((0.0, 95.0),))


def test_decaying_satellite_is_reported_and_others_kept() -> None:
    """A satellite sgp4 cannot propagate is reported per satellite; the rest still predicted."""
    good = make_sat(90020, 700.0, 60.0, 0.0, 0.0)
    doomed = make_sat(90021, 160.0, 51.6, 0.0, 0.0, bstar=0.5)
    st = Station(45.0, 7.0, 200.0)
    result = PassPredictor([good, doomed]).passes(st, T0, T0 + timedelta(days=20))
    assert [p.norad_id for p in result.problems] == [90021]
    assert "sgp4 error" in result.problems[0].reason
    assert any(p.norad_id == 90020 for p in result.passes)


def test_look_angles_match_skyfield() -> None:
    """Look angles, range and range rate over a time array agree with skyfield."""
    sat = make_sat(90030, 1200.0, 55.0, 10.0, 200.0)
    st = Station(47.88, 11.08, 600.0)
    times = [T0 + timedelta(seconds=37 * k) for k in range(200)]
    la = PassPredictor([sat]).look_angles(90030, st, times)
    ts = _ts()
    es = EarthSatellite(sat.line1, sat.line2, sat.name, ts)
    topos = wgs84.latlon(st.lat_deg, st.lon_deg, elevation_m=st.alt_m)
    t = ts.from_datetimes(times)
    alt, az, dist, _, _, range_rate = (es - topos).at(t).frame_latlon_and_rates(topos)
    np.testing.assert_allclose(la.el_deg, alt.degrees, atol=1e-6)
    daz = (la.az_deg - az.degrees + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(daz)) < 1e-5
    np.testing.assert_allclose(la.range_km, dist.km, rtol=1e-9)
    np.testing.assert_allclose(la.range_rate_km_s, range_rate.km_per_s, atol=1e-6)


def test_max_elevation_in_one_batch_matches_each_satellites_look_angles() -> None:
    """The batch max elevation of several satellites (given in any order) equals the maximum
    of each one's look angles on the same grid; unknown satellites are refused by id."""
    sats = [
        make_sat(90050 + k, 500.0 + 150 * k, 40.0 + 12 * k, 37.0 * k, 71.0 * k) for k in range(6)
    ]
    pred = PassPredictor(sats)
    st = Station(47.88, 11.08, 600.0)
    ids = [90055, 90050, 90053, 90051]
    got = pred.max_elevation_deg(ids, st, T0, 1800.0, 30.0)
    assert list(got) == ids
    times = [T0 + timedelta(seconds=30.0 * k) for k in range(61)]
    for n in ids:
        assert got[n] == pytest.approx(
            float(np.max(pred.look_angles(n, st, times).el_deg)), abs=1e-9
        )
    assert len({round(v, 3) for v in got.values()}) == len(ids)
    assert pred.max_elevation_deg([], st, T0, 1800.0, 30.0) == {}
    with pytest.raises(KeyError, match="99999"):
        pred.max_elevation_deg([90050, 99999], st, T0, 1800.0, 30.0)


def test_naive_datetimes_are_refused() -> None:
    """Naive datetimes never cross the API."""
    pred = PassPredictor([make_sat(90040, 500.0, 45.0, 0.0, 0.0)])
    with pytest.raises(ValueError, match="naive"):
        pred.passes(Station(0.0, 0.0, 0.0), datetime(2026, 1, 1), datetime(2026, 1, 2))


orbit_strategy = st.fixed_dictionaries(
    {
        "alt_km": st.floats(350.0, 2000.0),
        "incl_deg": st.floats(0.0, 120.0),
        "raan_deg": st.floats(0.0, 359.9),
        "ma_deg": st.floats(0.0, 359.9),
        "ecc": st.floats(0.0, 0.02),
        "argp_deg": st.floats(0.0, 359.9),
    }
)
station_strategy = st.tuples(
    st.floats(-85.0, 85.0), st.floats(-180.0, 180.0), st.floats(0.0, 3000.0), st.floats(0.0, 15.0)
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orbit=orbit_strategy, site=station_strategy)
def test_random_orbits_and_stations_agree_with_skyfield(
    orbit: dict[str, float], site: tuple[float, float, float, float]
) -> None:
    """Property: for random valid LEO orbits and sites, the pass count and edges match skyfield."""
    sat = make_sat(91000, **orbit)
    lat, lon, alt_m, min_el = site
    st_ = Station(lat, lon, alt_m, HorizonMask.flat(min_el))
    end = T0 + timedelta(days=1)
    found = PassPredictor([sat]).passes(st_, T0, end).passes
    check_invariants(found, T0, end)
    assert_same_passes(found, sat, st_, T0, end, min_el)
    for p in found:
        for edge, clipped in ((p.aos, "clipped_start"), (p.los, "clipped_end")):
            if clipped in p.flags:
                continue
            alt, _ = sky_alt_az(sat, st_, edge)
            assert abs((alt - min_el) / sky_rate(sat, st_, edge)) < 0.1
