"""Antennas in turn on prices re-computed for the antennas still to plan (the primal
plan of the least work and of the Lagrangian heuristic)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from controller.config import load_config, load_station_list
from controller.orbit.catalog import Catalog
from controller.orbit.predictor import PassPredictor
from controller.scheduler.model import (
    Antenna,
    Problem,
    RotatorModel,
    Satellite,
    SatellitePointing,
    Settings,
    build_problem,
)
from controller.scheduler.optimal import (
    _antenna_classes,
    _initial_prices,
    _marginal_prices,
    _relaxed,
    _sequential,
    _sequential_many,
    _Solver,
    _used_steps,
    plain_value,
    solve_optimal,
)
from controller.scheduler.plan import check_schedule, schedule_from_raw
from tests.scheduler import START, exact_reference, identical_antennas, random_problem

ROOT = Path(__file__).resolve().parents[2]


def _instance(seed: int) -> Problem:
    """Identical antennas (one class) for even seeds, distinct ones (one class each,
    some on a second station, some with daily limits) for odd seeds."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 4))
    while True:
        if seed % 2 == 0:
            base = random_problem(
                rng,
                n_antennas=1,
                n_passes=int(rng.integers(8, 15)),
                n_steps=int(rng.integers(40, 60)),
            )
            if any(w.antenna == 0 for w in base.windows):
                return identical_antennas(base, n)
        else:
            return random_problem(
                rng,
                n_antennas=n,
                n_passes=int(rng.integers(8, 15)),
                n_steps=int(rng.integers(40, 60)),
                stations=1 + seed % 3 // 2,
                caps=seed % 4 == 1,
            )


def _cap(problem: Problem, solver: _Solver) -> np.ndarray:
    """The Lagrangian's price cap per satellite, as solve_optimal sets it."""
    excess = solver.max_price() - solver.w_floor * problem.grid.resolution_s
    return excess if excess.any() else solver.max_price()


def _reference_marginal(
    problem: Problem, counts: dict[int, int], blocked: np.ndarray
) -> np.ndarray:
    """By plain loops, per class (antenna id ``a`` of its first antenna, ``counts[a]``
    of them) and free (satellite, step): the excess of the step value over the
    ``n``-th largest free trackable one, less the set-up steps at the lightest step
    value (or that marginal one if lower) spread over the satellite's longest window
    on the step; the most over classes."""
    r = problem.grid.resolution_s
    n_k = problem.grid.n_steps + 1
    n_sats = len(problem.satellites)
    lightest = min(sat.weight for sat in problem.satellites) * r
    prices = np.zeros((n_sats, n_k))
    for a, n in counts.items():
        if n <= 0 or n >= n_sats:
            continue
        span = np.zeros((n_sats, n_k))
        for w in problem.windows:
            if w.antenna != a:
                continue
            for k in range(w.first, w.last):
                if not blocked[w.sat, k]:
                    span[w.sat, k] = max(span[w.sat, k], w.last - w.first)
        for k in range(n_k):
            vals = sorted(
                (problem.satellites[s].weight * r for s in range(n_sats) if span[s, k]),
                reverse=True,
            )
            theta = vals[n - 1] if len(vals) >= n else 0.0
            for s in range(n_sats):
                if span[s, k]:
                    value = problem.satellites[s].weight * r
                    loss = min(theta, lightest) * problem.setup_steps / span[s, k]
                    prices[s, k] = max(prices[s, k], value - theta - loss)
    return prices


@pytest.mark.parametrize("seed", range(8))
def test_marginal_prices_follow_the_per_step_formula(seed: int) -> None:
    """The vectorised prices for fewer antennas per class and some steps tracked
    already equal the per-step loop's."""
    problem = _instance(9100 + seed)
    solver = _Solver(problem)
    rng = np.random.default_rng(seed)
    blocked = rng.random((len(problem.satellites), problem.grid.n_steps + 1)) < 0.3
    counts = {}
    for cls in _antenna_classes(problem):
        counts[solver.layout_map[cls[0]][0]] = int(rng.integers(0, len(cls) + 1))
    # The layout ids are the classes' first antennas (no fixed windows here).
    assert all(solver.layout_map[a][0] == a for a in counts)
    got = _marginal_prices(problem, solver, counts, blocked)
    expected = _reference_marginal(problem, counts, blocked)
    assert np.allclose(got, expected, atol=1e-9)
    assert not got[blocked].any()  # a tracked step is not for sale


def test_initial_prices_are_computed_once_and_read_only() -> None:
    """_initial_prices computes once per solver and shares that array read-only (a
    caller capping it in place would change everyone's first prices)."""
    problem = _instance(9200)
    solver = _Solver(problem)
    first = _initial_prices(problem, solver)
    assert first.any()
    assert _initial_prices(problem, solver) is first
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = -1.0


@pytest.mark.parametrize("seed", range(12))
def test_repriced_chain_is_feasible_and_below_the_optimum(seed: int) -> None:
    """The re-priced antennas in turn (on the first prices, and on half of them with
    the plain chain beside it in one sweep) give feasible plans, none above the
    independent MILP's optimum."""
    problem = _instance(9300 + seed)
    solver = _Solver(problem)
    cap = _cap(problem, solver)
    prices = np.minimum(_initial_prices(problem, solver), cap[:, None])
    order = list(range(len(problem.antennas)))
    cands = _sequential_many(
        problem,
        solver,
        order,
        [prices, prices * 0.5, prices],
        cap=cap,
        repriced=[True, True, False],
    )
    reference = exact_reference(problem)
    for cand in cands:
        schedule = schedule_from_raw(problem, cand, policy="optimal", upper_bound=None)
        assert check_schedule(schedule, problem) == []
        assert plain_value(problem, cand) <= reference + 1e-6
    # The plain chain beside the re-priced ones is the plain antennas in turn.
    alone = _sequential(problem, solver, order, prices=prices)
    assert cands[2] == alone


@pytest.mark.parametrize("seed", range(6))
def test_repriced_last_antenna_sees_the_excess_over_the_best_left(seed: int) -> None:
    """With one antenna of a class left, its prices are each free step's excess over
    the best free satellite (less the handover discount), so the best one costs 0."""
    problem = _instance(9400 + 2 * seed)  # identical antennas: one class
    solver = _Solver(problem)
    (cls,) = _antenna_classes(problem)
    lid = solver.layout_map[cls[0]][0]
    first = _relaxed(solver, None)[0][1]
    blocked = _used_steps(problem, first)
    got = _marginal_prices(problem, solver, {lid: 1}, blocked)
    r = problem.grid.resolution_s
    step_val = solver.weights * r
    sk, _span, _pos = solver.class_steps(lid)
    sat_i, k_i = np.divmod(sk, problem.grid.n_steps + 1)
    free = ~blocked[sat_i, k_i]
    for k in np.unique(k_i[free]).tolist():
        sats = sat_i[free & (k_i == k)]
        best = sats[np.argmax(step_val[sats])]
        assert got[best, k] == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_bounded_mode_with_heuristics_is_feasible_and_bounded(seed: int) -> None:
    """The Lagrangian path (MILP off) with enough iterations for the re-priced heuristics:
    a feasible plan, the independent optimum between its objective and its bound."""
    problem = _instance(9500 + seed)
    result = solve_optimal(problem, milp_max_vars=0, max_iterations=25)
    schedule = schedule_from_raw(
        problem, result.tracks, policy="optimal", upper_bound=result.upper_bound
    )
    assert check_schedule(schedule, problem) == []
    reference = exact_reference(problem)
    assert result.objective <= reference + 1e-6 <= result.upper_bound + 2e-6


def _seed_problem(hours: float, n_antennas: int) -> Problem:
    """The bench's case: the seed constellation over Weilheim, identical antennas,
    priorities 4 (JP sun-synchronous), 2 (other JP groups), 1 (EU layer)."""
    cfg = load_config(ROOT / "configs" / "simulated.toml")
    rot = RotatorModel.from_config(cfg.antennas[0].rotator)
    catalog = Catalog.from_files(
        [ROOT / "seeds/tle/eu_constellation.tle", ROOT / "seeds/tle/jp_groups.tle"]
    )
    stations = {s.id: s.station() for s in load_station_list(ROOT / "seeds/stations.toml")}
    site = {"de-weilheim": stations["de-weilheim"]}
    end = START + timedelta(hours=hours)
    passes = {
        "de-weilheim": PassPredictor(list(catalog)).passes(site["de-weilheim"], START, end).passes
    }

    def weight(norad_id: int) -> float:
        if 81101 <= norad_id <= 81210:
            return 4.0
        return 2.0 if norad_id >= 81300 else 1.0

    return build_problem(
        start=START,
        end=end,
        settings=Settings(resolution_s=30.0, pre_pass_s=30.0, post_pass_s=10.0),
        antennas=[
            Antenna("de-weilheim", f"ant{i}", rot, min_el_deg=5.0) for i in range(n_antennas)
        ],
        satellites=[Satellite(e.norad_id, e.name, weight=weight(e.norad_id)) for e in catalog],
        stations=site,
        passes=passes,
        pointing=SatellitePointing(list(catalog), START),
    )


def test_repriced_beats_plain_in_turn_on_the_seed_constellation() -> None:
    """Four antennas, 12 h of the seed constellation: the re-priced antennas in turn
    track clearly more than the plain ones (fewer, longer tracks), and the least work
    of solve_optimal returns that plan."""
    problem = _seed_problem(12.0, 4)
    solver = _Solver(problem)
    cap = _cap(problem, solver)
    prices = np.minimum(_initial_prices(problem, solver), cap[:, None])
    order = list(range(4))
    plain = _sequential(problem, solver, order)
    repriced = _sequential_many(problem, solver, order, [prices], cap=cap, repriced=[True])[0]
    v_plain = plain_value(problem, plain)
    v_rep = plain_value(problem, repriced)
    assert v_rep >= 1.005 * v_plain
    assert len(repriced) < len(plain)
    result = solve_optimal(problem, deadline=lambda: True)
    assert result.objective >= v_rep - 1e-6
    schedule = schedule_from_raw(problem, result.tracks, policy="optimal", upper_bound=None)
    assert check_schedule(schedule, problem) == []
