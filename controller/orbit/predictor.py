"""Vectorised pass prediction for a whole constellation.

How passes are found (and why none is missed)
---------------------------------------------
For every satellite the visibility test ``el - mask(az) > 0`` is first turned into a
test on ``c = cos(lambda)``, the cosine of the Earth-central angle between the site and
the satellite: a satellite at radius ``r`` can only be above elevation ``e`` when
``lambda <= acos(R cos e / r) - e``. With the orbit's largest radius and the lowest
mask elevation (less the site's geodetic/geocentric vertical deflection) this gives a
threshold ``c_out`` below which the satellite is *provably* below the mask; with the
smallest radius and the highest mask elevation it gives ``c_in`` above which it is
provably above it.

``c`` is smooth and ``|c''|`` is bounded by the orbit (``K``, from the largest angular
rate of the satellite's direction in the Earth-fixed frame, including eccentric orbits
and Earth rotation, plus a margin for perturbations). Knowing ``c`` and ``c'`` at both
ends of an interval of length ``h`` bounds ``c`` on the whole interval by two parabolas
(``c +/- c' h/2 +/- K h^2/8``). The search starts from a coarse common grid evaluated
for all satellites at once (``SatrecArray``); intervals that are provably out are
dropped, provably-in intervals are kept, and the rest are halved until they are
``FINE_STEP_S`` long. Only a few samples per pass are therefore ever computed, and the
long stretches when a satellite is far below the horizon cost one coarse sample each.

Most grid points are never propagated at all: two cheap tests, computed for all
satellites from one ``SatrecArray`` call every ``PLANE_STEP_S``, prove whole grid
intervals out before any sgp4 call: the *plane* test (the site is farther from the
orbit plane than the visibility angle) and the *phase* test (the satellite is farther
along its orbit from the site's projection on the plane than the visibility angle, with
the argument of latitude interpolated under a documented error bound; see
``_Search._phase_skip``). On the seed constellation they leave a third of the grid to
propagate, and of that only the visibility function is computed until an interval
survives the bound above.

On the fine intervals, sign changes of ``g = el - mask(az)`` bracket AOS/LOS; an
interval with ``g < 0`` at both ends but ``g`` rising then falling is checked for a
grazing pass by locating the maximum of ``g``. Roots are refined with a safeguarded
Newton iteration (``g'`` comes analytically from the velocity) to ``ROOT_TOL_S``;
culminations (``d sin(el)/dt = 0``) by Newton with the analytic second derivative.
Near an sgp4 sample both finish on a local cubic Taylor model of the trajectory
(position, velocity, acceleration and jerk from gravity with J2 in the rotating frame),
which reaches ``TAYLOR_MIN_S``..``TAYLOR_MAX_S`` from the sample (farther where the
crossing is steep, so the model's few-decimetre drift moves no root by over 0.2 ms);
usually one sgp4 sample per AOS, LOS and culmination is all it takes. The one
modelling assumption is
that ``g`` has at most one extremum within a fine interval (20 s), which holds for
every physical orbit with any mask whose segments are not narrower than the ground
track moves in 20 s.

Frames: see :mod:`controller.orbit.frames`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sgp4.api import SGP4_ERRORS, Satrec, SatrecArray

from controller.orbit.frames import (
    EARTH_ROTATION_RAD_S,
    GeodeticSite,
    gmst82,
)
from controller.orbit.mask import HorizonMask

__all__ = [
    "LookAngles",
    "Pass",
    "PassPredictor",
    "PassTable",
    "PredictionResult",
    "SatelliteLike",
    "SatelliteProblem",
    "Station",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

COARSE_STEP_S = 960.0
PLANE_STEP_S = 21600.0
# Allowance for the osculating plane's short-period wobble and interpolation error.
PLANE_MARGIN_RAD = math.radians(0.5)
FINE_STEP_S = 20.0
IN_STEP_S = 600.0
TAYLOR_MAX_S = 20.0
TAYLOR_MIN_S = 4.0
# The Taylor model drifts from sgp4 by about 3e-5 km per second of reach (sgp4's velocity
# is not exactly the derivative of its position); a crossing then moves by that distance
# over (range x |g'|). Crossing roots may reach TAYLOR_GAIN_S_PER_KM x range x |g'|
# seconds (within TAYLOR_MIN_S..TAYLOR_MAX_S), which keeps that shift under 0.2 ms.
TAYLOR_GAIN_S_PER_KM = 2e-4 / 3e-5
ROOT_TOL_S = 0.02  # on the Newton step: the root itself is then good to ~1e-6 s
CULMINATION_TOL_S = 1e-3
_MAX_ITER = 60
_R_EARTH_WGS72_KM = 6378.135
_MU_KM3_S2 = 398600.8
_J2 = 0.001082616
_UNIX_JD = 2440587.5
_DAY_S = 86400.0
_TAU = 2.0 * math.pi
_FAST_SGP4 = hasattr(Satrec, "_sgp4")


class SatelliteLike(Protocol):
    """What the predictor needs of a catalog entry."""

    @property
    def norad_id(self) -> int:
        """NORAD catalogue number."""
        ...

    @property
    def name(self) -> str:
        """Satellite name."""
        ...

    @property
    def satrec(self) -> Satrec:
        """The sgp4 record."""
        ...


@dataclass(frozen=True)
class Station:
    """A ground station site with its horizon mask."""

    lat_deg: float
    lon_deg: float
    alt_m: float
    mask: HorizonMask = field(default_factory=HorizonMask.flat)
    station_id: str = "station"

    @property
    def site(self) -> GeodeticSite:
        """The WGS-84 site."""
        return GeodeticSite(self.lat_deg, self.lon_deg, self.alt_m)


@dataclass(slots=True)
class Pass:
    """One pass of one satellite over one station (times aware UTC).

    ``tca`` is the time of the highest elevation between AOS and LOS: the culmination,
    or an edge when the window clips the pass or the horizon mask hides the culmination.
    ``culminations`` lists every local maximum of elevation inside the pass.
    A plain record (not frozen: tens of thousands are built per prediction, and frozen
    dataclasses cost six times more to construct); treat it as read-only.
    """

    norad_id: int
    name: str
    aos: datetime
    tca: datetime
    los: datetime
    max_el_deg: float
    aos_az_deg: float
    tca_az_deg: float
    los_az_deg: float
    flags: tuple[str, ...] = ()
    culminations: tuple[tuple[datetime, float], ...] = ()

    @property
    def duration_s(self) -> float:
        """LOS - AOS in seconds."""
        return (self.los - self.aos).total_seconds()

    def to_json(self) -> dict[str, object]:
        """The record of ``groundlink passes --format jsonl``."""
        return {
            "norad_id": self.norad_id,
            "name": self.name,
            "aos": iso_z(self.aos),
            "tca": iso_z(self.tca),
            "los": iso_z(self.los),
            "max_el_deg": round(self.max_el_deg, 4),
            "aos_az_deg": round(self.aos_az_deg, 3),
            "tca_az_deg": round(self.tca_az_deg, 3),
            "los_az_deg": round(self.los_az_deg, 3),
            "duration_s": round(self.duration_s, 3),
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class SatelliteProblem:
    """A satellite the predictor could not (fully) propagate."""

    norad_id: int
    name: str
    at: datetime
    reason: str

    def __str__(self) -> str:
        return f"{self.name} [{self.norad_id}]: {self.reason} at {iso_z(self.at)}"


@dataclass(frozen=True)
class PassTable:
    """Passes as columns (numpy arrays), sorted by AOS then NORAD id.

    Times are seconds after ``start``. This is what the search produces; consumers that
    work on the whole constellation (the scheduler) use it directly, and
    :meth:`to_passes` builds :class:`Pass` objects (which costs more than the search).
    """

    start: datetime
    span_s: float
    names: tuple[str, ...]
    norad_id: npt.NDArray[np.int_]
    aos_s: FloatArray
    tca_s: FloatArray
    los_s: FloatArray
    max_el_deg: FloatArray
    aos_az_deg: FloatArray
    tca_az_deg: FloatArray
    los_az_deg: FloatArray
    clipped_start: BoolArray
    clipped_end: BoolArray
    culminations: dict[int, list[tuple[float, float]]]

    def __len__(self) -> int:
        return len(self.aos_s)

    @classmethod
    def empty(cls, start: datetime, span_s: float) -> PassTable:
        """A table with no passes."""
        z = np.empty(0)
        zb = np.empty(0, dtype=bool)
        return cls(start, span_s, (), np.empty(0, dtype=np.int_), z, z, z, z, z, z, z, zb, zb, {})

    def to_passes(self) -> list[Pass]:
        """Materialise the rows as Pass objects (aware UTC datetimes)."""
        start = self.start
        span_s = self.span_s
        span_end = start + timedelta(seconds=span_s)
        unix0 = start.timestamp()

        def at(col: FloatArray) -> list[datetime]:
            # fromtimestamp is twice as fast as start + timedelta(...) and exact to 1 us;
            # map() over a C constructor avoids a Python frame per call.
            out = list(map(datetime.fromtimestamp, (unix0 + col).tolist(), repeat(UTC)))
            # Clipped edges are the window's own instants, exactly.
            for i in np.flatnonzero(col <= 0.0).tolist():
                out[i] = start
            for i in np.flatnonzero(col >= span_s).tolist():
                out[i] = span_end
            return out

        n = len(self)
        multi = np.zeros(n, dtype=bool)
        multi[list(self.culminations)] = True
        # Flags by bit pattern (clipped_start 1, clipped_end 2, multiple_culminations 4).
        by_code = [
            tuple(
                name
                for bit, name in (
                    (1, "clipped_start"),
                    (2, "clipped_end"),
                    (4, "multiple_culminations"),
                )
                if code & bit
            )
            for code in range(8)
        ]
        codes = (
            self.clipped_start.astype(np.intp)
            + 2 * self.clipped_end.astype(np.intp)
            + 4 * multi.astype(np.intp)
        )
        flags = [by_code[c] for c in codes.tolist()]
        tca = at(self.tca_s)
        max_el = self.max_el_deg.tolist()
        peaks: list[tuple[tuple[datetime, float], ...]] = [
            ((t, e),) for t, e in zip(tca, max_el, strict=True)
        ]
        for i, culs in self.culminations.items():
            times = at(np.array([t for t, _ in culs]))
            peaks[i] = tuple(zip(times, [e for _, e in culs], strict=True))
        # Positional: keyword construction of the slots dataclass costs a third more.
        return list(
            map(
                Pass,
                self.norad_id.tolist(),
                self.names,
                at(self.aos_s),
                tca,
                at(self.los_s),
                max_el,
                self.aos_az_deg.tolist(),
                self.tca_az_deg.tolist(),
                self.los_az_deg.tolist(),
                flags,
                peaks,
            )
        )


class PredictionResult:
    """Passes sorted by AOS (then NORAD id) and per-satellite problems."""

    def __init__(
        self, table: PassTable, problems: list[SatelliteProblem], samples: int = 0
    ) -> None:
        self.table = table
        self.problems = problems
        self.samples = samples
        self._passes: list[Pass] | None = None

    @property
    def passes(self) -> list[Pass]:
        """The passes as objects (built on first access from :attr:`table`)."""
        if self._passes is None:
            self._passes = self.table.to_passes()
        return self._passes


@dataclass(frozen=True)
class LookAngles:
    """Topocentric look angles of one satellite over a time array."""

    az_deg: FloatArray
    el_deg: FloatArray
    range_km: FloatArray
    range_rate_km_s: FloatArray
    error: npt.NDArray[np.int_]


def iso_z(when: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _require_utc(when: datetime, name: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} {when.isoformat()} is naive; pass an aware UTC datetime")
    return when.astimezone(UTC)


@dataclass
class _Samples:
    """Everything computed at a batch of (satellite, time) pairs; angles in radians.

    ``f_out``/``f_in`` are the visibility functions of the search (see the module
    docstring): ``f_out < 0`` proves the satellite is below the mask, ``f_in > 0``
    proves it is above; ``fp_*`` are their time derivatives.
    """

    err: npt.NDArray[np.int_]
    f_out: FloatArray
    fp_out: FloatArray
    f_in: FloatArray
    fp_in: FloatArray
    g: FloatArray
    gp: FloatArray
    el: FloatArray
    elp: FloatArray
    sinelp: FloatArray
    sinelpp: FloatArray
    az: FloatArray
    range_km: FloatArray
    range_rate: FloatArray
    kin: FloatArray | None = None
    """Earth-fixed x, y, z (km), velocity (km/s) and acceleration (km/s^2), (n, 9)."""


@dataclass
class _Grid:
    """The coarse grid after stage one: (satellite, grid time) arrays.

    ``pos`` indexes the propagated points in ``states`` (sgp4 error code and Earth-fixed
    x, y, z, vx, vy, vz), -1 where the plane test made propagation unnecessary.
    """

    f_out: FloatArray
    fp_out: FloatArray
    err: npt.NDArray[np.int_]
    pos: IntArray
    states: tuple[npt.NDArray[Any], ...]


_SAMPLE_FIELDS = tuple(f.name for f in fields(_Samples) if f.name != "kin")
# Values of grid points never propagated (their intervals are proven out): invisible.
_GRID_DEFAULTS = {"f_out": -4.0}


def _fill2d(
    values: npt.NDArray[Any], rows: IntArray, cols: IntArray, shape: tuple[int, int], default: float
) -> npt.NDArray[Any]:
    """Scatter flat samples into a (satellite, grid time) array."""
    out = np.full(shape, default, dtype=values.dtype)
    out[rows, cols] = values
    return out


def _take_samples(s: _Samples, sel: BoolArray | IntArray) -> _Samples:
    """A subset of a 1-D batch of samples."""
    values: dict[str, Any] = {f: getattr(s, f)[sel] for f in _SAMPLE_FIELDS}
    return _Samples(**values, kin=None if s.kin is None else s.kin[sel])


def _cos_vis(
    radius_site_km: float, el_rad: float, r_km: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """cos of the largest Earth-central angle at which radius r is above el, and d/dr."""
    q = np.clip(radius_site_km * math.cos(el_rad) / r_km, -1.0, 1.0)
    sq = np.sqrt(np.maximum(1.0 - q * q, 1e-300))
    cv = q * math.cos(el_rad) + sq * math.sin(el_rad)
    dcv = (-q / r_km) * (math.cos(el_rad) - q * math.sin(el_rad) / sq)
    return cv, dcv


class _Geometry:
    """Site-dependent math on Earth-fixed states, vectorised over any batch shape."""

    def __init__(self, station: Station) -> None:
        site = station.site
        self.mask = station.mask
        self.pos = site.ecef_km
        self.axes = site.enu_axes
        self.s_hat = self.pos / np.linalg.norm(self.pos)
        self.radius_km = float(np.linalg.norm(self.pos))
        up = self.axes[2]
        deflection = math.acos(min(1.0, float(np.dot(up, self.s_hat))))
        # Elevation from the geodetic horizon differs from elevation above the plane
        # normal to the geocentric radius by at most the deflection of the vertical.
        margin = deflection + math.radians(0.02)
        self.el_lo = math.radians(self.mask.min_el_deg) - margin
        self.el_hi = math.radians(self.mask.max_el_deg) + margin
        # A flat mask needs neither its interpolation nor the azimuth rate.
        self.flat_el = math.radians(self.mask.min_el_deg) if self.mask.is_flat else None

    def samples_xyz(
        self,
        err: npt.NDArray[np.int_],
        x: FloatArray,
        y: FloatArray,
        z: FloatArray,
        vx: FloatArray,
        vy: FloatArray,
        vz: FloatArray,
        *,
        keep_kin: bool = False,
        visibility: bool = True,
        culmination: bool = True,
    ) -> _Samples:
        """Look angles, mask function and visibility functions at Earth-fixed states.

        Components come as separate contiguous arrays: strided views of (..., 3) arrays
        make every elementwise operation several times slower. ``visibility`` /
        ``culmination`` False skip the central-angle functions / the sin(el) second
        derivative (left as zeros / a copy of the first) when a root search does not
        need them."""
        px, py, pz = self.pos
        dx, dy, dz = x - px, y - py, z - pz
        (e0, e1, e2), (n0, n1, n2), (u0, u1, u2) = self.axes
        e = e0 * dx + e1 * dy + e2 * dz
        n = n0 * dx + n1 * dy + n2 * dz
        u = u0 * dx + u1 * dy + u2 * dz
        de = e0 * vx + e1 * vy + e2 * vz
        dn = n0 * vx + n1 * vy + n2 * vz
        du = u0 * vx + u1 * vy + u2 * vz
        horiz2 = e * e + n * n
        rng2 = horiz2 + u * u
        rng = np.sqrt(rng2)
        rr = (e * de + n * dn + u * du) / rng
        horiz = np.sqrt(horiz2)
        el = np.arctan2(u, horiz)
        # d/dt atan2(u, h) = (u' h - u h') / (u^2 + h^2), with h' = (e e' + n n') / h.
        with np.errstate(divide="ignore", invalid="ignore"):
            hp = _zero_where_zero((e * de + n * dn) / horiz, horiz)
            elp = (du * horiz - u * hp) / rng2
            azp = (
                np.where(horiz2 > 0, (de * n - e * dn) / horiz2, 0.0)
                if self.flat_el is None
                else el[:0]
            )
        # d(sin el)/dt has the sign of el' but stays smooth through the zenith, where
        # el itself has a cusp; culminations are roots of this one.
        sinelp = (du * rng - u * rr) / rng2
        need_acc = culmination or keep_kin
        # Its second derivative, for Newton on culminations: acceleration from gravity
        # (two-body + J2, axisymmetric so the same in the Earth-fixed frame) plus the
        # rotating frame's Coriolis and centrifugal terms.
        rn2 = x * x + y * y + z * z
        rn = np.sqrt(rn2)
        if need_acc:
            z2 = (z * z) / rn2
            k0 = -_MU_KM3_S2 / (rn2 * rn)
            kj = (1.5 * _J2 * _R_EARTH_WGS72_KM * _R_EARTH_WGS72_KM) / rn2
            w = EARTH_ROTATION_RAD_S
            kxy = k0 * (1.0 + kj * (1.0 - 5.0 * z2)) + w * w
            ax = kxy * x + (2.0 * w) * vy
            ay = kxy * y - (2.0 * w) * vx
            az_ = k0 * (1.0 + kj * (3.0 - 5.0 * z2)) * z
        if culmination:
            upp = u0 * ax + u1 * ay + u2 * az_
            v2 = vx * vx + vy * vy + vz * vz
            rrp = (v2 + dx * ax + dy * ay + dz * az_ - rr * rr) / rng
            sinelpp = (upp - (2.0 * du * rr + u * rrp) / rng + 2.0 * u * rr * rr / rng2) / rng
        else:
            sinelpp = sinelp
        az = np.arctan2(e, n)
        # Into [0, 2 pi): the same values np.mod gives, at a third of its cost.
        np.add(az, _TAU, out=az, where=az < 0.0)
        if self.flat_el is not None:
            g = el - self.flat_el
            gp = elp
        else:
            mask_el, mask_slope = self.mask.el_rad(az)
            g = el - mask_el
            gp = elp - mask_slope * azp
        if not visibility:
            zeros = np.zeros_like(g)
            f_out = fp_out = f_in = fp_in = zeros
        else:
            f_out, fp_out, f_in, fp_in = self._visibility(x, y, z, vx, vy, vz, rn)
        bad = err != 0
        if np.any(bad):
            # Propagation failed: never visible, never a root.
            f_out = np.where(bad, -4.0, f_out)
            f_in = np.where(bad, -4.0, f_in)
            g = np.where(bad, -np.pi, g)
        kin = None
        if keep_kin:
            # Jerk for the local Taylor model: the two-body gravity gradient applied to
            # the velocity plus the rotating-frame terms' derivatives (the J2 part of the
            # gradient is ~1e-3 of it: millimetres over TAYLOR_MAX_S).
            rv = x * vx + y * vy + z * vz
            k1 = -_MU_KM3_S2 / (rn2 * rn)
            k3 = -3.0 * rv / rn2
            w = EARTH_ROTATION_RAD_S
            jx = k1 * (vx + k3 * x) + (w * w) * vx + (2.0 * w) * ay
            jy = k1 * (vy + k3 * y) + (w * w) * vy - (2.0 * w) * ax
            jz = k1 * (vz + k3 * z)
            kin = np.stack((x, y, z, vx, vy, vz, ax, ay, az_, jx, jy, jz), axis=-1)
        return _Samples(
            err, f_out, fp_out, f_in, fp_in, g, gp, el, elp, sinelp, sinelpp, az, rng, rr, kin
        )

    def crossing_terms(
        self,
        x: FloatArray,
        y: FloatArray,
        z: FloatArray,
        vx: FloatArray,
        vy: FloatArray,
        vz: FloatArray,
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """g, g', elevation and azimuth alone (as :meth:`samples_xyz` computes them), for
        the crossing-root iterations that need nothing else."""
        px, py, pz = self.pos
        dx, dy, dz = x - px, y - py, z - pz
        (e0, e1, e2), (n0, n1, n2), (u0, u1, u2) = self.axes
        e = e0 * dx + e1 * dy + e2 * dz
        n = n0 * dx + n1 * dy + n2 * dz
        u = u0 * dx + u1 * dy + u2 * dz
        de = e0 * vx + e1 * vy + e2 * vz
        dn = n0 * vx + n1 * vy + n2 * vz
        du = u0 * vx + u1 * vy + u2 * vz
        horiz2 = e * e + n * n
        rng2 = horiz2 + u * u
        horiz = np.sqrt(horiz2)
        el = np.arctan2(u, horiz)
        with np.errstate(divide="ignore", invalid="ignore"):
            hp = _zero_where_zero((e * de + n * dn) / horiz, horiz)
            elp = (du * horiz - u * hp) / rng2
        az = np.arctan2(e, n)
        np.add(az, _TAU, out=az, where=az < 0.0)
        if self.flat_el is not None:
            return el - self.flat_el, elp, el, az
        with np.errstate(divide="ignore", invalid="ignore"):
            azp = np.where(horiz2 > 0, (de * n - e * dn) / horiz2, 0.0)
        mask_el, mask_slope = self.mask.el_rad(az)
        return el - mask_el, elp - mask_slope * azp, el, az

    def outer_visibility(
        self,
        x: FloatArray,
        y: FloatArray,
        z: FloatArray,
        vx: FloatArray,
        vy: FloatArray,
        vz: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        """f_out and f_out' alone (see the module docstring), for the coarse grid."""
        rn = np.sqrt(x * x + y * y + z * z)
        f_out, fp_out, _, _ = self._visibility(x, y, z, vx, vy, vz, rn, inner=False)
        return f_out, fp_out

    def _visibility(
        self,
        x: FloatArray,
        y: FloatArray,
        z: FloatArray,
        vx: FloatArray,
        vy: FloatArray,
        vz: FloatArray,
        rn: FloatArray,
        *,
        inner: bool = True,
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """f_out, f_out', f_in, f_in' (see the module docstring); ``inner`` False leaves
        f_in and f_in' empty."""
        rdot = (x * vx + y * vy + z * vz) / rn
        sx, sy, sz = self.s_hat
        c = (sx * x + sy * y + sz * z) / rn
        cp = (sx * vx + sy * vy + sz * vz) / rn - c * rdot / rn
        cv_lo, dcv_lo = _cos_vis(self.radius_km, self.el_lo, rn)
        f_out = c - cv_lo
        fp_out = cp - dcv_lo * rdot
        if not inner:
            return f_out, fp_out, f_out[:0], fp_out[:0]
        if self.el_hi < math.pi / 2:
            cv_hi, dcv_hi = _cos_vis(self.radius_km, self.el_hi, rn)
            f_in = c - cv_hi
            fp_in = cp - dcv_hi * rdot
        else:
            f_in = np.full_like(c, -2.0)
            fp_in = np.zeros_like(c)
        return f_out, fp_out, f_in, fp_in


class PassPredictor:
    """Predict passes of many satellites at once over one station."""

    def __init__(self, satellites: Sequence[SatelliteLike], *, dut1_s: float = 0.0) -> None:
        if not math.isfinite(dut1_s) or abs(dut1_s) > 1.0:
            raise ValueError(f"dut1_s {dut1_s} is outside -1..1 s (UT1-UTC never exceeds 0.9 s)")
        self.satellites = list(satellites)
        self.dut1_s = float(dut1_s)
        self._satrecs = [s.satrec for s in self.satellites]
        self._index = {s.norad_id: i for i, s in enumerate(self.satellites)}
        self._names = [s.name for s in self.satellites]
        self._array = SatrecArray(self._satrecs) if self._satrecs else None
        self._bounds = np.array([_orbit_bounds(s) for s in self._satrecs]).reshape(-1, 4)

    # -- time helpers -------------------------------------------------------
    @staticmethod
    def _jd_parts(start: datetime) -> tuple[float, float]:
        unix_s = (start - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
        days, frac = divmod(unix_s / _DAY_S, 1.0)
        whole = _UNIX_JD + days
        return whole, frac

    def _eval_pairs(
        self,
        geo: _Geometry,
        jd0: float,
        fr0: float,
        sat: IntArray,
        t: FloatArray,
        *,
        keep_kin: bool = True,
        visibility: bool = True,
        culmination: bool = True,
    ) -> _Samples:
        """Propagate satellite ``sat[i]`` at ``t[i]`` seconds after the reference epoch."""
        err, x, y, z, vx, vy, vz = self._states(jd0, fr0, sat, t)
        return geo.samples_xyz(
            err,
            x,
            y,
            z,
            vx,
            vy,
            vz,
            keep_kin=keep_kin,
            visibility=visibility,
            culmination=culmination,
        )

    def _states(
        self, jd0: float, fr0: float, sat: IntArray, t: FloatArray
    ) -> tuple[
        npt.NDArray[np.int_], FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray
    ]:
        """sgp4 error codes and Earth-fixed x, y, z (km), vx, vy, vz (km/s) of the pairs."""
        n = len(sat)
        t = np.asarray(t, dtype=np.float64)
        # Most batches come sorted by satellite already (they are built from row-major
        # (satellite, time) grids); only the others pay for a sort and its inverse.
        in_order = n < 2 or bool(np.all(sat[1:] >= sat[:-1]))
        order = None if in_order else np.argsort(sat, kind="stable")
        sorted_sat = sat if order is None else sat[order]
        fr = fr0 + (t if order is None else t[order]) / _DAY_S
        jd = np.full(n, jd0)
        err = np.zeros(n, dtype=np.uint8)
        r = np.empty((n, 3))
        v = np.empty((n, 3))
        if n:
            cuts = np.flatnonzero(sorted_sat[1:] != sorted_sat[:-1]) + 1
            starts = [0, *cuts.tolist()]
            stops = [*cuts.tolist(), n]
            sats = sorted_sat[starts].tolist()
            for k, a, b in zip(sats, starts, stops, strict=True):
                satrec = self._satrecs[k]
                if _FAST_SGP4:
                    # Why the private method: it writes straight into views of the
                    # batch arrays, avoiding three allocations and copies per group
                    # (sgp4_array does exactly this call on fresh arrays).
                    satrec._sgp4(jd[a:b], fr[a:b], err[a:b], r[a:b], v[a:b])
                else:
                    err[a:b], r[a:b], v[a:b] = satrec.sgp4_array(jd[a:b], fr[a:b])
        # TEME -> Earth-fixed (as frames.teme_to_ecef), written straight into contiguous
        # component arrays: the (n, 3) layout makes every later elementwise operation
        # strided, and stacking then splitting it again costs two copies per batch.
        theta, theta_dot = gmst82(jd, fr + self.dut1_s / _DAY_S)
        cos_t = np.cos(theta)
        sin_t = np.sin(theta)
        xt, yt = r[:, 0], r[:, 1]
        vxt, vyt = v[:, 0], v[:, 1]
        x = cos_t * xt + sin_t * yt
        y = cos_t * yt - sin_t * xt
        vx = cos_t * vxt + sin_t * vyt + theta_dot * y
        vy = cos_t * vyt - sin_t * vxt - theta_dot * x
        z = r[:, 2]
        vz = v[:, 2]
        if order is None:
            return err.astype(np.int_), x, y, z.copy(), vx, vy, vz.copy()
        inverse = np.empty(n, dtype=np.intp)
        inverse[order] = np.arange(n)
        x, y, z, vx, vy, vz = (c[inverse] for c in (x, y, z, vx, vy, vz))
        return err.astype(np.int_)[inverse], x, y, z, vx, vy, vz

    # -- public API -----------------------------------------------------------
    def look_angles(self, norad_id: int, station: Station, times: Sequence[datetime]) -> LookAngles:
        """Azimuth, elevation, range and range rate of one satellite at given UTC times."""
        if norad_id not in self._index:
            raise KeyError(f"satellite {norad_id} is not in this predictor's catalog")
        if not times:
            empty = np.empty(0)
            return LookAngles(empty, empty, empty, empty, np.empty(0, dtype=np.int_))
        ref = _require_utc(times[0], "times[0]")
        t = np.array([(_require_utc(x, "time") - ref).total_seconds() for x in times])
        return self.look_angles_after(norad_id, station, ref, t)

    def look_angles_after(
        self, norad_id: int, station: Station, ref: datetime, offsets_s: FloatArray
    ) -> LookAngles:
        """:meth:`look_angles` at ``offsets_s`` seconds after ``ref`` (no datetime per
        sample: building and converting them cost more than the propagation of a
        1 s grid)."""
        if norad_id not in self._index:
            raise KeyError(f"satellite {norad_id} is not in this predictor's catalog")
        jd0, fr0 = self._jd_parts(_require_utc(ref, "ref"))
        t = np.asarray(offsets_s, dtype=np.float64)
        idx = np.full(len(t), self._index[norad_id], dtype=np.intp)
        # Only the angles, range and rate: no pass-search terms.
        s = self._eval_pairs(
            _Geometry(station),
            jd0,
            fr0,
            idx,
            t,
            keep_kin=False,
            visibility=False,
            culmination=False,
        )
        return LookAngles(np.degrees(s.az), np.degrees(s.el), s.range_km, s.range_rate, s.err)

    def max_elevation_deg(
        self,
        norad_ids: Sequence[int],
        station: Station,
        start: datetime,
        span_s: float,
        step_s: float,
    ) -> dict[int, float]:
        """Highest elevation (deg) of each satellite on a ``step_s`` grid over
        [start, start + span_s], in one batch (a look-angles call per satellite costs
        about as much for 61 samples as this does for a few hundred satellites); -inf
        for a satellite whose every sample failed to propagate."""
        ids = list(norad_ids)
        missing = [n for n in ids if n not in self._index]
        if missing:
            raise KeyError(f"satellites {missing[:5]} are not in this predictor's catalog")
        if not (step_s > 0 and span_s >= 0):
            raise ValueError(
                f"max_elevation_deg: need step_s > 0 and span_s >= 0 ({step_s}, {span_s})"
            )
        if not ids:
            return {}
        jd0, fr0 = self._jd_parts(_require_utc(start, "start"))
        t = np.linspace(0.0, span_s, max(2, math.ceil(span_s / step_s) + 1))
        rows = np.array([self._index[n] for n in ids], dtype=np.intp)
        sat = np.repeat(rows, len(t))
        s = self._eval_pairs(
            _Geometry(station),
            jd0,
            fr0,
            sat,
            np.tile(t, len(ids)),
            keep_kin=False,
            visibility=False,
            culmination=False,
        )
        el = np.where(s.err == 0, np.degrees(s.el), -np.inf).reshape(len(ids), len(t))
        return dict(zip(ids, el.max(axis=1).tolist(), strict=True))

    def passes(
        self,
        station: Station,
        start: datetime,
        end: datetime,
        *,
        progress: Callable[[float], None] | None = None,
    ) -> PredictionResult:
        """All passes of every satellite over ``station`` between ``start`` and ``end``."""
        start = _require_utc(start, "start")
        end = _require_utc(end, "end")
        span_s = (end - start).total_seconds()
        if span_s <= 0:
            raise ValueError(f"end {iso_z(end)} is not after start {iso_z(start)}")
        if not self._satrecs:
            return PredictionResult(PassTable.empty(start, span_s), [])
        geo = _Geometry(station)
        jd0, fr0 = self._jd_parts(start)
        search = _Search(self, geo, jd0, fr0, span_s, progress)
        return search.run(start)


def _orbit_bounds(satrec: Satrec) -> tuple[float, float, float, float]:
    """Bounds on |f''| and |f''''| of the visibility functions for one orbit (rad/s^k).

    The direction of the satellite seen from the geocentre turns at most at
    ``theta_dot_max + omega_earth``; for a Keplerian orbit ``theta_dot`` peaks at
    perigee, ``|theta_ddot| <= 2 mu e / r_p^3``. Factors above one cover perturbations
    (J2 short-period terms, drag) and the slowly varying radius term.
    """
    ecc = min(max(float(satrec.ecco), 0.0), 0.99)
    n = float(satrec.no_kozai) / 60.0  # rad/s
    a_km = (_MU_KM3_S2 / (n * n)) ** (1.0 / 3.0) if n > 0 else 1e6
    r_p = max(a_km * (1.0 - ecc), _R_EARTH_WGS72_KM - 100.0)
    h = math.sqrt(_MU_KM3_S2 * a_km * (1.0 - ecc * ecc))
    theta_dot = h / (r_p * r_p)
    theta_ddot = 2.0 * _MU_KM3_S2 * ecc / r_p**3
    w = EARTH_ROTATION_RAD_S
    rate = 1.15 * (theta_dot + w)
    k2 = 1.3 * (math.hypot(theta_ddot, theta_dot**2) + 2.0 * w * theta_dot + w * w)
    # The quartic bound is only trusted for near-circular orbits; elsewhere the
    # quadratic bound alone decides (k4 = inf).
    k4 = 2.0 * rate**4 * (1.0 + 30.0 * ecc) if ecc < 0.1 else math.inf
    # Largest radius over the window, with room for short-period terms and drag/lunisolar
    # changes of the elements (only the plane prefilter uses it).
    r_max = a_km * (1.0 + ecc) + 0.02 * a_km + 30.0
    return rate, k2, k4, r_max


def _zero_where_zero(values: FloatArray, denominator: FloatArray) -> FloatArray:
    """``values`` with 0 where ``denominator`` is 0 (in place; cheaper than np.where when,
    as almost always, there is no such element)."""
    if not np.all(denominator > 0.0):
        values[~(denominator > 0.0)] = 0.0
    return values


def _taylor_state(
    kin: FloatArray, dt: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """x, y, z, vx, vy, vz dt seconds from sampled (position, velocity, acceleration,
    jerk) rows ``kin`` (n, 12), by their cubic Taylor polynomial."""
    half = 0.5 * dt * dt
    sixth = half * dt * (1.0 / 3.0)
    k = kin.T
    return (
        k[0] + k[3] * dt + k[6] * half + k[9] * sixth,
        k[1] + k[4] * dt + k[7] * half + k[10] * sixth,
        k[2] + k[5] * dt + k[8] * half + k[11] * sixth,
        k[3] + k[6] * dt + k[9] * half,
        k[4] + k[7] * dt + k[10] * half,
        k[5] + k[8] * dt + k[11] * half,
    )


def _plane_angle(
    n: tuple[FloatArray, FloatArray, FloatArray],
    p: tuple[FloatArray, FloatArray, FloatArray] | tuple[FloatArray, FloatArray, float],
) -> FloatArray:
    """Angle of ``p`` in the plane with unit normal ``n``, from its ascending node.

    The node is ``N = z x n / s`` and the in-plane axis ``W = n x N``, with
    ``s = |z x n|`` (> 0); both arguments of the atan2 are scaled by ``s``.
    """
    nx, ny, nz = n
    px, py, pz = p
    s2 = nx * nx + ny * ny
    return np.arctan2(s2 * pz - nz * (nx * px + ny * py), nx * py - ny * px)


def _hermite(
    fa: FloatArray, fpa: FloatArray, fb: FloatArray, fpb: FloatArray, h: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Cubic Hermite coefficients in s = (t - ta) / h: p(s) = A s^3 + B s^2 + C s + D."""
    a = 2.0 * (fa - fb) + h * (fpa + fpb)
    b = 3.0 * (fb - fa) - h * (2.0 * fpa + fpb)
    c = h * fpa
    return a, b, c, fa


def _hermite_extremes(
    fa: FloatArray, fpa: FloatArray, fb: FloatArray, fpb: FloatArray, h: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Minimum and maximum of the cubic Hermite interpolant on the interval."""
    a, b, c, d = _hermite(fa, fpa, fb, fpb, h)
    lo = np.minimum(fa, fb)
    hi = np.maximum(fa, fb)
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = b * b - 3.0 * a * c
        sq = np.sqrt(np.maximum(disc, 0.0))
        lin = np.abs(a) < 1e-15
        s1 = np.where(lin, -c / (2.0 * b), (-b + sq) / (3.0 * a))
        s2 = np.where(lin, np.nan, (-b - sq) / (3.0 * a))
    for s in (s1, s2):
        ok = np.isfinite(s) & (s > 0.0) & (s < 1.0) & (lin | (disc >= 0))
        sv = np.where(ok, s, 0.0)
        v = ((a * sv + b) * sv + c) * sv + d
        lo = np.where(ok, np.minimum(lo, v), lo)
        hi = np.where(ok, np.maximum(hi, v), hi)
    return lo, hi


_ROOT_GRID = np.linspace(0.0, 1.0, 9)


def _hermite_roots(
    fa: FloatArray, fpa: FloatArray, fb: FloatArray, fpb: FloatArray, h: FloatArray
) -> tuple[IntArray, FloatArray]:
    """Approximate roots of the Hermite interpolant: (row, s) for every sign change."""
    a, b, c, d = _hermite(fa, fpa, fb, fpb, h)
    s = _ROOT_GRID
    p = ((a[:, None] * s + b[:, None]) * s + c[:, None]) * s + d[:, None]
    sign = p > 0
    rows, cols = np.nonzero(sign[:, 1:] != sign[:, :-1])
    p0 = p[rows, cols]
    p1 = p[rows, cols + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(p0 != p1, p0 / (p0 - p1), 0.5)
    x = s[cols] + (s[cols + 1] - s[cols]) * frac
    # Two Newton steps on the cubic itself, kept inside the sign-change cell.
    ar, br, cr, dr = a[rows], b[rows], c[rows], d[rows]
    for _ in range(2):
        val = ((ar * x + br) * x + cr) * x + dr
        der = (3.0 * ar * x + 2.0 * br) * x + cr
        with np.errstate(divide="ignore", invalid="ignore"):
            nx = x - val / der
        x = np.where(np.isfinite(nx) & (nx >= s[cols]) & (nx <= s[cols + 1]), nx, x)
    return rows, x


class _Search:
    """One run of the pass search over one station and window."""

    def __init__(
        self,
        pred: PassPredictor,
        geo: _Geometry,
        jd0: float,
        fr0: float,
        span_s: float,
        progress: Callable[[float], None] | None,
    ) -> None:
        self.pred = pred
        self.geo = geo
        self.jd0 = jd0
        self.fr0 = fr0
        self.span_s = span_s
        self.progress = progress
        self.samples = 0
        self.k2 = pred._bounds[:, 1]
        self.k4 = pred._bounds[:, 2]
        r_max = pred._bounds[:, 3]
        ratio = np.clip(geo.radius_km * math.cos(geo.el_lo) / r_max, -1.0, 1.0)
        self.lam_out = np.arccos(ratio) - geo.el_lo
        # With a flat mask, a near-circular orbit whose period is over three coarse steps
        # has one elevation maximum per pass and passes an orbit apart, so no coarse
        # interval can hold more than one maximum: an interval with the satellite up at
        # an end contains at most one mask crossing, and the elevation cannot dip below
        # the mask between two ends that are both up.
        ecc = np.array([float(rec.ecco) for rec in pred._satrecs])
        period_s = np.array([2.0 * math.pi / float(rec.no_kozai) * 60.0 for rec in pred._satrecs])
        self.single_peak = geo.mask.is_flat & (ecc < 0.1) & (period_s > 3.0 * COARSE_STEP_S)

    def eval(
        self,
        sat: IntArray,
        t: FloatArray,
        *,
        keep_kin: bool = True,
        visibility: bool = True,
        culmination: bool = True,
    ) -> _Samples:
        """Evaluate pairs with sgp4, counting the work (flags: see _Geometry.samples)."""
        self.samples += len(sat)
        return self.pred._eval_pairs(
            self.geo,
            self.jd0,
            self.fr0,
            sat,
            t,
            keep_kin=keep_kin,
            visibility=visibility,
            culmination=culmination,
        )

    def _extrapolate(self, kin: FloatArray, dt: FloatArray, *, culmination: bool) -> _Samples:
        """Samples dt seconds from sampled states, by a local Taylor model (no sgp4).

        Position and velocity are carried by their cubic Taylor polynomial (acceleration:
        gravity with J2 and the rotating-frame terms; jerk: the two-body gravity gradient
        and the frame terms' derivatives). Against sgp4 itself the model drifts by about
        0.1 m at 4 s and 0.5 m at TAYLOR_MAX_S = 20 s from the sample (measured on the
        seed constellation; sgp4's velocity is not exactly the derivative of its
        position), hence the reach rule of TAYLOR_GAIN_S_PER_KM for crossings.
        """
        return self.geo.samples_xyz(
            np.zeros(len(dt), dtype=np.int_),
            *_taylor_state(kin, dt),
            visibility=False,
            culmination=culmination,
        )

    def _taylor_root(
        self,
        kin: FloatArray,
        x0: FloatArray,
        f0: FloatArray,
        fp0: FloatArray,
        lo: FloatArray,
        hi: FloatArray,
        which: str,
        tol_s: float,
        reach_s: FloatArray | float = TAYLOR_MAX_S,
    ) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray]:
        """Newton on g (or d sin(el)/dt) near x0 using only the local Taylor model.

        Returns (converged, root, el, az); a root is only accepted within ``reach_s``
        (at most TAYLOR_MAX_S) of the sgp4 sample it was extrapolated from and inside its
        bracket.
        """
        reach = np.broadcast_to(np.asarray(reach_s, dtype=np.float64), x0.shape)
        n = len(x0)
        done = np.zeros(n, dtype=bool)
        root = np.zeros(n)
        el = np.zeros(n)
        az = np.zeros(n)
        t = x0.copy()
        f = f0.copy()
        fp = fp0.copy()
        live = np.arange(n)
        for _ in range(5):
            if not len(live):
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                step = -f[live] / fp[live]
            tn = t[live] + step
            valid = np.isfinite(tn) & (np.abs(tn - x0[live]) <= reach[live])
            valid &= (tn > lo[live]) & (tn < hi[live])
            if which == "sinelp":
                valid &= fp[live] < 0
            live, tn, step = live[valid], tn[valid], step[valid]
            if not len(live):
                break
            if which == "g":
                g_n, gp_n, el_n, az_n = self.geo.crossing_terms(
                    *_taylor_state(kin[live], tn - x0[live])
                )
            else:
                st = self._extrapolate(kin[live], tn - x0[live], culmination=True)
                g_n, gp_n, el_n, az_n = st.sinelp, st.sinelpp, st.el, st.az
            conv = np.abs(step) < tol_s
            idx = live[conv]
            done[idx] = True
            root[idx] = tn[conv]
            el[idx] = el_n[conv]
            az[idx] = az_n[conv]
            t[live] = tn
            f[live] = g_n
            fp[live] = gp_n
            live = live[~conv]
        return done, root, el, az

    # -- phase 1: bracket -----------------------------------------------------
    def _coarse(self) -> tuple[FloatArray, _Grid, BoolArray, FloatArray]:
        """The coarse grid: samples where needed, and the intervals proven out by plane.

        A satellite can only be seen when the site is within the visibility angle of the
        satellite's orbital plane: the Earth-central angle between site and satellite is
        at least the angle between the site's direction and the plane. The plane's normal
        is sampled every PLANE_STEP_S (cheap: one SatrecArray call) and interpolated; the
        site's inertial direction is analytic. Grid intervals where that angle provably
        exceeds the visibility angle (with margins for interpolation and short-period
        wobble) are never propagated at all: for a mid-latitude site and a 55 deg
        constellation that is about 40% of the grid.
        """
        n_steps = max(1, math.ceil(self.span_s / COARSE_STEP_S))
        t = np.linspace(0.0, self.span_s, n_steps + 1)
        nsat = len(self.pred._satrecs)
        nt = len(t)
        assert self.pred._array is not None

        # Orbit normals at a few instants (TEME), and their largest turn rate.
        n_p = max(1, math.ceil(self.span_s / PLANE_STEP_S))
        t_p = np.linspace(0.0, self.span_s, n_p + 1)
        err_p, r_p, v_p = self.pred._array.sgp4(
            np.full(len(t_p), self.jd0), self.fr0 + t_p / _DAY_S
        )
        self.samples += nsat * len(t_p)
        normal = np.cross(r_p, v_p)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        turn = np.arccos(np.clip(np.sum(normal[:, 1:] * normal[:, :-1], axis=-1), -1.0, 1.0))
        dt_p = np.diff(t_p)
        # A satellite whose propagation failed has NaN normals, hence NaN angles, which
        # never count as proven out (its errors are then found and reported on the grid).
        rate_n = np.max(np.where(np.isfinite(turn), turn, 1.0) / dt_p, axis=1)
        # Interpolate the normal onto the grid (linear, renormalised), as (sat, time)
        # component arrays: (sat, time, 3) layouts make every operation strided.
        j = np.clip(np.searchsorted(t_p, t, side="right") - 1, 0, n_p - 1)
        w = (t - t_p[j]) / dt_p[j]
        nx, ny, nz = (normal[:, j, c] * (1.0 - w) + normal[:, j + 1, c] * w for c in range(3))
        inv_len = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz)
        nx *= inv_len
        ny *= inv_len
        nz *= inv_len
        # Site direction in TEME at the grid times: R_z(-theta) applied to the ECEF one.
        theta, _ = gmst82(np.full(nt, self.jd0), self.fr0 + t / _DAY_S + self.pred.dut1_s / _DAY_S)
        sx, sy, sz = self.geo.s_hat
        site_x = np.cos(theta) * sx - np.sin(theta) * sy
        site_y = np.sin(theta) * sx + np.cos(theta) * sy
        beta = np.abs(np.arcsin(np.clip(nx * site_x + ny * site_y + nz * sz, -1.0, 1.0)))
        h = np.diff(t)[None, :]
        site_rate = EARTH_ROTATION_RAD_S * math.hypot(sx, sy)
        rate = site_rate + 2.0 * np.nan_to_num(rate_n, nan=1.0)[:, None] + 1e-6
        lower = 0.5 * (beta[:, :-1] + beta[:, 1:] - rate * h)
        skip = lower > (self.lam_out[:, None] + PLANE_MARGIN_RAD)
        skip &= np.isfinite(lower)
        skip |= self._phase_skip(
            t, t_p, j, w, r_p, normal, (nx, ny, nz), (site_x, site_y, sz), beta, err_p
        )

        # Propagate only the grid points that bound an interval still in play, plus the
        # window edges (pass in progress at the start or the end).
        need = np.zeros((nsat, nt), dtype=bool)
        need[:, :-1] |= ~skip
        need[:, 1:] |= ~skip
        need[:, 0] = True
        need[:, -1] = True
        ks, cols = np.nonzero(need)
        self.samples += len(ks)
        states = self.pred._states(self.jd0, self.fr0, ks, t[cols])
        # Stage one: only the visibility function (and its rate) at every grid point;
        # the full look angles are computed later only where an interval survives.
        err, x, y, z, vx, vy, vz = states
        f_out, fp_out = self.geo.outer_visibility(x, y, z, vx, vy, vz)
        f_out = np.where(err != 0, -4.0, f_out)
        grid = _Grid(
            f_out=_fill2d(f_out, ks, cols, (nsat, nt), _GRID_DEFAULTS["f_out"]),
            fp_out=_fill2d(fp_out, ks, cols, (nsat, nt), 0.0),
            err=_fill2d(err, ks, cols, (nsat, nt), 0),
            pos=_fill2d(np.arange(len(ks)), ks, cols, (nsat, nt), -1),
            states=states,
        )
        err_first = np.where(err_p != 0, t_p[None, :], np.inf).min(axis=1)
        return t, grid, skip, err_first

    def _phase_skip(
        self,
        t: FloatArray,
        t_p: FloatArray,
        j: IntArray,
        w: FloatArray,
        r_p: FloatArray,
        normal: FloatArray,
        n_g: tuple[FloatArray, FloatArray, FloatArray],
        site: tuple[FloatArray, FloatArray, float],
        beta: FloatArray,
        err_p: npt.NDArray[Any],
    ) -> BoolArray:
        """Grid intervals where the satellite is provably too far along its orbit.

        Write the site direction (geocentric, TEME) and the satellite direction in the
        frame of the interpolated orbit plane: ``s = cos(beta) p(u_s) + sin(beta) n`` and
        ``r = cos(d) p(u) + sin(d) n`` with ``|d| <= PLANE_MARGIN_RAD`` (the same margin
        the plane test uses), so ``cos(lambda) = s . r <= max(cos(u - u_s), 0) +
        sin(PLANE_MARGIN_RAD)``. A visible satellite has ``cos(lambda) >= cos(lam_out)``,
        so it needs ``max(cos(phi), 0) >= c`` with ``c = cos(lam_out) -
        sin(PLANE_MARGIN_RAD)`` for the in-plane angle ``phi = u - u_s``. Only when ``c >
        0`` does this confine ``phi`` to within ``thr = acos(c) < pi/2`` of zero (mod 2
        pi); when ``c <= 0`` (``lam_out`` within the margin of 90 degrees or beyond: high
        orbits seen down to a negative mask) every ``phi`` satisfies it and nothing may be
        skipped, so such satellites take no part.

        ``u`` (argument of latitude, from the ascending node of the interpolated plane) is
        known exactly at the plane samples; between them it is interpolated linearly after
        unwrapping with the secular rate (sgp4's ``mdot + argpdot``). The interpolation
        error is bounded by ``D = 2 P + Q``: ``P`` bounds the periodic part of ``u``
        (equation of the centre ``2e + 2e^2``, J2 short-period terms below 3e-3 rad, the
        node's wobble ``2 PLANE_MARGIN_RAD / sin i``) and ``Q`` the curvature of its
        secular part (drag), measured from the change of the per-span residuals:
        ``Q = (max |resid_{k+1} - resid_k| + 4 P) / 8``. ``u_s`` is computed exactly at the
        grid times; within a grid interval its deviation from linear is at most
        ``|u_s''| h^2 / 8`` with ``|u_s''| <= 50 w^2`` while ``beta <= 1 rad``.

        Only near-circular (e < 0.05), inclined (sin i > 0.3) orbits with a period over
        two grid steps, ``c > 0``, no sgp4 error and consistent residuals take part, over
        windows with at least three plane samples; everything else is left to the other
        tests.
        """
        nsat, nt = beta.shape
        n_spans = len(t_p) - 1
        skip = np.zeros((nsat, nt - 1), dtype=bool)
        if n_spans < 3:
            return skip
        recs = self.pred._satrecs
        ecc = np.array([float(rec.ecco) for rec in recs])
        ubar = np.array([(float(rec.mdot) + float(rec.argpdot)) / 60.0 for rec in recs])
        h = np.diff(t)
        with np.errstate(invalid="ignore", divide="ignore"):
            sin_i = np.hypot(normal[..., 0], normal[..., 1])
            u_p = _plane_angle(
                (normal[..., 0], normal[..., 1], normal[..., 2]),
                (r_p[..., 0], r_p[..., 1], r_p[..., 2]),
            )
            dt_p = np.diff(t_p)
            du = np.diff(u_p, axis=1)
            secular = ubar[:, None] * dt_p[None, :]
            adv = du + _TAU * np.round((secular - du) / _TAU)
            resid = adv - secular
            u_unw = np.concatenate((u_p[:, :1], u_p[:, :1] + np.cumsum(adv, axis=1)), axis=1)
            d_resid = np.max(np.abs(np.diff(resid, axis=1)), axis=1)
            min_sin_i = np.min(sin_i, axis=1)
            periodic = 2.0 * ecc + 2.0 * ecc * ecc + 3e-3 + 2.0 * PLANE_MARGIN_RAD / min_sin_i
            drift = 2.0 * periodic + (d_resid + 4.0 * periodic) / 8.0
            # c <= 0 bounds no phi (see above); NaN (no finite r_max) fails too.
            cos_thr = np.cos(self.lam_out) - math.sin(PLANE_MARGIN_RAD)
            ok = (
                (ecc < 0.05)
                & (min_sin_i > 0.3)
                & (cos_thr > 0.0)
                & (ubar * float(np.max(h)) < math.pi)
                & np.all(err_p == 0, axis=1)
                & np.all(np.isfinite(u_unw), axis=1)
                & (np.max(np.abs(resid), axis=1) < 0.2)
            )
        if not np.any(ok):
            return skip
        k = np.flatnonzero(ok)
        u_lin = u_unw[k][:, j] * (1.0 - w) + u_unw[k][:, j + 1] * w
        u_s = _plane_angle((n_g[0][k], n_g[1][k], n_g[2][k]), site)
        phi = u_lin - u_s
        advance = np.mod(np.diff(phi, axis=1), _TAU)
        consistent = np.abs(advance - ubar[k, None] * h[None, :]) < 0.5
        w_e = EARTH_ROTATION_RAD_S
        # The slope of the interpolated u changes at plane samples inside an interval.
        kink = (d_resid[k] / float(np.min(dt_p)))[:, None] * h[None, :] / 4.0
        margin = drift[k, None] + 50.0 * w_e * w_e * h[None, :] ** 2 / 8.0 + kink
        thr = np.arccos(cos_thr[k])  # cos_thr in (0, 1) for every k
        lo = np.mod(phi[:, :-1] - margin, _TAU)
        hi = lo + advance + 2.0 * margin
        low_beta = (beta[k, :-1] < 1.0) & (beta[k, 1:] < 1.0)
        skip[k] = consistent & low_beta & (lo > thr[:, None]) & (hi < _TAU - thr[:, None])
        return skip

    def _bounds(self, iv: _Intervals) -> tuple[FloatArray, FloatArray]:
        """Rigorous upper bound of f_out and lower bound of f_in on each interval.

        The cheap quadratic bound is tried first; the tighter Hermite-plus-quartic bound
        is only computed where the quadratic one cannot decide (most coarse intervals are
        decided by the quadratic bound alone).
        """
        h = iv.tb - iv.ta
        sat = iv.sat
        quad = self.k2[sat] * h * h / 8.0
        with np.errstate(invalid="ignore", over="ignore"):
            quart = self.k4[sat] * h**4 / 384.0
        a, b = iv.a, iv.b

        fa, fpa, fb, fpb = a.f_out, a.fp_out, b.f_out, b.fp_out
        hi_out = np.maximum(
            np.maximum(fa, fb), np.maximum(fa + fpa * h / 2.0, fb - fpb * h / 2.0) + quad
        )
        idx = np.flatnonzero((hi_out >= 0.0) & np.isfinite(quart))
        if len(idx):
            _, hi3 = _hermite_extremes(fa[idx], fpa[idx], fb[idx], fpb[idx], h[idx])
            hi_out[idx] = np.minimum(hi_out[idx], hi3 + quart[idx])

        lo_in = np.full(len(h), -np.inf)
        cand = np.flatnonzero(hi_out >= 0.0)
        if len(cand):
            fa, fpa = a.f_in[cand], a.fp_in[cand]
            fb, fpb = b.f_in[cand], b.fp_in[cand]
            hc = h[cand]
            lo2 = np.minimum(
                np.minimum(fa, fb),
                np.minimum(fa + fpa * hc / 2.0, fb - fpb * hc / 2.0) - quad[cand],
            )
            qc = quart[cand]
            sub = np.flatnonzero((lo2 <= 0.0) & np.isfinite(qc))
            if len(sub):
                lo3, _ = _hermite_extremes(fa[sub], fpa[sub], fb[sub], fpb[sub], hc[sub])
                lo2[sub] = np.maximum(lo2[sub], lo3 - qc[sub])
            lo_in[cand] = lo2
        return hi_out, lo_in

    def _split(self, sp: _Intervals, inside: BoolArray, *, first: bool = False) -> _Intervals:
        """Cut intervals: undecided ones next to the predicted threshold crossings.

        Provably-in intervals longer than IN_STEP_S are cut into equal pieces (culmination
        search needs el' at most IN_STEP_S apart). An undecided interval is cut
        FINE_STEP_S/2 either side of each predicted crossing of f_out (and of f_in where
        that is not already inside such a cut), so the crossing ends up in a fine interval
        and the rest is usually decided in the next round; one with no predicted crossing
        is halved, so every undecided interval still shrinks geometrically.

        In the ``first`` round (coarse grid intervals), an undecided interval of a
        single-peak satellite with the satellite below the mask at both ends is instead cut
        once, at the peak of f_out's Hermite interpolant: when the satellite is up there,
        both halves are brackets already (one sample per pass instead of four); when it is
        not, the halves go through the rounds above. Where an interval is cut never
        affects which passes are found, only how many samples it takes.
        """
        h = sp.tb - sp.ta
        half = 0.5 * FINE_STEP_S
        rows_o, s_o = _hermite_roots(sp.a.f_out, sp.a.fp_out, sp.b.f_out, sp.b.fp_out, h)
        rows_i, s_i = _hermite_roots(sp.a.f_in, sp.a.fp_in, sp.b.f_in, sp.b.fp_in, h)
        t_o = sp.ta[rows_o] + s_o * h[rows_o]
        t_i = sp.ta[rows_i] + s_i * h[rows_i]
        peak_rows = np.empty(0, dtype=np.intp)
        peak_t = np.empty(0)
        if first:
            cand = np.flatnonzero(
                self.single_peak[sp.sat] & ~inside & (sp.a.g <= 0.0) & (sp.b.g <= 0.0)
            )
            if len(cand):
                hc = h[cand]
                ca, cb, cc, _ = _hermite(
                    sp.a.f_out[cand], sp.a.fp_out[cand], sp.b.f_out[cand], sp.b.fp_out[cand], hc
                )
                with np.errstate(divide="ignore", invalid="ignore"):
                    disc = cb * cb - 3.0 * ca * cc
                    s_peak = np.where(
                        np.abs(ca) < 1e-15,
                        -cc / (2.0 * cb),
                        (-cb - np.sqrt(np.maximum(disc, 0.0))) / (3.0 * ca),
                    )
                ok = np.isfinite(s_peak) & (s_peak > 0.05) & (s_peak < 0.95)
                peak_rows = cand[ok]
                peak_t = sp.ta[peak_rows] + s_peak[ok] * hc[ok]
                by_peak = np.zeros(len(h), dtype=bool)
                by_peak[peak_rows] = True
                keep_o = ~by_peak[rows_o]
                rows_o, t_o = rows_o[keep_o], t_o[keep_o]
                keep_i = ~by_peak[rows_i]
                rows_i, t_i = rows_i[keep_i], t_i[keep_i]
        rows_parts = [rows_o, rows_o, peak_rows]
        times_parts = [t_o - half, t_o + half, peak_t]
        if len(rows_i):
            # f_in roots already within a cut around an f_out root need no cut of their own.
            key_o = rows_o * 1e9 + t_o
            order_o = np.argsort(key_o)
            key_o = key_o[order_o]
            key_i = rows_i * 1e9 + t_i
            near = np.zeros(len(key_i), dtype=bool)
            if len(key_o):
                j = np.searchsorted(key_o, key_i)
                for nb in (np.clip(j - 1, 0, len(key_o) - 1), np.clip(j, 0, len(key_o) - 1)):
                    near |= np.abs(key_o[nb] - key_i) < half
            rows_parts += [rows_i[~near], rows_i[~near]]
            times_parts += [t_i[~near] - half, t_i[~near] + half]
        long_in = np.flatnonzero(inside)
        if len(long_in):
            pieces = np.ceil(h[long_in] / IN_STEP_S).astype(np.intp)
            rep = np.repeat(long_in, pieces - 1)
            k = np.arange(len(rep)) - np.repeat(np.cumsum(pieces - 1) - (pieces - 1), pieces - 1)
            rows_parts.append(rep)
            times_parts.append(sp.ta[rep] + (k + 1) * h[rep] / np.repeat(pieces, pieces - 1))
        rows = np.concatenate(rows_parts)
        times = np.concatenate(times_parts)
        guard = 1.0
        ok = (times > sp.ta[rows] + guard) & (times < sp.tb[rows] - guard)
        rows, times = rows[ok], times[ok]
        # Rows left without any cut are halved.
        has_cut = np.zeros(len(h), dtype=bool)
        has_cut[rows] = True
        uncut = np.flatnonzero(~has_cut)
        rows = np.concatenate((rows, uncut))
        times = np.concatenate((times, 0.5 * (sp.ta[uncut] + sp.tb[uncut])))
        order = np.lexsort((times, rows))
        rows, times = rows[order], times[order]
        keep = np.ones(len(rows), dtype=bool)
        keep[1:] = (rows[1:] != rows[:-1]) | (times[1:] - times[:-1] > guard)
        rows, times = rows[keep], times[keep]
        new = self.eval(sp.sat[rows], times, keep_kin=False, culmination=False)
        new_v = np.stack([getattr(new, f) for f in _END_FIELDS], axis=-1).astype(float)
        # Each row r becomes cnt[r] + 1 intervals: start -> cut_1 -> ... -> cut_k -> end.
        # Cuts are sorted by (row, time) already, so positions follow from counts alone.
        n = len(h)
        cnt = np.bincount(rows, minlength=n)
        pieces = cnt + 1
        first_piece = np.concatenate(([0], np.cumsum(pieces)[:-1]))
        m = int(pieces.sum())
        rank = np.arange(len(rows)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        # Left ends: the row start for piece 0, else cut (rank); right ends: cut or row end.
        left_t = np.empty(m)
        right_t = np.empty(m)
        left_v = np.empty((m, _NE))
        right_v = np.empty((m, _NE))
        left_t[first_piece] = sp.ta
        left_v[first_piece] = sp.a.v
        last_piece = first_piece + cnt
        right_t[last_piece] = sp.tb
        right_v[last_piece] = sp.b.v
        cut_left = first_piece[rows] + rank + 1  # the piece that starts at this cut
        left_t[cut_left] = times
        left_v[cut_left] = new_v
        right_t[cut_left - 1] = times
        right_v[cut_left - 1] = new_v
        out = np.empty((m, 3 + 2 * _NE))
        out[:, 0] = np.repeat(sp.sat, pieces)
        out[:, 1] = left_t
        out[:, 2] = right_t
        out[:, 3 : 3 + _NE] = left_v
        out[:, 3 + _NE :] = right_v
        return _Intervals(out)

    def run(self, start: datetime) -> PredictionResult:
        """Bracket, refine and assemble the passes."""
        t_grid, s0, skip, err_first = self._coarse()
        # Most coarse intervals are far from visibility: drop them with the quadratic
        # bound on the grid itself before building interval rows for the rest.
        h0 = np.diff(t_grid)[None, :]
        quad0 = self.k2[:, None] * h0 * h0 / 8.0
        fa, fb = s0.f_out[:, :-1], s0.f_out[:, 1:]
        fpa, fpb = s0.fp_out[:, :-1], s0.fp_out[:, 1:]
        hi0 = np.maximum(
            np.maximum(fa, fb), np.maximum(fa + fpa * h0 / 2.0, fb - fpb * h0 / 2.0) + quad0
        )
        hi0[skip] = -np.inf
        sat_idx, col = np.nonzero(hi0 >= 0.0)
        # Stage two: full samples at the ends of the surviving intervals and the window
        # edges only (every one of them was propagated in stage one).
        p_a, p_b = s0.pos[sat_idx, col], s0.pos[sat_idx, col + 1]
        p_0, p_1 = s0.pos[:, 0], s0.pos[:, -1]
        used = np.zeros(len(s0.states[0]), dtype=bool)
        for p in (p_a, p_b, p_0, p_1):
            used[p] = True
        sel = np.flatnonzero(used)
        row = np.empty(len(used), dtype=np.intp)
        row[sel] = np.arange(len(sel))
        full = self.geo.samples_xyz(
            *(c[sel] for c in s0.states), visibility=True, culmination=False
        )
        ends = np.stack([getattr(full, f) for f in _END_FIELDS], axis=-1).astype(float)
        iv = _Intervals.build(
            sat_idx, t_grid[col], t_grid[col + 1], _End(ends[row[p_a]]), _End(ends[row[p_b]])
        )
        edges = (_End(ends[row[p_0]]), _End(ends[row[p_1]]))
        problems = self._problems(start, t_grid, s0.err, err_first)
        kept: list[_Intervals] = []
        total = max(1, len(iv))
        first = True
        while len(iv):
            h = iv.tb - iv.ta
            hi_out, lo_in = self._bounds(iv)
            bad = (iv.a.err != 0) | (iv.b.err != 0)
            out = (hi_out < 0.0) | bad
            proven_in = (lo_in > 0.0) & ~bad
            short_in = proven_in & (h <= IN_STEP_S + 1e-6)
            fine = (h <= FINE_STEP_S + 1e-6) & ~bad
            # Single-peak satellites: an interval with the satellite above the mask at
            # either end holds at most one crossing (see _Search.single_peak), so it is
            # a bracket as it is, however long.
            sure = self.single_peak[iv.sat] & ((iv.a.g > 0) | (iv.b.g > 0)) & ~bad
            keep = ~out & (short_in | fine | sure)
            split = ~out & ~keep
            if np.any(keep):
                kept.append(iv.select(keep))
            if self.progress is not None:
                self.progress(min(0.9, 0.9 * (1.0 - np.count_nonzero(split) / total)))
            if not np.any(split):
                break
            iv = self._split(iv.select(split), proven_in[split], first=first)
            first = False
        table = (
            self._assemble(start, _Intervals.concat(kept), edges)
            if kept
            else PassTable.empty(start, self.span_s)
        )
        if self.progress is not None:
            self.progress(1.0)
        return PredictionResult(table, problems, self.samples)

    def _problems(
        self,
        start: datetime,
        t_grid: FloatArray,
        err: npt.NDArray[np.int_],
        err_first: FloatArray,
    ) -> list[SatelliteProblem]:
        out: list[SatelliteProblem] = []
        for k in np.flatnonzero(np.any(err != 0, axis=1)):
            j = int(np.argmax(err[k] != 0))
            code = int(err[k, j])
            sat = self.pred.satellites[k]
            first_s = min(float(t_grid[j]), float(err_first[k]))
            out.append(
                SatelliteProblem(
                    sat.norad_id,
                    sat.name,
                    start + timedelta(seconds=first_s),
                    f"sgp4 error {code}: {SGP4_ERRORS.get(code, 'unknown')}; "
                    "no passes predicted from here on",
                )
            )
        return out

    # -- phase 2: roots and assembly ------------------------------------------
    def _assemble(self, start: datetime, iv: _Intervals, edges: tuple[_End, _End]) -> PassTable:
        ga, gb = iv.a.g, iv.b.g
        up = (ga <= 0) & (gb > 0)
        down = (ga > 0) & (gb <= 0)
        graze = (ga <= 0) & (gb <= 0) & (iv.a.gp > 0) & (iv.b.gp < 0)
        parts_up = [iv.select(up)]
        parts_down = [iv.select(down)]
        if np.any(graze):
            gz = iv.select(graze)
            t_max = self._illinois(gz.sat, gz.ta, gz.tb, gz.a.gp, gz.b.gp, "gp")
            s = self.eval(gz.sat, t_max)
            hit = np.flatnonzero(s.g > 0)
            if len(hit):
                g_sel = gz.select(hit)
                m = _End.of(s, hit)
                parts_up.append(_Intervals.build(g_sel.sat, g_sel.ta, t_max[hit], g_sel.a, m))
                parts_down.append(_Intervals.build(g_sel.sat, t_max[hit], g_sel.tb, m, g_sel.b))
        ups = _Intervals.concat(parts_up)
        downs = _Intervals.concat(parts_down)
        # One root search for both kinds of crossing (halves the fixed per-call costs).
        n_up = len(ups)
        t_both, el_both, az_both = self._newton(_Intervals.concat([ups, downs]))
        t_up, el_up, az_up = t_both[:n_up], el_both[:n_up], az_both[:n_up]
        t_down, el_down, az_down = t_both[n_up:], el_both[n_up:], az_both[n_up:]
        # Culminations: el' changes sign from + to - inside a kept interval.
        cul = (iv.a.sinelp > 0) & (iv.b.sinelp <= 0)
        cv = iv.select(cul)
        t_cul, el_cul, az_cul = self._culminations(cv)

        # Pair AOS with LOS per satellite; a pass in view at either window edge is clipped.
        at_start, at_end = edges
        start_in = np.flatnonzero(at_start.g > 0)
        end_in = np.flatnonzero(at_end.g > 0)
        ev_sat = np.concatenate((ups.sat, downs.sat, start_in, end_in))
        ev_t = np.concatenate(
            (t_up, t_down, np.zeros(len(start_in)), np.full(len(end_in), self.span_s))
        )
        ev_kind = np.concatenate(
            (
                np.ones(len(t_up)),
                -np.ones(len(t_down)),
                np.full(len(start_in), 2.0),
                np.full(len(end_in), -2.0),
            )
        )
        ev_el = np.concatenate((el_up, el_down, at_start.el[start_in], at_end.el[end_in]))
        ev_az = np.concatenate((az_up, az_down, at_start.az[start_in], at_end.az[end_in]))
        order = np.lexsort((ev_t, ev_sat))
        ev_sat, ev_t, ev_kind = ev_sat[order], ev_t[order], ev_kind[order]
        ev_el, ev_az = ev_el[order], ev_az[order]
        pair = np.flatnonzero((ev_kind[:-1] > 0) & (ev_kind[1:] < 0) & (ev_sat[:-1] == ev_sat[1:]))
        p_sat = ev_sat[pair].astype(np.intp)
        p_aos = ev_t[pair]
        p_los = ev_t[pair + 1]
        clip_start = ev_kind[pair] == 2.0
        clip_end = ev_kind[pair + 1] == -2.0
        n = len(pair)
        if n == 0:
            return PassTable.empty(start, self.span_s)

        # Assign culminations to passes (passes are sorted by satellite, then AOS).
        scale = self.span_s + 10.0
        key_pass = p_sat * scale + p_aos
        c_idx = np.searchsorted(key_pass, cv.sat * scale + t_cul, side="right") - 1
        ok = c_idx >= 0
        ok[ok] &= (p_sat[c_idx[ok]] == cv.sat[ok]) & (t_cul[ok] <= p_los[c_idx[ok]])
        c_idx, c_t, c_el, c_az = c_idx[ok], t_cul[ok], el_cul[ok], az_cul[ok]
        n_cul = np.bincount(c_idx, minlength=n)
        best_el = np.full(n, -np.inf)
        best_az = np.zeros(n)
        best_t = p_aos.copy()
        ordr = np.lexsort((c_el, c_idx))
        last = (
            np.flatnonzero(np.r_[c_idx[ordr][1:] != c_idx[ordr][:-1], True])
            if len(ordr)
            else np.empty(0, dtype=np.intp)
        )
        best_el[c_idx[ordr][last]] = c_el[ordr][last]
        best_az[c_idx[ordr][last]] = c_az[ordr][last]
        best_t[c_idx[ordr][last]] = c_t[ordr][last]

        el_aos, el_los = ev_el[pair], ev_el[pair + 1]
        az_aos, az_los = ev_az[pair], ev_az[pair + 1]
        # A clipped pass may peak at the window edge rather than at a culmination (and a
        # masked one at AOS or LOS when the mask hides the culmination).
        for t_edge, el_edge, az_edge in ((p_aos, el_aos, az_aos), (p_los, el_los, az_los)):
            higher = el_edge > best_el
            best_t = np.where(higher, t_edge, best_t)
            best_az = np.where(higher, az_edge, best_az)
            best_el = np.where(higher, el_edge, best_el)

        norad = np.array([sat.norad_id for sat in self.pred.satellites], dtype=np.int_)
        final = np.lexsort((norad[p_sat], p_aos))
        rank = np.empty(n, dtype=np.intp)
        rank[final] = np.arange(n)
        culminations: dict[int, list[tuple[float, float]]] = {}
        if np.any(n_cul > 1):
            multi = set(np.flatnonzero(n_cul > 1).tolist())
            deg_c = 180.0 / math.pi
            for i_p, t_c, e_c in zip(c_idx.tolist(), c_t.tolist(), c_el.tolist(), strict=True):
                if i_p in multi:
                    culminations.setdefault(int(rank[i_p]), []).append((t_c, e_c * deg_c))
            for lst in culminations.values():
                lst.sort()
        deg = 180.0 / math.pi
        names = self.pred._names
        return PassTable(
            start=start,
            span_s=self.span_s,
            names=tuple(names[k] for k in p_sat[final].tolist()),
            norad_id=norad[p_sat][final],
            aos_s=p_aos[final],
            tca_s=best_t[final],
            los_s=p_los[final],
            max_el_deg=best_el[final] * deg,
            aos_az_deg=az_aos[final] * deg,
            tca_az_deg=best_az[final] * deg,
            los_az_deg=az_los[final] * deg,
            clipped_start=clip_start[final],
            clipped_end=clip_end[final],
            culminations=culminations,
        )

    def _culminations(self, cv: _Intervals) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Culminations: roots of d(sin el)/dt where it goes from + to -, with el and az.

        The elevation peaks where the Earth-central angle is smallest (exactly so for a
        spherical Earth and constant radius), so the peak of the Hermite interpolant of
        f_out is the first guess. Newton on d(sin el)/dt then uses the analytic second
        derivative (gravity with J2 plus the rotating-frame terms; sin(el) is smooth
        through the zenith where el itself has a cusp), safeguarded by the bracket; near
        a sample it finishes on the Taylor model (to a last step under ROOT_TOL_S). The
        reported culmination is the last evaluated point, so its elevation and azimuth
        come with it.
        """
        n = len(cv)
        if n == 0:
            z = np.empty(0)
            return z, z, z
        a, b = cv.ta.copy(), cv.tb.copy()
        h = b - a
        ca, cb, cc, _ = _hermite(cv.a.f_out, cv.a.fp_out, cv.b.f_out, cv.b.fp_out, h)
        with np.errstate(divide="ignore", invalid="ignore"):
            disc = cb * cb - 3.0 * ca * cc
            lin = np.abs(ca) < 1e-15
            s_peak = np.where(
                lin, -cc / (2.0 * cb), (-cb - np.sqrt(np.maximum(disc, 0.0))) / (3.0 * ca)
            )
        ok = np.isfinite(s_peak) & (s_peak > 0.0) & (s_peak < 1.0)
        x = np.where(ok, a + s_peak * h, 0.5 * (a + b))
        t_out = np.full(n, np.nan)
        el_out = np.zeros(n)
        az_out = np.zeros(n)
        active = np.arange(n)
        sat = cv.sat
        for _ in range(_MAX_ITER):
            if not len(active):
                break
            s = self.eval(sat[active], x[active], visibility=False)
            if s.kin is not None:
                ok_t, t_t, el_t, az_t = self._taylor_root(
                    s.kin,
                    x[active],
                    s.sinelp,
                    s.sinelpp,
                    a[active],
                    b[active],
                    "sinelp",
                    ROOT_TOL_S,
                )
                hit = active[ok_t]
                t_out[hit], el_out[hit] = t_t[ok_t], el_t[ok_t]
                az_out[hit] = az_t[ok_t]
                keep = ~ok_t
                active, s = active[keep], _take_samples(s, keep)
                if not len(active):
                    break
            f, fp = s.sinelp, s.sinelpp
            pos = f > 0
            a[active] = np.where(pos, x[active], a[active])
            b[active] = np.where(pos, b[active], x[active])
            with np.errstate(divide="ignore", invalid="ignore"):
                step = -f / fp
            cand = x[active] + step
            aa, bb = a[active], b[active]
            newton_ok = np.isfinite(cand) & (fp < 0) & (cand > aa) & (cand < bb)
            done = (newton_ok & (np.abs(step) < CULMINATION_TOL_S)) | (
                (bb - aa) < CULMINATION_TOL_S
            )
            idx = active[done]
            t_out[idx] = x[idx]
            el_out[idx] = s.el[done]
            az_out[idx] = s.az[done]
            x[active] = np.where(newton_ok, cand, 0.5 * (aa + bb))
            active = active[~done]
        if len(active):
            # Not converged within _MAX_ITER (never seen): take the bracket's middle.
            x_mid = 0.5 * (a[active] + b[active])
            s = self.eval(sat[active], x_mid)
            t_out[active], el_out[active], az_out[active] = x_mid, s.el, s.az
        return t_out, el_out, az_out

    def _newton(self, iv: _Intervals) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Roots of g in brackets with a sign change: safeguarded Newton.

        Returns the roots and the elevation and azimuth at the last point evaluated,
        which is within ROOT_TOL_S of the root (so no extra evaluation is needed).
        """
        a = iv.ta.copy()
        b = iv.tb.copy()
        ga = iv.a.g.copy()
        # Start from the end with the smaller |g| (closer to the root).
        use_a = np.abs(iv.a.g) <= np.abs(iv.b.g)
        x = np.where(use_a, iv.ta, iv.tb)
        gx = np.where(use_a, iv.a.g, iv.b.g)
        gpx = np.where(use_a, iv.a.gp, iv.b.gp)
        elx = np.where(use_a, iv.a.el, iv.b.el)
        azx = np.where(use_a, iv.a.az, iv.b.az)
        root = np.full(len(a), np.nan)
        active = np.arange(len(a))
        sat = iv.sat
        # Long brackets: first jump to a predicted root. The elevation over a long
        # bracket is far from cubic, but the central-angle functions are smooth: the
        # mean of the f_out and f_in crossings (elevation thresholds just below and just
        # above the mask) lands within seconds. The cubic of g is the fallback.
        long_b = np.flatnonzero((b - a) > FINE_STEP_S)
        if len(long_b):
            hl = (b - a)[long_b]
            rising = iv.b.g[long_b] > iv.a.g[long_b]
            guess = 0.5 * (a[long_b] + b[long_b])
            total = np.zeros(len(long_b))
            count = np.zeros(len(long_b))
            for fa, fpa, fb, fpb in (
                (iv.a.f_out, iv.a.fp_out, iv.b.f_out, iv.b.fp_out),
                (iv.a.f_in, iv.a.fp_in, iv.b.f_in, iv.b.fp_in),
            ):
                fa_l, fpa_l, fb_l, fpb_l = fa[long_b], fpa[long_b], fb[long_b], fpb[long_b]
                rows, s_root = _hermite_roots(fa_l, fpa_l, fb_l, fpb_l, hl)
                ca, cb, cc, _ = _hermite(fa_l[rows], fpa_l[rows], fb_l[rows], fpb_l[rows], hl[rows])
                slope_up = (3.0 * ca * s_root + 2.0 * cb) * s_root + cc > 0
                match = slope_up == rising[rows]
                np.add.at(
                    total, rows[match], a[long_b][rows[match]] + s_root[match] * hl[rows[match]]
                )
                np.add.at(count, rows[match], 1.0)
            found = count > 0
            guess[found] = total[found] / count[found]
            miss = np.flatnonzero(~found)
            if len(miss):
                # The fallback: a root of the cubic of g itself.
                lm = long_b[miss]
                rows, s_root = _hermite_roots(
                    iv.a.g[lm], iv.a.gp[lm], iv.b.g[lm], iv.b.gp[lm], hl[miss]
                )
                guess[miss[rows]] = a[lm][rows] + s_root * hl[miss][rows]
            guess = np.clip(guess, a[long_b] + 1e-3, b[long_b] - 1e-3)
            s = self.eval(sat[long_b], guess, visibility=False, culmination=False)
            same_as_a = np.sign(s.g) == np.sign(ga[long_b])
            a[long_b] = np.where(same_as_a, guess, a[long_b])
            ga[long_b] = np.where(same_as_a, s.g, ga[long_b])
            b[long_b] = np.where(same_as_a, b[long_b], guess)
            x[long_b] = guess
            gx[long_b] = s.g
            gpx[long_b] = s.gp
            elx[long_b] = s.el
            azx[long_b] = s.az
            self._finish_by_taylor(long_b, s, guess, a, b, root, elx, azx)
            active = np.flatnonzero(np.isnan(root))
        for _ in range(_MAX_ITER):
            if not len(active):
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                step = -gx[active] / gpx[active]
            cand = x[active] + step
            aa, bb = a[active], b[active]
            ok = np.isfinite(cand) & (cand > aa) & (cand < bb)
            cand = np.where(ok, cand, 0.5 * (aa + bb))
            done = (ok & (np.abs(step) < ROOT_TOL_S)) | ((bb - aa) < 0.02 * ROOT_TOL_S)
            root[active[done]] = cand[done]
            active = active[~done]
            cand = cand[~done]
            if not len(active):
                break
            s = self.eval(sat[active], cand, visibility=False, culmination=False)
            same_as_a = np.sign(s.g) == np.sign(ga[active])
            a[active] = np.where(same_as_a, cand, a[active])
            ga[active] = np.where(same_as_a, s.g, ga[active])
            b[active] = np.where(same_as_a, b[active], cand)
            x[active] = cand
            gx[active] = s.g
            gpx[active] = s.gp
            elx[active] = s.el
            azx[active] = s.az
            self._finish_by_taylor(active, s, cand, a, b, root, elx, azx)
            active = active[np.isnan(root[active])]
        leftover = np.isnan(root)
        root[leftover] = 0.5 * (a[leftover] + b[leftover])
        return root, elx, azx

    def _finish_by_taylor(
        self,
        idx: IntArray,
        s: _Samples,
        x0: FloatArray,
        a: FloatArray,
        b: FloatArray,
        root: FloatArray,
        elx: FloatArray,
        azx: FloatArray,
    ) -> None:
        """Finish crossing roots near fresh sgp4 samples with the Taylor model, in place."""
        if s.kin is None or not len(idx):
            return
        reach = np.clip(
            TAYLOR_GAIN_S_PER_KM * s.range_km * np.abs(s.gp), TAYLOR_MIN_S, TAYLOR_MAX_S
        )
        ok, t, el, az = self._taylor_root(
            s.kin, x0, s.g, s.gp, a[idx], b[idx], "g", ROOT_TOL_S, reach
        )
        hit = idx[ok]
        root[hit], elx[hit], azx[hit] = t[ok], el[ok], az[ok]

    def _illinois(
        self,
        sat: IntArray,
        ta: FloatArray,
        tb: FloatArray,
        fa_in: FloatArray,
        fb_in: FloatArray,
        which: str,
    ) -> FloatArray:
        """Root of a decreasing quantity (d sin(el)/dt or g') with f(a) > 0 >= f(b): Illinois."""
        a, b = ta.copy(), tb.copy()
        fa, fb = fa_in.copy(), fb_in.copy()
        side = np.zeros(len(a), dtype=np.int_)
        result = np.full(len(a), np.nan)
        active = np.arange(len(a))
        for _ in range(_MAX_ITER):
            if not len(active):
                break
            aa, bb, fa_, fb_ = a[active], b[active], fa[active], fb[active]
            with np.errstate(divide="ignore", invalid="ignore"):
                x = (aa * fb_ - bb * fa_) / (fb_ - fa_)
            x = np.where(np.isfinite(x) & (x > aa) & (x < bb), x, 0.5 * (aa + bb))
            done = (bb - aa) < CULMINATION_TOL_S
            result[active[done]] = x[done]
            active, x = active[~done], x[~done]
            if not len(active):
                break
            s = self.eval(sat[active], x)
            fx = s.sinelp if which == "sinelp" else s.gp
            pos = fx > 0
            idx_pos, idx_neg = active[pos], active[~pos]
            # Illinois: halve the stale end's value when the same end is kept twice.
            fb[idx_pos] = np.where(side[idx_pos] == 1, fb[idx_pos] * 0.5, fb[idx_pos])
            a[idx_pos], fa[idx_pos] = x[pos], fx[pos]
            side[idx_pos] = 1
            fa[idx_neg] = np.where(side[idx_neg] == -1, fa[idx_neg] * 0.5, fa[idx_neg])
            b[idx_neg], fb[idx_neg] = x[~pos], fx[~pos]
            side[idx_neg] = -1
            # Converged when the new point barely moved the bracket's far side.
            width = b[active] - a[active]
            conv = width < CULMINATION_TOL_S
            conv |= np.abs(fx) < 1e-12
            result[active[conv]] = x[conv]
            active = active[~conv]
        leftover = np.isnan(result)
        result[leftover] = 0.5 * (a[leftover] + b[leftover])
        return result


_END_FIELDS = ("err", "f_out", "fp_out", "f_in", "fp_in", "g", "gp", "sinelp", "el", "az")
_NE = len(_END_FIELDS)


class _End:
    """The values the search keeps at one end of an interval, one row per interval.

    Stored as one 2-D array so selecting intervals is a single fancy-indexing operation.
    """

    __slots__ = ("v",)

    def __init__(self, v: FloatArray) -> None:
        self.v = v

    @property
    def err(self) -> FloatArray:
        """sgp4 error code (0 = fine)."""
        return self.v[:, 0]

    @property
    def f_out(self) -> FloatArray:
        """Visibility function proving 'below the mask' when negative."""
        return self.v[:, 1]

    @property
    def fp_out(self) -> FloatArray:
        """Its time derivative."""
        return self.v[:, 2]

    @property
    def f_in(self) -> FloatArray:
        """Visibility function proving 'above the mask' when positive."""
        return self.v[:, 3]

    @property
    def fp_in(self) -> FloatArray:
        """Its time derivative."""
        return self.v[:, 4]

    @property
    def g(self) -> FloatArray:
        """Elevation minus mask (rad)."""
        return self.v[:, 5]

    @property
    def gp(self) -> FloatArray:
        """Its time derivative."""
        return self.v[:, 6]

    @property
    def sinelp(self) -> FloatArray:
        """Rate of sin(elevation) (1/s): smooth through the zenith."""
        return self.v[:, 7]

    @property
    def el(self) -> FloatArray:
        """Elevation (rad)."""
        return self.v[:, 8]

    @property
    def az(self) -> FloatArray:
        """Azimuth (rad)."""
        return self.v[:, 9]

    @classmethod
    def of(cls, s: _Samples, idx: IntArray) -> _End:
        """The end values of samples ``idx``."""
        return cls(np.stack([getattr(s, f)[idx] for f in _END_FIELDS], axis=-1).astype(float))


class _Intervals:
    """Intervals (satellite, start, end) with the values at both ends, one row each."""

    __slots__ = ("v",)

    def __init__(self, v: FloatArray) -> None:
        self.v = v

    @classmethod
    def build(cls, sat: IntArray, ta: FloatArray, tb: FloatArray, a: _End, b: _End) -> _Intervals:
        """Assemble from columns."""
        return cls(np.column_stack((sat, ta, tb, a.v, b.v)))

    @property
    def sat(self) -> IntArray:
        """Satellite index."""
        return self.v[:, 0].astype(np.intp)

    @property
    def ta(self) -> FloatArray:
        """Start (s from the window start)."""
        return self.v[:, 1]

    @property
    def tb(self) -> FloatArray:
        """End (s from the window start)."""
        return self.v[:, 2]

    @property
    def a(self) -> _End:
        """Values at the start."""
        return _End(self.v[:, 3 : 3 + _NE])

    @property
    def b(self) -> _End:
        """Values at the end."""
        return _End(self.v[:, 3 + _NE :])

    def __len__(self) -> int:
        return len(self.v)

    def select(self, sel: BoolArray | IntArray) -> _Intervals:
        """A subset."""
        return _Intervals(self.v[sel])

    @classmethod
    def concat(cls, parts: Sequence[_Intervals]) -> _Intervals:
        """Concatenation of several."""
        return cls(np.concatenate([p.v for p in parts]) if parts else np.empty((0, 3 + 2 * _NE)))
