"""Several DPs in one sweep: the same optima as one sweep each."""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler.model import Problem
from controller.scheduler.optimal import RawTrack, _Solver, _used_steps
from tests.scheduler import random_problem


def _priced_value(
    problem: Problem, solver: _Solver, tracks: list[RawTrack], prices: np.ndarray | None
) -> float:
    """Weight x seconds minus the prices of the tracked steps."""
    r = problem.grid.resolution_s
    total = 0.0
    for t in tracks:
        sat = problem.windows[t.window].sat
        total += solver.weights[sat] * r * (t.end - t.start)
        if prices is not None:
            total -= float(prices[sat, t.start : t.end].sum())
    return total


@pytest.mark.parametrize("seed", range(8))
def test_batched_dps_match_single_ones(seed: int) -> None:
    """Plain, priced and blocked DPs swept together give each one's own optimum, and
    plans worth exactly that."""
    rng = np.random.default_rng(9300 + seed)
    problem = random_problem(
        rng, n_antennas=2, n_passes=int(rng.integers(8, 17)), n_steps=int(rng.integers(40, 70))
    )
    solver = _Solver(problem)
    r = problem.grid.resolution_s
    shape = (len(problem.satellites), problem.grid.n_steps + 1)
    step_val = (solver.weights * r)[:, None]
    prices = rng.uniform(0.0, 1.0, shape) * step_val
    # Another antenna's plan blocks some steps, as in the antennas-in-turn heuristic.
    _, first = solver.run_dp(1)
    blocked = _used_steps(problem, first)
    assert blocked.any()
    cases: list[tuple[np.ndarray | None, np.ndarray | None]] = [
        (None, None),
        (prices, None),
        (None, blocked),
        (prices * 0.5, blocked),
    ]
    together = solver.run_dps(0, [p for p, _ in cases], [b for _, b in cases])
    for (p, b), (value, tracks) in zip(cases, together, strict=True):
        alone, alone_tracks = solver.run_dp(0, p, b)
        assert value == pytest.approx(alone, abs=1e-6)
        # Blocked steps fold a 1e13 run offset into the values, which leaves them about
        # 1e-3 of resolution: the plans' own worth is compared to that.
        tol = 1e-6 if b is None else 1e-2
        worth = _priced_value(problem, solver, tracks, p)
        assert worth == pytest.approx(value, abs=tol)
        assert worth == pytest.approx(_priced_value(problem, solver, alone_tracks, p), abs=tol)
        if b is not None:
            for t in tracks:
                assert not b[problem.windows[t.window].sat, t.start : t.end].any()
    assert together[2][0] <= together[0][0] + 1e-9
