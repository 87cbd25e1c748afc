"""Baseline policy: greedy first-fit by priority with a fixed wait (the SatNOGS way).

What the SatNOGS auto-scheduler does, in our terms (behaviour only; see
/work/shared/anchors.md, "Scheduling algorithms"):

1. Candidate passes are whole passes (here: the whole window of an antenna, the part
   of the pass above its minimum elevation). Operators' reservations are placed first
   and never moved (SatNOGS loads the station's already-scheduled observations).
2. "Priority" passes (satellites with an explicit priority) are taken in order of
   decreasing priority, then the "normal" ones in order of decreasing
   ``max_el / 90`` (SatNOGS's normal priority with every success rate equal).
3. Each pass is inserted on the first antenna where it does not overlap what is
   already scheduled, each scheduled pass being followed by a fixed ``wait``; it is
   dropped when no antenna is free (and when its satellite is already tracked by
   another antenna at that time, or has reached its daily maximum).

The scheduler knows nothing of the rotator, so, as in the SatNOGS client (no
pre-positioning), the slew to the satellite eats the start of each pass: after the
first-fit pass, each track starts at the first grid point the antenna can actually be
there (set-up plus travel from the previous track's end). A track left shorter than the
satellite's minimum contact is dropped. The result is feasible in the same model as the
optimiser's plans, so both are measured the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from controller.scheduler.model import EPS_S, Problem, SchedulerInputError, Window
from controller.scheduler.optimal import RawTrack

__all__ = ["solve_greedy"]


def solve_greedy(
    problem: Problem,
    *,
    wait_s: float | None = None,
    priorities: Mapping[int, float] | None = None,
) -> list[RawTrack]:
    """SatNOGS-style plan: priority tiers, first fit, fixed ``wait_s`` after each pass.

    ``priorities`` maps NORAD ids to priorities (the "priorities file"); when omitted,
    satellites whose weight differs from the most common weight are the priority tier,
    ordered by weight. ``wait_s`` defaults to the set-up time (pre + post pass).
    """
    r = problem.grid.resolution_s
    wait = problem.settings.setup_s if wait_s is None else float(wait_s)
    if wait < 0:
        raise SchedulerInputError(f"greedy wait_s {wait!r}: must be >= 0 seconds")
    wait_steps = int(-(-(wait - EPS_S) // r)) if wait > 0 else 0
    sats = problem.satellites
    if priorities is None:
        counts: dict[float, int] = {}
        for s in sats:
            counts[s.weight] = counts.get(s.weight, 0) + 1
        common = max(counts, key=lambda w: counts[w]) if counts else 1.0
        prio = {s.norad_id: s.weight for s in sats if s.weight != common}
    else:
        unknown = sorted(set(priorities) - {s.norad_id for s in sats})
        if unknown:
            raise SchedulerInputError(
                f"priorities: NORAD ids {unknown} are not satellites of this problem"
            )
        prio = dict(priorities)
    # One candidate per (antenna, pass piece): the first plan of duplicated windows.
    seen: set[tuple[int, int, int, int]] = set()
    candidates: list[int] = []
    for i, w in enumerate(problem.windows):
        key = (w.antenna, w.sat, w.first, w.last)
        if w.fixed or key in seen:
            continue
        seen.add(key)
        candidates.append(i)

    def order_key(i: int) -> tuple[int, float, float, int]:
        w = problem.windows[i]
        norad = sats[w.sat].norad_id
        if norad in prio:
            return (0, -prio[norad], w.first, w.antenna)
        return (1, -w.max_el_deg / 90.0, w.first, w.antenna)

    # The same pass on several antennas: one candidate list entry per pass, tried on
    # the antennas in their configured order (first fit).
    by_pass: dict[tuple[int, int], list[int]] = {}
    for i in candidates:
        w = problem.windows[i]
        by_pass.setdefault((w.sat, problem.windows[i].first), []).append(i)
    passes = sorted(by_pass.values(), key=lambda lst: min(order_key(i) for i in lst))
    n = problem.grid.n_steps + 1
    # Occupancy per antenna (tracks plus their wait) and per satellite (tracked steps).
    busy = np.zeros((len(problem.antennas), n + wait_steps + 1), dtype=bool)
    sat_busy = np.zeros((len(sats), n + 1), dtype=bool)
    day_count: dict[tuple[int, int], int] = {}
    chosen: list[int] = []
    for i, w in enumerate(problem.windows):
        if w.fixed:
            busy[w.antenna, w.first : w.last + wait_steps + 1] = True
            sat_busy[w.sat, w.first : w.last] = True
            chosen.append(i)
    coupled = problem.settings.one_antenna_per_satellite
    for group in passes:
        for i in sorted(group, key=lambda j: problem.windows[j].antenna):
            w = problem.windows[i]
            # The earlier passes' waits also protect this one's start.
            if busy[w.antenna, w.first : w.last + wait_steps + 1].any():
                continue
            if coupled and sat_busy[w.sat, w.first : w.last].any():
                break
            cap = sats[w.sat].max_contacts_per_day
            day = problem.day_of(w.first)
            if cap is not None and day_count.get((w.sat, day), 0) >= cap:
                break
            busy[w.antenna, w.first : w.last + wait_steps + 1] = True
            sat_busy[w.sat, w.first : w.last] = True
            day_count[(w.sat, day)] = day_count.get((w.sat, day), 0) + 1
            chosen.append(i)
            break
    return _realise(problem, chosen)


def _realise(problem: Problem, chosen: list[int]) -> list[RawTrack]:
    """Start each track when the antenna actually gets there; drop what is left too short."""
    r = problem.grid.resolution_s
    out: list[RawTrack] = []
    per_ant: dict[int, list[Window]] = {}
    index = {id(problem.windows[i]): i for i in chosen}
    for i in chosen:
        w = problem.windows[i]
        per_ant.setdefault(w.antenna, []).append(w)
    for a, ws in per_ant.items():
        ant = problem.antennas[a]
        rot = ant.rotator
        ws.sort(key=lambda w: w.first)
        has_fixed = any(w.fixed for w in ws)
        free_k = 0
        az, el = ant.park_az_deg, ant.park_el_deg
        setup = problem.settings.pre_pass_s
        first_track = True
        for w in ws:
            start = None
            for k in range(max(w.first, free_k + (0 if first_track else 1)), w.last + 1):
                a2, e2 = w.pointing(k)
                need = setup + float(rot.travel_s(az, el, a2, e2))
                if w.kind == "kept" or (k - free_k) * r >= need - EPS_S:
                    start = k
                    break
            if start is None:
                continue
            if w.fixed and start != w.first:
                raise AssertionError("greedy: a reservation cannot be reached in time")
            if not w.fixed and w.last - start < w.min_steps:
                continue
            if not w.fixed and has_fixed and not _next_fixed_reachable(problem, w, ws):
                continue
            out.append(RawTrack(index[id(w)], start, w.last))
            free_k = w.last
            az, el = w.pointing(w.last)
            setup = problem.settings.setup_s
            first_track = False
    return out


def _next_fixed_reachable(problem: Problem, w: Window, ws: list[Window]) -> bool:
    """After tracking ``w`` to its end, can the antenna still make its next reservation?"""
    nxt = [v for v in ws if v.fixed and v.first > w.last]
    if not nxt:
        return True
    v = min(nxt, key=lambda x: x.first)
    rot = problem.antennas[w.antenna].rotator
    az, el = w.pointing(w.last)
    a2, e2 = v.pointing(v.first)
    need = problem.settings.setup_s + float(rot.travel_s(az, el, a2, e2))
    r = problem.grid.resolution_s
    return (v.first - w.last) * r >= need - EPS_S and v.first > w.last
