"""Schedules: tracks per antenna, the feasibility checker, JSON and a timeline table.

The checker re-derives every rule of the model from the tracks and the problem's
windows (not from the solver's internals), so it serves both the tests and the daemon,
which asserts every plan it is about to execute.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from controller.scheduler.model import (
    EPS_S,
    Plan,
    Problem,
    Reservation,
    RotatorModel,
    SchedulerInputError,
    Window,
    antenna_serves,
)
from controller.scheduler.optimal import RawTrack, SolveResult, solve_optimal

__all__ = [
    "Schedule",
    "ScheduleInfeasible",
    "Track",
    "assert_feasible",
    "check_schedule",
    "make_schedule",
    "render_table",
    "replan",
    "required_contacts_unmet",
    "schedule_from_raw",
]


class ScheduleInfeasible(AssertionError):
    """A schedule that breaks the model; ``violations`` lists every broken rule."""

    def __init__(self, violations: Sequence[str]) -> None:
        self.violations = list(violations)
        super().__init__("infeasible schedule:\n" + "\n".join(self.violations))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Track:
    """One antenna on one satellite from ``start`` to ``end`` (aware UTC)."""

    station_id: str
    antenna_id: str
    norad_id: int
    name: str
    start: datetime
    end: datetime
    pass_aos: datetime
    pass_los: datetime
    max_el_deg: float
    setup_s: float
    plan: Plan
    start_az_deg: float
    start_el_deg: float
    end_az_deg: float
    end_el_deg: float
    weight: float
    kind: str = "pass"
    window: int = -1

    @property
    def duration_s(self) -> float:
        """Tracked seconds."""
        return (self.end - self.start).total_seconds()

    @property
    def value(self) -> float:
        """Weight x tracked seconds."""
        return self.weight * self.duration_s

    def to_json(self) -> dict[str, object]:
        """The track as in ``groundlink schedule --format json``."""
        plan = self.plan.to_json()
        plan.update(
            {
                "start_az_deg": round(self.start_az_deg, 3),
                "start_el_deg": round(self.start_el_deg, 3),
                "end_az_deg": round(self.end_az_deg, 3),
                "end_el_deg": round(self.end_el_deg, 3),
                "kind": self.kind,
            }
        )
        return {
            "station": self.station_id,
            "antenna": self.antenna_id,
            "norad_id": self.norad_id,
            "name": self.name,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "pass_aos": _iso(self.pass_aos),
            "pass_los": _iso(self.pass_los),
            "max_el_deg": round(self.max_el_deg, 3),
            "setup_s": self.setup_s,
            "plan": plan,
        }


@dataclass(frozen=True)
class Schedule:
    """Tracks of every antenna over a horizon, with the objective and its upper bound."""

    policy: str
    start: datetime
    end: datetime
    resolution_s: float
    tracks: tuple[Track, ...]
    objective: float
    upper_bound: float | None
    stats: dict[str, float | int | str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def gap(self) -> float | None:
        """(upper bound - objective) / upper bound, or None without a bound."""
        if self.upper_bound is None:
            return None
        if self.upper_bound <= 0:
            return 0.0
        return max(0.0, (self.upper_bound - self.objective) / self.upper_bound)

    def for_station(self, station_id: str) -> Schedule:
        """The part one station executes (objective recomputed for its tracks)."""
        mine = tuple(t for t in self.tracks if t.station_id == station_id)
        return replace(self, tracks=mine, objective=sum(t.value for t in mine), upper_bound=None)

    def to_json(self) -> dict[str, object]:
        """``{"objective", "upper_bound", "policy", "tracks": [...]}`` plus context."""
        return {
            "objective": round(self.objective, 3),
            "upper_bound": None if self.upper_bound is None else round(self.upper_bound, 3),
            "policy": self.policy,
            "gap": None if self.gap is None else round(self.gap, 6),
            "start": _iso(self.start),
            "end": _iso(self.end),
            "resolution_s": self.resolution_s,
            "tracks": [t.to_json() for t in self.tracks],
            "warnings": list(self.warnings),
        }


def schedule_from_raw(
    problem: Problem,
    raw: Iterable[RawTrack],
    *,
    policy: str,
    upper_bound: float | None,
    stats: dict[str, float | int | str] | None = None,
) -> Schedule:
    """Turn solver tracks (window, grid points) into a :class:`Schedule`."""
    grid = problem.grid
    tracks: list[Track] = []
    for t in raw:
        w = problem.windows[t.window]
        ant = problem.antennas[w.antenna]
        sat = problem.satellites[w.sat]
        a0, e0 = w.pointing(t.start)
        a1, e1 = w.pointing(t.end)
        tracks.append(
            Track(
                station_id=ant.station_id,
                antenna_id=ant.antenna_id,
                norad_id=sat.norad_id,
                name=sat.name,
                start=grid.time(t.start),
                end=grid.time(t.end),
                pass_aos=w.pass_aos,
                pass_los=w.pass_los,
                max_el_deg=w.max_el_deg,
                setup_s=problem.settings.pre_pass_s,
                plan=w.plan,
                start_az_deg=a0,
                start_el_deg=e0,
                end_az_deg=a1,
                end_el_deg=e1,
                weight=sat.weight,
                kind=w.kind,
                window=t.window,
            )
        )
    tracks.sort(key=lambda x: (x.station_id, x.antenna_id, x.start))
    return Schedule(
        policy=policy,
        start=grid.start,
        end=grid.end,
        resolution_s=grid.resolution_s,
        tracks=tuple(tracks),
        objective=float(sum(t.value for t in tracks)),
        upper_bound=upper_bound,
        stats=dict(stats or {}),
        warnings=tuple(problem.warnings),
    )


# -- feasibility -----------------------------------------------------------------------


def check_schedule(schedule: Schedule, problem: Problem) -> list[str]:
    """Every way ``schedule`` breaks the model of ``problem`` (empty when feasible)."""
    out: list[str] = []
    grid = problem.grid
    r = grid.resolution_s
    settings = problem.settings
    keys = {a.key: i for i, a in enumerate(problem.antennas)}
    per_antenna: dict[int, list[tuple[int, int, Track]]] = {}
    for t in schedule.tracks:
        name = f"{t.station_id}/{t.antenna_id} NORAD {t.norad_id} {_iso(t.start)}..{_iso(t.end)}"
        ai = keys.get(f"{t.station_id}/{t.antenna_id}")
        if ai is None:
            out.append(f"{name}: unknown antenna")
            continue
        if not 0 <= t.window < len(problem.windows):
            out.append(f"{name}: no window")
            continue
        w = problem.windows[t.window]
        sat = problem.satellites[w.sat]
        ant = problem.antennas[ai]
        if w.antenna != ai or sat.norad_id != t.norad_id:
            out.append(f"{name}: window {t.window} is of another antenna or satellite")
            continue
        k0 = grid.offset_s(t.start) / r
        k1 = grid.offset_s(t.end) / r
        i0, i1 = round(k0), round(k1)
        if abs(k0 - i0) > 1e-6 or abs(k1 - i1) > 1e-6:
            out.append(f"{name}: not on the {r:g} s grid")
            continue
        if not (w.first <= i0 < i1 <= w.last):
            out.append(f"{name}: outside its window (grid {w.first}..{w.last})")
            continue
        if w.fixed:
            if (i0, i1) != (w.first, w.last):
                out.append(f"{name}: a fixed {w.kind} was moved")
        else:
            if t.start < w.pass_aos - timedelta(microseconds=1) or t.end > w.pass_los + timedelta(
                microseconds=1
            ):
                out.append(f"{name}: outside its pass {_iso(w.pass_aos)}..{_iso(w.pass_los)}")
            if (i1 - i0) * r < sat.min_contact_s - 1e-6:
                out.append(
                    f"{name}: {(i1 - i0) * r:g} s is shorter than min_contact_s "
                    f"{sat.min_contact_s:g}"
                )
            thr = max(ant.min_el_deg, sat.min_el_deg)
            el = w.el_rot_deg[i0 - w.first : i1 - w.first + 1]
            true_el = 180.0 - el if w.plan.flipped else el
            if (true_el < thr - 1e-6).any():
                out.append(f"{name}: below {thr:g} deg elevation")
            if not antenna_serves(ant, sat):
                out.append(f"{name}: the antenna's bands do not cover the satellite")
            for u0, u1 in ant.unavailable:
                if t.start < u1 and u0 < t.end:
                    out.append(f"{name}: antenna unavailable {_iso(u0)}..{_iso(u1)}")
        per_antenna.setdefault(ai, []).append((i0, i1, t))
    # One antenna: order, overlap, set-up and travel.
    for ai, lst in per_antenna.items():
        lst.sort(key=lambda x: x[0])
        ant = problem.antennas[ai]
        rot = ant.rotator
        prev: tuple[int, int, Track] | None = None
        for i0, i1, t in lst:
            w = problem.windows[t.window]
            name = f"{ant.key} NORAD {t.norad_id} at {_iso(t.start)}"
            if prev is None:
                if w.kind != "kept" and not _reachable(
                    w, 0, i0, ant.park_az_deg, ant.park_el_deg, settings.pre_pass_s, r, rot
                ):
                    out.append(f"{name}: not reachable from park with pre-pass set-up")
            else:
                _p0, p1, pt = prev
                if i0 < p1 + 1:
                    out.append(
                        f"{name}: overlaps or touches the previous track (NORAD {pt.norad_id})"
                    )
                else:
                    pw = problem.windows[pt.window]
                    end_az, end_el = pw.pointing(p1)
                    if not _reachable(w, p1, i0, end_az, end_el, settings.setup_s, r, rot):
                        out.append(
                            f"{name}: gap {(i0 - p1) * r:g} s after NORAD {pt.norad_id} is "
                            "shorter than set-up plus travel"
                        )
            prev = (i0, i1, t)
    # One antenna per satellite at a time.
    if settings.one_antenna_per_satellite:
        by_sat: dict[int, list[tuple[int, int, Track]]] = {}
        for lst in per_antenna.values():
            for item in lst:
                by_sat.setdefault(item[2].norad_id, []).append(item)
        for norad, items in by_sat.items():
            items.sort(key=lambda x: x[0])
            for (_a0, a1, ta), (b0, _b1, tb) in itertools.pairwise(items):
                if b0 < a1:
                    out.append(
                        f"NORAD {norad}: on {ta.station_id}/{ta.antenna_id} and "
                        f"{tb.station_id}/{tb.antenna_id} at once from {_iso(tb.start)}"
                    )
    # Contacts per day.
    counts: dict[tuple[int, int], int] = {}
    for t in schedule.tracks:
        if 0 <= t.window < len(problem.windows):
            w = problem.windows[t.window]
            k = round(grid.offset_s(t.start) / r)
            key = (w.sat, problem.day_of(k))
            counts[key] = counts.get(key, 0) + 1
    for (si, day), n in counts.items():
        cap = problem.satellites[si].max_contacts_per_day
        if cap is not None and n > cap:
            when = datetime.fromtimestamp(day * 86400.0, UTC).date().isoformat()
            out.append(
                f"NORAD {problem.satellites[si].norad_id}: {n} contacts on {when}, "
                f"max_contacts_per_day is {cap}"
            )
    # Reservations are kept.
    present = {t.window for t in schedule.tracks}
    for i, w in enumerate(problem.windows):
        if w.fixed and i not in present:
            out.append(
                f"{w.kind} of NORAD {problem.satellites[w.sat].norad_id} on "
                f"{problem.antennas[w.antenna].key} at {_iso(grid.time(w.first))} is missing"
            )
    return out


def _reachable(
    w: Window,
    from_k: int,
    to_k: int,
    az: float,
    el: float,
    setup_s: float,
    r: float,
    rot: RotatorModel,
) -> bool:
    """Can the antenna, free at ``from_k`` at (az, el), be on window ``w`` by ``to_k``?

    It may arrive at any point ``i <= to_k`` of the window and follow the satellite.
    """
    ks = range(max(w.first, from_k), to_k + 1)
    for i in ks:
        a2, e2 = w.pointing(i)
        need = setup_s + float(rot.travel_s(az, el, a2, e2))
        if (i - from_k) * r >= need - EPS_S and i - from_k >= (1 if from_k > 0 else 0):
            return True
    return False


def assert_feasible(schedule: Schedule, problem: Problem) -> None:
    """Raise :class:`ScheduleInfeasible` listing every broken rule, if any."""
    violations = check_schedule(schedule, problem)
    if violations:
        raise ScheduleInfeasible(violations)


# -- making plans ---------------------------------------------------------------------------


def make_schedule(
    problem: Problem,
    *,
    policy: str = "optimal",
    deadline: Callable[[], bool] | None = None,
    greedy_wait_s: float | None = None,
    priorities: dict[int, float] | None = None,
) -> Schedule:
    """Plan ``problem`` with ``policy`` (optimal or greedy) and check the result."""
    if policy == "optimal":
        res: SolveResult = solve_optimal(problem, deadline=deadline)
        stats = dict(res.stats)
        stats["method"] = res.method
        sched = schedule_from_raw(
            problem, res.tracks, policy=policy, upper_bound=res.upper_bound, stats=stats
        )
    elif policy == "greedy":
        from controller.scheduler.greedy import solve_greedy

        raw = solve_greedy(problem, wait_s=greedy_wait_s, priorities=priorities)
        sched = schedule_from_raw(problem, raw, policy=policy, upper_bound=None)
    else:
        raise SchedulerInputError(f"policy {policy!r}: choose 'optimal' or 'greedy'")
    assert_feasible(sched, problem)
    unmet = required_contacts_unmet(sched, problem)
    if unmet:
        sched = replace(sched, warnings=(*sched.warnings, *unmet))
    return sched


def required_contacts_unmet(schedule: Schedule, problem: Problem) -> list[str]:
    """One message per (satellite, UTC day of the horizon) short of its required contacts.

    Required contacts are checked and reported, not enforced: the objective stays the
    plain weight x seconds (raise the satellite's weight to favour it).
    """
    out: list[str] = []
    counts: dict[tuple[int, int], int] = {}
    for t in schedule.tracks:
        day = int(t.start.timestamp() // 86400)
        counts[(t.norad_id, day)] = counts.get((t.norad_id, day), 0) + 1
    first = int(problem.grid.start.timestamp() // 86400)
    last = int(problem.grid.end.timestamp() // 86400)
    for sat in problem.satellites:
        need = sat.required_contacts_per_day
        if need <= 0:
            continue
        for day in range(first, last + 1):
            got = counts.get((sat.norad_id, day), 0)
            if got < need:
                when = datetime.fromtimestamp(day * 86400.0, UTC).date().isoformat()
                out.append(
                    f"NORAD {sat.norad_id} ({sat.name}): {got} of {need} required contacts "
                    f"on {when}"
                )
    return out


def replan(
    previous: Schedule,
    now: datetime,
    build: Callable[[datetime, Sequence[Reservation]], Problem],
    *,
    policy: str = "optimal",
    deadline: Callable[[], bool] | None = None,
) -> Schedule:
    """A new plan from ``now``: tracks under way are kept, the rest changes as little as
    the objective allows.

    ``build(start, kept)`` must return the problem from ``start`` (``now`` rounded up to
    the previous grid) with the operator's reservations and the ``kept`` ones. Every step
    the previous plan tracked is worth a tiny bonus (far below one step of any weight),
    so among equally good plans the one closest to the previous plan wins.
    """
    if now.tzinfo is None:
        raise SchedulerInputError(f"now {now.isoformat()} is naive; pass an aware UTC time")
    r = previous.resolution_s
    n = math.ceil((now - previous.start).total_seconds() / r - 1e-9)
    start = previous.start + timedelta(seconds=max(0, n) * r)
    kept = [
        Reservation(
            t.station_id, t.antenna_id, t.norad_id, start, t.end, "kept", t.plan, t.end_az_deg
        )
        for t in previous.tracks
        if t.start <= now < t.end and t.end > start
    ]
    problem = build(start, kept)
    keys = {a.key: i for i, a in enumerate(problem.antennas)}
    weights = [s.weight for s in problem.satellites if s.weight > 0]
    w_min = min(weights) if weights else 1.0
    problem.keep_bonus = 1e-6 * w_min * problem.grid.resolution_s / (problem.grid.n_steps + 1)
    for t in previous.tracks:
        ai = keys.get(f"{t.station_id}/{t.antenna_id}")
        if ai is None or t.end <= start:
            continue
        k0 = max(0, problem.grid.ceil(t.start))
        k1 = min(problem.grid.n_steps, problem.grid.floor(t.end))
        if k1 > k0:
            problem.keep_steps.setdefault((ai, t.norad_id), set()).update(range(k0, k1))
    sched = make_schedule(problem, policy=policy, deadline=deadline)
    # Show kept tracks with their original start: they were under way. Only the track under
    # way counts: the previous plan may hold later tracks of that satellite on that antenna.
    under_way = {
        (t.station_id, t.antenna_id, t.norad_id): t
        for t in previous.tracks
        if t.start <= now < t.end
    }
    tracks = []
    for t in sched.tracks:
        if t.kind == "kept":
            orig = under_way.get((t.station_id, t.antenna_id, t.norad_id))
            if orig is not None:
                t = replace(t, start=orig.start, end=orig.end, setup_s=orig.setup_s)
        tracks.append(t)
    return replace(sched, tracks=tuple(tracks))


# -- table ----------------------------------------------------------------------------------


def render_table(schedule: Schedule, console: Console) -> None:
    """A per-antenna timeline for people: one table per antenna, gaps included."""
    gap = schedule.gap
    head = (
        f"[bold]{schedule.policy}[/] plan {_iso(schedule.start)} .. {_iso(schedule.end)} "
        f"({schedule.resolution_s:g} s steps): objective {schedule.objective:,.0f} "
        "weight x s"
    )
    if schedule.upper_bound is not None and gap is not None:
        head += f", upper bound {schedule.upper_bound:,.0f} (gap {100 * gap:.3f} %)"
    console.print(head)
    for w in schedule.warnings:
        console.print(f"[yellow]warning[/]: {w}", highlight=False)
    by_ant: dict[tuple[str, str], list[Track]] = {}
    for t in schedule.tracks:
        by_ant.setdefault((t.station_id, t.antenna_id), []).append(t)
    span = max(1.0, (schedule.end - schedule.start).total_seconds())
    for (station, antenna), lst in sorted(by_ant.items()):
        busy = sum(t.duration_s for t in lst)
        table = Table(
            title=(
                f"{station}/{antenna}: {len(lst)} tracks, {busy / 3600:.1f} h tracked "
                f"({100 * busy / span:.1f} %)"
            ),
            title_justify="left",
        )
        for col in (
            "start (UTC)",
            "end",
            "min",
            "satellite",
            "NORAD",
            "weight",
            "max el",
            "idle before",
            "plan",
            "note",
        ):
            table.add_column(
                col, justify="left" if col in ("satellite", "plan", "note") else "right"
            )
        prev_end: datetime | None = None
        for t in lst:
            idle = "" if prev_end is None else f"{(t.start - prev_end).total_seconds():.0f} s"
            part = t.start > t.pass_aos + timedelta(seconds=1) or t.end < t.pass_los - timedelta(
                seconds=1
            )
            plan = f"{t.plan.az_offset_deg:+.0f}°" + (" flip" if t.plan.flipped else "")
            note = t.kind if t.kind != "pass" else ("part of pass" if part else "")
            table.add_row(
                t.start.strftime("%m-%d %H:%M:%S"),
                t.end.strftime("%H:%M:%S"),
                f"{t.duration_s / 60:.1f}",
                t.name,
                str(t.norad_id),
                f"{t.weight:g}",
                f"{t.max_el_deg:.0f}°",
                idle,
                plan,
                note,
            )
            prev_end = t.end
        console.print(table)
