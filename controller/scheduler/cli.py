"""``groundlink schedule``: plan the configured station's antennas over a horizon.

Registered by ``controller.cli`` as ``groundlink schedule``; :func:`schedule_command`
prints the plan (a per-antenna timeline table, or JSON) and returns the exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from controller.config import ConfigError, load_config
from controller.orbit.catalog import Catalog
from controller.orbit.predictor import PassPredictor
from controller.scheduler.model import (
    SatellitePointing,
    SchedulerInputError,
    Settings,
    antennas_from_config,
    build_problem,
    reservations_from_config,
    satellites_from_config,
)
from controller.scheduler.plan import ScheduleInfeasible, make_schedule, render_table
from firmware_bridge.clock import Clock, SystemClock

__all__ = ["schedule_command"]

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_DATAERR = 65
EXIT_NOINPUT = 66
EXIT_SOFTWARE = 70
EXIT_CONFIG = 78


def _console() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    return console


def schedule_command(
    config: Path,
    tle: list[Path],
    start: datetime,
    hours: float | None,
    policy: str | None,
    fmt: str,
    *,
    budget_s: float = 30.0,
    clock: Clock | None = None,
) -> int:
    """Plan ``config``'s antennas from ``start`` for ``hours`` and print it; return the code.

    ``tle`` overrides the config's element files when not empty; ``hours`` and ``policy``
    override ``[scheduler] horizon_h`` and ``policy``; ``fmt`` is ``table`` or ``json``.
    The optimiser stops improving its bound after ``budget_s`` seconds of ``clock``
    (bounded-time mode; the JSON reports the remaining gap).
    """
    err = Console(stderr=True)

    def fail(message: str, code: int) -> int:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        return code

    if fmt not in ("table", "json"):
        return fail(f"--format {fmt!r}: choose table or json", EXIT_USAGE)
    if policy is not None and policy not in ("optimal", "greedy"):
        return fail(f"--policy {policy!r}: choose optimal or greedy", EXIT_USAGE)
    if start.tzinfo is None or start.utcoffset() is None:
        return fail(f"--start {start.isoformat()}: give a UTC time (e.g. ...Z)", EXIT_USAGE)
    start = start.astimezone(UTC)
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        for reason in exc.problems:
            err.print(f"[red]{exc.source}[/]: {reason}", highlight=False)
        return EXIT_CONFIG
    horizon_h = cfg.scheduler.horizon_h if hours is None else hours
    if not horizon_h > 0:
        return fail(
            f"--hours {horizon_h:g}: horizon of zero; give a planning horizon > 0 hours",
            EXIT_USAGE,
        )
    if horizon_h > 24 * 31:
        return fail(f"--hours {horizon_h:g}: at most 744 hours (31 days)", EXIT_USAGE)
    chosen_policy = policy or cfg.scheduler.policy
    tle_files: Sequence[Path] = list(tle) if tle else list(cfg.catalog.tle_files)
    if not tle_files:
        return fail("no element files: give --tle FILE or catalog.tle_files", EXIT_USAGE)
    missing = [p for p in tle_files if not p.is_file()]
    if missing:
        return fail(", ".join(f"{p}: file not found" for p in missing), EXIT_NOINPUT)
    catalog = Catalog.from_files(
        list(tle_files), now=start, stale_after_days=cfg.catalog.stale_after_days
    )
    for issue in catalog.problems:
        colour = "red" if issue.severity == "error" else "yellow"
        err.print(f"[{colour}]{issue.severity}[/]: {issue}", highlight=False)
    if len(catalog) == 0:
        return fail("no usable satellites in the element files", EXIT_DATAERR)
    end = start + timedelta(hours=horizon_h)
    source = str(config)
    try:
        antennas = antennas_from_config(cfg.station.id, cfg.antennas, source=source)
        if not antennas:
            return fail(f"{source}: no [[antennas]]: nothing to schedule", EXIT_CONFIG)
        satellites = satellites_from_config(
            catalog, cfg.satellites, default_weight=cfg.scheduler.default_weight, source=source
        )
        station = cfg.station.station()
        result = PassPredictor(list(catalog)).passes(station, start, end)
        problem = build_problem(
            start=start,
            end=end,
            settings=Settings.from_config(cfg.scheduler),
            antennas=antennas,
            satellites=satellites,
            stations={cfg.station.id: station},
            passes={cfg.station.id: result.passes},
            pointing=SatellitePointing(list(catalog), start),
            reservations=reservations_from_config(cfg.station.id, cfg.scheduler.reservations),
        )
        priorities = {s.norad_id: s.weight for s in cfg.satellites}
        timer = clock or SystemClock()
        stop_at = timer.monotonic() + budget_s
        schedule = make_schedule(
            problem,
            policy=chosen_policy,
            priorities=priorities,
            deadline=lambda: timer.monotonic() > stop_at,
        )
    except SchedulerInputError as exc:
        return fail(str(exc), EXIT_CONFIG)
    except ScheduleInfeasible as exc:
        return fail(str(exc), EXIT_SOFTWARE)
    for problem_msg in result.problems:
        err.print(f"[yellow]warning[/]: {problem_msg}", highlight=False)
    if fmt == "json":
        sys.stdout.write(json.dumps(schedule.to_json(), indent=1) + "\n")
    else:
        render_table(schedule, _console())
    return EXIT_PARTIAL if catalog.errors else EXIT_OK
