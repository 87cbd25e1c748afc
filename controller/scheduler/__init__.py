"""Constellation scheduler: which antenna (of which station) tracks which satellite when.

Model and time resolution: see :mod:`controller.scheduler.model` (tracks start and end
on a grid of ``[scheduler] resolution_s``, 10 s by default; every optimality claim is
exact on that grid). Policies: :func:`solve_optimal` (per-antenna DP, Lagrangian
coupling with an upper bound, exact MILP for small instances) and :func:`solve_greedy`
(the SatNOGS-style baseline). :func:`make_schedule` runs a policy and asserts the
result with :func:`check_schedule`; :func:`replan` keeps what is under way.

Typical use::

    problem = build_problem(start=..., end=..., settings=Settings.from_config(cfg.scheduler),
                            antennas=..., satellites=..., stations={...}, passes={...},
                            pointing=SatellitePointing(catalog, start))
    schedule = make_schedule(problem, policy="optimal")
    print(schedule.to_json())
"""

from controller.scheduler.greedy import solve_greedy
from controller.scheduler.model import (
    Antenna,
    Grid,
    Plan,
    Problem,
    Reservation,
    RotatorModel,
    Satellite,
    SatellitePointing,
    SchedulerInputError,
    Settings,
    Window,
    antennas_from_config,
    build_problem,
    reservations_from_config,
    satellites_from_config,
)
from controller.scheduler.optimal import RawTrack, SolveResult, plain_value, solve_optimal
from controller.scheduler.plan import (
    Schedule,
    ScheduleInfeasible,
    Track,
    assert_feasible,
    check_schedule,
    make_schedule,
    render_table,
    replan,
    schedule_from_raw,
)

__all__ = [
    "Antenna",
    "Grid",
    "Plan",
    "Problem",
    "RawTrack",
    "Reservation",
    "RotatorModel",
    "Satellite",
    "SatellitePointing",
    "Schedule",
    "ScheduleInfeasible",
    "SchedulerInputError",
    "Settings",
    "SolveResult",
    "Track",
    "Window",
    "antennas_from_config",
    "assert_feasible",
    "build_problem",
    "check_schedule",
    "make_schedule",
    "plain_value",
    "render_table",
    "replan",
    "reservations_from_config",
    "satellites_from_config",
    "schedule_from_raw",
    "solve_greedy",
    "solve_optimal",
]
