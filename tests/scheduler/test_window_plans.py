"""Window plans: the vectorised wrap/flip choice agrees with RotatorModel.plans_for."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from controller.orbit.catalog import Catalog
from controller.orbit.predictor import PassPredictor, Station
from controller.scheduler.model import (
    Antenna,
    RotatorModel,
    Satellite,
    SatellitePointing,
    Settings,
    build_problem,
)
from tests.scheduler import START

ROOT = Path(__file__).resolve().parents[2]
TLE = [ROOT / "seeds/tle/eu_constellation.tle", ROOT / "seeds/tle/jp_groups.tle"]


@pytest.mark.parametrize(
    "rot",
    [
        RotatorModel(0, 450, 0, 180, 6, 6, 6, 6),  # overlap and flip over the zenith
        RotatorModel(0, 360, 0, 180, 6, 6, 6, 6),  # flip, no overlap
        RotatorModel(-180, 180, 0, 90, 6, 6, 6, 6),  # neither: long passes are split
    ],
)
def test_every_window_plan_is_one_plans_for_gives(rot: RotatorModel) -> None:
    """Each window's plan is among plans_for of its own path, and its pointing stays in
    the rotator's ranges; flipped windows are those whose path fits no unflipped plan."""
    catalog = Catalog.from_files(TLE)
    station = Station(47.88, 11.08, 600.0, station_id="de")
    end = START + timedelta(hours=8)
    passes = PassPredictor(list(catalog)).passes(station, START, end).passes
    problem = build_problem(
        start=START,
        end=end,
        settings=Settings(resolution_s=20.0),
        antennas=[Antenna("de", "a", rot, min_el_deg=5.0)],
        satellites=[Satellite(e.norad_id, e.name) for e in catalog],
        stations={"de": station},
        passes={"de": passes},
        pointing=SatellitePointing(list(catalog), START),
    )
    assert len(problem.windows) > 100
    n_flipped = 0
    for w in problem.windows:
        plan = w.plan
        az, el = w.az_rot_deg, w.el_rot_deg
        assert rot.az_min_deg - 1e-6 <= az.min()
        assert az.max() <= rot.az_max_deg + 1e-6
        assert rot.el_min_deg - 1e-6 <= el.min()
        assert el.max() <= rot.el_max_deg + 1e-6
        # Back to the unwrapped path the plan was chosen for.
        if plan.flipped:
            n_flipped += 1
            az_u, el_u = az - 180.0 - plan.az_offset_deg, 180.0 - el
        else:
            az_u, el_u = az - plan.az_offset_deg, el
        plans = rot.plans_for(
            float(az_u.min()), float(az_u.max()), float(el_u.min()), float(el_u.max())
        )
        assert plan in plans
        assert all(p.flipped == plan.flipped for p in plans)
    if rot.can_flip:
        assert n_flipped > 0
    else:
        assert n_flipped == 0
    # Windows of one pass and plan never overlap (a split path gives consecutive pieces).
    seen: dict[tuple[int, object, object], list[tuple[int, int]]] = {}
    for w in problem.windows:
        seen.setdefault((w.sat, w.pass_aos, w.plan), []).append((w.first, w.last))
    for spans in seen.values():
        spans.sort()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    assert np.isfinite(np.concatenate([w.az_rot_deg for w in problem.windows])).all()
