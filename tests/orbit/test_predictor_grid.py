"""The coarse grid's skip tests (orbit plane, along-track phase) never hide a visible satellite.

The pass search never propagates a satellite over grid intervals its plane and phase tests
prove out. These tests check the proofs against sgp4 itself: on every skipped interval the
satellite's Earth-central angle from the site, sampled every 10 s, stays above the
visibility angle the search uses; and the phase test must actually skip something on LEO
orbits (or the speed it buys would silently be lost).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from controller.orbit.mask import HorizonMask
from controller.orbit.predictor import PassPredictor, Station, _Geometry, _Search
from tests.orbit.test_predictor import Sat, make_sat

T0 = datetime(2026, 11, 26, tzinfo=UTC)
FINE_S = 10.0


def _skipped_margin_deg(
    pred: PassPredictor, station: Station, days: float
) -> tuple[float, int, int]:
    """Smallest (central angle - visibility angle) on skipped intervals, their count, and
    the number of grid intervals."""
    jd0, fr0 = pred._jd_parts(T0)
    search = _Search(pred, _Geometry(station), jd0, fr0, days * 86400.0, None)
    t, _, skip, _ = search._coarse()
    ks, cols = np.nonzero(skip)
    if not len(ks):
        return math.inf, 0, skip.size
    h = np.diff(t)[cols]
    steps = math.ceil(float(np.max(h)) / FINE_S)
    frac = np.linspace(0.0, 1.0, steps + 1)
    sat = np.repeat(ks, len(frac))
    times = (t[cols][:, None] + frac[None, :] * h[:, None]).ravel()
    err, x, y, z, _, _, _ = pred._states(jd0, fr0, sat, times)
    ok = err == 0
    sx, sy, sz = search.geo.s_hat
    c = (sx * x + sy * y + sz * z) / np.sqrt(x * x + y * y + z * z)
    lam = np.arccos(np.clip(c, -1.0, 1.0))
    margin = (lam - search.lam_out[sat])[ok]
    return float(np.degrees(np.min(margin))), len(ks), skip.size


def test_seed_constellation_skips_are_sound_and_substantial() -> None:
    """Seed-like LEO shells over a mid-latitude site: skipped intervals are all invisible."""
    sats = [
        make_sat(92000 + i, alt_km, incl, raan, ma)
        for i, (alt_km, incl, raan, ma) in enumerate(
            [(1200.0, 55.0, 15.0 * k, (37.0 * k) % 360.0) for k in range(12)]
            + [(550.0, 97.6, 30.0 * k, 11.0 * k) for k in range(6)]
        )
    ]
    station = Station(47.88, 11.08, 600.0, HorizonMask.flat(0.0))
    margin_deg, skipped, grid_intervals = _skipped_margin_deg(PassPredictor(sats), station, 3.0)
    assert margin_deg > 0.0
    # Plane and phase together skip over half of the grid for these orbits.
    assert skipped > 0.5 * grid_intervals


orbit_strategy = st.fixed_dictionaries(
    {
        # LEO, MEO to GEO, and far beyond (deep space: period over 225 min).
        "alt_km": st.one_of(
            st.floats(300.0, 2000.0), st.floats(2000.0, 36000.0), st.floats(36000.0, 200000.0)
        ),
        "incl_deg": st.floats(0.0, 140.0),
        "raan_deg": st.floats(0.0, 359.9),
        "ma_deg": st.floats(0.0, 359.9),
        "ecc": st.floats(0.0, 0.06),
        "argp_deg": st.floats(0.0, 359.9),
        "bstar": st.sampled_from([0.0, 1e-5, 1e-4, 5e-4]),
    }
)

# lat_deg, lon_deg, height_m, mask_deg: masks below the horizon (mountain sites) widen the
# visibility angle, past 90 degrees for high orbits.
site_strategy = st.tuples(
    st.floats(-85.0, 85.0),
    st.floats(-180.0, 180.0),
    st.floats(0.0, 10000.0),
    st.floats(-10.0, 15.0),
)

# A 195,000 km orbit seen from a site with a -10 degree mask (visibility angle past 90
# degrees): the phase test once skipped part of a 62-degree pass here.
HIGH_NEG_MASK_CASE = (
    {
        "alt_km": 194853.95377522724,
        "incl_deg": 70.22836517801572,
        "raan_deg": 282.11588374154036,
        "ma_deg": 295.37492829317347,
        "ecc": 0.0,
        "argp_deg": 0.0,
        "bstar": 0.0,
    },
    (23.170774849560495, 86.5812282599507, 0.0, -10.0),
    14.0,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orbit=orbit_strategy, site=site_strategy, days=st.sampled_from([1.0, 2.5, 4.0, 14.0]))
@example(*HIGH_NEG_MASK_CASE)
def test_random_orbits_skips_never_hide_visibility(
    orbit: dict[str, float], site: tuple[float, float, float, float], days: float
) -> None:
    """Property: random orbits (LEO to 200,000 km, drag, e <= 0.06): skipped means invisible."""
    sat = make_sat(91500, **orbit)
    lat, lon, height_m, min_el = site
    station = Station(lat, lon, height_m, HorizonMask.flat(min_el))
    margin_deg, _, _ = _skipped_margin_deg(PassPredictor([sat]), station, days)
    assert margin_deg > 0.0


def _high_orbits(seed: int) -> list[Sat]:
    """Eight near-circular orbits 80,000-200,000 km up (deep space), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return [
        make_sat(
            91700 + i,
            alt_km=float(rng.uniform(80000.0, 200000.0)),
            incl_deg=float(rng.uniform(0.0, 140.0)),
            raan_deg=float(rng.uniform(0.0, 360.0)),
            ma_deg=float(rng.uniform(0.0, 360.0)),
            ecc=float(rng.choice([0.0, rng.uniform(0.0, 0.01)])),
            argp_deg=float(rng.uniform(0.0, 360.0)),
            bstar=0.0,
        )
        for i in range(8)
    ]


# Eight orbits whose phase-skipped intervals once held a visible satellite.
SEED_MISSED, SITE_MISSED = 815187656, (40.7, 158.55)


# Uniform draws from a seed rather than Hypothesis floats: the failing geometries are
# rare (the satellite must be far from the site's plane while about 90 degrees along
# track: 1-3% of such orbits over two weeks), and Hypothesis' boundary-heavy floats find
# them less often. No shrinking: the seed alone reproduces a failure.
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    site=st.tuples(st.floats(-85.0, 85.0), st.floats(-180.0, 180.0)),
)
@example(seed=SEED_MISSED, site=SITE_MISSED)
def test_high_orbits_negative_mask_skips_never_hide_visibility(
    seed: int, site: tuple[float, float]
) -> None:
    """Property: high orbits, mask at the -10 degree limit (visibility angle past 90)."""
    station = Station(site[0], site[1], 0.0, HorizonMask.flat(-10.0))
    margin_deg, _, _ = _skipped_margin_deg(PassPredictor(_high_orbits(seed)), station, 14.0)
    assert margin_deg > 0.0


def test_phase_skip_adds_to_plane_skip() -> None:
    """The phase test skips intervals the plane test alone cannot (in-plane site)."""
    sat = make_sat(91600, 1200.0, 55.0, 0.0, 0.0)
    station = Station(47.88, 11.08, 600.0, HorizonMask.flat(0.0))
    pred = PassPredictor([sat])
    jd0, fr0 = pred._jd_parts(T0)
    search = _Search(pred, _Geometry(station), jd0, fr0, 2 * 86400.0, None)
    _, _, skip, _ = search._coarse()
    end = T0 + timedelta(days=2)
    passes = pred.passes(station, T0, end).passes
    assert passes  # the site sees this orbit
    # Over two days the site is near this plane for many orbits; without the phase test
    # only about 40% of the grid would be skipped.
    assert np.count_nonzero(skip) > 0.5 * skip.size
