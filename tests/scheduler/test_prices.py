"""The Lagrangian's bookkeeping: starting prices and the coverage of priceable cells."""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler.optimal import (
    _coverage_cells,
    _nth_largest,
    _relaxed,
    _Solver,
    _trackable,
)
from tests.scheduler import random_problem


@pytest.mark.parametrize("few_levels", [True, False])
def test_nth_largest_matches_a_partition(few_levels: bool) -> None:
    """Counting per weight level (few priorities) or partitioning: same as a plain sort."""
    rng = np.random.default_rng(7 if few_levels else 8)
    for _ in range(200):
        n_sats = int(rng.integers(1, 40))
        n_steps = int(rng.integers(1, 60))
        n = int(rng.integers(1, n_sats + 1))
        if few_levels:
            step_val = rng.choice([0.0, 30.0, 60.0, 120.0], size=n_sats)
        else:
            step_val = rng.random(n_sats) * 100.0 + np.arange(n_sats) * 1e-3
        trackable = rng.random((n_sats, n_steps)) < 0.4
        vals = np.where(trackable, step_val[:, None], 0.0)
        expected = -np.sort(-vals, axis=0)[n - 1]
        assert np.array_equal(_nth_largest(step_val, trackable, n), expected)


@pytest.mark.parametrize("seed", range(3))
def test_coverage_of_priceable_cells_counts_every_antenna(seed: int) -> None:
    """The compressed coverage equals a dense count of the antennas on each step."""
    rng = np.random.default_rng(9100 + seed)
    problem = random_problem(rng, n_antennas=3, n_passes=14, n_steps=60)
    solver = _Solver(problem)
    relaxed = _relaxed(solver, None)
    dense = np.zeros((len(problem.satellites), problem.grid.n_steps + 1))
    for _, tracks in relaxed:
        for t in tracks:
            dense[problem.windows[t.window].sat, t.start : t.end] += 1
    assert dense.sum() > 0
    cells = np.flatnonzero(_trackable(problem).ravel())
    slot = np.full(dense.size, -1, dtype=np.int64)
    slot[cells] = np.arange(len(cells))
    got = _coverage_cells(problem, relaxed, slot, dense.shape[1], len(cells))
    assert np.array_equal(got, dense.ravel()[cells])
    # Nothing is tracked outside the priceable cells.
    assert dense.sum() == got.sum()


@pytest.mark.parametrize("seed", range(3))
def test_trackable_from_layouts_matches_the_windows(seed: int) -> None:
    """The layouts' cells mark exactly the steps the windows can track, per class and
    for all antennas (two stations: two classes)."""
    rng = np.random.default_rng(9200 + seed)
    problem = random_problem(rng, n_antennas=2, n_passes=14, n_steps=60, stations=2)
    solver = _Solver(problem)
    assert np.array_equal(solver.trackable(), _trackable(problem))
    assert solver.trackable().any()
    for a in range(len(problem.antennas)):
        lid = solver.layout_map[a][0]
        mine = [problem.windows[i] for i in solver.by_antenna[a]]
        assert np.array_equal(solver.trackable([lid]), _trackable(problem, mine))
