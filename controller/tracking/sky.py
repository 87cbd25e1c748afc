"""Directions on the sky and sampled satellite tracks.

Angles come in two frames. The *sky* frame is the topocentric one (az 0..360 from north,
el -90..90). The *rotator* frame is what a rotator is commanded in: azimuth may run past 360
(0..450, -180..540) and elevation past 90 (a flipped antenna at el 120 looks at el 60 on the
far side). Both are mapped to unit vectors (east, north, up) the same way, so the pointing
error between an antenna in its own frame and a satellite on the sky is one formula.

:class:`SkyTrack` is a satellite's pass sampled by the predictor (look angles, range and range
rate on a time grid); between samples directions are interpolated on the unit sphere.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from controller.orbit.predictor import Pass, PassPredictor, Station

__all__ = [
    "FloatArray",
    "SkyPoint",
    "SkyTrack",
    "separation_deg",
    "separation_one_deg",
    "unit_vector",
]

FloatArray = npt.NDArray[np.float64]


def unit_vector(az_deg: FloatArray, el_deg: FloatArray) -> FloatArray:
    """(east, north, up) unit vectors, shape (..., 3); valid for rotator-frame angles too."""
    az = np.radians(az_deg)
    el = np.radians(el_deg)
    cos_el = np.cos(el)
    return np.stack((cos_el * np.sin(az), cos_el * np.cos(az), np.sin(el)), axis=-1)


def separation_deg(
    az1_deg: FloatArray, el1_deg: FloatArray, az2_deg: FloatArray, el2_deg: FloatArray
) -> FloatArray:
    """Great-circle angle between directions (either frame), in degrees, vectorised."""
    az1 = np.radians(az1_deg)
    az2 = np.radians(az2_deg)
    el1 = np.radians(el1_deg)
    el2 = np.radians(el2_deg)
    # Haversine form: accurate for the small angles that matter (pointing errors).
    h = np.sin((el2 - el1) / 2) ** 2 + np.cos(el1) * np.cos(el2) * np.sin((az2 - az1) / 2) ** 2
    return np.asarray(np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))), dtype=np.float64)


def separation_one_deg(az1_deg: float, el1_deg: float, az2_deg: float, el2_deg: float) -> float:
    """Great-circle angle between two directions (scalar version, no numpy overhead)."""
    el1 = math.radians(el1_deg)
    el2 = math.radians(el2_deg)
    h = (
        math.sin((el2 - el1) / 2) ** 2
        + math.cos(el1) * math.cos(el2) * math.sin(math.radians(az2_deg - az1_deg) / 2) ** 2
    )
    return math.degrees(2 * math.asin(math.sqrt(min(1.0, max(0.0, h)))))


def _mask_deg(station: Station, az_deg: FloatArray) -> FloatArray:
    """The horizon mask's elevation at each azimuth (vectorised)."""
    el_rad, _ = station.mask.el_rad(np.radians(np.mod(az_deg, 360.0)))
    return np.asarray(np.degrees(el_rad), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SkyPoint:
    """Where a satellite is at one instant (sky frame)."""

    az_deg: float
    el_deg: float
    range_km: float
    range_rate_km_s: float


@dataclass(frozen=True)
class SkyTrack:
    """A satellite pass sampled on a time grid; times are seconds after ``start``.

    ``aos_s``/``los_s`` bound the part above the horizon mask; samples may extend before AOS
    and after LOS. ``mask_el_deg`` is the mask's elevation at each sample's azimuth.
    """

    norad_id: int
    name: str
    start: datetime
    t_s: FloatArray
    az_deg: FloatArray
    el_deg: FloatArray
    range_km: FloatArray
    range_rate_km_s: FloatArray
    mask_el_deg: FloatArray
    aos_s: float
    los_s: float
    tca_s: float
    _t_list: list[float] = field(init=False, repr=False, compare=False)
    _vec: FloatArray = field(init=False, repr=False, compare=False)
    _seg: tuple[float, ...] = field(init=False, repr=False, compare=False)
    """The last interpolation segment as Python floats: the control loop asks for the same
    1 s segment ten times in a row, and numpy scalar indexing costs more than the maths."""

    def __post_init__(self) -> None:
        """Check the grid and cache what interpolation needs."""
        n = len(self.t_s)
        arrays = (self.az_deg, self.el_deg, self.range_km, self.range_rate_km_s, self.mask_el_deg)
        if n < 2 or any(len(a) != n for a in arrays):
            raise ValueError(
                f"SkyTrack {self.norad_id}: need >= 2 samples and arrays of one length, got "
                f"t_s {n}, others {[len(a) for a in arrays]}"
            )
        if not bool(np.all(np.diff(self.t_s) > 0)):
            raise ValueError(f"SkyTrack {self.norad_id}: t_s must increase strictly")
        if not self.t_s[0] <= self.aos_s <= self.los_s <= self.t_s[-1]:
            raise ValueError(
                f"SkyTrack {self.norad_id}: aos_s={self.aos_s}, los_s={self.los_s} must lie "
                f"in order within the samples {self.t_s[0]}..{self.t_s[-1]}"
            )
        object.__setattr__(self, "_t_list", [float(t) for t in self.t_s])
        object.__setattr__(self, "_seg", (-1.0,))
        object.__setattr__(self, "_vec", unit_vector(self.az_deg, self.el_deg))

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_pass(
        cls,
        predictor: PassPredictor,
        station: Station,
        pass_: Pass,
        *,
        step_s: float = 1.0,
        before_s: float = 0.0,
        after_s: float = 0.0,
    ) -> SkyTrack:
        """Sample ``pass_`` every ``step_s`` from AOS - ``before_s`` to LOS + ``after_s``."""
        if not step_s > 0:
            raise ValueError(f"SkyTrack.from_pass: step_s={step_s!r} must be > 0")
        start = pass_.aos - timedelta(seconds=before_s)
        span = pass_.duration_s + before_s + after_s
        n = max(2, math.ceil(span / step_s) + 1)
        t = np.linspace(0.0, span, n)
        times = [start + timedelta(seconds=float(x)) for x in t]
        look = predictor.look_angles(pass_.norad_id, station, times)
        if bool(np.any(look.error != 0)):
            raise ValueError(
                f"satellite {pass_.norad_id}: SGP4 failed while sampling the pass at "
                f"{pass_.aos.isoformat()}"
            )
        mask = _mask_deg(station, look.az_deg)
        return cls(
            norad_id=pass_.norad_id,
            name=pass_.name,
            start=start,
            t_s=t,
            az_deg=np.mod(look.az_deg, 360.0),
            el_deg=look.el_deg,
            range_km=look.range_km,
            range_rate_km_s=look.range_rate_km_s,
            mask_el_deg=mask,
            aos_s=before_s,
            los_s=before_s + pass_.duration_s,
            tca_s=before_s + (pass_.tca - pass_.aos).total_seconds(),
        )

    @classmethod
    def sample(
        cls,
        predictor: PassPredictor,
        station: Station,
        norad_id: int,
        start: datetime,
        end: datetime,
        *,
        step_s: float = 1.0,
    ) -> SkyTrack:
        """Sample a satellite from ``start`` to ``end`` (AOS/LOS at the ends; no pass needed)."""
        span = (end - start).total_seconds()
        if not (step_s > 0 and span > 0):
            raise ValueError(
                f"SkyTrack.sample: need step_s > 0 and end after start (step_s={step_s!r}, "
                f"span {span} s)"
            )
        n = max(2, math.ceil(span / step_s) + 1)
        t = np.linspace(0.0, span, n)
        look = predictor.look_angles_after(norad_id, station, start, t)
        name = next((s.name for s in predictor.satellites if s.norad_id == norad_id), "")
        return cls(
            norad_id=norad_id,
            name=name,
            start=start,
            t_s=t,
            az_deg=np.mod(look.az_deg, 360.0),
            el_deg=look.el_deg,
            range_km=look.range_km,
            range_rate_km_s=look.range_rate_km_s,
            mask_el_deg=_mask_deg(station, look.az_deg),
            aos_s=0.0,
            los_s=span,
            tca_s=float(t[int(np.argmax(look.el_deg))]),
        )

    # -- time ------------------------------------------------------------------------
    def at_time(self, when: datetime) -> float:
        """Seconds after ``start`` for an aware UTC datetime."""
        return (when - self.start).total_seconds()

    def time_at(self, t_s: float) -> datetime:
        """The datetime ``t_s`` seconds after ``start``."""
        return self.start + timedelta(seconds=t_s)

    @property
    def aos(self) -> datetime:
        """AOS as a datetime."""
        return self.time_at(self.aos_s)

    @property
    def los(self) -> datetime:
        """LOS as a datetime."""
        return self.time_at(self.los_s)

    @property
    def max_el_deg(self) -> float:
        """Highest sampled elevation."""
        return float(np.max(self.el_deg))

    # -- interpolation ---------------------------------------------------------------
    def point(self, t_s: float) -> SkyPoint:
        """Interpolated direction, range and range rate at ``t_s`` (clamped to the grid)."""
        ts = self._t_list
        i = min(max(bisect.bisect_right(ts, t_s) - 1, 0), len(ts) - 2)
        t0, t1 = ts[i], ts[i + 1]
        w = min(max((t_s - t0) / (t1 - t0), 0.0), 1.0)
        seg = self._seg  # one immutable tuple, replaced whole: safe for concurrent readers
        if seg[0] != i:
            seg = (
                float(i),
                *self._vec[i].tolist(),
                *self._vec[i + 1].tolist(),
                *self.range_km[i : i + 2].tolist(),
                *self.range_rate_km_s[i : i + 2].tolist(),
            )
            object.__setattr__(self, "_seg", seg)
        _, ax, ay, az_, bx, by, bz, r0, r1, rr0, rr1 = seg
        x = ax + w * (bx - ax)
        y = ay + w * (by - ay)
        z = az_ + w * (bz - az_)
        norm = math.sqrt(x * x + y * y + z * z) or 1.0
        az = math.degrees(math.atan2(x, y)) % 360.0
        el = math.degrees(math.asin(max(-1.0, min(1.0, z / norm))))
        return SkyPoint(az, el, r0 + w * (r1 - r0), rr0 + w * (rr1 - rr0))

    def directions(self, t_s: Sequence[float] | FloatArray) -> tuple[FloatArray, FloatArray]:
        """Interpolated (az_deg, el_deg) at many times (vectorised)."""
        t = np.clip(np.asarray(t_s, dtype=np.float64), self.t_s[0], self.t_s[-1])
        vec = np.stack([np.interp(t, self.t_s, self._vec[:, k]) for k in range(3)], axis=-1)
        norm = np.linalg.norm(vec, axis=-1)
        norm[norm == 0] = 1.0
        az = np.mod(np.degrees(np.arctan2(vec[:, 0], vec[:, 1])), 360.0)
        el = np.degrees(np.arcsin(np.clip(vec[:, 2] / norm, -1.0, 1.0)))
        return az, el

    def above_mask(self, t_s: FloatArray) -> npt.NDArray[np.bool_]:
        """True where ``t_s`` lies between AOS and LOS (the part the mask lets through)."""
        return (t_s >= self.aos_s) & (t_s <= self.los_s)
