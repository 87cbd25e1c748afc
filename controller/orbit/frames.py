"""Reference frames for pass prediction: GMST (IAU-82), TEME -> Earth-fixed, WGS-84 sites.

Conventions (chosen so results are comparable with skyfield's ``find_events``):
TEME is rotated to the pseudo-Earth-fixed frame by GMST 1982 (AIAA 2006-6753, appendix C)
evaluated at UT1 = UTC + dut1 (configurable, 0 by default); polar motion is ignored.
Elevations are geometric (no refraction), measured from the WGS-84 geodetic horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "EARTH_ROTATION_RAD_S",
    "WGS84_A_KM",
    "WGS84_F",
    "GeodeticSite",
    "gmst82",
    "teme_to_ecef",
]

FloatArray = npt.NDArray[np.float64]

WGS84_A_KM = 6378.137
WGS84_F = 1.0 / 298.257223563
# Nominal rotation rate, only used for rate bounds (the frames use GMST's own derivative).
EARTH_ROTATION_RAD_S = 7.2921158553e-5
_J2000_JD = 2451545.0
_DAY_S = 86400.0
_TAU = 2.0 * math.pi


def gmst82(jd_ut1: FloatArray, fraction_ut1: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GMST 1982 angle (rad) and its rate (rad/s) for UT1 Julian dates split in two parts.

    The split (whole + fraction) keeps sub-microsecond resolution over decades.
    """
    t = (jd_ut1 - _J2000_JD + fraction_ut1) / 36525.0
    g = 67310.54841 + (8640184.812866 + (0.093104 + (-6.2e-6) * t) * t) * t
    dg = 8640184.812866 + (0.093104 * 2.0 + (-6.2e-6 * 3.0) * t) * t
    theta = ((jd_ut1 % 1.0 + fraction_ut1 + (g / _DAY_S) % 1.0) % 1.0) * _TAU
    theta_dot = (1.0 + dg / (_DAY_S * 36525.0)) * _TAU / _DAY_S
    return theta, theta_dot


def teme_to_ecef(
    r_teme_km: FloatArray, v_teme_km_s: FloatArray, theta: FloatArray, theta_dot: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Rotate TEME position/velocity (..., 3) into the Earth-fixed frame.

    The velocity is Earth-relative (the frame's rotation subtracted), which is what
    range rate and Doppler need.
    """
    cos_t = np.cos(theta)
    sin_t = np.sin(theta)
    x, y, z = r_teme_km[..., 0], r_teme_km[..., 1], r_teme_km[..., 2]
    vx, vy, vz = v_teme_km_s[..., 0], v_teme_km_s[..., 1], v_teme_km_s[..., 2]
    xe = cos_t * x + sin_t * y
    ye = -sin_t * x + cos_t * y
    vxe = cos_t * vx + sin_t * vy + theta_dot * ye
    vye = -sin_t * vx + cos_t * vy - theta_dot * xe
    r = np.stack((xe, ye, z), axis=-1)
    v = np.stack((vxe, vye, vz), axis=-1)
    return r, v


@dataclass(frozen=True)
class GeodeticSite:
    """A WGS-84 site with its Earth-fixed position and local east/north/up axes."""

    lat_deg: float
    lon_deg: float
    alt_m: float

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(f"latitude {self.lat_deg} deg is outside -90..90")
        if not -180.0 <= self.lon_deg <= 360.0:
            raise ValueError(f"longitude {self.lon_deg} deg is outside -180..360")
        if not -500.0 <= self.alt_m <= 10000.0:
            raise ValueError(f"altitude {self.alt_m} m is outside -500..10000")

    @property
    def ecef_km(self) -> FloatArray:
        """Earth-fixed position of the site (km)."""
        lat = math.radians(self.lat_deg)
        lon = math.radians(self.lon_deg)
        e2 = WGS84_F * (2.0 - WGS84_F)
        n = WGS84_A_KM / math.sqrt(1.0 - e2 * math.sin(lat) ** 2)
        h = self.alt_m / 1000.0
        return np.array(
            [
                (n + h) * math.cos(lat) * math.cos(lon),
                (n + h) * math.cos(lat) * math.sin(lon),
                (n * (1.0 - e2) + h) * math.sin(lat),
            ]
        )

    @property
    def enu_axes(self) -> FloatArray:
        """Rows: east, north, up (geodetic) unit vectors in the Earth-fixed frame."""
        lat = math.radians(self.lat_deg)
        lon = math.radians(self.lon_deg)
        sl, cl = math.sin(lat), math.cos(lat)
        so, co = math.sin(lon), math.cos(lon)
        return np.array(
            [
                [-so, co, 0.0],
                [-sl * co, -sl * so, cl],
                [cl * co, cl * so, sl],
            ]
        )
