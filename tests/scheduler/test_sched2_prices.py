"""The Lagrangian's first prices with the handover discount, and the bounds they give."""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler.model import Problem
from controller.scheduler.optimal import _initial_prices, _relaxed, _Solver, solve_optimal
from controller.scheduler.plan import check_schedule, schedule_from_raw
from tests.scheduler import exact_reference, identical_antennas, random_problem


def _instance(seed: int, n: int) -> Problem:
    rng = np.random.default_rng(seed)
    while True:
        base = random_problem(
            rng, n_antennas=1, n_passes=int(rng.integers(8, 15)), n_steps=int(rng.integers(40, 60))
        )
        if any(w.antenna == 0 for w in base.windows):
            return identical_antennas(base, n)


def _reference_prices(problem: Problem) -> np.ndarray:
    """Per (satellite, step), by plain loops: the excess of its step value over the
    ``n``-th largest trackable one, less the set-up steps at the lightest step value (or
    that marginal one if lower) spread over the satellite's longest window on the step
    (one class of ``n`` antennas)."""
    n = len(problem.antennas)
    r = problem.grid.resolution_s
    n_k = problem.grid.n_steps + 1
    span = np.zeros((len(problem.satellites), n_k))
    for w in problem.windows:
        if w.antenna != 0:
            continue
        for k in range(w.first, w.last):
            span[w.sat, k] = max(span[w.sat, k], w.last - w.first)
    prices = np.zeros_like(span)
    for k in range(n_k):
        vals = sorted(
            (
                problem.satellites[s].weight * r
                for s in range(len(problem.satellites))
                if span[s, k]
            ),
            reverse=True,
        )
        if len(problem.satellites) <= n:
            continue
        theta = vals[n - 1] if len(vals) >= n else 0.0
        for s in range(len(problem.satellites)):
            if span[s, k]:
                value = problem.satellites[s].weight * r
                lightest = min(sat.weight for sat in problem.satellites) * r
                loss = min(theta, lightest) * problem.setup_steps / span[s, k]
                prices[s, k] = max(0.0, value - theta - loss)
    return prices


@pytest.mark.parametrize("seed", range(6))
def test_initial_prices_follow_the_per_step_formula(seed: int) -> None:
    """The vectorised first prices equal the per-step loop's (identical antennas)."""
    problem = _instance(8100 + seed, 2 + seed % 2)
    solver = _Solver(problem)
    assert len(solver.layouts) == 1  # one class: its antennas share one DP
    got = _initial_prices(problem, solver)
    expected = _reference_prices(problem)
    assert (expected > 0).any()
    assert np.allclose(got, expected, atol=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_initial_prices_bound_is_never_below_the_optimum(seed: int) -> None:
    """sum of DPs + sum of prices at the discounted first prices >= the exact optimum
    of an independent MILP; the bounded mode's plan stays feasible and below it."""
    problem = _instance(8200 + seed, 2 + seed % 2)
    solver = _Solver(problem)
    prices = _initial_prices(problem, solver)
    assert (prices >= 0).all()
    bound = sum(v for v, _ in _relaxed(solver, prices)) + float(prices.sum())
    reference = exact_reference(problem)
    assert bound >= reference - 1e-6
    result = solve_optimal(problem, milp_max_vars=0, max_iterations=20)
    schedule = schedule_from_raw(
        problem, result.tracks, policy="optimal", upper_bound=result.upper_bound
    )
    assert check_schedule(schedule, problem) == []
    assert result.objective <= reference + 1e-6 <= result.upper_bound + 2e-6
