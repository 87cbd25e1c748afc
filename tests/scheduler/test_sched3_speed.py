"""The least work's shortcuts: sort-based unique, class step spans, the build's paused
collector, window copies for identical antennas, the shared DP's plans per antenna."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest

from controller.scheduler.model import Window, _gc_paused
from controller.scheduler.optimal import _relaxed, _Solver, _sorted_unique
from tests.scheduler import identical_antennas, random_problem


@pytest.mark.parametrize("size", [0, 1, 2, 50, 5000])
def test_sorted_unique_matches_numpy(size: int) -> None:
    """_sorted_unique gives np.unique's sorted distinct values (with repeats, any order)."""
    rng = np.random.default_rng(size)
    values = rng.integers(0, max(1, size // 3), size)
    assert np.array_equal(_sorted_unique(values), np.unique(values))


@pytest.mark.parametrize("seed", range(4))
def test_class_steps_hold_the_longest_window_per_step(seed: int) -> None:
    """Per trackable (satellite, step) of a layout: the longest window's steps, as a
    plain loop over the windows finds them, and the pair's place in priced_cells."""
    rng = np.random.default_rng(9600 + seed)
    problem = random_problem(rng, n_antennas=2, n_passes=14, n_steps=60)
    solver = _Solver(problem)
    n_k = problem.grid.n_steps + 1
    cells = solver.priced_cells()
    for lid in solver.layouts:
        sk, span, pos = solver.class_steps(lid)
        expected: dict[int, int] = {}
        for w in problem.windows:
            if w.antenna != lid:
                continue
            for k in range(w.first, w.last):
                key = w.sat * n_k + k
                expected[key] = max(expected.get(key, 0), w.last - w.first)
        assert sk.tolist() == sorted(expected)
        assert span.tolist() == [float(expected[int(x)]) for x in sk]
        assert np.array_equal(cells[pos], sk)


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_restores_the_collector_state(enabled: bool) -> None:
    """The build pauses the cyclic collector and leaves it as it found it, also on error."""
    was = gc.isenabled()
    try:
        if enabled:
            gc.enable()
        else:
            gc.disable()
        with _gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), _gc_paused():
            raise RuntimeError("inside the build")
        assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def test_window_copy_for_an_identical_antenna() -> None:
    """for_antenna: the same window on another antenna, arrays shared, the original kept."""
    rng = np.random.default_rng(9700)
    problem = random_problem(rng, n_antennas=1, n_passes=4, n_steps=40)
    w = problem.windows[0]
    twin = w.for_antenna(3)
    assert isinstance(twin, Window)
    assert twin.antenna == 3
    assert w.antenna == 0
    assert twin.az_rot_deg is w.az_rot_deg
    fields = [f.name for f in dataclasses.fields(Window) if f.name != "antenna"]
    assert all(getattr(twin, f) is getattr(w, f) for f in fields)


@pytest.mark.parametrize("seed", range(4))
def test_shared_dp_plans_map_to_each_antennas_windows(seed: int) -> None:
    """Identical antennas share one DP; each gets that plan on its own windows (same
    satellite, points and plan), found by position in the aligned window lists."""
    rng = np.random.default_rng(9800 + seed)
    base = random_problem(rng, n_antennas=1, n_passes=12, n_steps=60)
    problem = identical_antennas(base, 3)
    solver = _Solver(problem)
    assert len(solver.layouts) == 1
    plans = _relaxed(solver, None)
    first = plans[0][1]
    assert first
    for a, (value, tracks) in enumerate(plans):
        assert value == plans[0][0]
        assert len(tracks) == len(first)
        for t, t0 in zip(tracks, first, strict=True):
            w, w0 = problem.windows[t.window], problem.windows[t0.window]
            assert w.antenna == a
            assert (w.sat, w.first, w.plan, t.start, t.end) == (
                w0.sat,
                w0.first,
                w0.plan,
                t0.start,
                t0.end,
            )
