"""The compiled DP kernels (numba) against the numpy sweep they replace: same arrays,
same plans, same solver results; and GROUNDLINK_NO_JIT=1 selects the numpy path.

The JIT side needs numba, an optional dependency: without it these tests are skipped
(the numpy path is then the only one and the rest of tests/scheduler covers it).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from controller.scheduler import _kernels
from controller.scheduler.model import Problem, Window
from controller.scheduler.optimal import (
    _EMPTY_B,
    _EMPTY_F,
    _RUN_OFFSET,
    _backtrack,
    _blocked_cells,
    _initial_prices,
    _marginal_prices_at,
    _Solver,
    _sweep_many,
    _used_steps,
    solve_optimal,
)
from controller.scheduler.plan import check_schedule, schedule_from_raw
from tests.scheduler import identical_antennas, random_problem

pytest.importorskip("numba")

_FIELDS = ("sv", "pm", "ef", "be", "colmax")


def _cases(
    problem: Problem, solver: _Solver, rng: np.random.Generator
) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """(prices, blocked steps) pairs as the solver makes them: none, priced, blocked by
    another antenna's plan, both."""
    r = problem.grid.resolution_s
    shape = (len(problem.satellites), problem.grid.n_steps + 1)
    prices = rng.uniform(0.0, 1.0, shape) * (solver.weights * r)[:, None]
    _, other = solver.run_dp(len(problem.antennas) - 1)
    blocked = _used_steps(problem, other)
    return [(None, None), (prices, None), (None, blocked), (prices * 0.5, blocked)]


def _with_kept_and_fixed(problem: Problem, rng: np.random.Generator) -> Problem:
    """The instance with re-planning bonuses on some steps and its first window fixed
    (a reservation), as re-planning builds them."""
    w0 = problem.windows[0]
    fixed = dataclasses.replace(w0, kind="reservation")
    windows: list[Window] = [fixed, *problem.windows[1:]]
    out = Problem(problem.grid, problem.settings, problem.antennas, problem.satellites, windows)
    w = problem.windows[-1]
    norad = problem.satellites[w.sat].norad_id
    out.keep_steps = {(w.antenna, norad): set(range(w.first, w.last))}
    out.keep_bonus = 1e-3 * float(rng.uniform(0.5, 1.0))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_compiled_sweep_writes_the_numpy_sweeps_arrays(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every array of the compiled sweep and values kernel equals the numpy one bit for
    bit, and both backtracks pick the same tracks."""
    monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
    rng = np.random.default_rng(4100 + seed)
    # Half of them crowded (many passes at once, so 15-25 slots): the compiled sweep
    # tries each row's best ends first and scans a row only when the rotator reaches
    # none of them, which takes more overlapping windows than the sparse half has.
    crowded = seed >= 6
    problem = random_problem(
        rng,
        n_antennas=2,
        n_passes=int(rng.integers(60, 80)) if crowded else int(rng.integers(8, 20)),
        n_steps=60 if crowded else int(rng.integers(40, 90)),
        stations=1 if crowded else int(rng.integers(1, 3)),
    )
    if seed % 3 == 2:
        problem = _with_kept_and_fixed(problem, rng)
    solver = _Solver(problem)
    for antenna in range(len(problem.antennas)):
        lid, _ = solver.layout_map[antenna]
        lay = solver.layouts[lid]
        for prices, steps in _cases(problem, solver, rng):
            # The numpy values, then the compiled ones from the plain values.
            ref, ref_runs = lay.values(
                solver.base_values(antenna, prices), _blocked_cells(lay, steps)
            )
            got = np.empty_like(ref)
            runs = _kernels.values(
                solver.base_values(antenna, None),
                _EMPTY_F if prices is None else prices.ravel(),
                _EMPTY_B if steps is None else steps.ravel(),
                *lay.cell_keys(),
                lay.first_cell,
                lay.nc,
                lay.ns,
                _RUN_OFFSET,
                got,
            )
            assert runs == ref_runs
            assert np.array_equal(got, ref)
            monkeypatch.setenv("GROUNDLINK_NO_JIT", "1")
            assert not _kernels.available()
            want = _sweep_many(lay, ref[None, :], ref_runs)[0]
            want_tracks = _backtrack(lay, want)
            monkeypatch.delenv("GROUNDLINK_NO_JIT")
            assert _kernels.available()
            have = _sweep_many(lay, ref[None, :], ref_runs)[0]
            assert have.value == want.value
            for name in _FIELDS:
                assert np.array_equal(getattr(have, name), getattr(want, name)), name
            assert _backtrack(lay, have) == want_tracks


@pytest.mark.parametrize("seed", range(8))
def test_solver_results_are_identical_with_and_without_jit(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """solve_optimal gives the same plan, objective and bound on either path, and the
    plan passes every feasibility check."""
    rng = np.random.default_rng(4200 + seed)
    n_ant = int(rng.integers(2, 4))
    problem = random_problem(
        rng,
        n_antennas=n_ant,
        n_passes=int(rng.integers(10, 24)),
        n_steps=int(rng.integers(50, 100)),
        stations=int(rng.integers(1, 3)),
        caps=bool(seed % 2),
    )
    if seed % 4 == 3:
        problem = identical_antennas(problem, 3)
    # No MILP: the Lagrangian iterations, heuristics and best responses all run DPs.
    kwargs = {"milp_max_vars": 0, "max_iterations": 12}
    monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
    assert _kernels.available()
    jit = solve_optimal(problem, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setenv("GROUNDLINK_NO_JIT", "1")
    ref = solve_optimal(problem, **kwargs)  # type: ignore[arg-type]
    assert jit.tracks == ref.tracks
    assert jit.objective == ref.objective
    assert jit.upper_bound == ref.upper_bound
    assert jit.method == ref.method
    schedule = schedule_from_raw(problem, jit.tracks, policy="optimal", upper_bound=None)
    assert check_schedule(schedule, problem) == []
    assert jit.upper_bound >= jit.objective


def test_no_jit_switch_and_near_row_match_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """GROUNDLINK_NO_JIT=1 turns the kernels off ("0" or unset leaves them on; warm_up
    says which), and the backtrack's single reach row equals the precomputed stack's."""
    monkeypatch.setenv("GROUNDLINK_NO_JIT", "1")
    assert not _kernels.available()
    assert not _kernels.warm_up()
    monkeypatch.setenv("GROUNDLINK_NO_JIT", "0")
    assert _kernels.available()
    monkeypatch.delenv("GROUNDLINK_NO_JIT")
    assert _kernels.warm_up()
    rng = np.random.default_rng(4300)
    problem = random_problem(rng, n_antennas=1, n_passes=16, n_steps=80)
    solver = _Solver(problem)
    lay = solver.layouts[0]
    stack = lay.near_stack()(0, lay.nc)
    n_lags = len(lay.lags)
    assert n_lags > 0
    for k in range(lay.nc):
        for s in range(lay.ns):
            assert np.array_equal(lay.near_row(k, s), stack[k, s].reshape(n_lags, lay.ns))


def test_priced_first_dp_matches_on_identical_antennas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first priced DP of a class (what the bound rests on) has the same value and
    plan on both paths."""
    rng = np.random.default_rng(4400)
    problem = identical_antennas(random_problem(rng, n_antennas=1, n_passes=20, n_steps=90), 4)
    solver = _Solver(problem)
    prices = np.array(_initial_prices(problem, solver))
    monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
    got = solver.run_dp(0, prices)
    monkeypatch.setenv("GROUNDLINK_NO_JIT", "1")
    want = _Solver(problem).run_dp(0, prices)
    assert got == want
    assert got[1]


@pytest.mark.parametrize("seed", range(6))
def test_compiled_marginal_prices_equal_the_numpy_ones(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marginal-value prices (first prices, and re-priced ones with some steps
    tracked already) are the same with and without the compiled kernel."""
    rng = np.random.default_rng(4600 + seed)
    base = random_problem(rng, n_antennas=2, n_passes=int(rng.integers(20, 40)), n_steps=60)
    problem = identical_antennas(base, 3) if seed % 2 else base
    solver = _Solver(problem)
    _, first = solver.run_dp(0)
    blocked = _used_steps(problem, first)
    assert blocked.any()
    monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
    layouts = sorted({lid for lid, _ in solver.layout_map.values()})
    priced = 0
    for counts in ({lid: 2 for lid in layouts}, {lid: 1 for lid in layouts}):
        for steps in (None, blocked):
            got = _marginal_prices_at(problem, solver, counts, steps)
            monkeypatch.setenv("GROUNDLINK_NO_JIT", "1")
            want = _marginal_prices_at(problem, solver, counts, steps)
            monkeypatch.delenv("GROUNDLINK_NO_JIT")
            assert np.array_equal(got, want)
            priced += int((want > 0).sum())
    # Not all zero: the comparison covered some real prices.
    assert priced > 0


def test_a_kernel_that_fails_to_compile_leaves_the_numpy_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If loading the kernels fails (a numba or LLVM problem on the machine), available()
    says False once and for all, and the solver plans on numpy: same result as with
    GROUNDLINK_NO_JIT=1."""
    rng = np.random.default_rng(4400)
    problem = random_problem(rng, n_antennas=2, n_passes=14, n_steps=60)
    kwargs = {"milp_max_vars": 0, "max_iterations": 6}
    monkeypatch.setenv("GROUNDLINK_NO_JIT", "1")
    ref = solve_optimal(problem, **kwargs)  # type: ignore[arg-type]
    monkeypatch.delenv("GROUNDLINK_NO_JIT")

    def broken() -> None:
        raise RuntimeError("LLVM ERROR: simulated compiler failure")

    monkeypatch.setattr(_kernels, "_state", {})
    monkeypatch.setattr(_kernels, "_load", broken)
    assert not _kernels.available()
    assert not _kernels.warm_up()
    got = solve_optimal(problem, **kwargs)  # type: ignore[arg-type]
    assert got.tracks == ref.tracks
    assert got.objective == ref.objective
    assert got.upper_bound == ref.upper_bound
