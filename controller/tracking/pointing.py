"""Pointing plans: computed before AOS from the whole pass and what the rotator can really do.

How a plan is chosen
--------------------
1. **Candidates.** The pass is resampled from AOS to LOS (``plan_step_s``) and unwrapped in
   azimuth. Each whole-turn shift that keeps the path inside the azimuth range is a candidate
   (``normal``, ``normal+360``, ``normal-360``, ...: the wrap variants of an overlap range such
   as 0..450 or -180..540). If the elevation axis passes the zenith, the flipped path
   (az + 180, el' = 180 - el) and its shifts are candidates too. A path that fits no shift is
   offered clipped at the stop (``held-at-stop``): it waits there while the satellite moves on.
   No candidate ever crosses a stop: every one is continuous inside the limits.
2. **Evaluation with the real dynamics.** Each candidate is checked against the rotator's rates
   and accelerations. Where it asks for more than 90 % of either, it is simulated with a
   rate- and acceleration-limited follower; the pre-position move from where the rotator is
   now is part of it. The result is the pointing error over the pass, the *outage* (time the
   error exceeds what the link can absorb, from the link budget, else half the beamwidth), how
   late the antenna reaches the satellite after AOS, and the total travel.
3. **Optimised path.** If no candidate keeps the outage at zero (a near-zenith pass on a 0..90
   elevation axis, a north-crossing pass on a 0..360 rotator, a rotator too slow for the
   pass), a dynamic programme over time and azimuth finds the path with the least outage that
   the azimuth slew rate allows (elevation chosen for each azimuth to minimise the error),
   e.g. starting the keyhole swing early. It is a candidate like the others
   (:func:`outage_lower_bound_s` runs the same programme at full rate on a finer grid: the
   lower bound the rates allow).
4. **Choice**, by least outage, then least error (in units of the deadband), then least travel;
   normal before flipped on a tie. The choice and the reason are logged and kept in the plan.

Between passes the rotator is unwound by the pre-position move itself: the next plan starts
from wherever the rotator is, and the travel to each candidate's start is part of its score.

During the pass
---------------
* **Pre-position:** start moving to the AOS point at ``AOS - travel - margin - latency``
  (travel from the current position with the trapezoidal profile of each axis), never before
  the rotator is free.
* **Lead:** the target is the plan at ``now + measured command latency``.
* **Deadband and aim-ahead:** a new command is sent only when the target has moved more than
  the deadband from the last command, or (once the plan has passed the point last aimed at)
  an axis lags by more than ``catch_up_s`` of travel; the command then aims a deadband ahead
  along the plan (so the error swings between -deadband and +deadband instead of 0..2
  deadband), and on fast stretches (a keyhole swing) beyond the axis's braking distance, so
  the rotator keeps its speed between commands. The deadband, per plan sample, is as fine as
  the controller's pace allows (what the plan moves in half ``command_interval_s``, at least
  ``deadband_beam_fraction`` of the beam) and as coarse as the link allows (the error whose
  pattern loss takes ``deadband_margin_fraction`` of the link margin then), never below two
  steps of the rotator's resolution. The control tick follows from the deadband and the
  pass's angular speed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import structlog

from controller.tracking.config import PointingSettings
from controller.tracking.sky import FloatArray, SkyTrack, separation_deg, separation_one_deg
from firmware_bridge.drivers.rotator import Position, RotatorCapabilities

__all__ = [
    "Command",
    "PlanEvaluation",
    "PointingPlan",
    "PointingPlanner",
    "axis_reach_deg",
    "axis_travel_time_s",
    "outage_lower_bound_s",
    "travel_time_s",
]

_log = structlog.get_logger("controller.tracking.pointing")

_FEASIBLE_FRACTION: Final = 0.9
"""A path asking for at most this fraction of the rate and acceleration is followed closely."""
_DP_RATE_FRACTION: Final = 1.0
"""The optimised path keeps this much of the slew rate (the rest absorbs acceleration)."""
_DP_AZ_STEP_DEG: Final = 0.5
_DP_STEP_S: Final = 1.0
_DP_SMOOTH_SAMPLES: Final = 5
_DP_ERROR_WEIGHT: Final = 0.5
"""Total weight of the squared error (in beamwidths, capped at 1) over a whole programme,
against seconds of outage: a tie-break only, worth less than one step of outage."""
_DP_MARGIN_WEIGHT: Final = 0.25
"""Weight of time spent within a deadband of the allowed error (outage weighs 1)."""
_MAX_AIM_AHEAD_S: Final = 60.0
_WINDOW_SLACK_DEG: Final = 90.0
"""How far outside the best continuous variant's azimuths the optimised path may go."""
_EPS: Final = 1e-9
_SIDE_DEG: Final = 90.0
"""A path starting within this of the schedule's start azimuth is on its wrap side (the
sides of one pass start 180 deg (flip) or 360 deg (wrap) apart)."""


# --------------------------------------------------------------------------- kinematics


def axis_travel_time_s(distance_deg: float, rate_deg_s: float, accel_deg_s2: float) -> float:
    """Time of a rest-to-rest trapezoidal move over ``distance_deg``."""
    d = abs(distance_deg)
    if d <= _EPS:
        return 0.0
    if d > rate_deg_s * rate_deg_s / accel_deg_s2:
        return d / rate_deg_s + rate_deg_s / accel_deg_s2
    return 2.0 * math.sqrt(d / accel_deg_s2)


def axis_reach_deg(time_s: float, rate_deg_s: float, accel_deg_s2: float) -> float:
    """The longest rest-to-rest move that fits in ``time_s`` (inverse of the travel time)."""
    if time_s <= 0:
        return 0.0
    if time_s > 2 * rate_deg_s / accel_deg_s2:
        return rate_deg_s * (time_s - rate_deg_s / accel_deg_s2)
    return accel_deg_s2 * time_s * time_s / 4.0


def travel_time_s(caps: RotatorCapabilities, start: Position, end: Position) -> float:
    """Time for the slower axis to move from ``start`` to ``end`` (rotator frame)."""
    t_az = axis_travel_time_s(end.az_deg - start.az_deg, caps.az_rate_deg_s, caps.az_accel_deg_s2)
    if not caps.has_elevation:
        return t_az
    t_el = axis_travel_time_s(end.el_deg - start.el_deg, caps.el_rate_deg_s, caps.el_accel_deg_s2)
    return max(t_az, t_el)


def _follow(
    path: FloatArray, start: float, dt: float, rate: float, accel: float, lo: float, hi: float
) -> FloatArray:
    """Positions of an axis (rate and acceleration limited) that chases ``path`` one step ahead."""
    out = np.empty(len(path))
    p = start
    v = 0.0
    dv = accel * dt
    targets = [float(x) for x in path[1:]] + [float(path[-1])]
    for i, target in enumerate(targets):
        out[i] = p
        d = target - p
        want = max(-rate, min(rate, d / dt))
        brake = math.sqrt(2.0 * accel * abs(d))
        if abs(want) > brake:
            want = math.copysign(brake, d)
        v = max(v - dv, min(v + dv, want))
        p = min(hi, max(lo, p + v * dt))
    return out


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class PlanEvaluation:
    """How a path is expected to do with the rotator's dynamics (in-pass figures)."""

    outage_s: float
    """Time between AOS and LOS with a pointing error above what the link absorbs."""
    max_error_deg: float
    rms_error_deg: float
    late_s: float
    """Time after AOS before the antenna first has the satellite within the allowed error."""
    travel_deg: float
    """Azimuth plus elevation travel, pre-position included."""
    feasible: bool
    """True if the path asks for no more than 90 % of the rates and accelerations."""

    def summary(self) -> str:
        """One short line for logs."""
        return (
            f"outage {self.outage_s:.1f} s, max error {self.max_error_deg:.2f} deg, "
            f"late {self.late_s:.1f} s, travel {self.travel_deg:.0f} deg"
        )


@dataclass(frozen=True)
class PointingPlan:
    """The rotator-frame path of one pass, and when to start pre-positioning.

    Times are seconds in the track's frame (``track.start``). ``t_s``/``az_deg``/``el_deg`` cover
    AOS to LOS; before AOS the target is the first point, after LOS the last.
    """

    track: SkyTrack
    variant: str
    t_s: FloatArray
    az_deg: FloatArray
    el_deg: FloatArray
    preposition_start_s: float
    deadband_deg: float
    tick_s: float
    catch_up_s: float
    rates_deg_s: tuple[float, float]
    accels_deg_s2: tuple[float, float]
    evaluation: PlanEvaluation
    reason: str
    alternatives: tuple[tuple[str, PlanEvaluation], ...] = ()
    local_deadband_deg: FloatArray | None = None
    """Deadband per plan sample where the link margin is thinner than the deadband."""
    _t_list: list[float] = field(init=False, repr=False, compare=False)
    _az_list: list[float] = field(init=False, repr=False, compare=False)
    _el_list: list[float] = field(init=False, repr=False, compare=False)
    _db_list: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Cache plain lists for the per-tick lookups."""
        object.__setattr__(self, "_t_list", [float(x) for x in self.t_s])
        object.__setattr__(self, "_az_list", [float(x) for x in self.az_deg])
        object.__setattr__(self, "_el_list", [float(x) for x in self.el_deg])
        local = self.local_deadband_deg
        object.__setattr__(
            self,
            "_db_list",
            [float(x) for x in local] if local is not None else [self.deadband_deg] * len(self.t_s),
        )

    def deadband_at(self, t_s: float) -> float:
        """The deadband at ``t_s``: the plan's, or less where the link margin is thin."""
        ts = self._t_list
        if t_s <= ts[0]:
            return self._db_list[0]
        if t_s >= ts[-1]:
            return self._db_list[-1]
        step = (ts[-1] - ts[0]) / (len(ts) - 1)
        i = min(int((t_s - ts[0]) / step), len(ts) - 2)
        return min(self._db_list[i], self._db_list[i + 1])

    @property
    def start_position(self) -> Position:
        """The AOS point (where to pre-position)."""
        return Position(self._az_list[0], self._el_list[0])

    @property
    def end_position(self) -> Position:
        """The LOS point."""
        return Position(self._az_list[-1], self._el_list[-1])

    @property
    def aos_s(self) -> float:
        """AOS in the track's frame."""
        return self._t_list[0]

    @property
    def los_s(self) -> float:
        """LOS in the track's frame."""
        return self._t_list[-1]

    def target(self, t_s: float) -> Position:
        """The planned rotator position at ``t_s`` (held at the ends)."""
        ts = self._t_list
        if t_s <= ts[0]:
            return Position(self._az_list[0], self._el_list[0])
        if t_s >= ts[-1]:
            return Position(self._az_list[-1], self._el_list[-1])
        # Uniform grid: the index is a division, no search.
        step = (ts[-1] - ts[0]) / (len(ts) - 1)
        i = min(int((t_s - ts[0]) / step), len(ts) - 2)
        w = (t_s - ts[i]) / (ts[i + 1] - ts[i])
        az = self._az_list[i] + w * (self._az_list[i + 1] - self._az_list[i])
        el = self._el_list[i] + w * (self._el_list[i + 1] - self._el_list[i])
        return Position(az, el)

    def speed_deg_s(self, t_s: float) -> tuple[float, float]:
        """Planned axis speeds (|d az/dt|, |d el/dt|) at ``t_s``."""
        ts = self._t_list
        if t_s < ts[0] or t_s >= ts[-1]:
            return 0.0, 0.0
        step = (ts[-1] - ts[0]) / (len(ts) - 1)
        i = min(int((t_s - ts[0]) / step), len(ts) - 2)
        dt = ts[i + 1] - ts[i]
        return (
            abs(self._az_list[i + 1] - self._az_list[i]) / dt,
            abs(self._el_list[i + 1] - self._el_list[i]) / dt,
        )

    def aim_ahead(self, t_s: float) -> Command:
        """The point to command at ``t_s`` (lead already added): a deadband ahead on the plan,
        further on fast stretches so the rotator keeps its speed between commands."""
        here = self.target(t_s)
        brake_s = self._brake_s(t_s)
        # On a fast stretch aim two ticks beyond the braking time; a new command follows when
        # less than one tick of it is left (needs_command), so the axis never slows down.
        fast_s = brake_s + 2 * self.tick_s if brake_s > 0 else 0.0
        end = self.los_s
        if t_s >= end:
            return Command(here, end)
        step = (end - self.aos_s) / max(1, len(self._t_list) - 1)
        tau = 0.0
        prev = here
        prev_tau = 0.0
        deadband = self.deadband_at(t_s)
        while tau < _MAX_AIM_AHEAD_S and t_s + tau < end:
            tau = min(tau + step, end - t_s)
            point = self.target(t_s + tau)
            deadband = min(deadband, self.deadband_at(t_s + tau))
            sep = separation_one_deg(here.az_deg, here.el_deg, point.az_deg, point.el_deg)
            if sep >= deadband:
                # Refine linearly inside the last step.
                prev_sep = separation_one_deg(here.az_deg, here.el_deg, prev.az_deg, prev.el_deg)
                w = (deadband - prev_sep) / max(sep - prev_sep, _EPS)
                tau = prev_tau + w * (tau - prev_tau)
                break
            prev, prev_tau = point, tau
        aim_s = min(end, t_s + max(tau, fast_s))
        return Command(self.target(aim_s), aim_s)

    def _brake_s(self, t_s: float) -> float:
        """On a stretch where the plan asks for over half an axis's rate: the time the axis
        needs to brake from that speed (v / 2a, the time-equivalent of its braking distance);
        elsewhere 0."""
        v_az, v_el = self.speed_deg_s(t_s)
        return max(
            v_az / (2 * self.accels_deg_s2[0]) if v_az > 0.5 * self.rates_deg_s[0] else 0.0,
            v_el / (2 * self.accels_deg_s2[1]) if v_el > 0.5 * self.rates_deg_s[1] else 0.0,
        )

    def needs_command(self, t_s: float, last: Position | None, last_aim_s: float | None) -> bool:
        """True if the target at ``t_s`` left the deadband around ``last``, or, once the plan
        has passed the point ``last`` aimed at (``last_aim_s``), an axis lags by more than
        ``catch_up_s`` of travel (near the zenith a small sky error can hide a large azimuth
        lag that would take long to make up)."""
        if last is None:
            return True
        want = self.target(t_s)
        sep = separation_one_deg(last.az_deg, last.el_deg, want.az_deg, want.el_deg)
        if sep > self.deadband_at(t_s):
            return True
        brake_s = self._brake_s(t_s)
        if brake_s > 0 and last_aim_s is not None and last_aim_s - t_s < brake_s + self.tick_s:
            # Fast stretch (a keyhole swing): keep the target ahead of the braking distance.
            return True
        if last_aim_s is not None and t_s <= last_aim_s:
            return False
        lag_az = abs(want.az_deg - last.az_deg) / self.rates_deg_s[0]
        lag_el = abs(want.el_deg - last.el_deg) / self.rates_deg_s[1]
        return max(lag_az, lag_el) > self.catch_up_s

    def next_command(
        self, t_s: float, last: Position | None, lead_s: float, last_aim_s: float | None = None
    ) -> Command | None:
        """What to command at ``t_s`` (None: stay); always a point of the plan, inside limits.

        ``last``/``last_aim_s`` are the previous command and the plan time it aimed at.
        """
        if not self.needs_command(t_s + lead_s, last, last_aim_s):
            return None
        return self.aim_ahead(t_s + lead_s)


@dataclass(frozen=True, slots=True)
class Command:
    """A rotator target and the plan time it corresponds to."""

    position: Position
    aim_s: float


@dataclass(frozen=True, slots=True)
class _Candidate:
    name: str
    az: FloatArray
    el: FloatArray
    flipped: bool
    continuous: bool = False
    """True for a whole wrap/flip variant that fits the range (not held at a stop)."""


def _az_moved_deg(track: SkyTrack, first_s: float) -> float:
    """How far the satellite's azimuth moves (unwrapped) from AOS to ``first_s``: a plan
    made after AOS starts that much away from the schedule's start azimuth."""
    if first_s <= track.aos_s:
        return 0.0
    t = np.append(np.arange(track.aos_s, first_s, 1.0), first_s)
    az, _ = track.directions(t)
    unwrapped = np.degrees(np.unwrap(np.radians(az)))
    return float(unwrapped[-1] - unwrapped[0])


def _on_side(cand: _Candidate, side_az_deg: float) -> bool:
    """Whether ``cand`` starts on the wrap side and flip of rotator azimuth ``side_az_deg``
    (the sides of one pass start 180 or 360 deg apart)."""
    return abs(float(cand.az[0]) - side_az_deg) <= _SIDE_DEG


class PointingPlanner:
    """Builds :class:`PointingPlan` objects for one antenna on one rotator."""

    def __init__(
        self,
        capabilities: RotatorCapabilities,
        beamwidth_deg: float,
        settings: PointingSettings | None = None,
    ) -> None:
        """Planner for a rotator with ``capabilities`` carrying a beam ``beamwidth_deg`` wide."""
        if not (math.isfinite(beamwidth_deg) and 0 < beamwidth_deg <= 180):
            raise ValueError(f"beamwidth_deg={beamwidth_deg!r}: need a number in (0, 180]")
        self.caps = capabilities
        self.beamwidth_deg = float(beamwidth_deg)
        self.settings = settings if settings is not None else PointingSettings()
        resolution = max(capabilities.az_resolution_deg, capabilities.el_resolution_deg)
        self.deadband_deg = max(
            self.settings.deadband_beam_fraction * self.beamwidth_deg,
            self.settings.deadband_resolution_steps * resolution,
        )

    # -- public ------------------------------------------------------------------------
    def plan(
        self,
        track: SkyTrack,
        *,
        now_s: float,
        position: Position,
        allowed_error_deg: FloatArray | float | None = None,
        latency_s: float = 0.0,
        side_az_deg: float | None = None,
    ) -> PointingPlan:
        """Plan ``track`` for a rotator at ``position`` and free from ``now_s`` (track frame).

        ``allowed_error_deg`` is the pointing error the link absorbs on the track's sample
        grid (or one number); default half the beamwidth.

        ``side_az_deg``: the schedule's rotator azimuth at the start, which fixes its wrap
        side and flip. The schedule timed the slew to the antenna's next track from where
        this one ends on that side; the path nearest the rotator now may end 360 deg
        away, and the next pass then starts with the antenna still slewing (seen: 159 deg
        of error for a minute). So a path on the schedule's side (starting within 90 deg
        of it) wins over any other that loses no more of the link, even if it needs more
        travel or points less well inside what the link absorbs.
        """
        caps = self.caps
        step = self.settings.plan_step_s
        # A track started mid-pass (track now) is planned from now on.
        first = max(track.aos_s, min(now_s, track.los_s - step))
        n = max(2, math.ceil((track.los_s - first) / step) + 1)
        t = np.linspace(first, track.los_s, n)
        sat_az, sat_el = track.directions(t)
        allowed = self._allowed_on(track, t, allowed_error_deg)
        budgeted = allowed_error_deg is not None
        candidates = self._candidates(sat_az, sat_el)
        side = None if side_az_deg is None else side_az_deg + _az_moved_deg(track, first)
        evaluations: list[tuple[_Candidate, PlanEvaluation]] = []
        for cand in candidates:
            evaluations.append(
                (cand, self._evaluate(cand, t, sat_az, sat_el, allowed, now_s, position, latency_s))
            )

        def score(ce: tuple[_Candidate, PlanEvaluation]) -> tuple[float, ...]:
            return self._score(ce[0], ce[1], side)

        best = min(evaluations, key=score)
        if best[1].outage_s > 0 or not best[1].feasible:
            window = self._window(evaluations)
            for dp_cand in self._optimised(t, sat_az, sat_el, allowed, now_s, position, window):
                evaluations.append(
                    (
                        dp_cand,
                        self._evaluate(
                            dp_cand, t, sat_az, sat_el, allowed, now_s, position, latency_s
                        ),
                    )
                )
            best = min(evaluations, key=score)
        cand, evaluation = best
        reason = self._reason(cand, evaluation, evaluations, side)
        start = Position(float(cand.az[0]), float(cand.el[0]))
        travel = travel_time_s(caps, position, start)
        prepos = max(now_s, float(t[0]) - travel - self.settings.preposition_margin_s - latency_s)
        local = self._local_deadband(t, cand, sat_az, sat_el, allowed, budgeted)
        plan = PointingPlan(
            track=track,
            variant=cand.name,
            t_s=t,
            az_deg=cand.az,
            el_deg=cand.el,
            preposition_start_s=prepos,
            deadband_deg=self.deadband_deg,
            tick_s=self._tick(t, cand, float(np.median(local))),
            catch_up_s=self.settings.catch_up_s,
            rates_deg_s=(caps.az_rate_deg_s, caps.el_rate_deg_s),
            accels_deg_s2=(caps.az_accel_deg_s2, caps.el_accel_deg_s2),
            evaluation=evaluation,
            reason=reason,
            alternatives=tuple((c.name, e) for c, e in evaluations if c is not cand),
            local_deadband_deg=local,
        )
        _log.info(
            "pointing plan",
            norad_id=track.norad_id,
            variant=cand.name,
            reason=reason,
            deadband_deg=round(self.deadband_deg, 3),
            tick_s=round(plan.tick_s, 3),
            preposition_start_s=round(prepos - track.aos_s, 1),
        )
        return plan

    def _local_deadband(
        self,
        t: FloatArray,
        cand: _Candidate,
        sat_az: FloatArray,
        sat_el: FloatArray,
        allowed: FloatArray,
        budgeted: bool,
    ) -> FloatArray:
        """Deadband per plan sample: as fine as the controller's pace allows, as coarse as
        the link allows.

        * Pace: the distance the plan moves in half of ``command_interval_s``, so a new target
          goes out about once per interval, and never less than ``deadband_beam_fraction`` of
          the beam (no command hammering of slow controllers).
        * Link: with a budget, the error whose pattern loss takes ``deadband_margin_fraction``
          of the margin at that moment (the allowed error is where it takes all of it; the
          loss grows with the square of the error), and where the plan itself points off (an
          optimised path) the same fraction of the error it leaves; at most
          ``deadband_max_beam_fraction`` of the beam.
        * Never below what the rotator resolves.
        """
        settings = self.settings
        caps = self.caps
        floor = settings.deadband_resolution_steps * max(
            caps.az_resolution_deg, caps.el_resolution_deg
        )
        if len(t) > 1:
            step = separation_deg(cand.az[:-1], cand.el[:-1], cand.az[1:], cand.el[1:])
            speed = np.append(step, step[-1]) / float(t[1] - t[0])
        else:
            speed = np.zeros(len(t))
        pace = np.maximum(
            settings.deadband_beam_fraction * self.beamwidth_deg,
            speed * settings.command_interval_s / 2.0,
        )
        ceiling = settings.deadband_max_beam_fraction * self.beamwidth_deg
        link = np.full(len(t), ceiling)
        if budgeted:
            fraction = math.sqrt(settings.deadband_margin_fraction)
            plan_error = separation_deg(cand.az, cand.el, sat_az, sat_el)
            link = np.minimum(link, (allowed - plan_error) * fraction)
        return np.asarray(np.maximum(np.minimum(pace, link), floor), dtype=np.float64)

    # -- candidates ----------------------------------------------------------------------
    def _allowed_on(
        self, track: SkyTrack, t: FloatArray, allowed: FloatArray | float | None
    ) -> FloatArray:
        if allowed is None:
            return np.full(len(t), self.beamwidth_deg / 2)
        arr = np.asarray(allowed, dtype=np.float64)
        if arr.ndim == 0:
            return np.full(len(t), float(arr))
        if len(arr) != len(track.t_s):
            raise ValueError(
                f"allowed_error_deg has {len(arr)} values; the track has {len(track.t_s)} samples"
            )
        return np.interp(t, track.t_s, arr)

    def _fits(self, az: FloatArray) -> bool:
        return bool(
            az.min() >= self.caps.az_min_deg - _EPS and az.max() <= self.caps.az_max_deg + _EPS
        )

    def _candidates(self, sat_az: FloatArray, sat_el: FloatArray) -> list[_Candidate]:
        caps = self.caps
        unwrapped = np.degrees(np.unwrap(np.radians(sat_az)))
        el_normal = np.clip(sat_el, caps.el_min_deg, caps.el_max_deg)
        out: list[_Candidate] = []
        bases: list[tuple[str, FloatArray, FloatArray, bool]] = [
            ("normal", unwrapped, el_normal, False)
        ]
        if caps.flip_capable:
            el_flip = np.clip(180.0 - sat_el, caps.el_min_deg, caps.el_max_deg)
            bases.append(("flip", unwrapped + 180.0, el_flip, True))
        # A flipped path is whole only if the elevation axis reaches 180 - el all along.
        flip_whole = caps.el_max_deg >= 180.0 - float(sat_el.min()) - _EPS
        for name, az, el, flipped in bases:
            fitted = False
            for turns in range(-3, 4):
                shifted = az + 360.0 * turns
                if self._fits(shifted):
                    label = name if turns == 0 else f"{name}{360 * turns:+d}"
                    whole = flip_whole or not flipped
                    out.append(_Candidate(label, shifted, el, flipped, continuous=whole))
                    fitted = True
            if not fitted and not flipped:
                # No shift fits: hold at the stop the path runs into (each side that overlaps).
                for turns in range(-3, 4):
                    shifted = az + 360.0 * turns
                    inside = (shifted >= caps.az_min_deg) & (shifted <= caps.az_max_deg)
                    if inside.any():
                        clipped = np.clip(shifted, caps.az_min_deg, caps.az_max_deg)
                        label = (
                            f"{name}-held-at-stop{360 * turns:+d}"
                            if turns
                            else (f"{name}-held-at-stop")
                        )
                        out.append(_Candidate(label, clipped, el, flipped))
        if not out:
            # Degenerate: the sky path lies entirely outside a (narrow) range; park at the end.
            az = np.clip(unwrapped % 360.0, caps.az_min_deg, caps.az_max_deg)
            out.append(_Candidate("clipped", az, el_normal, False))
        return out

    # -- evaluation ----------------------------------------------------------------------
    def _feasible(self, cand: _Candidate, dt: float) -> bool:
        caps = self.caps
        for path, rate, accel in (
            (cand.az, caps.az_rate_deg_s, caps.az_accel_deg_s2),
            (cand.el, caps.el_rate_deg_s, caps.el_accel_deg_s2),
        ):
            if len(path) < 3:
                continue
            v = np.diff(path) / dt
            if float(np.max(np.abs(v))) > _FEASIBLE_FRACTION * rate:
                return False
            a = np.diff(v) / dt
            if float(np.max(np.abs(a))) > _FEASIBLE_FRACTION * accel:
                return False
        return True

    def _evaluate(
        self,
        cand: _Candidate,
        t: FloatArray,
        sat_az: FloatArray,
        sat_el: FloatArray,
        allowed: FloatArray,
        now_s: float,
        position: Position,
        latency_s: float,
    ) -> PlanEvaluation:
        caps = self.caps
        dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
        start = Position(float(cand.az[0]), float(cand.el[0]))
        travel_s = travel_time_s(caps, position, start)
        arrive_s = now_s + travel_s + latency_s
        feasible = self._feasible(cand, dt)
        if feasible and arrive_s <= t[0]:
            ant_az, ant_el = cand.az, cand.el
        else:
            # Simulate the rotator from the moment it can start (pre-position included).
            t0 = min(max(now_s, t[0] - travel_s - self.settings.preposition_margin_s), t[0])
            pre_n = max(0, math.ceil((t[0] - t0) / dt))
            az_path = np.concatenate((np.full(pre_n, cand.az[0]), cand.az))
            el_path = np.concatenate((np.full(pre_n, cand.el[0]), cand.el))
            ant_az = _follow(
                az_path,
                position.az_deg,
                dt,
                caps.az_rate_deg_s,
                caps.az_accel_deg_s2,
                caps.az_min_deg,
                caps.az_max_deg,
            )[pre_n:]
            if caps.has_elevation:
                ant_el = _follow(
                    el_path,
                    position.el_deg,
                    dt,
                    caps.el_rate_deg_s,
                    caps.el_accel_deg_s2,
                    caps.el_min_deg,
                    caps.el_max_deg,
                )[pre_n:]
            else:
                ant_el = np.full(len(cand.el), caps.el_min_deg)
        error = separation_deg(ant_az, ant_el, sat_az, sat_el)
        out = error > allowed
        outage = float(np.count_nonzero(out)) * dt
        inside = np.flatnonzero(~out)
        late = float(t[inside[0]] - t[0]) if len(inside) else float(t[-1] - t[0])
        travel = (
            abs(start.az_deg - position.az_deg)
            + abs(start.el_deg - position.el_deg)
            + float(np.sum(np.abs(np.diff(cand.az))) + np.sum(np.abs(np.diff(cand.el))))
        )
        return PlanEvaluation(
            outage_s=outage,
            max_error_deg=float(error.max()),
            rms_error_deg=float(np.sqrt(np.mean(error * error))),
            late_s=late,
            travel_deg=travel,
            feasible=feasible,
        )

    def _score(
        self, cand: _Candidate, ev: PlanEvaluation, side_az_deg: float | None = None
    ) -> tuple[float, ...]:
        err_units = math.floor(ev.max_error_deg / self.deadband_deg)
        off_side = float(side_az_deg is not None and not _on_side(cand, side_az_deg))
        return (
            round(ev.outage_s, 3),
            off_side,
            float(err_units),
            round(ev.travel_deg, 1),
            int(cand.flipped),
        )

    def _reason(
        self,
        cand: _Candidate,
        ev: PlanEvaluation,
        evaluations: Sequence[tuple[_Candidate, PlanEvaluation]],
        side_az_deg: float | None = None,
    ) -> str:
        others = [(c, e) for c, e in evaluations if c is not cand]
        if not others:
            return f"{cand.name}: the only path inside the limits ({ev.summary()})"
        runner_c, runner_e = min(others, key=lambda ce: self._score(ce[0], ce[1], side_az_deg))
        if runner_e.outage_s > ev.outage_s:
            why = f"{runner_c.name} would lose {runner_e.outage_s:.1f} s"
            if not runner_e.feasible:
                why += " (needs more than the rotator's rate or acceleration)"
        elif (
            side_az_deg is not None
            and _on_side(cand, side_az_deg)
            and not _on_side(runner_c, side_az_deg)
        ):
            why = (
                f"the schedule's wrap side (its slew to the next track starts there); "
                f"{runner_c.name} ends elsewhere"
            )
        elif math.floor(runner_e.max_error_deg / self.deadband_deg) > math.floor(
            ev.max_error_deg / self.deadband_deg
        ):
            why = f"{runner_c.name} would point {runner_e.max_error_deg:.2f} deg off at worst"
        else:
            why = (
                f"{runner_c.name} needs {runner_e.travel_deg:.0f} deg of travel, this one "
                f"{ev.travel_deg:.0f} deg"
            )
        return f"{cand.name}: {ev.summary()}; {why}"

    def _tick(self, t: FloatArray, cand: _Candidate, deadband_deg: float) -> float:
        """Half the time the plan takes to cross the deadband (90th percentile speed)."""
        if len(t) < 2:
            return self.settings.tick_max_s
        sep = separation_deg(cand.az[:-1], cand.el[:-1], cand.az[1:], cand.el[1:])
        speed = float(np.percentile(sep / np.diff(t), 90))
        tick = deadband_deg / (2 * speed) if speed > 0 else self.settings.tick_max_s
        return min(self.settings.tick_max_s, max(self.settings.tick_min_s, tick))

    # -- the optimised path -----------------------------------------------------------------
    def _window(
        self, evaluations: Sequence[tuple[_Candidate, PlanEvaluation]]
    ) -> tuple[float, float]:
        """Azimuths the optimised path may use: around the best continuous variant (so it
        cannot unwind through a full turn during the pass), or the whole range if none fits."""
        caps = self.caps
        fitting = [(c, e) for c, e in evaluations if c.continuous]
        if not fitting:
            return caps.az_min_deg, caps.az_max_deg
        cand, _ = min(fitting, key=lambda ce: self._score(ce[0], ce[1]))
        return (
            max(caps.az_min_deg, float(cand.az.min()) - _WINDOW_SLACK_DEG),
            min(caps.az_max_deg, float(cand.az.max()) + _WINDOW_SLACK_DEG),
        )

    def _optimised(
        self,
        t: FloatArray,
        sat_az: FloatArray,
        sat_el: FloatArray,
        allowed: FloatArray,
        now_s: float,
        position: Position,
        window: tuple[float, float],
    ) -> list[_Candidate]:
        caps = self.caps
        if len(t) < 2:
            return []
        dp_t = np.arange(t[0], t[-1] + _EPS, _DP_STEP_S)
        if dp_t[-1] < t[-1] - _EPS:
            dp_t = np.append(dp_t, t[-1])
        dp_az, dp_el = _interp_dir(t, sat_az, sat_el, dp_t)
        dp_allowed = np.interp(dp_t, t, allowed)
        reach = axis_reach_deg(
            t[0] - now_s - self.settings.preposition_margin_s / 2,
            caps.az_rate_deg_s,
            caps.az_accel_deg_s2,
        )
        if len(dp_t) < 2:
            return []
        az_path, _ = _az_programme(
            dp_t,
            dp_az,
            dp_el,
            dp_allowed,
            caps,
            beamwidth_deg=self.beamwidth_deg,
            az_step_deg=_DP_AZ_STEP_DEG,
            rate_fraction=_DP_RATE_FRACTION,
            error_weight=_DP_ERROR_WEIGHT,
            start_az_deg=position.az_deg,
            start_reach_deg=reach,
            az_window=window,
            margin_deg=self.deadband_deg,
            margin_weight=_DP_MARGIN_WEIGHT,
        )
        if az_path is None:
            return []
        out: list[_Candidate] = []
        # The programme's azimuth moves on a grid; a moving average (which keeps any rate
        # limit the path obeys) removes the steps. Both versions are evaluated.
        for name, path in (
            ("optimised", az_path),
            ("optimised-smooth", _moving_average(az_path, _DP_SMOOTH_SAMPLES)),
        ):
            az = np.interp(t, dp_t, path)
            el = _best_el(az, sat_az, sat_el, caps)
            el = _rate_limit(el, float(t[1] - t[0]), _DP_RATE_FRACTION * caps.el_rate_deg_s)
            el = np.clip(el, caps.el_min_deg, caps.el_max_deg)
            az = np.clip(az, caps.az_min_deg, caps.az_max_deg)
            out.append(_Candidate(name, az, el, bool(np.any(el > 90.0))))
        return out


# --------------------------------------------------------------------------- programme


def _interp_dir(
    t: FloatArray, az: FloatArray, el: FloatArray, at: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Directions at ``at`` interpolated on the unit sphere from samples at ``t``."""
    azr = np.radians(az)
    elr = np.radians(el)
    x = np.interp(at, t, np.cos(elr) * np.sin(azr))
    y = np.interp(at, t, np.cos(elr) * np.cos(azr))
    z = np.interp(at, t, np.sin(elr))
    norm = np.sqrt(x * x + y * y + z * z)
    norm[norm == 0] = 1.0
    return (
        np.mod(np.degrees(np.arctan2(x, y)), 360.0),
        np.degrees(np.arcsin(np.clip(z / norm, -1.0, 1.0))),
    )


def _best_el(
    az_deg: FloatArray, sat_az: FloatArray, sat_el: FloatArray, caps: RotatorCapabilities
) -> FloatArray:
    """For each antenna azimuth, the elevation (within limits) closest to the satellite.

    On the great circle through the zenith at azimuth ``a``, the point nearest the satellite
    has ``tan el = tan el_s / cos(a - az_s)``; past 90 deg when the satellite is behind.
    """
    d = np.radians(az_deg - sat_az)
    els = np.radians(sat_el)
    best = np.degrees(np.arctan2(np.sin(els), np.cos(els) * np.cos(d)))
    return np.asarray(np.clip(best, caps.el_min_deg, caps.el_max_deg), dtype=np.float64)


def _moving_average(path: FloatArray, width: int) -> FloatArray:
    """Centred moving average (ends padded with the end values); keeps any rate limit."""
    if width <= 1 or len(path) < width:
        return path
    half = width // 2
    padded = np.concatenate((np.full(half, path[0]), path, np.full(half, path[-1])))
    kernel = np.full(2 * half + 1, 1.0 / (2 * half + 1))
    return np.asarray(np.convolve(padded, kernel, mode="valid"), dtype=np.float64)


def _rate_limit(path: FloatArray, dt: float, rate: float) -> FloatArray:
    """Smallest change making ``path`` rate-feasible: a forward and a backward pass."""
    out = path.copy()
    dmax = rate * dt
    for i in range(1, len(out)):
        out[i] = min(max(out[i], out[i - 1] - dmax), out[i - 1] + dmax)
    for i in range(len(out) - 2, -1, -1):
        out[i] = min(max(out[i], out[i + 1] - dmax), out[i + 1] + dmax)
    return out


def _sliding_min(values: FloatArray, half: int) -> FloatArray:
    """min(values[i-half .. i+half]) for every i (a sparse table, log2(window) passes)."""
    if half <= 0:
        return values
    n = len(values)
    level = np.concatenate((np.full(half, np.inf), values, np.full(half, np.inf)))
    window = 2 * half + 1
    span = 1
    while span * 2 <= window:
        # In place on overlapping views: numpy buffers the overlap, so this is exact.
        np.minimum(level[:-span], level[span:], out=level[:-span])
        span *= 2
    offset = window - span
    return np.asarray(np.minimum(level[:n], level[offset : offset + n]), dtype=np.float64)


_COST_BLOCK_ROWS: Final = 256


class _CellCost:
    """Per-step cost of every azimuth cell (best elevation for each), computed in blocks.

    For antenna azimuth ``c`` and satellite (``a_s``, ``e_s``) the nearest elevation on the
    vertical circle at ``c`` is ``atan2(sin e_s, cos e_s cos(c - a_s))``; unclipped, the
    cosine of the error is ``sqrt(sin^2 e_s + cos^2 e_s cos^2(c - a_s))``, clipped at an
    elevation limit it is the plain spherical cosine. Outage is tested on cosines (no acos).
    """

    def __init__(
        self,
        cells: FloatArray,
        t: FloatArray,
        sat_az: FloatArray,
        sat_el: FloatArray,
        allowed: FloatArray,
        caps: RotatorCapabilities,
        beamwidth_deg: float,
        error_weight: float,
        margin_deg: float = 0.0,
        margin_weight: float = 0.0,
    ) -> None:
        rad = np.radians(cells)
        self._sin_c = np.sin(rad)
        self._cos_c = np.cos(rad)
        self._t = t
        sa = np.radians(sat_az)
        se = np.radians(sat_el)
        self._sin_sa, self._cos_sa = np.sin(sa), np.cos(sa)
        self._sin_se, self._cos_se = np.sin(se), np.cos(se)
        self._cos_allowed = np.cos(np.radians(np.clip(allowed, 0.0, 180.0)))
        self._cos_tight = np.cos(np.radians(np.clip(allowed - margin_deg, 0.0, 180.0)))
        self._margin_weight = margin_weight
        self._never = allowed < 0
        self._lo = math.radians(caps.el_min_deg)
        self._hi = math.radians(caps.el_max_deg)
        self._weight = error_weight
        self._bw_rad = math.radians(beamwidth_deg)
        self._block_start = -1
        self._block = np.empty((0, len(cells)))

    def row(self, k: int) -> FloatArray:
        """The cost row of step ``k`` (time weight included)."""
        if not self._block_start <= k < self._block_start + len(self._block):
            self._fill(k)
        return np.asarray(self._block[k - self._block_start], dtype=np.float64)

    def _fill(self, k0: int) -> None:
        k1 = min(len(self._t), k0 + _COST_BLOCK_ROWS)
        sl = slice(k0, k1)
        cos_d = self._cos_c[None, :] * self._cos_sa[sl, None] + (
            self._sin_c[None, :] * self._sin_sa[sl, None]
        )
        sin_se = self._sin_se[sl, None]
        cos_se = self._cos_se[sl, None]
        best = np.arctan2(sin_se, cos_se * cos_d)
        cos_err = np.sqrt(sin_se * sin_se + (cos_se * cos_d) ** 2)
        for limit, outside in ((self._lo, best < self._lo), (self._hi, best > self._hi)):
            if outside.any():
                clipped = math.sin(limit) * sin_se + math.cos(limit) * cos_se * cos_d
                cos_err = np.where(outside, clipped, cos_err)
        miss = (cos_err < self._cos_allowed[sl, None]) | self._never[sl, None]
        dt = np.empty(k1 - k0)
        t = self._t
        for i, k in enumerate(range(k0, k1)):
            dt[i] = t[k] - t[k - 1] if k > 0 else t[1] - t[0]
        cost = miss.astype(np.float64)
        if self._margin_weight > 0:
            # Staying a tracking error inside the limit is worth something: a plan that only
            # just keeps the link loses it to the real dynamics.
            cost += self._margin_weight * (cos_err < self._cos_tight[sl, None])
        if self._weight > 0:
            # 2 (1 - cos err) is err^2 for small errors; in beamwidths, capped at one.
            ratio2 = np.minimum(2.0 * (1.0 - cos_err) / (self._bw_rad * self._bw_rad), 1.0)
            cost += self._weight * ratio2
        self._block = cost * dt[:, None]
        self._block_start = k0


def _az_programme(
    t: FloatArray,
    sat_az: FloatArray,
    sat_el: FloatArray,
    allowed: FloatArray,
    caps: RotatorCapabilities,
    *,
    beamwidth_deg: float,
    az_step_deg: float,
    rate_fraction: float,
    error_weight: float,
    start_az_deg: float | None,
    start_reach_deg: float,
    keep_path: bool = True,
    margin_deg: float = 0.0,
    margin_weight: float = 0.0,
    az_window: tuple[float, float] | None = None,
) -> tuple[FloatArray | None, float]:
    """The azimuth path of least outage under the azimuth rate (dynamic programme).

    ``V[k](a)`` is the least cost of reaching azimuth cell ``a`` at ``t[k]``; a step may move at
    most ``rate * dt``. Cost per step: ``dt`` if the error (best elevation for the cell)
    exceeds ``allowed``, plus ``margin_weight * dt`` if it exceeds ``allowed - margin_deg``,
    plus ``error_weight / steps * dt * min(1, error/beamwidth)^2`` as a tie-break (together
    less than one step of outage). Returns the path (None unless ``keep_path``) and the least
    total cost.
    """
    # A grid on which one step of the slew rate is a whole number of cells, so the rate is
    # kept exactly (rounding the window down would slow the antenna by up to a cell a step).
    rate_step = rate_fraction * caps.az_rate_deg_s * float(np.median(np.diff(t)))
    cells_per_step = max(1, round(rate_step / az_step_deg))
    az_step_deg = rate_step / cells_per_step
    az_lo, az_hi = az_window if az_window is not None else (caps.az_min_deg, caps.az_max_deg)
    cells = np.arange(az_lo, az_hi + _EPS, az_step_deg)
    n_t = len(t)
    # The tie-break never adds up to one step of outage over the whole pass.
    weight = error_weight / max(1, n_t)
    costs = _CellCost(
        cells,
        t,
        sat_az,
        sat_el,
        allowed,
        caps,
        beamwidth_deg,
        weight,
        margin_deg=margin_deg,
        margin_weight=margin_weight,
    )
    # Only the optimised plan needs the whole table (to trace the path back); the bound
    # keeps one row.
    values = np.empty((n_t if keep_path else 1, len(cells)), dtype=np.float64)
    first = costs.row(0)
    if start_az_deg is not None:
        reachable = np.abs(cells - start_az_deg) <= start_reach_deg + az_step_deg / 2
        if not reachable.any():
            reachable[int(np.argmin(np.abs(cells - start_az_deg)))] = True
        first = np.where(reachable, first, np.inf)
    values[0] = first
    halves: list[int] = [0]
    for k in range(1, n_t):
        dt = float(t[k] - t[k - 1])
        half = math.floor(rate_fraction * caps.az_rate_deg_s * dt / az_step_deg + 1e-6)
        halves.append(half)
        row = costs.row(k) + _sliding_min(values[k - 1 if keep_path else 0], half)
        values[k if keep_path else 0] = row
    total = float(values[-1].min())
    if not keep_path:
        return None, total
    path = np.empty(n_t)
    j = int(np.argmin(values[-1]))
    path[-1] = cells[j]
    for k in range(n_t - 1, 0, -1):
        half = halves[k]
        lo, hi = max(0, j - half), min(len(cells), j + half + 1)
        # Prefer staying put among equal predecessors (no needless motion).
        window = values[k - 1, lo:hi]
        best = float(window.min())
        choices = np.flatnonzero(window <= best + 1e-12) + lo
        j = int(choices[np.argmin(np.abs(choices - j))])
        path[k - 1] = cells[j]
    return path, total


def outage_lower_bound_s(
    track: SkyTrack,
    caps: RotatorCapabilities,
    *,
    beamwidth_deg: float,
    allowed_error_deg: FloatArray | float | None = None,
    step_s: float = 0.25,
    az_step_deg: float = 0.1,
) -> float:
    """The least outage (s) any antenna path can have on ``track`` under the azimuth slew rate.

    The same programme as the optimised plan, at the full rate, on a finer grid, with the
    elevation axis free (it may take the best elevation for each azimuth at once) and the
    antenna free to be anywhere at AOS: every relaxation lowers the figure, so it is a bound
    no tracker on this rotator can beat (up to the grid, ``az_step_deg/2`` of azimuth).
    """
    t = np.arange(track.aos_s, track.los_s + _EPS, step_s)
    if len(t) < 2:
        return 0.0
    az, el = track.directions(t)
    if allowed_error_deg is None:
        allowed = np.full(len(t), beamwidth_deg / 2)
    else:
        arr = np.asarray(allowed_error_deg, dtype=np.float64)
        allowed = np.full(len(t), float(arr)) if arr.ndim == 0 else np.interp(t, track.t_s, arr)
    _, total = _az_programme(
        t,
        az,
        el,
        allowed,
        caps,
        beamwidth_deg=beamwidth_deg,
        az_step_deg=az_step_deg,
        rate_fraction=1.0,
        error_weight=0.0,
        start_az_deg=None,
        start_reach_deg=0.0,
        keep_path=False,
    )
    return total
