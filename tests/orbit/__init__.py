"""Tests of controller.orbit, with shared builders for element sets.

The builders make TLE lines with sgp4's own exporter and fix checksums with sgp4's own
``compute_checksum``, so expectations never come from the code under test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sgp4
from sgp4.alpha5 import to_alpha5
from sgp4.api import WGS72, Satrec
from sgp4.exporter import export_tle
from sgp4.io import compute_checksum

SGP4_VER_TLE = Path(sgp4.__file__).parent / "SGP4-VER.TLE"
EPOCH_ZERO = datetime(1949, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class Elements:
    """Mean elements in TLE units, for building test satellites."""

    norad_id: int = 25544
    epoch: datetime = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    inclination_deg: float = 51.6416
    raan_deg: float = 247.4627
    eccentricity: float = 0.0006703
    argp_deg: float = 130.536
    mean_anomaly_deg: float = 325.0288
    mean_motion_rev_per_day: float = 15.50103472
    bstar: float = 0.00010270
    ndot_rev_per_day2: float = 0.00002182
    """The first-derivative field as a TLE prints it (half the rate of change of n)."""
    intldesg: str = "98067A"


def make_satrec(el: Elements) -> Satrec:
    """Initialise an sgp4 record from ``el`` with sgp4init (independent of our parsers)."""
    deg = math.pi / 180.0
    satrec = Satrec()
    satrec.sgp4init(
        WGS72,
        "i",
        el.norad_id,
        (el.epoch - EPOCH_ZERO).total_seconds() / 86400.0,
        el.bstar,
        el.ndot_rev_per_day2 / (1440.0 * 1440.0 / (2.0 * math.pi)),
        0.0,
        el.eccentricity,
        el.argp_deg * deg,
        el.inclination_deg * deg,
        el.mean_anomaly_deg * deg,
        el.mean_motion_rev_per_day * 2.0 * math.pi / 1440.0,
        el.raan_deg * deg,
    )
    satrec.classification = "U"
    satrec.intldesg = el.intldesg
    satrec.ephtype = 0
    satrec.elnum = 999
    satrec.revnum = 12345
    return satrec


def make_tle(el: Elements) -> tuple[str, str]:
    """Return the two TLE lines sgp4's exporter writes for ``el``."""
    line1, line2 = export_tle(make_satrec(el))
    # sgp4 2.x's C++ sgp4init mis-encodes a few Alpha-5 numbers (230000 becomes 'O0000',
    # a letter Alpha-5 never uses); sgp4's Python to_alpha5 is right, so write its answer.
    number = to_alpha5(el.norad_id)
    return replace_cols(str(line1), 3, number), replace_cols(str(line2), 3, number)


def fix_checksum(line: str) -> str:
    """Replace column 69 with the checksum sgp4 computes for the first 68 columns."""
    return line[:68] + str(compute_checksum(line[:68]))


def replace_cols(line: str, start: int, text: str) -> str:
    """Overwrite 1-based columns from ``start`` with ``text`` and fix the checksum."""
    return fix_checksum(line[: start - 1] + text + line[start - 1 + len(text) :])
