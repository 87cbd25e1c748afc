"""Optimality: the scheduler's plans equal an independent exact solver's on random instances.

Every instance is also run through the feasibility checker, and the reported upper
bound must hold. The time resolution of these instances is 30 s; "equal" means equal
objective (weight x seconds) to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler.optimal import solve_optimal
from controller.scheduler.plan import check_schedule, schedule_from_raw
from tests.scheduler import exact_reference, random_problem


def _check(seed: int, n_antennas: int, *, stations: int = 1, caps: bool = False) -> None:
    rng = np.random.default_rng(seed)
    problem = random_problem(
        rng,
        n_antennas=n_antennas,
        n_passes=int(rng.integers(6, 17)),
        n_steps=int(rng.integers(40, 70)),
        stations=stations,
        caps=caps,
    )
    result = solve_optimal(problem)
    schedule = schedule_from_raw(
        problem, result.tracks, policy="optimal", upper_bound=result.upper_bound
    )
    assert check_schedule(schedule, problem) == []
    assert schedule.objective == pytest.approx(result.objective)
    reference = exact_reference(problem)
    assert result.objective == pytest.approx(reference, abs=1e-6)
    assert result.upper_bound >= reference - 1e-6


@pytest.mark.parametrize("seed", range(10))
def test_one_antenna_dp_is_exact(seed: int) -> None:
    """One antenna: the DP's plan is worth exactly the independent optimum."""
    _check(1000 + seed, 1)


@pytest.mark.parametrize("seed", range(3))
def test_one_antenna_with_daily_limits(seed: int) -> None:
    """One antenna with per-day contact limits (some satellites capped at 1 or 2)."""
    _check(2000 + seed, 1, caps=True)


@pytest.mark.parametrize("seed", range(5))
def test_two_antennas_exact(seed: int) -> None:
    """Two antennas of one station, one satellite on at most one antenna at a time."""
    _check(3000 + seed, 2)


@pytest.mark.parametrize("seed", range(3))
def test_three_antennas_exact(seed: int) -> None:
    """Three antennas, coupled."""
    _check(4000 + seed, 3)


@pytest.mark.parametrize("seed", range(3))
def test_two_stations_share_the_constellation(seed: int) -> None:
    """Antennas at two stations: the coupling is network-wide (no redundant contacts)."""
    _check(5000 + seed, 3, stations=2, caps=seed == 0)
