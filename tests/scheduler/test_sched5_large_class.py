"""Classes of more than two identical antennas (the halved first Polyak steps), the
Lagrangian on prices kept on the priced cells: valid bounds, feasible plans, never worse
than the re-priced antennas in turn."""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler.optimal import (
    _initial_prices,
    _relaxed,
    _sequential_repriced,
    _Solver,
    plain_value,
    solve_optimal,
)
from tests.scheduler import (
    exact_reference,
    feasible_and_bracketed,
    identical_antennas,
    random_problem,
)


@pytest.mark.parametrize("seed", range(6))
def test_large_identical_class_bound_and_plan(seed: int) -> None:
    """Three or four identical antennas, Lagrangian only: feasible plan <= the exact
    optimum <= the bound, and the plan no worse than the re-priced antennas in turn."""
    rng = np.random.default_rng(5500 + seed)
    n = 3 + seed % 2
    base = random_problem(
        rng,
        n_antennas=1,
        n_passes=int(rng.integers(10, 16)),
        n_steps=int(rng.integers(40, 60)),
        caps=seed % 3 == 2,
    )
    problem = identical_antennas(base, n)
    result = solve_optimal(problem, milp_max_vars=0, max_iterations=12)
    assert result.method == "lagrangian"
    feasible_and_bracketed(problem, result)
    # The first feasible plan the solver builds, rebuilt here: the result keeps the best.
    solver = _Solver(problem)
    lam = solver.max_price()
    cap = lam - solver.w_floor * problem.grid.resolution_s
    if not cap.any():
        cap = lam
    prices = np.minimum(_initial_prices(problem, solver), cap[:, None])
    relaxed = _relaxed(solver, prices)
    order = sorted(range(n), key=lambda a: -relaxed[a][0])
    first = _sequential_repriced(problem, solver, order, cap, first=relaxed[order[0]][1])
    assert result.objective >= plain_value(problem, first) - 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_every_iteration_bound_is_valid(seed: int) -> None:
    """Stopped after any number of iterations (the bounded-time mode), the bound stays
    at or above the exact optimum and the plan at or below it."""
    rng = np.random.default_rng(5600 + seed)
    problem = identical_antennas(
        random_problem(rng, n_antennas=1, n_passes=12, n_steps=50), 3 + seed % 2
    )
    reference = exact_reference(problem)
    for iterations in (1, 2, 4, 7):
        result = solve_optimal(problem, milp_max_vars=0, max_iterations=iterations)
        assert result.objective <= reference + 1e-6
        assert result.upper_bound >= reference - 1e-6
