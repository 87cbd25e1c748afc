"""The subgradient on one plan per antenna class (with its multiplicity), the heuristic
that reuses a known first plan, and the pooled prices' side bound for several stations:
valid bounds, feasible plans, the same results as the copies they replace."""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler.model import Problem
from controller.scheduler.optimal import (
    _antenna_classes,
    _best_responses,
    _classes_of,
    _coverage_cells,
    _initial_prices,
    _pooled_prices,
    _relaxed,
    _sequential_many,
    _sequential_repriced,
    _Solver,
    plain_value,
    solve_optimal,
)
from controller.scheduler.plan import check_schedule, schedule_from_raw
from tests.scheduler import (
    exact_reference,
    feasible_and_bracketed,
    identical_antennas,
    random_problem,
)


def _stations_instance(seed: int) -> Problem:
    """Two or three stations, one or two antennas each (every antenna its own class)."""
    rng = np.random.default_rng(6100 + seed)
    stations = 2 + seed % 2
    return random_problem(
        rng,
        n_antennas=stations * (1 + seed % 2),
        n_passes=int(rng.integers(12, 20)),
        n_steps=int(rng.integers(40, 60)),
        stations=stations,
    )


def _cap_on_cells(problem: Problem, solver: _Solver) -> np.ndarray:
    """The Lagrangian's price caps per priced cell (as solve_optimal sets them)."""
    lam = solver.max_price()
    cap = lam - solver.w_floor * problem.grid.resolution_s
    if not cap.any():
        cap = lam
    return cap[solver.priced_cells() // (problem.grid.n_steps + 1)]


@pytest.mark.parametrize("seed", range(8))
def test_pooled_prices_bound_is_valid_and_above_first_prices(seed: int) -> None:
    """The pooled prices are >= 0 and never below the first prices on any cell, and the
    relaxation at them (capped, as the solver uses them) bounds the exact optimum."""
    problem = _stations_instance(seed)
    solver = _Solver(problem)
    assert len(_antenna_classes(problem)) > 1
    pooled = _pooled_prices(problem, solver)
    first = _initial_prices(problem, solver).ravel()[solver.priced_cells()]
    assert pooled.shape == first.shape
    assert (pooled >= first).all()
    capped = np.minimum(pooled, _cap_on_cells(problem, solver))
    bound = sum(v for v, _ in _relaxed(solver, capped, on_cells=True)) + float(capped.sum())
    assert bound >= exact_reference(problem) - 1e-6


def _first_and_pooled_bounds(problem: Problem) -> tuple[float, float]:
    """The Lagrangian bounds at the first prices and at the pooled prices (both capped)."""
    solver = _Solver(problem)
    cap = _cap_on_cells(problem, solver)
    cells = solver.priced_cells()
    bounds = []
    for prices in (
        _initial_prices(problem, solver).ravel()[cells],
        _pooled_prices(problem, solver),
    ):
        capped = np.minimum(prices, cap)
        relaxed = _relaxed(solver, capped, on_cells=True)
        bounds.append(sum(v for v, _ in relaxed) + float(capped.sum()))
    return bounds[0], bounds[1]


def test_pooled_prices_lower_the_first_bound_somewhere() -> None:
    """On some of the several-station instances the pooled prices bound lower than the
    first prices (what the side bound is for)."""
    lower = 0
    for seed in range(8):
        problem = _stations_instance(seed)
        b_first, b_pool = _first_and_pooled_bounds(problem)
        lower += b_pool < b_first - 1e-6
    assert lower > 0


def test_pooled_prices_are_the_first_prices_with_one_class() -> None:
    """With one class of identical antennas nothing is pooled: the first prices."""
    rng = np.random.default_rng(6200)
    problem = identical_antennas(random_problem(rng, n_antennas=1, n_passes=14, n_steps=50), 3)
    solver = _Solver(problem)
    first = _initial_prices(problem, solver).ravel()[solver.priced_cells()]
    assert np.array_equal(_pooled_prices(problem, solver), first)


@pytest.mark.parametrize("seed", range(6))
def test_several_stations_keep_the_side_bound(seed: int) -> None:
    """Stopped after the first prices, the bound is the lower of the first prices' and
    the pooled prices' (both valid); after more iterations it stays valid and no higher,
    and the plan stays feasible and below the exact optimum."""
    problem = _stations_instance(seed)
    b_first, b_pool = _first_and_pooled_bounds(problem)
    one = solve_optimal(problem, milp_max_vars=0, max_iterations=1)
    reference = feasible_and_bracketed(problem, one)
    if one.upper_bound > one.objective + 1e-9:
        # Not closed by the plan itself: the reported bound is exactly the lower one.
        assert one.upper_bound == pytest.approx(min(b_first, b_pool), rel=1e-12)
    for iterations in (3, 8):
        more = solve_optimal(problem, milp_max_vars=0, max_iterations=iterations)
        assert feasible_and_bracketed(problem, more) == pytest.approx(reference)
        assert more.upper_bound <= max(one.upper_bound, more.objective) + 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_class_coverage_with_counts_equals_the_copies(seed: int) -> None:
    """One class plan counted ``n`` times covers every priced cell as the ``n`` copies on
    the antennas' own windows do."""
    rng = np.random.default_rng(6300 + seed)
    n = 2 + seed % 3
    problem = identical_antennas(random_problem(rng, n_antennas=1, n_passes=16, n_steps=60), n)
    solver = _Solver(problem)
    prices = _initial_prices(problem, solver)
    copies = _relaxed(solver, prices)
    assert len(copies) == n
    assert copies[0][1]
    classes = _classes_of(solver, list(range(n)))
    assert classes == [(0, n)]
    slot = solver.cell_slot()
    n_cols = problem.grid.n_steps + 1
    n_cells = len(solver.priced_cells())
    want = _coverage_cells(problem, copies, slot, n_cols, n_cells)
    got = _coverage_cells(problem, [copies[0]], slot, n_cols, n_cells, counts=[n])
    assert want.max() == n
    assert np.array_equal(got, want)


def test_classes_follow_the_order() -> None:
    """Each class is represented by its first antenna in the order, with its size;
    antennas of their own class count once."""
    rng = np.random.default_rng(6400)
    same = identical_antennas(random_problem(rng, n_antennas=1, n_passes=12, n_steps=50), 4)
    assert _classes_of(_Solver(same), [2, 0, 3, 1]) == [(2, 4)]
    mixed = random_problem(rng, n_antennas=3, n_passes=16, n_steps=50, stations=2)
    solver = _Solver(mixed)
    assert len(solver.layouts) == 3
    assert _classes_of(solver, [1, 2, 0]) == [(1, 1), (2, 1), (0, 1)]


@pytest.mark.parametrize("seed", range(4))
def test_known_first_plan_gives_the_same_heuristic_plan(seed: int) -> None:
    """The antennas in turn with the first antenna's plan at the prices handed in equal
    those that compute it (what the full heuristic now skips when it is known)."""
    rng = np.random.default_rng(6500 + seed)
    problem = identical_antennas(random_problem(rng, n_antennas=1, n_passes=16, n_steps=60), 3)
    solver = _Solver(problem)
    cells = solver.priced_cells()
    cap = _cap_on_cells(problem, solver)
    prices = np.minimum(_initial_prices(problem, solver).ravel()[cells], cap)
    # Some other prices, as after a few subgradient steps.
    prices = np.clip(prices + rng.uniform(-0.3, 0.3, len(cells)) * cap, 0.0, cap)
    order = [0, 1, 2]
    first = solver.run_dps(0, [prices], on_cells=True)[0][1]
    cap_sat = solver.max_price()
    got = _sequential_many(
        problem, solver, order, [prices], cap=cap_sat, repriced=[True], first=first, on_cells=True
    )[0]
    want = _sequential_many(
        problem, solver, order, [prices], cap=cap_sat, repriced=[True], on_cells=True
    )[0]
    assert got == want


@pytest.mark.parametrize("seed", range(6))
def test_large_class_heuristic_schedule_bound_and_plan(seed: int) -> None:
    """Four identical antennas, stopped where the quick heuristic, the skipped full one
    and the final one run (9, 10, 11, 21 iterations): plan <= the exact optimum <= the
    bound, never worse than the first antennas in turn, and no bound above a shorter
    run's."""
    rng = np.random.default_rng(6600 + seed)
    base = random_problem(
        rng, n_antennas=1, n_passes=int(rng.integers(10, 14)), n_steps=int(rng.integers(40, 55))
    )
    problem = identical_antennas(base, 4)
    solver = _Solver(problem)
    lam = solver.max_price()
    cap = lam - solver.w_floor * problem.grid.resolution_s
    if not cap.any():
        cap = lam
    prices = np.minimum(_initial_prices(problem, solver), cap[:, None])
    relaxed = _relaxed(solver, prices)
    order = sorted(range(4), key=lambda a: -relaxed[a][0])
    first_plan = _sequential_repriced(problem, solver, order, cap, first=relaxed[order[0]][1])
    floor = plain_value(problem, first_plan)
    # The exact optimum once (four identical antennas make the MILP slow).
    reference = exact_reference(problem)
    previous = np.inf
    for iterations in (9, 10, 11, 21):
        result = solve_optimal(problem, milp_max_vars=0, max_iterations=iterations)
        schedule = schedule_from_raw(
            problem, result.tracks, policy="optimal", upper_bound=result.upper_bound
        )
        assert check_schedule(schedule, problem) == []
        assert floor - 1e-9 <= result.objective <= reference + 1e-6
        assert result.upper_bound >= reference - 1e-6
        assert result.upper_bound <= max(previous, result.objective) + 1e-6
        previous = result.upper_bound


@pytest.mark.parametrize("seed", range(4))
def test_best_response_of_the_first_antenna_is_feasible_and_no_worse(seed: int) -> None:
    """Re-planning one antenna against the others' tracks (what follows a better
    heuristic plan) keeps the plan feasible, never loses value, and reports a gain only
    when there is one."""
    rng = np.random.default_rng(6700 + seed)
    problem = identical_antennas(random_problem(rng, n_antennas=1, n_passes=16, n_steps=60), 3)
    solver = _Solver(problem)
    lam = solver.max_price()
    cap = lam - solver.w_floor * problem.grid.resolution_s
    if not cap.any():
        cap = lam
    order = [0, 1, 2]
    start = _sequential_repriced(problem, solver, order, cap)
    obj = plain_value(problem, start)
    for antennas in ([0], order):
        tracks, got, improved = _best_responses(problem, solver, antennas, start, obj, None)
        schedule = schedule_from_raw(problem, tracks, policy="optimal", upper_bound=None)
        assert check_schedule(schedule, problem) == []
        assert got == pytest.approx(plain_value(problem, tracks))
        assert got >= obj - 1e-9
        assert improved == (got > obj + 1e-9)
    # Past the deadline nothing is re-planned.
    assert _best_responses(problem, solver, order, start, obj, lambda: True) == (
        start,
        obj,
        False,
    )


@pytest.mark.parametrize("seed", range(3))
def test_classes_sharing_no_satellite_are_not_pooled(seed: int) -> None:
    """Stations whose windows never share a satellite do not compete: their pooled
    prices are the first prices (pooling them only raised the bound, measured)."""
    rng = np.random.default_rng(6800 + seed)
    base = random_problem(rng, n_antennas=2, n_passes=24, n_steps=50, stations=2)
    first_station = base.antennas[0].station_id
    seen = {w.sat for w in base.windows if base.antennas[w.antenna].station_id == first_station}
    windows = [
        w
        for w in base.windows
        if base.antennas[w.antenna].station_id == first_station or w.sat not in seen
    ]
    problem = Problem(base.grid, base.settings, base.antennas, base.satellites, windows)
    solver = _Solver(problem)
    assert len(_antenna_classes(problem)) > 1
    first = _initial_prices(problem, solver).ravel()[solver.priced_cells()]
    assert np.array_equal(_pooled_prices(problem, solver), first)
