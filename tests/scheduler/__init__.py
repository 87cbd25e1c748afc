"""Scheduler tests: random small instances and an independent exact solver.

The reference solver enumerates every possible track (window, start, end) and solves a
set-packing MILP with scipy/HiGHS: pairwise conflicts between tracks of one antenna
that overlap or leave too short a gap, "must follow something" rows for tracks that
cannot be reached from park, the one-antenna-per-satellite rows and the daily limits.
It shares no code with the scheduler's DP or its flow MILP; it only reads the
problem's data (windows, rotators, settings) and computes travel with its own
kinematics. Pairwise conflicts describe one antenna's sequence exactly when any
third track between two others leaves them further apart than the longest handover,
which the instance generator ensures (``2 * setup_steps + min_steps >= far_steps``).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp  # type: ignore[import-untyped]
from scipy.sparse import coo_matrix  # type: ignore[import-untyped]

from controller.scheduler.model import (
    Antenna,
    Grid,
    Plan,
    Problem,
    RotatorModel,
    Satellite,
    Settings,
    Window,
)
from controller.scheduler.optimal import SolveResult
from controller.scheduler.plan import check_schedule, schedule_from_raw

START = datetime(2026, 11, 26, tzinfo=UTC)


def move_time_s(dist_deg: float, rate: float, accel: float) -> float:
    """Rest-to-rest time over a distance: accelerate, cruise if there is room, brake."""
    d = abs(dist_deg)
    t_ramp = rate / accel
    d_ramp = accel * t_ramp * t_ramp  # both ramps together
    if d >= d_ramp:
        return 2 * t_ramp + (d - d_ramp) / rate
    return 2 * math.sqrt(d / accel)


def ref_travel_s(rot: RotatorModel, a1: float, e1: float, a2: float, e2: float) -> float:
    """Both axes move at once; the slower one decides."""
    return max(
        move_time_s(a2 - a1, rot.slew_az_deg_s, rot.accel_az_deg_s2),
        move_time_s(e2 - e1, rot.slew_el_deg_s, rot.accel_el_deg_s2),
    )


def random_problem(
    rng: np.random.Generator,
    *,
    n_antennas: int,
    n_passes: int,
    n_steps: int = 80,
    resolution_s: float = 30.0,
    stations: int = 1,
    caps: bool = False,
    one_per_sat: bool = True,
) -> Problem:
    """A random instance with synthetic passes (no orbit propagation)."""
    while True:
        pre = float(rng.choice([0.0, 10.0, 20.0, 30.0]))
        post = float(rng.choice([0.0, 10.0, 20.0]))
        settings = Settings(resolution_s, pre, post, one_per_sat)
        antennas = []
        for i in range(n_antennas):
            rate = float(rng.uniform(2.0, 8.0))
            rot = RotatorModel(
                0.0,
                float(rng.choice([360.0, 450.0])),
                0.0,
                90.0,
                rate,
                float(rng.uniform(2.0, 8.0)),
                float(rng.uniform(1.0, 10.0)),
                float(rng.uniform(1.0, 10.0)),
            )
            station = f"st{i % stations}"
            antennas.append(
                Antenna(
                    station,
                    f"a{i}",
                    rot,
                    park_az_deg=float(rng.uniform(0, 360)),
                    park_el_deg=float(rng.uniform(0, 90)),
                )
            )
        n_sats = max(2, n_passes // 2)
        sats = []
        for j in range(n_sats):
            cap = int(rng.integers(1, 3)) if caps and rng.random() < 0.5 else None
            sats.append(
                Satellite(
                    90000 + j,
                    f"SAT{j}",
                    weight=float(rng.choice([1.0, 1.0, 2.0, 3.0, 5.0])),
                    min_contact_s=float(rng.choice([0.0, 30.0, 60.0, 90.0])),
                    max_contacts_per_day=cap,
                )
            )
        grid = Grid(START, resolution_s, n_steps)
        windows: list[Window] = []
        for _ in range(n_passes):
            si = int(rng.integers(n_sats))
            length = int(rng.integers(4, 16))
            first = int(rng.integers(0, n_steps - length + 1))
            az0 = float(rng.uniform(0, 360))
            drift = float(rng.uniform(-9, 9))
            az = az0 + drift * np.arange(length, dtype=np.float64)
            peak = float(rng.uniform(10, 85))
            el = peak * np.sin(np.linspace(0.15, math.pi - 0.15, length))
            station = f"st{int(rng.integers(stations))}"
            m = max(1, math.ceil(sats[si].min_contact_s / resolution_s - 1e-9))
            for ai, ant in enumerate(antennas):
                if ant.station_id != station or rng.random() < 0.2:
                    continue
                offs = ant.rotator.offsets(float(az.min()), float(az.max()))
                for off in offs[:2]:
                    windows.append(
                        Window(
                            ai,
                            si,
                            first,
                            az + off,
                            el.copy(),
                            Plan(off, False),
                            grid.time(first),
                            grid.time(first + length - 1),
                            peak,
                            m,
                        )
                    )
        problem = Problem(grid, settings, antennas, sats, windows)
        m_min = min((w.min_steps for w in windows), default=1)
        ok = all(2 * problem.setup_steps + m_min >= problem.far_steps(a) for a in range(n_antennas))
        if ok and windows:
            return problem


def identical_antennas(problem: Problem, n: int) -> Problem:
    """``n`` copies of the instance's first antenna, each with its windows."""
    ant = problem.antennas[0]
    mine = [w for w in problem.windows if w.antenna == 0]
    antennas = [dataclasses.replace(ant, antenna_id=f"{ant.antenna_id}-{i}") for i in range(n)]
    windows = [w.for_antenna(a) for a in range(n) for w in mine]
    return Problem(problem.grid, problem.settings, antennas, problem.satellites, windows)


def _reachable(
    problem: Problem, w: Window, from_k: int, to_k: int, az: float, el: float, setup_s: float
) -> bool:
    """Free at ``from_k`` pointing at (az, el): on ``w`` at some point up to ``to_k``?"""
    rot = problem.antennas[w.antenna].rotator
    r = problem.grid.resolution_s
    for k in range(max(w.first, from_k + 1), to_k + 1):
        a2 = float(w.az_rot_deg[k - w.first])
        e2 = float(w.el_rot_deg[k - w.first])
        if (k - from_k) * r >= setup_s + ref_travel_s(rot, az, el, a2, e2) - 1e-6:
            return True
    return False


def exact_reference(problem: Problem) -> float:
    """Optimal objective by set-packing MILP over every explicit track.

    Conflicts are written per pair of grid points (a track end, a track start) rather
    than per pair of tracks: at most one track ends at a point, and at most one starts.
    """
    r = problem.grid.resolution_s
    st = problem.settings
    cand: list[tuple[int, int, int, int, float]] = []  # antenna, window, i, j, value
    ends_at: dict[tuple[int, int], list[int]] = {}
    starts_at: dict[tuple[int, int], list[int]] = {}
    for wi, w in enumerate(problem.windows):
        wt = problem.satellites[w.sat].weight
        for i in range(w.first, w.last + 1):
            for j in range(i + w.min_steps, w.last + 1):
                x = len(cand)
                cand.append((w.antenna, wi, i, j, wt * (j - i) * r))
                ends_at.setdefault((wi, j), []).append(x)
                starts_at.setdefault((wi, i), []).append(x)
    n = len(cand)
    rows: list[list[int]] = []
    rhs: list[float] = []
    follow: list[tuple[list[int], list[int]]] = []
    for a, ant in enumerate(problem.antennas):
        rot = ant.rotator
        # The longest move of this rotator, corner to corner of its ranges.
        far_s = ref_travel_s(rot, rot.az_min_deg, rot.el_min_deg, rot.az_max_deg, rot.el_max_deg)
        mine = [wi for wi, w in enumerate(problem.windows) if w.antenna == a]
        end_pts = [(v, j) for (v, j) in ends_at if problem.windows[v].antenna == a]
        for wi in mine:
            w = problem.windows[wi]
            for i in range(w.first, w.last + 1):
                if (wi, i) not in starts_at:
                    continue
                from_park = any(
                    k * r
                    >= st.pre_pass_s
                    + ref_travel_s(
                        rot,
                        ant.park_az_deg,
                        ant.park_el_deg,
                        float(w.az_rot_deg[k - w.first]),
                        float(w.el_rot_deg[k - w.first]),
                    )
                    - 1e-6
                    for k in range(w.first, i + 1)
                )
                preds: list[int] = []
                for v, j in end_pts:
                    if j >= i:
                        continue
                    if (i - j) * r >= st.setup_s + far_s - 1e-6:
                        ok = True
                    else:
                        pv = problem.windows[v]
                        az = float(pv.az_rot_deg[j - pv.first])
                        el = float(pv.el_rot_deg[j - pv.first])
                        ok = _reachable(problem, w, j, i, az, el, st.setup_s)
                    if ok:
                        preds.extend(ends_at[(v, j)])
                    else:
                        rows.append(ends_at[(v, j)] + starts_at[(wi, i)])
                        rhs.append(1.0)
                if not from_park:
                    follow.append((starts_at[(wi, i)], preds))
        # Overlapping tracks of one antenna (touching counts: a handover takes a step).
        mine_x = [x for x, c in enumerate(cand) if c[0] == a]
        for k in range(problem.grid.n_steps + 1):
            cover = [x for x in mine_x if cand[x][2] <= k <= cand[x][3]]
            if len(cover) > 1:
                rows.append(cover)
                rhs.append(1.0)
    if st.one_antenna_per_satellite:
        for k in range(problem.grid.n_steps):
            by_sat: dict[int, list[int]] = {}
            for x, c in enumerate(cand):
                if c[2] <= k < c[3]:
                    by_sat.setdefault(problem.windows[c[1]].sat, []).append(x)
            for xs in by_sat.values():
                if len({cand[x][0] for x in xs}) > 1:
                    rows.append(xs)
                    rhs.append(1.0)
    days: dict[tuple[int, int], list[int]] = {}
    for x, c in enumerate(cand):
        day = int((problem.grid.start + timedelta(seconds=c[2] * r)).timestamp() // 86400)
        days.setdefault((problem.windows[c[1]].sat, day), []).append(x)
    for (sat, _day), xs in days.items():
        cap = problem.satellites[sat].max_contacts_per_day
        if cap is not None:
            rows.append(xs)
            rhs.append(float(cap))
    # Rows of "this start must follow something" (not reachable from park).
    for starts, preds in follow:
        rows.append(starts + preds)
        rhs.append(0.0)
    rr = [q for q, row in enumerate(rows) for _ in row]
    cc = [x for row in rows for x in row]
    vv = [1.0] * len(cc)
    n_plain = len(rows) - len(follow)
    for q, (starts, preds) in enumerate(follow):
        base = sum(len(row) for row in rows[: n_plain + q])
        for t in range(len(starts), len(starts) + len(preds)):
            vv[base + t] = -1.0
    res = milp(
        -np.array([c[4] for c in cand]),
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
        constraints=[
            LinearConstraint(coo_matrix((vv, (rr, cc)), shape=(len(rows), n)).tocsr(), -np.inf, rhs)
        ],
        options={"mip_rel_gap": 0.0, "time_limit": 60.0},
    )
    assert res.status == 0, res.message
    return float(-res.fun)


def feasible_and_bracketed(problem: Problem, result: SolveResult) -> float:
    """Check ``result``'s plan passes every feasibility check and that plan <= the exact
    optimum (an independent MILP) <= its upper bound; return that optimum."""
    schedule = schedule_from_raw(
        problem, result.tracks, policy="optimal", upper_bound=result.upper_bound
    )
    assert check_schedule(schedule, problem) == []
    reference = exact_reference(problem)
    assert result.objective <= reference + 1e-6
    assert result.upper_bound >= reference - 1e-6
    return reference
