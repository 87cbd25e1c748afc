"""The windows' rotator coordinates made in one vectorised pass equal the per-window ones."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from controller.orbit.predictor import Pass
from controller.scheduler.model import Plan, _plan_coords, _plans_coords


@pytest.mark.parametrize("seed", range(4))
def test_plans_coords_equal_each_windows_coords(seed: int) -> None:
    """Each stretch of the batch is, bit for bit, _plan_coords of its plan (flipped or
    not, any 360-degree offset), and stretches may overlap or repeat."""
    rng = np.random.default_rng(5800 + seed)
    n = 200
    az_u = np.cumsum(rng.uniform(-5.0, 5.0, n)) + rng.uniform(0.0, 360.0)
    el = rng.uniform(0.0, 90.0, n)
    aos = datetime(2026, 11, 26, tzinfo=UTC)
    dummy = Pass(1, "SAT", aos, aos, aos, 10.0, 0.0, 0.0, 0.0)
    specs = []
    for _ in range(40):
        lo = int(rng.integers(0, n - 2))
        hi = int(rng.integers(lo + 1, n + 1))
        plan = Plan(360.0 * int(rng.integers(-1, 2)), bool(rng.integers(0, 2)))
        specs.append((lo, hi, plan, 0, dummy, 1))
    az_all, el_all = _plans_coords(specs, az_u, el)
    pos = 0
    assert any(sp[2].flipped for sp in specs)
    assert not all(sp[2].flipped for sp in specs)
    for lo, hi, plan, *_ in specs:
        want_az, want_el = _plan_coords(plan, az_u[lo:hi], el[lo:hi])
        got_az, got_el = az_all[pos : pos + hi - lo], el_all[pos : pos + hi - lo]
        assert got_az.tobytes() == want_az.tobytes()
        assert got_el.tobytes() == want_el.tobytes()
        pos += hi - lo
    assert pos == len(az_all) == len(el_all)


def test_plans_coords_of_nothing() -> None:
    """No stretch: two empty arrays."""
    az, el = _plans_coords([], np.zeros(3), np.zeros(3))
    assert az.shape == el.shape == (0,)
