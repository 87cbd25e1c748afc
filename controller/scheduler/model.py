"""The scheduling problem: a time grid, antennas with rotator models, satellites, windows.

Model (what "optimal" means)
----------------------------
* Time is discretised at ``resolution_s`` (the config's ``scheduler.resolution_s``):
  grid point ``k`` is ``start + k * resolution_s``. Tracks start and end on grid points,
  so every time in a plan is exact to one resolution step.
* A *window* is a stretch of one pass usable by one antenna: the grid points inside
  the pass (AOS..LOS over the station's horizon mask) where the elevation is at least
  the antenna's and the satellite's ``min_el_deg``, the antenna is available and its
  bands hold the satellite's downlink and uplink frequencies (a satellite without
  frequencies is served by every antenna).
* Each window carries a *pointing plan*: the whole window is tracked in one rotator
  configuration (azimuth unwrapped along the pass, shifted by a multiple of 360 deg so
  it stays inside the azimuth range, optionally flipped over the zenith as
  ``(az + 180, 180 - el)`` when the elevation axis reaches 180 deg). A window that fits
  the ranges in two ways (the 0..450 overlap) appears once per way, so the scheduler
  chooses the wrap side; a pass that fits in no single configuration is split where the
  rotator would have to unwind. The flip is used only when the unflipped pass does not
  fit (keyhole-aware pointing inside a track is the tracker's business).
* A track is a sub-interval of one window, at least the satellite's ``min_contact_s``
  (rounded up to whole steps, at least one step), worth ``weight * seconds``.
* Between two tracks on one antenna the gap covers ``post_pass_s + pre_pass_s`` plus
  the rotator's travel from the previous track's end configuration to the next
  satellite: each axis moves at once along a straight path in rotator coordinates
  (which is the shortest feasible path, the plans being inside the ranges) with a
  trapezoidal speed profile (``accel`` up to ``slew`` rate, then down). The antenna may
  reach the next satellite early and follow it until the track starts, so a start that
  is reachable stays reachable for the rest of that window. A handover always takes at
  least one step.
* The antenna starts at its park position (rotator coordinates) at the grid start and
  needs ``pre_pass_s`` plus travel before its first track.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from controller.orbit.frames import gmst82, teme_to_ecef
from controller.orbit.predictor import Pass, SatelliteLike, Station

__all__ = [
    "EPS_S",
    "Antenna",
    "Grid",
    "Plan",
    "PointingSource",
    "Problem",
    "Reservation",
    "RotatorModel",
    "Satellite",
    "SatellitePointing",
    "SchedulerInputError",
    "Settings",
    "Window",
    "antenna_serves",
    "antennas_from_config",
    "build_problem",
    "reservations_from_config",
    "satellites_from_config",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Travel comparisons allow this much rounding (seconds); far below any resolution.
EPS_S = 1e-6
_DAY_S = 86400.0
_UNIX_JD = 2440587.5


class SchedulerInputError(ValueError):
    """Input the scheduler cannot use; the message names the input, its value and the rule."""


def _utc(when: datetime, name: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise SchedulerInputError(f"{name} {when.isoformat()} is naive; pass an aware UTC time")
    return when.astimezone(UTC)


# -- rotator ---------------------------------------------------------------------------


def _axis_time_s(distance_deg: FloatArray, rate: float, accel: float) -> FloatArray:
    """Trapezoidal move time over ``distance_deg`` from rest to rest."""
    d = np.abs(distance_deg)
    knee = rate * rate / accel
    with np.errstate(invalid="ignore"):
        return np.where(d >= knee, d / rate + rate / accel, 2.0 * np.sqrt(d / accel))


def _axis_reach_deg(budget_s: float, rate: float, accel: float) -> float:
    """Largest distance one axis covers from rest to rest in ``budget_s`` (inverse of time)."""
    if budget_s < 0.0:
        return -1.0
    if budget_s >= 2.0 * rate / accel:
        return rate * (budget_s - rate / accel)
    return accel * (budget_s / 2.0) ** 2


class RotatorLike(Protocol):
    """The rotator fields of ``controller.config.RotatorConfig`` (read-only)."""

    @property
    def az_min_deg(self) -> float: ...
    @property
    def az_max_deg(self) -> float: ...
    @property
    def el_min_deg(self) -> float: ...
    @property
    def el_max_deg(self) -> float: ...
    @property
    def slew_az_deg_s(self) -> float: ...
    @property
    def slew_el_deg_s(self) -> float: ...
    @property
    def accel_az_deg_s2(self) -> float: ...
    @property
    def accel_el_deg_s2(self) -> float: ...


@dataclass(frozen=True)
class RotatorModel:
    """Ranges (rotator coordinates, overlap included) and per-axis rate and acceleration."""

    az_min_deg: float = 0.0
    az_max_deg: float = 360.0
    el_min_deg: float = 0.0
    el_max_deg: float = 90.0
    slew_az_deg_s: float = 5.0
    slew_el_deg_s: float = 5.0
    accel_az_deg_s2: float = 10.0
    accel_el_deg_s2: float = 10.0

    def __post_init__(self) -> None:
        for name in ("slew_az_deg_s", "slew_el_deg_s", "accel_az_deg_s2", "accel_el_deg_s2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SchedulerInputError(f"rotator {name} = {value!r}: must be > 0")
        if not self.az_min_deg < self.az_max_deg:
            raise SchedulerInputError(
                f"rotator az range {self.az_min_deg}..{self.az_max_deg} deg is empty"
            )
        if not self.el_min_deg < self.el_max_deg:
            raise SchedulerInputError(
                f"rotator el range {self.el_min_deg}..{self.el_max_deg} deg is empty"
            )

    @classmethod
    def from_config(cls, rot: RotatorLike) -> RotatorModel:
        """The model of a config ``[antennas.rotator]`` table."""
        return cls(
            rot.az_min_deg,
            rot.az_max_deg,
            rot.el_min_deg,
            rot.el_max_deg,
            rot.slew_az_deg_s,
            rot.slew_el_deg_s,
            rot.accel_az_deg_s2,
            rot.accel_el_deg_s2,
        )

    def travel_s(
        self,
        az1_deg: FloatArray | float,
        el1_deg: FloatArray | float,
        az2_deg: FloatArray | float,
        el2_deg: FloatArray | float,
    ) -> FloatArray:
        """Time to move between two configurations (rotator coordinates), axes at once."""
        t_az = _axis_time_s(
            np.asarray(az2_deg, dtype=float) - az1_deg, self.slew_az_deg_s, self.accel_az_deg_s2
        )
        t_el = _axis_time_s(
            np.asarray(el2_deg, dtype=float) - el1_deg, self.slew_el_deg_s, self.accel_el_deg_s2
        )
        return np.maximum(t_az, t_el)

    def reach_deg(self, budget_s: float) -> tuple[float, float]:
        """How far (az, el) the axes move in ``budget_s``; -1 when the budget is negative."""
        return (
            _axis_reach_deg(budget_s, self.slew_az_deg_s, self.accel_az_deg_s2),
            _axis_reach_deg(budget_s, self.slew_el_deg_s, self.accel_el_deg_s2),
        )

    @property
    def max_travel_s(self) -> float:
        """The longest move inside the ranges."""
        return float(
            self.travel_s(self.az_min_deg, self.el_min_deg, self.az_max_deg, self.el_max_deg)
        )

    @property
    def can_flip(self) -> bool:
        """True when the elevation axis goes past the zenith."""
        return self.el_max_deg > 90.0

    def offsets(self, lo_deg: float, hi_deg: float) -> list[float]:
        """Multiples of 360 that put an azimuth path spanning lo..hi inside the range."""
        n0 = math.ceil((self.az_min_deg - lo_deg) / 360.0 - 1e-9)
        n1 = math.floor((self.az_max_deg - hi_deg) / 360.0 + 1e-9)
        return [360.0 * n for n in range(n0, n1 + 1)]

    def plans_for(
        self, lo_az_deg: float, hi_az_deg: float, lo_el_deg: float, hi_el_deg: float
    ) -> list[Plan]:
        """The (at most two) plans for an unwrapped path; flipped only if nothing else fits."""
        found: list[Plan] = []
        if self.el_min_deg - 1e-9 <= lo_el_deg and hi_el_deg <= self.el_max_deg + 1e-9:
            found = [Plan(off, False) for off in self.offsets(lo_az_deg, hi_az_deg)]
        if not found and (
            self.el_min_deg - 1e-9 <= 180.0 - hi_el_deg
            and 180.0 - lo_el_deg <= self.el_max_deg + 1e-9
        ):
            found = [Plan(off, True) for off in self.offsets(lo_az_deg + 180.0, hi_az_deg + 180.0)]
        if len(found) > 2:
            # The two extremes leave the most room on either side of the overlap.
            found = [found[0], found[-1]]
        return found

    def configurations(self, az_deg: float, el_deg: float) -> list[tuple[float, float]]:
        """Every rotator configuration pointing at the direction (az 0..360, el 0..90)."""
        out: list[tuple[float, float]] = []
        for flip in (False, True):
            a = az_deg % 360.0 + (180.0 if flip else 0.0)
            e = 180.0 - el_deg if flip else el_deg
            if not self.el_min_deg - 1e-9 <= e <= self.el_max_deg + 1e-9:
                continue
            out.extend((a + off, e) for off in self.offsets(a, a))
        return out

    def shortest_travel_s(self, az1: float, el1: float, az2: float, el2: float) -> float:
        """Shortest move between two directions over all their configurations in range."""
        best = math.inf
        for a1, e1 in self.configurations(az1, el1):
            for a2, e2 in self.configurations(az2, el2):
                best = min(best, float(self.travel_s(a1, e1, a2, e2)))
        return best


@dataclass(frozen=True)
class Plan:
    """How a window is pointed: rotator az = unwrapped az (+180 if flipped) + offset."""

    az_offset_deg: float
    flipped: bool

    def to_json(self) -> dict[str, object]:
        """The plan as in the schedule JSON."""
        return {"az_offset_deg": self.az_offset_deg, "flip": self.flipped}


# -- inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Scheduler-wide settings (``[scheduler]`` in the config)."""

    resolution_s: float = 10.0
    pre_pass_s: float = 30.0
    post_pass_s: float = 10.0
    one_antenna_per_satellite: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.resolution_s) and self.resolution_s > 0):
            raise SchedulerInputError(
                f"scheduler.resolution_s = {self.resolution_s!r}: must be > 0 seconds"
            )
        for name in ("pre_pass_s", "post_pass_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SchedulerInputError(f"scheduler.{name} = {value!r}: must be >= 0 seconds")

    @classmethod
    def from_config(cls, sched: Any) -> Settings:
        """Settings from a ``SchedulerConfig``."""
        return cls(
            float(sched.resolution_s),
            float(sched.pre_pass_s),
            float(sched.post_pass_s),
            bool(sched.one_antenna_per_satellite),
        )

    @property
    def setup_s(self) -> float:
        """Set-up time between two tracks, travel excluded."""
        return self.pre_pass_s + self.post_pass_s


@dataclass(frozen=True)
class Antenna:
    """One antenna of one station, as the scheduler sees it."""

    station_id: str
    antenna_id: str
    rotator: RotatorModel
    min_el_deg: float = 0.0
    bands_hz: tuple[tuple[float, float], ...] = ((1.0, 1e12),)
    unavailable: tuple[tuple[datetime, datetime], ...] = ()
    park_az_deg: float = 0.0
    park_el_deg: float = 90.0

    def __post_init__(self) -> None:
        if not self.bands_hz:
            raise SchedulerInputError(
                f"antenna {self.key}: bands_hz is empty, so it can serve no satellite; "
                "give at least one [low_hz, high_hz] band"
            )
        for lo, hi in self.bands_hz:
            if not (0 < lo < hi):
                raise SchedulerInputError(
                    f"antenna {self.key}: band [{lo}, {hi}] Hz: need 0 < low < high"
                )
        if not (
            self.rotator.az_min_deg <= self.park_az_deg <= self.rotator.az_max_deg
            and self.rotator.el_min_deg <= self.park_el_deg <= self.rotator.el_max_deg
        ):
            raise SchedulerInputError(
                f"antenna {self.key}: park ({self.park_az_deg}, {self.park_el_deg}) deg is "
                "outside the rotator ranges"
            )

    @property
    def key(self) -> str:
        """``station/antenna``, unique in a problem."""
        return f"{self.station_id}/{self.antenna_id}"


@dataclass(frozen=True)
class Satellite:
    """What is wanted from one satellite."""

    norad_id: int
    name: str
    weight: float = 1.0
    min_contact_s: float = 60.0
    min_el_deg: float = 0.0
    max_contacts_per_day: int | None = None
    required_contacts_per_day: int = 0
    downlink_hz: float | None = None
    uplink_hz: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise SchedulerInputError(
                f"satellite {self.norad_id}: weight {self.weight!r} must be >= 0"
            )
        if not (math.isfinite(self.min_contact_s) and self.min_contact_s >= 0):
            raise SchedulerInputError(
                f"satellite {self.norad_id}: min_contact_s {self.min_contact_s!r} must be >= 0"
            )
        if self.max_contacts_per_day is not None and self.max_contacts_per_day < 1:
            raise SchedulerInputError(
                f"satellite {self.norad_id}: max_contacts_per_day "
                f"{self.max_contacts_per_day!r} must be >= 1 (or unset)"
            )

    @property
    def frequencies_hz(self) -> tuple[float, ...]:
        """The frequencies an antenna must cover (none: any antenna will do)."""
        return tuple(f for f in (self.downlink_hz, self.uplink_hz) if f is not None)


@dataclass(frozen=True)
class Reservation:
    """A track fixed by an operator (or kept from the previous plan): never moved."""

    station_id: str
    antenna_id: str
    norad_id: int
    start: datetime
    end: datetime
    kind: str = "reservation"
    plan: Plan | None = None
    end_az_deg: float | None = None
    """With ``plan``: the rotator azimuth at ``end``, fixing the wrap side (re-planning)."""

    @property
    def antenna_key(self) -> str:
        """``station/antenna`` of the reserved antenna."""
        return f"{self.station_id}/{self.antenna_id}"


def antenna_serves(antenna: Antenna, satellite: Satellite) -> bool:
    """True when every frequency of the satellite falls inside one of the antenna's bands."""
    return all(any(lo <= f <= hi for lo, hi in antenna.bands_hz) for f in satellite.frequencies_hz)


@dataclass(frozen=True)
class Grid:
    """The time grid: point ``k`` is ``start + k * resolution_s``, k = 0..n_steps."""

    start: datetime
    resolution_s: float
    n_steps: int

    def time(self, k: int) -> datetime:
        """Aware UTC time of grid point ``k``."""
        return self.start + timedelta(seconds=k * self.resolution_s)

    def offset_s(self, when: datetime) -> float:
        """Seconds from the grid start."""
        return (when - self.start).total_seconds()

    def ceil(self, when: datetime) -> int:
        """First grid point at or after ``when``."""
        return math.ceil(self.offset_s(when) / self.resolution_s - 1e-9)

    def floor(self, when: datetime) -> int:
        """Last grid point at or before ``when``."""
        return math.floor(self.offset_s(when) / self.resolution_s + 1e-9)

    @property
    def end(self) -> datetime:
        """The last grid point."""
        return self.time(self.n_steps)


@dataclass(eq=False)
class Window:
    """Grid points ``first..last`` of one pass usable by one antenna under one plan."""

    antenna: int
    sat: int
    first: int
    az_rot_deg: FloatArray
    el_rot_deg: FloatArray
    plan: Plan
    pass_aos: datetime
    pass_los: datetime
    max_el_deg: float
    min_steps: int
    kind: str = "pass"

    @property
    def last(self) -> int:
        """Last usable grid point (inclusive)."""
        return self.first + len(self.az_rot_deg) - 1

    @property
    def fixed(self) -> bool:
        """True for reservations and kept tracks: tracked exactly first..last."""
        return self.kind != "pass"

    def for_antenna(self, antenna: int) -> Window:
        """The same window on an identical antenna (arrays shared, not copied)."""
        # Tens of thousands of these per identical antenna: copying the instance dict
        # is about twice as fast as running the dataclass __init__, and assigning the
        # copy as the new instance's dict twice as fast again as updating it (measured).
        twin = object.__new__(Window)
        attrs = self.__dict__.copy()
        attrs["antenna"] = antenna
        twin.__dict__ = attrs
        return twin

    def pointing(self, k: int) -> tuple[float, float]:
        """Rotator (az, el) at grid point ``k``."""
        i = k - self.first
        return float(self.az_rot_deg[i]), float(self.el_rot_deg[i])


@dataclass
class Problem:
    """Everything the solvers need; built by :func:`build_problem` or by hand in tests."""

    grid: Grid
    settings: Settings
    antennas: list[Antenna]
    satellites: list[Satellite]
    windows: list[Window]
    warnings: list[str] = field(default_factory=list)
    # Tie-break for re-planning: (antenna index, norad id) -> set of grid steps k whose
    # interval [k, k+1] was tracked before; each kept step is worth `keep_bonus`.
    keep_steps: dict[tuple[int, int], set[int]] = field(default_factory=dict)
    keep_bonus: float = 0.0

    def __post_init__(self) -> None:
        keys = [a.key for a in self.antennas]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise SchedulerInputError(f"antenna keys must be unique; repeated: {', '.join(dup)}")
        if not self.antennas:
            raise SchedulerInputError("no antennas: nothing can be scheduled")
        ids = [s.norad_id for s in self.satellites]
        if len(set(ids)) != len(ids):
            raise SchedulerInputError("satellites must have unique NORAD ids")
        self.sat_index = {s.norad_id: i for i, s in enumerate(self.satellites)}

    @property
    def setup_steps(self) -> int:
        """Fewest grid steps of any handover (set-up only, at least one)."""
        r = self.grid.resolution_s
        return max(1, math.ceil(self.settings.setup_s / r - 1e-9))

    def handover_steps(self, antenna: int, travel_s: float | FloatArray) -> IntArray:
        """Grid steps a handover needs for a given travel (set-up included, >= 1)."""
        r = self.grid.resolution_s
        need = (self.settings.setup_s + np.asarray(travel_s, dtype=float) - EPS_S) / r
        return np.maximum(1, np.ceil(need)).astype(np.int64)

    def far_steps(self, antenna: int) -> int:
        """Lag after which any handover on this antenna is feasible (longest travel)."""
        rot = self.antennas[antenna].rotator
        return int(self.handover_steps(antenna, rot.max_travel_s))

    def initial_far_steps(self, antenna: int) -> int:
        """Steps after the start by which any window is reachable from park."""
        rot = self.antennas[antenna].rotator
        r = self.grid.resolution_s
        return max(0, math.ceil((self.settings.pre_pass_s + rot.max_travel_s - EPS_S) / r))

    def day_of(self, k: int) -> int:
        """UTC calendar day index (days since 1970-01-01) of grid point ``k``."""
        return int(self.grid.time(k).timestamp() // _DAY_S)

    def step_value(self, window: Window) -> float:
        """Plain value of one tracked step of ``window`` (weight x resolution)."""
        return self.satellites[window.sat].weight * self.grid.resolution_s


# -- pointing ----------------------------------------------------------------------------


class PointingSource(Protocol):
    """Look angles of satellites from a station at given offsets from a reference time."""

    def sample(
        self, station: Station, norad_id: int, offsets_s: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """(az_deg in 0..360, el_deg) of ``norad_id`` at ``ref + offsets_s``."""
        ...


class SatellitePointing:
    """SGP4 look angles, evaluated on a coarse grid and interpolated (cubic Hermite).

    Why interpolate: a week of 10-second grid points for a few hundred satellites is
    over a million SGP4 calls; the topocentric position is smooth, and a cubic Hermite
    through 120-second samples with their velocities is within about 1e-3 deg of the
    direct evaluation, far below any antenna beamwidth.
    """

    def __init__(
        self, satellites: Sequence[SatelliteLike], ref: datetime, *, coarse_step_s: float = 120.0
    ) -> None:
        self._sats = {s.norad_id: s for s in satellites}
        self.ref = _utc(ref, "ref")
        self.coarse_step_s = float(coarse_step_s)
        unix_s = (self.ref - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
        days, frac = divmod(unix_s / _DAY_S, 1.0)
        self._jd0 = _UNIX_JD + days
        self._fr0 = frac

    def sample(
        self, station: Station, norad_id: int, offsets_s: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """(az_deg, el_deg) at ``ref + offsets_s``."""
        return self.sample_batch(station, [(norad_id, np.asarray(offsets_s, dtype=float))])[0]

    def sample_batch(
        self, station: Station, requests: Sequence[tuple[int, FloatArray]]
    ) -> list[tuple[FloatArray, FloatArray]]:
        """Several satellites at once: one frame rotation and interpolation for all."""
        h = self.coarse_step_s
        node_fr: list[FloatArray] = []
        node_r: list[FloatArray] = []
        node_v: list[FloatArray] = []
        point_node: list[IntArray] = []
        point_u: list[FloatArray] = []
        base = 0
        for norad_id, offsets in requests:
            t = np.asarray(offsets, dtype=np.float64)
            try:
                sat = self._sats[norad_id]
            except KeyError:
                raise SchedulerInputError(f"satellite {norad_id} has no orbital elements") from None
            if t.size == 0:
                point_node.append(np.empty(0, dtype=np.int64))
                point_u.append(np.empty(0))
                continue
            q = np.floor(t / h).astype(np.int64)
            q0 = int(q.min())
            used = np.zeros(int(q.max()) - q0 + 2, dtype=bool)
            used[q - q0] = True
            used[q - q0 + 1] = True
            nodes = np.flatnonzero(used) + q0
            fr = np.asarray(self._fr0 + nodes * h / _DAY_S, dtype=np.float64)
            _err, r, v = sat.satrec.sgp4_array(np.full(len(fr), self._jd0), fr)
            node_fr.append(fr)
            node_r.append(np.asarray(r))
            node_v.append(np.asarray(v))
            point_node.append(base + np.searchsorted(nodes, q))
            point_u.append((t - q * h) / h)
            base += len(nodes)
        if base == 0:
            return [(np.empty(0), np.empty(0)) for _ in requests]
        fr_all = np.concatenate(node_fr)
        theta, theta_dot = gmst82(np.full(len(fr_all), self._jd0), fr_all)
        r_e, v_e = teme_to_ecef(np.concatenate(node_r), np.concatenate(node_v), theta, theta_dot)
        site = station.site
        axes = site.enu_axes
        # East, north, up of the position and of the velocity (per coarse step), one
        # contiguous array per axis: the (N, 3) @ (3, 3) products and the interpolation
        # of (N, 3) rows took about twice as long (measured).
        rel = r_e - site.ecef_km
        rx, ry, rz = rel[:, 0].copy(), rel[:, 1].copy(), rel[:, 2].copy()
        vx, vy, vz = v_e[:, 0].copy(), v_e[:, 1].copy(), v_e[:, 2].copy()
        i0 = np.concatenate(point_node)
        i1 = i0 + 1
        u = np.concatenate(point_u)
        u2 = u * u
        u3 = u2 * u
        h01 = 3 * u2 - 2 * u3
        h00 = 1 - h01
        h10 = u3 - 2 * u2 + u
        h11 = u3 - u2
        enu: list[FloatArray] = []
        for ax in axes:
            rho = rx * ax[0] + ry * ax[1] + rz * ax[2]
            rho_dot = (vx * ax[0] + vy * ax[1] + vz * ax[2]) * h
            enu.append(h00 * rho[i0] + h10 * rho_dot[i0] + h01 * rho[i1] + h11 * rho_dot[i1])
        e, n, up = enu
        az = np.degrees(np.arctan2(e, n)) % 360.0
        el = np.degrees(np.arctan2(up, np.hypot(e, n)))
        out: list[tuple[FloatArray, FloatArray]] = []
        k = 0
        for _norad, offsets in requests:
            m = len(offsets)
            out.append((az[k : k + m], el[k : k + m]))
            k += m
        return out


# -- building the problem ----------------------------------------------------------------


def antennas_from_config(
    station_id: str, antennas: Sequence[Any], *, source: str = "config"
) -> list[Antenna]:
    """Scheduler antennas from ``[[antennas]]`` config tables of one station."""
    out: list[Antenna] = []
    for i, cfg in enumerate(antennas):
        where = f"{source}: antennas[{i}] (id {cfg.id!r})"
        if not cfg.bands_hz:
            raise SchedulerInputError(
                f"{where}: bands_hz is empty, so the antenna has no capabilities; give at "
                "least one [low_hz, high_hz] band"
            )
        try:
            out.append(
                Antenna(
                    station_id=station_id,
                    antenna_id=cfg.id,
                    rotator=RotatorModel.from_config(cfg.rotator),
                    min_el_deg=float(cfg.min_el_deg),
                    bands_hz=tuple((float(lo), float(hi)) for lo, hi in cfg.bands_hz),
                    unavailable=tuple(
                        (_utc(w.start, "unavailable.start"), _utc(w.end, "unavailable.end"))
                        for w in cfg.unavailable
                    ),
                    park_az_deg=float(cfg.rotator.park_az_deg),
                    park_el_deg=float(cfg.rotator.park_el_deg),
                )
            )
        except SchedulerInputError as exc:
            raise SchedulerInputError(f"{where}: {exc}") from exc
    return out


def satellites_from_config(
    catalog: Iterable[SatelliteLike],
    configured: Sequence[Any],
    *,
    default_weight: float = 1.0,
    source: str = "config",
) -> list[Satellite]:
    """One :class:`Satellite` per catalog entry, with the configured weights and limits.

    A configured satellite that is not in the catalog is an error (a typo in the
    priorities would otherwise silently drop a satellite).
    """
    entries = list(catalog)
    known = {e.norad_id: e for e in entries}
    by_id: dict[int, Any] = {}
    for i, cfg in enumerate(configured):
        # A range entry's satellites are named by the entry in the file, not a list index.
        entry = getattr(cfg, "entry", None) or f"satellites[{i}]"
        if cfg.norad_id not in known:
            raise SchedulerInputError(
                f"{source}: {entry}.norad_id = {cfg.norad_id}: not in the catalog "
                f"({len(known)} satellites loaded); check the id or add its TLE file"
            )
        if cfg.norad_id in by_id:
            raise SchedulerInputError(f"{source}: {entry}.norad_id = {cfg.norad_id}: listed twice")
        by_id[cfg.norad_id] = cfg
    out: list[Satellite] = []
    for e in entries:
        cfg = by_id.get(e.norad_id)
        if cfg is None:
            out.append(Satellite(e.norad_id, e.name, weight=default_weight))
            continue
        out.append(
            Satellite(
                e.norad_id,
                e.name,
                weight=float(cfg.weight),
                min_contact_s=float(cfg.min_contact_s),
                min_el_deg=float(cfg.min_el_deg),
                max_contacts_per_day=cfg.max_contacts_per_day,
                required_contacts_per_day=int(cfg.required_contacts_per_day),
                downlink_hz=cfg.downlink_hz,
                uplink_hz=cfg.uplink_hz,
            )
        )
    return out


def reservations_from_config(station_id: str, reservations: Sequence[Any]) -> list[Reservation]:
    """Reservations of ``[scheduler] reservations`` for one station."""
    return [
        Reservation(
            station_id,
            r.antenna,
            int(r.norad_id),
            _utc(r.start, "reservation start"),
            _utc(r.end, "reservation end"),
        )
        for r in reservations
    ]


def _min_steps(min_contact_s: float, resolution_s: float) -> int:
    return max(1, math.ceil(min_contact_s / resolution_s - 1e-9))


def _unwrap_deg(az_deg: FloatArray) -> FloatArray:
    """Continuous azimuth along a pass, starting inside 0..360."""
    if len(az_deg) == 0:
        return az_deg
    step = (np.diff(az_deg) + 180.0) % 360.0 - 180.0
    return np.concatenate(([az_deg[0] % 360.0], (az_deg[0] % 360.0) + np.cumsum(step)))


def _split_by_plans(
    rot: RotatorModel, az_u: FloatArray, el: FloatArray
) -> list[tuple[int, int, list[Plan]]]:
    """Cut a path into the longest pieces that fit some plan: (start, stop, plans)."""
    whole = rot.plans_for(float(az_u.min()), float(az_u.max()), float(el.min()), float(el.max()))
    if whole:
        return [(0, len(az_u), whole)]
    pieces: list[tuple[int, int, list[Plan]]] = []
    s = 0
    n = len(az_u)
    while s < n:
        lo_a = np.minimum.accumulate(az_u[s:])
        hi_a = np.maximum.accumulate(az_u[s:])
        lo_e = np.minimum.accumulate(el[s:])
        hi_e = np.maximum.accumulate(el[s:])
        # The prefix that fits shrinks as it grows, so the longest one is found by bisection.
        lo_i, hi_i = 0, len(lo_a)
        while lo_i < hi_i:
            mid = (lo_i + hi_i) // 2
            ok = rot.plans_for(
                float(lo_a[mid]), float(hi_a[mid]), float(lo_e[mid]), float(hi_e[mid])
            )
            if ok:
                lo_i = mid + 1
            else:
                hi_i = mid
        if lo_i == 0:
            s += 1  # this direction is out of reach of the rotator: skip the point
            continue
        t = s + lo_i
        plans = rot.plans_for(
            float(lo_a[lo_i - 1]),
            float(hi_a[lo_i - 1]),
            float(lo_e[lo_i - 1]),
            float(hi_e[lo_i - 1]),
        )
        pieces.append((s, t, plans))
        s = t
    return pieces


def _plan_coords(plan: Plan, az_u: FloatArray, el: FloatArray) -> tuple[FloatArray, FloatArray]:
    if plan.flipped:
        return az_u + 180.0 + plan.az_offset_deg, 180.0 - el
    return az_u + plan.az_offset_deg, el.copy()


def _plans_coords(
    specs: Sequence[tuple[int, int, Plan, int, Pass, int]], az_u: FloatArray, el: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """:func:`_plan_coords` of every ``(lo, hi, plan, ...)`` stretch of ``az_u, el``, one
    after the other in two arrays (the same additions in the same order, so the same
    values)."""
    if not specs:
        return np.empty(0), np.empty(0)
    lo = np.array([sp[0] for sp in specs], dtype=np.int64)
    lens = np.array([sp[1] - sp[0] for sp in specs], dtype=np.int64)
    flipped = np.array([sp[2].flipped for sp in specs], dtype=bool)
    offset = np.array([sp[2].az_offset_deg for sp in specs], dtype=np.float64)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    idx = np.repeat(lo - starts, lens) + np.arange(int(lens.sum()))
    flip_pt = np.repeat(flipped, lens)
    # (az + 180) + offset when flipped, az + offset otherwise (adding 0.0 is exact).
    az_out = az_u[idx] + np.where(flip_pt, 180.0, 0.0)
    az_out += np.repeat(offset, lens)
    el_pt = el[idx]
    el_out = np.where(flip_pt, 180.0 - el_pt, el_pt)
    return az_out, el_out


def _available(
    antenna: Antenna, grid: Grid, steps: IntArray
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per grid point: usable; per interval k..k+1: joinable (no maintenance inside)."""
    t = steps * grid.resolution_s
    point_ok = np.ones(len(steps), dtype=bool)
    join_ok = np.ones(len(steps), dtype=bool)
    for u0, u1 in antenna.unavailable:
        a = grid.offset_s(u0)
        b = grid.offset_s(u1)
        point_ok &= ~((t > a) & (t < b))
        join_ok &= ~((t < b) & (t + grid.resolution_s > a))
    return point_ok, join_ok


def _station_windows(
    windows: list[Window],
    grid: Grid,
    station: Station,
    ants: Sequence[tuple[int, Antenna]],
    satellites: Sequence[Satellite],
    sat_index: Mapping[int, int],
    passes: Sequence[Pass],
    pointing: PointingSource,
) -> None:
    """Windows of one station's passes for each of its antennas (vectorised per pass set)."""
    r = grid.resolution_s
    chosen: list[tuple[Pass, int, int, int]] = []
    served = [any(antenna_serves(a, s) for _, a in ants) for s in satellites]
    usable = [
        (p, sat_index[p.norad_id])
        for p in passes
        if p.norad_id in sat_index and served[sat_index[p.norad_id]]
    ]
    if not usable:
        return
    origin = grid.start
    aos = np.array([(p.aos - origin).total_seconds() for p, _ in usable]) / r
    los = np.array([(p.los - origin).total_seconds() for p, _ in usable]) / r
    k0s_all = np.maximum(0, np.ceil(aos - 1e-9)).astype(np.int64)
    k1s_all = np.minimum(grid.n_steps, np.floor(los + 1e-9)).astype(np.int64)
    for (p, si), k0, k1 in zip(usable, k0s_all.tolist(), k1s_all.tolist(), strict=True):
        if k1 - k0 >= 1:
            chosen.append((p, si, k0, k1))
    if not chosen:
        return
    # Sample every pass of a satellite in one call (one SGP4 batch per satellite):
    # passes are ordered by satellite so each one's points are contiguous.
    chosen.sort(key=lambda c: (c[1], c[2]))
    k0s = np.array([c[2] for c in chosen], dtype=np.int64)
    lengths = np.array([c[3] - c[2] + 1 for c in chosen], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    total = int(offsets[-1])
    pass_id = np.repeat(np.arange(len(chosen)), lengths)
    steps = k0s[pass_id] + (np.arange(total) - offsets[:-1][pass_id])
    az = np.empty(total)
    el = np.empty(total)
    sat_of_pass = np.array([c[1] for c in chosen], dtype=np.int64)
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(sat_of_pass)) + 1, [len(chosen)]))
    spans = [
        (int(offsets[q0]), int(offsets[q1]), satellites[int(sat_of_pass[q0])].norad_id)
        for q0, q1 in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)
    ]
    times = steps.astype(np.float64) * r
    batch = getattr(pointing, "sample_batch", None)
    if batch is not None:
        # One frame rotation and interpolation for every satellite at once.
        got = batch(station, [(norad, times[lo:hi]) for lo, hi, norad in spans])
        for (lo, hi, _), (a_s, e_s) in zip(spans, got, strict=True):
            az[lo:hi], el[lo:hi] = a_s, e_s
    else:
        for lo, hi, norad in spans:
            az[lo:hi], el[lo:hi] = pointing.sample(station, norad, times[lo:hi])
    # Unwrap azimuth along each pass at once: wrapped differences, reset at pass starts.
    d = np.zeros(total)
    d[1:] = (np.diff(az) + 180.0) % 360.0 - 180.0
    d[offsets[:-1]] = 0.0
    c = np.cumsum(d)
    az_u = (az[offsets[:-1]] % 360.0)[pass_id] + c - c[offsets[:-1]][pass_id]
    starts_mask = np.zeros(total, dtype=bool)
    starts_mask[offsets[:-1]] = True
    # Tens of thousands of windows share a handful of unflipped plans.
    plan_cache: dict[tuple[float, bool], Plan] = {}

    def _plan(offset_deg: float, flipped: bool = False) -> Plan:
        plan = plan_cache.get((offset_deg, flipped))
        if plan is None:
            plan = plan_cache[(offset_deg, flipped)] = Plan(offset_deg, flipped)
        return plan

    min_el_sat = np.array([s.min_el_deg for s in satellites])
    min_steps_sat = np.array([_min_steps(s.min_contact_s, r) for s in satellites])
    done: dict[tuple[object, ...], list[Window]] = {}
    for ai, ant in ants:
        # Identical antennas (same rotator, limits, bands, availability) share windows.
        sig = (ant.rotator, ant.min_el_deg, ant.bands_hz, ant.unavailable)
        if sig in done:
            windows.extend(w.for_antenna(ai) for w in done[sig])
            continue
        mark = len(windows)
        serves_sat = np.array([antenna_serves(ant, s) for s in satellites])
        thr = np.maximum(ant.min_el_deg, min_el_sat[sat_of_pass])
        ok = (el >= thr[pass_id] - 1e-9) & serves_sat[sat_of_pass][pass_id]
        point_ok, join_ok = _available(ant, grid, steps)
        ok &= point_ok
        # A run breaks at pass starts and where maintenance cuts between two points.
        brk = starts_mask.copy()
        brk[1:] |= ~join_ok[:-1]
        run_start = ok & (brk | np.concatenate(([True], ~ok[:-1])))
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            continue
        run_id = np.cumsum(run_start)[idx]
        cut = np.flatnonzero(np.diff(run_id)) + 1
        seg = np.concatenate(([0], cut))
        r_first = idx[seg]
        r_stop = idx[np.concatenate((cut - 1, [len(idx) - 1]))] + 1
        pid = pass_id[r_first]
        si_run = sat_of_pass[pid]
        m_run = min_steps_sat[si_run]
        keep = r_stop - r_first - 1 >= m_run
        lo_a = np.minimum.reduceat(az_u[idx], seg)
        hi_a = np.maximum.reduceat(az_u[idx], seg)
        lo_e = np.minimum.reduceat(el[idx], seg)
        hi_e = np.maximum.reduceat(el[idx], seg)
        rot = ant.rotator
        # The common case, vectorised: the unflipped path fits at some 360 offsets.
        n0 = np.ceil((rot.az_min_deg - lo_a) / 360.0 - 1e-9)
        n1 = np.floor((rot.az_max_deg - hi_a) / 360.0 + 1e-9)
        el_fits = (lo_e >= rot.el_min_deg - 1e-9) & (hi_e <= rot.el_max_deg + 1e-9)
        simple = el_fits & (n1 >= n0)
        # Next (as in RotatorModel.plans_for): the whole path flipped over the zenith.
        f0 = np.ceil((rot.az_min_deg - (lo_a + 180.0)) / 360.0 - 1e-9)
        f1 = np.floor((rot.az_max_deg - (hi_a + 180.0)) / 360.0 + 1e-9)
        flip = (
            ~simple
            & (rot.el_min_deg - 1e-9 <= 180.0 - hi_e)
            & (180.0 - lo_e <= rot.el_max_deg + 1e-9)
            & (f1 >= f0)
        )
        lo_off = np.where(simple, n0, f0).tolist()
        hi_off = np.where(simple, n1, f1).tolist()
        one_plan = (simple | flip).tolist()
        flip_l = flip.tolist()
        first_l, stop_l = r_first.tolist(), r_stop.tolist()
        si_l, m_l, pid_l = si_run.tolist(), m_run.tolist(), pid.tolist()
        specs: list[tuple[int, int, Plan, int, Pass, int]] = []
        for q in np.flatnonzero(keep).tolist():
            b0, b1 = first_l[q], stop_l[q]
            si = si_l[q]
            m = m_l[q]
            if one_plan[q]:
                lo_n, hi_n = int(lo_off[q]), int(hi_off[q])
                pl_list = [_plan(360.0 * lo_n, flip_l[q])]
                if hi_n > lo_n:
                    pl_list.append(_plan(360.0 * hi_n, flip_l[q]))
                pieces = [(0, b1 - b0, pl_list)]
            else:
                pieces = _split_by_plans(rot, az_u[b0:b1], el[b0:b1])
            p = chosen[pid_l[q]][0]
            for s0, t0, pl in pieces:
                if t0 - s0 - 1 < m:
                    continue
                for plan in pl:
                    specs.append((b0 + s0, b0 + t0, plan, si, p, m))
        # Every window's rotator coordinates in one vectorised pass; each window holds
        # its stretch as a view (instead of a small array pair made per window: the
        # bench's four-antenna build 0.70 -> 0.65 s CPU, median of 7 interleaved builds,
        # the same windows bit for bit; measured).
        az_all, el_all = _plans_coords(specs, az_u, el)
        pos = 0
        for lo, hi, plan, si, p, m in specs:
            n = hi - lo
            windows.append(
                Window(
                    ai,
                    si,
                    int(steps[lo]),
                    az_all[pos : pos + n],
                    el_all[pos : pos + n],
                    plan,
                    p.aos,
                    p.los,
                    p.max_el_deg,
                    m,
                )
            )
            pos += n
        specs.clear()
        done[sig] = windows[mark:]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while the windows are made.

    Tens of thousands of new windows (and their arrays) trigger many collections, each
    walking every live object; windows form no reference cycles, so pausing loses
    nothing (the collector runs as usual afterwards). Building the bench's 7-day,
    four-antenna problem: median CPU 0.78 s instead of 0.97 s (5 interleaved builds
    each, measured).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_problem(
    *,
    start: datetime,
    end: datetime,
    settings: Settings,
    antennas: Sequence[Antenna],
    satellites: Sequence[Satellite],
    stations: Mapping[str, Station],
    passes: Mapping[str, Sequence[Pass]],
    pointing: PointingSource,
    reservations: Sequence[Reservation] = (),
) -> Problem:
    """Candidate windows of every (antenna, pass) over ``start..end``, plus reservations.

    ``passes`` maps a station id to the predictor's passes over that station (any window
    covering the horizon; passes are clipped to it). ``pointing`` samples look angles
    relative to ``start``.
    """
    start = _utc(start, "start")
    end = _utc(end, "end")
    span_s = (end - start).total_seconds()
    if span_s <= 0:
        raise SchedulerInputError(
            f"horizon of zero: end {end.isoformat()} is not after start {start.isoformat()} "
            "(give hours > 0)"
        )
    r = settings.resolution_s
    n_steps = math.floor(span_s / r + 1e-9)
    if n_steps < 1:
        raise SchedulerInputError(
            f"horizon of {span_s:g} s is shorter than one resolution step ({r:g} s)"
        )
    grid = Grid(start, r, n_steps)
    for a in antennas:
        if a.station_id not in stations:
            raise SchedulerInputError(
                f"antenna {a.key}: station {a.station_id!r} is not one of {sorted(stations)}"
            )
    sat_index = {s.norad_id: i for i, s in enumerate(satellites)}
    windows: list[Window] = []
    with _gc_paused():
        for station_id, station in stations.items():
            ants = [(i, a) for i, a in enumerate(antennas) if a.station_id == station_id]
            if ants:
                _station_windows(
                    windows,
                    grid,
                    station,
                    ants,
                    satellites,
                    sat_index,
                    passes.get(station_id, ()),
                    pointing,
                )
    problem = Problem(grid, settings, list(antennas), list(satellites), windows)
    add_reservations(problem, reservations, stations, pointing)
    return problem


def add_reservations(
    problem: Problem,
    reservations: Sequence[Reservation],
    stations: Mapping[str, Station],
    pointing: PointingSource,
) -> None:
    """Add fixed windows for reservations (rounded outwards to the grid); check conflicts."""
    grid = problem.grid
    keys = {a.key: i for i, a in enumerate(problem.antennas)}
    placed: list[tuple[int, int, int, int, Reservation]] = []
    for res in reservations:
        where = (
            f"{res.kind} {res.antenna_key} NORAD {res.norad_id} "
            f"{res.start.isoformat()}..{res.end.isoformat()}"
        )
        if res.antenna_key not in keys:
            raise SchedulerInputError(f"{where}: unknown antenna (known: {sorted(keys)})")
        if res.norad_id not in problem.sat_index:
            raise SchedulerInputError(f"{where}: satellite not in the catalog")
        if res.end <= res.start:
            raise SchedulerInputError(f"{where}: end is not after start")
        ai = keys[res.antenna_key]
        k0 = max(0, grid.floor(res.start))
        k1 = min(grid.n_steps, grid.ceil(res.end))
        if k1 <= k0:
            problem.warnings.append(f"{where}: outside the planning horizon, ignored")
            continue
        for bk0, bk1, bai, bsi, other in placed:
            overlap = k0 < bk1 and bk0 < k1
            if overlap and bai == ai:
                raise SchedulerInputError(
                    f"{where}: overlaps {other.kind} of NORAD {other.norad_id} "
                    f"{other.start.isoformat()}..{other.end.isoformat()} on the same antenna"
                )
            if overlap and bsi == res.norad_id and problem.settings.one_antenna_per_satellite:
                raise SchedulerInputError(
                    f"{where}: the satellite is already reserved on {other.antenna_key} at "
                    "that time (one antenna per satellite)"
                )
        ant = problem.antennas[ai]
        si = problem.sat_index[res.norad_id]
        steps = np.arange(k0, k1 + 1, dtype=np.int64)
        az, el = pointing.sample(
            stations[ant.station_id], res.norad_id, steps.astype(np.float64) * grid.resolution_s
        )
        az_u = _unwrap_deg(az)
        if float(el.min()) < ant.rotator.el_min_deg - 1e-6:
            raise SchedulerInputError(
                f"{where}: the satellite is below the rotator's elevation range "
                f"({float(el.min()):.1f} deg < {ant.rotator.el_min_deg:g}) during the reservation"
            )
        pieces = _split_by_plans(ant.rotator, az_u, np.clip(el, -90.0, 90.0))
        if len(pieces) != 1 or pieces[0][:2] != (0, len(az_u)):
            raise SchedulerInputError(
                f"{where}: the rotator cannot follow the satellite through the whole "
                "reservation without unwinding; split it"
            )
        plan = pieces[0][2][0]
        el_c = np.clip(el, -90.0, 90.0)
        if res.plan is not None:
            # Keep the given flip and wrap side (a track under way stays as it is).
            base_az, _ = _plan_coords(Plan(0.0, res.plan.flipped), az_u, el_c)
            off = res.plan.az_offset_deg
            if res.end_az_deg is not None:
                off = 360.0 * round((res.end_az_deg - float(base_az[-1])) / 360.0)
            plan = Plan(off, res.plan.flipped)
            a_try, e_try = _plan_coords(plan, az_u, el_c)
            rot = ant.rotator
            if not (
                rot.az_min_deg - 1e-6 <= a_try.min() <= a_try.max() <= rot.az_max_deg + 1e-6
                and rot.el_min_deg - 1e-6 <= e_try.min() <= e_try.max() <= rot.el_max_deg + 1e-6
            ):
                raise SchedulerInputError(f"{where}: its plan {plan} leaves the rotator ranges")
        az_r, el_r = _plan_coords(plan, az_u, el_c)
        problem.windows.append(
            Window(
                ai,
                si,
                k0,
                az_r,
                el_r,
                plan,
                res.start,
                res.end,
                float(el.max()),
                k1 - k0,
                kind=res.kind,
            )
        )
        placed.append((k0, k1, ai, res.norad_id, res))
    # Two fixed windows on one antenna must leave room for set-up and travel.
    fixed = sorted((w for w in problem.windows if w.fixed), key=lambda w: (w.antenna, w.first))
    for a, b in itertools.pairwise(fixed):
        if a.antenna != b.antenna:
            continue
        rot = problem.antennas[a.antenna].rotator
        ea, eb = a.pointing(a.last), b.pointing(b.first)
        need = int(problem.handover_steps(a.antenna, rot.travel_s(ea[0], ea[1], eb[0], eb[1])))
        if b.first - a.last < need:
            raise SchedulerInputError(
                f"reservations on {problem.antennas[a.antenna].key} at grid "
                f"{grid.time(a.first).isoformat()} and {grid.time(b.first).isoformat()}: "
                f"the gap is shorter than set-up plus travel ({need} steps needed)"
            )
