"""The compiled sweep's reach bit masks (one table per layout): they hold exactly the
numpy sweep's precomputed reach stack, and the sweep writes the same arrays with them,
without them and on the numpy path; the first sweep of a layout goes without.

The JIT side needs numba, an optional dependency: without it these tests are skipped.
"""

from __future__ import annotations

import numpy as np
import pytest

from controller.scheduler import _kernels, optimal
from controller.scheduler.optimal import (
    _backtrack,
    _blocked_cells,
    _Layout,
    _Solver,
    _sweep_many,
    _used_steps,
    solve_optimal,
)
from tests.scheduler import identical_antennas, random_problem

pytest.importorskip("numba")

_FIELDS = ("sv", "pm", "ef", "be", "colmax")


def _crowded_layout(seed: int) -> tuple[_Solver, _Layout]:
    """A layout with many overlapping windows (15-25 slots), so that a row's best ends
    are often out of reach and the sweep falls back to its bit scan."""
    rng = np.random.default_rng(7100 + seed)
    problem = random_problem(rng, n_antennas=2, n_passes=int(rng.integers(60, 80)), n_steps=60)
    solver = _Solver(problem)
    lid, _ = solver.layout_map[0]
    return solver, solver.layouts[lid]


@pytest.mark.parametrize("seed", range(6))
def test_bits_hold_the_numpy_reach_stack(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit s1 of a cell's mask for lag d is set exactly where the numpy sweep's stack
    lets a track end at (k - d, s1) hand over to the cell."""
    monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
    _, lay = _crowded_layout(seed)
    assert _kernels.available()
    bits = lay.near_bits()
    nl, ns, nc = len(lay.lags), lay.ns, lay.nc
    assert bits.shape == (nc * ns, nl)
    stack = lay.near_stack(precompute=False)(0, nc)
    # Unpack the masks into (cells, lags, slots) booleans.
    unpacked = ((bits[:, :, None] >> np.arange(ns)) & 1).astype(bool)
    # The stack's lags run decreasing; the masks' increasing.
    want = stack.reshape(nc * ns, nl, ns)[:, ::-1, :]
    assert np.array_equal(unpacked, want)
    # Not vacuous: some handovers are reachable and some are not.
    assert unpacked.any()
    assert not unpacked[lay.can_start].all()


@pytest.mark.parametrize("seed", range(6))
def test_sweep_with_bits_writes_the_same_arrays(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain, priced, blocked (runs) and priced-and-blocked values: the compiled sweep with
    the bits, without them and the numpy sweep fill the same arrays bit for bit and
    backtrack the same tracks."""
    solver, lay = _crowded_layout(seed)
    problem = solver.p
    rng = np.random.default_rng(7200 + seed)
    r = problem.grid.resolution_s
    shape = (len(problem.satellites), problem.grid.n_steps + 1)
    prices = rng.uniform(0.0, 1.0, shape) * (solver.weights * r)[:, None]
    _, other = solver.run_dp(1)
    blocked = _used_steps(problem, other)
    for pr, steps in ((None, None), (prices, None), (None, blocked), (prices * 0.5, blocked)):
        dsub, runs = lay.values(solver.base_values(0, pr), _blocked_cells(lay, steps))
        monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
        lay.sweeps = 1  # with the bits
        with_bits = _sweep_many(lay, dsub[None, :], runs)[0]
        monkeypatch.setattr(optimal, "_NEAR_BITS_MAX", 0)
        saved, lay._near_bits = lay._near_bits, None
        without = _sweep_many(lay, dsub[None, :], runs)[0]
        assert lay.near_bits().shape[0] == 0
        lay._near_bits = saved
        monkeypatch.undo()
        monkeypatch.setenv("GROUNDLINK_NO_JIT", "1")
        want = _sweep_many(lay, dsub[None, :], runs)[0]
        want_tracks = _backtrack(lay, want)
        monkeypatch.delenv("GROUNDLINK_NO_JIT")
        for got in (with_bits, without):
            assert got.value == want.value
            for name in _FIELDS:
                assert np.array_equal(getattr(got, name), getattr(want, name)), name
            assert _backtrack(lay, got) == want_tracks
    assert lay.near_bits().shape[0] == lay.nc * lay.ns


def test_first_sweep_of_a_layout_goes_without_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """One DP (one antenna alone) builds no reach table; the second sweep on the layout
    builds it once and later sweeps reuse it."""
    monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
    solver, lay = _crowded_layout(0)
    assert lay.sweeps == 0
    solver.run_dp(0)
    assert lay.sweeps == 1
    assert lay._near_bits is None
    solver.run_dp(0)
    table = lay._near_bits
    assert table is not None
    assert table.shape[0] == lay.nc * lay.ns
    solver.run_dp(0)
    assert lay._near_bits is table
    assert lay.sweeps == 3


@pytest.mark.parametrize("seed", range(4))
def test_solver_results_do_not_depend_on_the_bits(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """solve_optimal (Lagrangian iterations, heuristics, best responses) gives the same
    plan, objective and bound with the bits, with too many slots for them (the angle
    comparisons) and with the table turned off."""
    monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
    rng = np.random.default_rng(7300 + seed)
    problem = random_problem(
        rng,
        n_antennas=int(rng.integers(2, 4)),
        n_passes=int(rng.integers(14, 30)),
        n_steps=int(rng.integers(50, 100)),
        stations=int(rng.integers(1, 3)),
        caps=bool(seed % 2),
    )
    if seed % 2:
        problem = identical_antennas(problem, 3)
    kwargs = {"milp_max_vars": 0, "max_iterations": 10}
    ref = solve_optimal(problem, **kwargs)  # type: ignore[arg-type]
    results = []
    for name, value in (("_NEAR_BITS_MAX", 0), ("BITS_MAX_SLOTS", 1)):
        target = optimal if name == "_NEAR_BITS_MAX" else _kernels
        monkeypatch.setattr(target, name, value)
        results.append(solve_optimal(problem, **kwargs))  # type: ignore[arg-type]
        monkeypatch.undo()
        monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
    for got in results:
        assert got.tracks == ref.tracks
        assert got.objective == ref.objective
        assert got.upper_bound == ref.upper_bound
