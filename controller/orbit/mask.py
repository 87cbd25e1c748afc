"""Horizon mask: minimum elevation as a piecewise-linear function of azimuth."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["HorizonMask", "MaskError"]

FloatArray = npt.NDArray[np.float64]


class MaskError(ValueError):
    """A horizon mask that cannot be used as written."""


@dataclass(frozen=True)
class HorizonMask:
    """Minimum elevation by azimuth, linear between points and wrapping at 360 deg.

    ``points`` are ``(az_deg, min_el_deg)`` pairs with strictly increasing azimuths in
    [0, 360); a single point (or :meth:`flat`) is a constant mask.
    """

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.points:
            raise MaskError("horizon mask needs at least one (az_deg, min_el_deg) point")
        last = -math.inf
        for i, (az, el) in enumerate(self.points):
            if not (math.isfinite(az) and math.isfinite(el)):
                raise MaskError(f"horizon mask point {i}: ({az}, {el}) is not finite")
            if not 0.0 <= az < 360.0:
                raise MaskError(f"horizon mask point {i}: az_deg {az} is outside [0, 360)")
            if not -10.0 <= el <= 80.0:
                raise MaskError(f"horizon mask point {i}: min_el_deg {el} is outside -10..80")
            if az <= last:
                raise MaskError(
                    f"horizon mask point {i}: az_deg {az} does not increase "
                    f"(previous {last}); list the points by increasing azimuth"
                )
            last = az

    @classmethod
    def flat(cls, min_el_deg: float = 0.0) -> HorizonMask:
        """A mask with the same minimum elevation at every azimuth."""
        return cls(((0.0, float(min_el_deg)),))

    @classmethod
    def from_pairs(cls, pairs: Iterable[Sequence[float]]) -> HorizonMask:
        """Build from ``[[az_deg, min_el_deg], ...]`` as found in config files."""
        pts: list[tuple[float, float]] = []
        for i, pair in enumerate(pairs):
            if len(pair) != 2:
                raise MaskError(
                    f"horizon mask point {i}: expected [az_deg, min_el_deg], got {pair}"
                )
            pts.append((float(pair[0]), float(pair[1])))
        return cls(tuple(pts))

    @property
    def is_flat(self) -> bool:
        """True when every point has the same elevation."""
        return len({el for _, el in self.points}) == 1

    @property
    def min_el_deg(self) -> float:
        """Lowest minimum elevation anywhere."""
        return min(el for _, el in self.points)

    @property
    def max_el_deg(self) -> float:
        """Highest minimum elevation anywhere."""
        return max(el for _, el in self.points)

    def raised(self, floor_deg: float) -> HorizonMask:
        """This mask raised to at least ``floor_deg`` everywhere (exact, knots added)."""
        pts = list(self.points)
        if len(pts) == 1:
            return HorizonMask.flat(max(pts[0][1], floor_deg))
        out: list[tuple[float, float]] = []
        ring = [*pts, (pts[0][0] + 360.0, pts[0][1])]
        for (az0, el0), (az1, el1) in itertools.pairwise(ring):
            out.append((az0, max(el0, floor_deg)))
            # Where the segment crosses the floor, the max of the two has a corner.
            if (el0 - floor_deg) * (el1 - floor_deg) < 0:
                az_x = az0 + (floor_deg - el0) * (az1 - az0) / (el1 - el0)
                out.append((az_x % 360.0, floor_deg))
        out.sort()
        return HorizonMask(tuple(out))

    def _knots_rad(self) -> tuple[FloatArray, FloatArray]:
        az = np.radians([p[0] for p in self.points])
        el = np.radians([p[1] for p in self.points])
        # Close the loop: repeat the last point before 0 and the first after 2*pi.
        az_k = np.concatenate(([az[-1] - 2 * np.pi], az, [az[0] + 2 * np.pi]))
        el_k = np.concatenate(([el[-1]], el, [el[0]]))
        return az_k, el_k

    def el_rad(self, az_rad: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mask elevation (rad) and its slope d(el)/d(az) at azimuths in [0, 2*pi)."""
        if self.is_flat:
            el0 = math.radians(self.points[0][1])
            return np.full_like(az_rad, el0), np.zeros_like(az_rad)
        az_k, el_k = self._knots_rad()
        value = np.interp(az_rad, az_k, el_k)
        idx = np.clip(np.searchsorted(az_k, az_rad, side="right") - 1, 0, len(az_k) - 2)
        slope = (el_k[idx + 1] - el_k[idx]) / (az_k[idx + 1] - az_k[idx])
        return value, slope

    def at(self, az_deg: float) -> float:
        """Minimum elevation (deg) at one azimuth (deg)."""
        value, _ = self.el_rad(np.array([math.radians(az_deg % 360.0)]))
        return float(np.degrees(value[0]))
