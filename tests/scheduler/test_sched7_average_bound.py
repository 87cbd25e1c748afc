"""The side bound at the moving average of the subgradient's prices: a valid upper bound
(above an independent MILP's optimum), never looser than without it and tighter on some
instances, and only a bound (the same plans and iterations as without it)."""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler import optimal
from controller.scheduler.model import Problem
from controller.scheduler.optimal import SolveResult, solve_optimal
from tests.scheduler import feasible_and_bracketed, identical_antennas, random_problem

# No MILP inside the solver (the Lagrangian iterations must run), a few iterations.
_KWARGS = {"milp_max_vars": 0, "max_iterations": 16}


def _instance(seed: int) -> Problem:
    """Two to four antennas (some identical, one class), one or two stations."""
    rng = np.random.default_rng(7400 + seed)
    problem = random_problem(
        rng,
        n_antennas=int(rng.integers(2, 4)),
        n_passes=int(rng.integers(14, 24)),
        n_steps=int(rng.integers(50, 80)),
        stations=1 + seed % 2,
        caps=seed % 3 == 2,
    )
    return identical_antennas(problem, 2 + seed % 3) if seed % 2 == 0 else problem


def _solve(problem: Problem, every: int, monkeypatch: pytest.MonkeyPatch) -> SolveResult:
    """solve_optimal with the average's bound every ``every`` iterations."""
    monkeypatch.setattr(optimal, "_AVERAGE_EVERY", every)
    return solve_optimal(problem, **_KWARGS)  # type: ignore[arg-type]


def test_average_bound_is_valid_never_looser_and_sometimes_tighter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over a dozen instances: the bound with the average is above the exact optimum,
    at most the bound without it, below it on some instance, and the plan and the
    number of iterations are those of the run without it."""
    tighter = 0
    evaluated = 0
    for seed in range(12):
        problem = _instance(seed)
        with_avg = _solve(problem, 2, monkeypatch)
        without = _solve(problem, 10**9, monkeypatch)
        if with_avg.method != "lagrangian":
            continue
        feasible_and_bracketed(problem, with_avg)
        assert with_avg.upper_bound <= without.upper_bound + 1e-9
        tighter += with_avg.upper_bound < without.upper_bound - 1e-6
        if with_avg.stats["iterations"] == without.stats["iterations"]:
            # The same run (the side bound did not close the gap early): same plan.
            assert with_avg.tracks == without.tracks
        evaluated += int(with_avg.stats.get("average_dps", 0)) > 0
    assert evaluated >= 4
    assert tighter >= 1


def test_average_dps_are_counted_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four identical antennas: one DP per evaluation of the average (one class), every
    second iteration."""
    rng = np.random.default_rng(7500)
    problem = identical_antennas(random_problem(rng, n_antennas=1, n_passes=24, n_steps=80), 4)
    got = _solve(problem, 2, monkeypatch)
    assert got.method == "lagrangian"
    iterations = int(got.stats["iterations"])
    # Iteration 1 is the first prices' DP; the loop's are 2..iterations.
    want = sum(1 for it in range(2, iterations + 1) if it % 2 == 0)
    assert want > 0
    assert got.stats["average_dps"] == want
