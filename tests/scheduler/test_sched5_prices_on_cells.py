"""Prices given on the priced cells only (the Lagrangian's own vector) give the DPs of
the dense prices; the maps behind them; the no-limit shortcut; RawTrack's value
semantics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from controller.scheduler import _kernels
from controller.scheduler.optimal import (
    RawTrack,
    _repair_limits,
    _sequential_many,
    _Solver,
    _used_steps,
)
from tests.scheduler import identical_antennas, random_problem


def _prices(solver: _Solver, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random prices up to a step's whole value: dense, and the same on priced cells."""
    problem = solver.p
    shape = (len(problem.satellites), problem.grid.n_steps + 1)
    on_cells = rng.uniform(0.0, 1.0, len(solver.priced_cells()))
    on_cells *= solver.max_price()[solver.priced_cells() // shape[1]]
    dense = np.zeros(shape)
    dense.ravel()[solver.priced_cells()] = on_cells
    return dense, on_cells


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_dps_on_cells_equal_the_dense_prices_dps(
    seed: int, jit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_dps on prices given on the priced cells returns the same values and plans as
    on the dense prices, with and without blocked steps, compiled or not."""
    if jit:
        monkeypatch.delenv("GROUNDLINK_NO_JIT", raising=False)
        assert _kernels.available()
    else:
        monkeypatch.setenv("GROUNDLINK_NO_JIT", "1")
    rng = np.random.default_rng(5100 + seed)
    problem = random_problem(
        rng,
        n_antennas=int(rng.integers(1, 3)),
        n_passes=int(rng.integers(10, 22)),
        n_steps=int(rng.integers(50, 90)),
        stations=int(rng.integers(1, 3)),
    )
    if seed % 3 == 2:
        problem = identical_antennas(problem, 3)
    solver = _Solver(problem)
    dense, on_cells = _prices(solver, rng)
    _, other = solver.run_dp(len(problem.antennas) - 1)
    blocked = _used_steps(problem, other)
    for a in range(len(problem.antennas)):
        want = solver.run_dps(a, [dense, None, dense * 0.5], [None, blocked, blocked])
        got = solver.run_dps(
            a, [on_cells, None, on_cells * 0.5], [None, blocked, blocked], on_cells=True
        )
        assert got == want
    assert any(tracks for _, tracks in want)


def test_cell_slot_and_price_pos_locate_the_priced_cells() -> None:
    """cell_slot maps each priced (satellite, step) to its place; price_pos gives that
    place per layout cell opening a step, -1 elsewhere; dense_prices puts them back."""
    rng = np.random.default_rng(5200)
    problem = random_problem(rng, n_antennas=2, n_passes=16, n_steps=70, stations=2)
    solver = _Solver(problem)
    cells = solver.priced_cells()
    assert np.array_equal(cells, np.flatnonzero(solver.trackable().ravel()))
    assert np.array_equal(solver.cell_slot()[cells], np.arange(len(cells)))
    for lid, lay in solver.layouts.items():
        price_sk = lay.cell_keys()[0]
        pos = solver.price_pos(lid)
        has = price_sk >= 0
        assert has.any()
        assert np.array_equal(pos[has], np.searchsorted(cells, price_sk[has]))
        assert (pos[~has] == -1).all()
    dense, on_cells = _prices(solver, rng)
    assert np.array_equal(solver.dense_prices(on_cells), dense)


def test_sequential_chains_on_cells_equal_the_dense_ones() -> None:
    """The antennas in turn on prices given on the priced cells plan exactly as on the
    same prices given densely, re-priced or not."""
    rng = np.random.default_rng(5300)
    problem = identical_antennas(random_problem(rng, n_antennas=1, n_passes=22, n_steps=90), 3)
    solver = _Solver(problem)
    dense, on_cells = _prices(solver, rng)
    order = list(range(len(problem.antennas)))
    for repriced in (True, False):
        want = _sequential_many(problem, solver, order, [dense], repriced=[repriced])
        got = _sequential_many(
            problem, solver, order, [on_cells], repriced=[repriced], on_cells=True
        )
        assert got == want
        assert want[0]


def test_repair_limits_shortcut_only_without_daily_limits() -> None:
    """Without any daily maximum the plan comes back as it is; with one, the contacts
    beyond it are still dropped."""
    rng = np.random.default_rng(5400)
    problem = random_problem(rng, n_antennas=1, n_passes=12, n_steps=80)
    solver = _Solver(problem)
    _, tracks = solver.run_dp(0)
    assert _repair_limits(problem, tracks) is tracks
    per_day: dict[tuple[int, int], int] = {}
    for t in tracks:
        key = (problem.windows[t.window].sat, problem.day_of(t.start))
        per_day[key] = per_day.get(key, 0) + 1
    sat, day = max(per_day, key=lambda k: per_day[k])
    assert per_day[(sat, day)] >= 2
    problem.satellites[sat] = dataclasses.replace(problem.satellites[sat], max_contacts_per_day=1)
    repaired = _repair_limits(problem, tracks)
    assert len(repaired) == len(tracks) - (per_day[(sat, day)] - 1)
    kept = [t for t in repaired if problem.windows[t.window].sat == sat]
    assert sum(1 for t in kept if problem.day_of(t.start) == day) == 1


def test_raw_track_is_an_immutable_value() -> None:
    """RawTrack compares and hashes by its fields and cannot be changed."""
    t = RawTrack(3, 10, 20)
    assert t == RawTrack(3, 10, 20)
    assert t != RawTrack(3, 10, 21)
    assert len({t, RawTrack(3, 10, 20)}) == 1
    assert (t.window, t.start, t.end) == (3, 10, 20)
    with pytest.raises(AttributeError):
        t.start = 11  # type: ignore[misc]
