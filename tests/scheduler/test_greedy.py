"""The SatNOGS-style baseline: priority tiers, first fit, fixed wait, slew eating the start."""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler.greedy import solve_greedy
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
from controller.scheduler.optimal import plain_value, solve_optimal
from controller.scheduler.plan import check_schedule, schedule_from_raw
from tests.scheduler import START, random_problem

R = 30.0


def _w(antenna: int, sat: int, first: int, n: int, az: float, max_el: float) -> Window:
    grid = Grid(START, R, 120)
    return Window(
        antenna,
        sat,
        first,
        np.full(n, az),
        np.full(n, 30.0),
        Plan(0.0, False),
        grid.time(first),
        grid.time(first + n - 1),
        max_el,
        2,
    )


def _problem(
    windows: list[Window], n_ant: int = 1, weights: tuple[float, ...] = (1, 1, 1)
) -> Problem:
    rot = RotatorModel(0, 360, 0, 90, 3.0, 3.0, 3.0, 3.0)
    ants = [Antenna("st", f"a{i}", rot, park_az_deg=0.0, park_el_deg=30.0) for i in range(n_ant)]
    sats = [
        Satellite(90001 + i, f"S{i}", weight=w, min_contact_s=60.0) for i, w in enumerate(weights)
    ]
    return Problem(Grid(START, R, 120), Settings(R, 20.0, 10.0, True), ants, sats, windows)


def _picked(problem: Problem, **kw: object) -> list[tuple[int, int, int]]:
    raw = solve_greedy(problem, **kw)  # type: ignore[arg-type]
    sched = schedule_from_raw(problem, raw, policy="greedy", upper_bound=None)
    assert check_schedule(sched, problem) == []
    return sorted((problem.windows[t.window].sat, t.start, t.end) for t in raw)


def test_priority_tier_beats_elevation() -> None:
    """A listed (priority) satellite wins a conflict even with a lower pass."""
    p = _problem([_w(0, 0, 10, 30, 0.0, 20.0), _w(0, 1, 20, 30, 0.0, 80.0)], weights=(3, 1, 1))
    assert [s for s, _, _ in _picked(p, priorities={90001: 3.0})] == [0]
    # Without a priority list, the higher pass is taken first (SatNOGS normal tier).
    assert [s for s, _, _ in _picked(p, priorities={})] == [1]


def test_priorities_in_decreasing_order() -> None:
    """Within the priority tier, the higher priority wins."""
    p = _problem([_w(0, 0, 10, 30, 0.0, 50.0), _w(0, 1, 20, 30, 0.0, 50.0)])
    assert [s for s, _, _ in _picked(p, priorities={90001: 0.2, 90002: 0.9})] == [1]


def test_first_fit_uses_the_next_antenna() -> None:
    """When the first antenna is taken, the pass goes to the second one."""
    p = _problem(
        [
            _w(0, 0, 10, 30, 0.0, 80.0),
            _w(0, 1, 20, 30, 0.0, 50.0),
            _w(1, 0, 10, 30, 0.0, 80.0),
            _w(1, 1, 20, 30, 0.0, 50.0),
        ],
        n_ant=2,
    )
    raw = solve_greedy(p, priorities={})
    ants = {p.windows[t.window].sat: p.windows[t.window].antenna for t in raw}
    assert ants == {0: 0, 1: 1}


def test_fixed_wait_and_slew_eating_the_start() -> None:
    """A pass starting within ``wait`` after another is refused; with no wait it is
    taken, and its track starts only when the antenna has swung over."""
    # S1 ends at point 39; S2 starts at point 41, 180 deg away.
    p = _problem([_w(0, 0, 10, 30, 0.0, 80.0), _w(0, 1, 41, 30, 180.0, 50.0)])
    assert [s for s, _, _ in _picked(p, priorities={}, wait_s=120.0)] == [0]
    got = _picked(p, priorities={}, wait_s=0.0)
    assert [s for s, _, _ in got] == [0, 1]
    # 180 deg at 3 deg/s (3 deg/s2): 61 s, plus 30 s set-up = 91 s -> 4 steps after 39.
    start_s2 = got[1][1]
    assert start_s2 == 39 + 4
    assert got[0][1:] == (10, 39)


@pytest.mark.parametrize("seed", range(4))
def test_greedy_is_feasible_and_never_beats_the_optimum(seed: int) -> None:
    """On random instances the baseline's plan is feasible and worth at most the optimum."""
    rng = np.random.default_rng(6000 + seed)
    problem = random_problem(rng, n_antennas=1 + seed % 2, n_passes=12, n_steps=60)
    raw = solve_greedy(problem)
    sched = schedule_from_raw(problem, raw, policy="greedy", upper_bound=None)
    assert check_schedule(sched, problem) == []
    assert plain_value(problem, raw) <= solve_optimal(problem).objective + 1e-6


def test_unknown_satellite_in_priorities_is_refused() -> None:
    """A priority for a satellite that is not in the problem is an error naming it."""
    p = _problem([_w(0, 0, 10, 30, 0.0, 20.0)])
    with pytest.raises(ValueError, match="12345"):
        solve_greedy(p, priorities={12345: 1.0})
