"""The frozen seed scenario: a deterministic generator for constellation TLEs and stations.

``generate(out_dir)`` writes, byte for byte the same on every run:

* ``tle/eu_constellation.tle``: the EU layer, a Walker-delta shell 55°:288/24/1 at 1,200 km;
* ``tle/jp_groups.tle``: the Japanese small-satellite groups (two sun-synchronous groups and
  two inclined Walker groups);
* ``tle/sgp4_verification.tle``: an unchanged copy of ``SGP4-VER.TLE`` shipped inside the
  ``sgp4`` package (Vallado's verification cases, MIT licensed);
* ``stations.toml``: ground stations in Japan and in the EU with horizon masks;
* ``scenario.toml``: every parameter used here, with comments.

Orbits are built with ``Satrec.sgp4init`` (WGS72, improved mode) from elements that are
already rounded to what a TLE can hold, exported with ``sgp4.exporter.export_tle``, and
then checked: every line checksum, and ``Satrec.twoline2rv`` must give back the same
elements and the same positions. The mean motion comes from the altitude by Kepler's third
law, ``n = sqrt(mu / a**3)`` with ``a = R + h`` and WGS72 ``mu`` and ``R`` (the constants
SGP4 itself uses); the sun-synchronous inclination comes from the J2 nodal-rate condition.
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sgp4.api import WGS72, Satrec, jday
from sgp4.earth_gravity import wgs72
from sgp4.exporter import export_tle

__all__ = [
    "EPOCH_UTC",
    "EU_SHELL",
    "JP_GROUPS",
    "STATIONS",
    "SeedError",
    "Shell",
    "Station",
    "generate",
    "mean_motion_rev_per_day",
    "sun_synchronous_inclination_deg",
]

# The epoch of every generated element set: a fixed instant, never "now", so that the
# files are reproducible. Kept as calendar fields because sgp4's jday() takes them.
_EPOCH_FIELDS = (2026, 11, 25, 0, 0, 0.0)
EPOCH_UTC = "2026-11-25T00:00:00Z"

# WGS72 constants, the ones SGP4 is defined with (sgp4.earth_gravity.wgs72).
_MU_KM3_S2: float = wgs72.mu
_EARTH_RADIUS_KM: float = wgs72.radiusearthkm
_J2: float = wgs72.j2
# The ascending node of a sun-synchronous orbit must turn once per tropical year.
_TROPICAL_YEAR_DAYS = 365.2421897
# sgp4init counts epoch days from 1949 December 31 00:00 UT (JD 2433281.5).
_SGP4_EPOCH_JD = 2433281.5
# Letters I and O are never used for COSPAR launch pieces (confusable with 1 and 0).
_PIECE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"

# Rounding to the resolution of the TLE columns, so that the exported text parses back to
# exactly the elements sgp4init was given (angles 1e-4 deg, eccentricity 1e-7, mean
# motion 1e-8 rev/day).
_ANGLE_DECIMALS = 4
_ECC_DECIMALS = 7
_MEAN_MOTION_DECIMALS = 8
_ELEMENT_SET_NUMBER = 999


class SeedError(ValueError):
    """The seed scenario could not be written or failed its own validation."""


@dataclass(frozen=True)
class Shell:
    """One group of satellites in a Walker pattern (i:T/P/F) sharing altitude and inclination.

    ``inclination_deg`` is ``None`` for a sun-synchronous shell: its inclination follows
    from the altitude (J2 condition) and its first plane's node from ``ltan_h``, the local
    mean solar time of the ascending node at the epoch.
    """

    key: str
    file: str
    description: str
    name_prefix: str
    name_style: Literal["plane_slot", "sequential"]
    planes: int
    sats_per_plane: int
    phasing_f: int
    altitude_km: float
    inclination_deg: float | None
    ltan_h: float | None
    raan_start_deg: float
    raan_spread_deg: float
    eccentricity: float
    arg_perigee_deg: float
    bstar_per_earth_radii: float
    norad_id_first: int
    launch_year: int
    launch_number_first: int

    @property
    def satellites(self) -> int:
        """Total number of satellites T = planes x sats_per_plane."""
        return self.planes * self.sats_per_plane

    @property
    def norad_id_last(self) -> int:
        """Last NORAD id of the shell's contiguous block."""
        return self.norad_id_first + self.satellites - 1

    def name(self, plane: int, slot: int) -> str:
        """Satellite name for 0-based ``plane`` and ``slot``."""
        if self.name_style == "plane_slot":
            return f"{self.name_prefix}-P{plane + 1:02d}-S{slot + 1:02d}"
        return f"{self.name_prefix}{plane * self.sats_per_plane + slot + 1:02d}"


@dataclass(frozen=True)
class Station:
    """A ground-station site; ``horizon_mask`` is a list of (az_deg, min_el_deg) points."""

    id: str
    name: str
    country: str
    lat_deg: float
    lon_deg: float
    alt_m: float
    horizon_mask: tuple[tuple[float, float], ...]
    note: str


# The EU layer: ~290 satellites in one Walker-delta shell. NORAD ids 80001-80288 sit in
# the 80000-89999 range that the public catalogue keeps for analyst objects, so they
# cannot clash with an ordinary catalogue entry.
EU_SHELL = Shell(
    key="eu",
    file="tle/eu_constellation.tle",
    description="EU sovereign LEO communication layer, Walker delta 55deg:288/24/1",
    name_prefix="EUSC",
    name_style="plane_slot",
    planes=24,
    sats_per_plane=12,
    phasing_f=1,
    altitude_km=1200.0,
    inclination_deg=55.0,
    ltan_h=None,
    raan_start_deg=0.0,
    raan_spread_deg=360.0,
    eccentricity=2.0e-4,
    arg_perigee_deg=90.0,
    bstar_per_earth_radii=1.0e-5,
    norad_id_first=80001,
    launch_year=2026,
    launch_number_first=101,
)

JP_GROUPS: tuple[Shell, ...] = (
    Shell(
        key="jp-sso-a",
        file="tle/jp_groups.tle",
        description="Japanese small satellites, sun-synchronous group A, LTAN 10:30",
        name_prefix="JPSS-SSO-A",
        name_style="sequential",
        planes=1,
        sats_per_plane=10,
        phasing_f=0,
        altitude_km=550.0,
        inclination_deg=None,
        ltan_h=10.5,
        raan_start_deg=0.0,
        raan_spread_deg=0.0,
        eccentricity=5.0e-4,
        arg_perigee_deg=90.0,
        bstar_per_earth_radii=2.0e-4,
        norad_id_first=81101,
        launch_year=2026,
        launch_number_first=151,
    ),
    Shell(
        key="jp-sso-b",
        file="tle/jp_groups.tle",
        description="Japanese small satellites, sun-synchronous group B, LTAN 13:30",
        name_prefix="JPSS-SSO-B",
        name_style="sequential",
        planes=1,
        sats_per_plane=10,
        phasing_f=0,
        altitude_km=580.0,
        inclination_deg=None,
        ltan_h=13.5,
        raan_start_deg=0.0,
        raan_spread_deg=0.0,
        eccentricity=5.0e-4,
        arg_perigee_deg=90.0,
        bstar_per_earth_radii=1.5e-4,
        norad_id_first=81201,
        launch_year=2026,
        launch_number_first=152,
    ),
    Shell(
        key="jp-inc-c",
        file="tle/jp_groups.tle",
        description="Japanese small satellites, inclined group C, Walker delta 35deg:12/3/1",
        name_prefix="JPSS-INC-C",
        name_style="sequential",
        planes=3,
        sats_per_plane=4,
        phasing_f=1,
        altitude_km=600.0,
        inclination_deg=35.0,
        ltan_h=None,
        raan_start_deg=20.0,
        raan_spread_deg=360.0,
        eccentricity=8.0e-4,
        arg_perigee_deg=90.0,
        bstar_per_earth_radii=1.2e-4,
        norad_id_first=81301,
        launch_year=2026,
        launch_number_first=153,
    ),
    Shell(
        key="jp-inc-d",
        file="tle/jp_groups.tle",
        description="Japanese small satellites, inclined group D, 45deg:10/2/1 over 180deg",
        name_prefix="JPSS-INC-D",
        name_style="sequential",
        planes=2,
        sats_per_plane=5,
        phasing_f=1,
        altitude_km=560.0,
        inclination_deg=45.0,
        ltan_h=None,
        raan_start_deg=110.0,
        raan_spread_deg=180.0,
        eccentricity=3.0e-4,
        arg_perigee_deg=90.0,
        bstar_per_earth_radii=1.6e-4,
        norad_id_first=81401,
        launch_year=2026,
        launch_number_first=156,
    ),
)

_FLAT: tuple[tuple[float, float], ...] = ((0.0, 0.0),)

# Approximate public locations of existing agency ground stations, rounded to about a
# kilometre; the non-flat masks are illustrative shapes, not surveys.
STATIONS: tuple[Station, ...] = (
    Station(
        id="jp-usuda",
        name="JAXA Usuda Deep Space Center",
        country="JP",
        lat_deg=36.13,
        lon_deg=138.36,
        alt_m=1456.0,
        horizon_mask=(
            (0.0, 9.0),
            (45.0, 6.0),
            (90.0, 3.0),
            (135.0, 2.0),
            (180.0, 2.0),
            (225.0, 4.0),
            (270.0, 5.0),
            (315.0, 8.0),
        ),
        note="mountain valley site; mask rises towards the hills to the north",
    ),
    Station(
        id="jp-katsuura",
        name="JAXA Katsuura Tracking and Communication Station",
        country="JP",
        lat_deg=35.21,
        lon_deg=140.30,
        alt_m=60.0,
        horizon_mask=_FLAT,
        note="coastal site, open horizon",
    ),
    Station(
        id="jp-okinawa",
        name="JAXA Okinawa Tracking and Communication Station",
        country="JP",
        lat_deg=26.50,
        lon_deg=127.86,
        alt_m=80.0,
        horizon_mask=_FLAT,
        note="coastal site, open horizon",
    ),
    Station(
        id="de-weilheim",
        name="DLR Weilheim ground station",
        country="DE",
        lat_deg=47.88,
        lon_deg=11.08,
        alt_m=600.0,
        horizon_mask=_FLAT,
        note="open horizon above the antenna fence",
    ),
    Station(
        id="it-fucino",
        name="Telespazio Fucino Space Centre",
        country="IT",
        lat_deg=41.98,
        lon_deg=13.60,
        alt_m=680.0,
        horizon_mask=(
            (0.0, 5.0),
            (60.0, 4.0),
            (120.0, 6.0),
            (180.0, 3.0),
            (240.0, 4.0),
            (300.0, 7.0),
        ),
        note="basin ringed by the Apennines; mask above the ridges on every side",
    ),
    Station(
        id="es-cebreros",
        name="ESA Cebreros station",
        country="ES",
        lat_deg=40.45,
        lon_deg=-4.37,
        alt_m=794.0,
        horizon_mask=_FLAT,
        note="open horizon",
    ),
    Station(
        id="se-kiruna",
        name="ESA Kiruna station (Salmijarvi)",
        country="SE",
        lat_deg=67.86,
        lon_deg=20.96,
        alt_m=403.0,
        horizon_mask=_FLAT,
        note="open horizon",
    ),
)


def mean_motion_rev_per_day(altitude_km: float) -> float:
    """Two-body mean motion of a circular orbit at ``altitude_km`` (WGS72 mu and radius)."""
    if not 100.0 <= altitude_km <= 40000.0:
        raise SeedError(f"altitude_km={altitude_km!r} is outside the allowed 100..40000 km")
    a_km = _EARTH_RADIUS_KM + altitude_km
    n_rad_s = math.sqrt(_MU_KM3_S2 / a_km**3)
    return n_rad_s * 86400.0 / (2.0 * math.pi)


def sun_synchronous_inclination_deg(altitude_km: float) -> float:
    """Inclination whose J2 nodal drift equals one turn per tropical year (circular orbit)."""
    a_km = _EARTH_RADIUS_KM + altitude_km
    node_rate_rad_s = 2.0 * math.pi / (_TROPICAL_YEAR_DAYS * 86400.0)
    n_rad_s = math.sqrt(_MU_KM3_S2 / a_km**3)
    # dOmega/dt = -3/2 n J2 (R/a)^2 cos i  (Vallado eq. 9-41 with e = 0)
    cos_i = -node_rate_rad_s / (1.5 * n_rad_s * _J2 * (_EARTH_RADIUS_KM / a_km) ** 2)
    if not -1.0 <= cos_i <= 1.0:
        raise SeedError(f"no sun-synchronous inclination exists at altitude_km={altitude_km!r}")
    return math.degrees(math.acos(cos_i))


def _epoch_jd() -> float:
    jd, fr = jday(*_EPOCH_FIELDS)
    return float(jd + fr)


def _mean_sun_ra_deg(jd_ut: float) -> float:
    # Mean longitude of the Sun, Astronomical Almanac low-precision formula (about 0.01 deg):
    # the right ascension of the fictitious mean sun that local mean solar time follows.
    days = jd_ut - 2451545.0
    return (280.460 + 0.9856474 * days) % 360.0


def _round_angle(deg: float) -> float:
    # Rounding can give 360.0, which the TLE exporter refuses; fold it back to 0.
    return round(deg % 360.0, _ANGLE_DECIMALS) % 360.0


def _inclination_deg(shell: Shell) -> float:
    if shell.inclination_deg is not None:
        return shell.inclination_deg
    return sun_synchronous_inclination_deg(shell.altitude_km)


def _raan_start_deg(shell: Shell) -> float:
    if shell.ltan_h is None:
        return shell.raan_start_deg
    return _mean_sun_ra_deg(_epoch_jd()) + 15.0 * (shell.ltan_h - 12.0)


def _intl_designator(shell: Shell, plane: int, slot: int) -> str:
    if slot >= len(_PIECE_LETTERS):
        raise SeedError(
            f"shell {shell.key}: sats_per_plane={shell.sats_per_plane} exceeds the "
            f"{len(_PIECE_LETTERS)} single-letter launch pieces"
        )
    launch = shell.launch_number_first + plane
    return f"{shell.launch_year % 100:02d}{launch:03d}{_PIECE_LETTERS[slot]}"


@dataclass(frozen=True)
class _Element:
    name: str
    satrec: Satrec
    line1: str
    line2: str


def _build_shell(shell: Shell) -> list[_Element]:
    total = shell.satellites
    inclination = round(_inclination_deg(shell), _ANGLE_DECIMALS)
    n_rev_day = round(mean_motion_rev_per_day(shell.altitude_km), _MEAN_MOTION_DECIMALS)
    no_kozai_rad_min = n_rev_day * 2.0 * math.pi / 1440.0
    ecc = round(shell.eccentricity, _ECC_DECIMALS)
    argp = _round_angle(shell.arg_perigee_deg)
    raan0 = _raan_start_deg(shell)
    epoch_days = _epoch_jd() - _SGP4_EPOCH_JD
    elements: list[_Element] = []
    for plane in range(shell.planes):
        raan = _round_angle(raan0 + plane * shell.raan_spread_deg / shell.planes)
        for slot in range(shell.sats_per_plane):
            # Walker phasing: argument of latitude u = 360 s/S + 360 F p/T.
            u_deg = 360.0 * slot / shell.sats_per_plane + 360.0 * shell.phasing_f * plane / total
            mean_anomaly = _round_angle(u_deg - argp)
            norad_id = shell.norad_id_first + plane * shell.sats_per_plane + slot
            sat = Satrec()
            sat.sgp4init(
                WGS72,
                "i",
                norad_id,
                epoch_days,
                shell.bstar_per_earth_radii,
                0.0,
                0.0,
                ecc,
                math.radians(argp),
                math.radians(inclination),
                math.radians(mean_anomaly),
                no_kozai_rad_min,
                math.radians(raan),
            )
            if sat.error != 0:
                raise SeedError(f"sgp4init rejected {shell.name(plane, slot)}: error {sat.error}")
            sat.classification = "U"
            sat.intldesg = _intl_designator(shell, plane, slot)
            sat.elnum = _ELEMENT_SET_NUMBER
            sat.revnum = 0
            line1, line2 = export_tle(sat)
            elements.append(_Element(shell.name(plane, slot), sat, line1, line2))
    return elements


def _checksum_ok(line: str) -> bool:
    total = sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68])
    return len(line) == 69 and line[68] == str(total % 10)


def _validate_tle_file(path: Path, expected: list[_Element]) -> None:
    lines = path.read_text(encoding="ascii").splitlines()
    if len(lines) != 3 * len(expected):
        raise SeedError(f"{path}: {len(lines)} lines, expected {3 * len(expected)}")
    for index, element in enumerate(expected):
        name, line1, line2 = lines[3 * index : 3 * index + 3]
        lineno = 3 * index + 1
        if name != element.name:
            raise SeedError(f"{path}:{lineno}: name {name!r}, expected {element.name!r}")
        for offset, line in ((1, line1), (2, line2)):
            if not _checksum_ok(line):
                raise SeedError(f"{path}:{lineno + offset}: bad length or checksum: {line!r}")
        parsed = Satrec.twoline2rv(line1, line2, WGS72)
        _compare(path, lineno, element.satrec, parsed)


def _compare(path: Path, lineno: int, built: Satrec, parsed: Satrec) -> None:
    where = f"{path}:{lineno}"
    if parsed.error != 0 or parsed.satnum != built.satnum:
        raise SeedError(f"{where}: twoline2rv gave satnum {parsed.satnum}, error {parsed.error}")
    # The elements were rounded to TLE resolution before sgp4init, so parsing the text must
    # return them to floating-point precision, not merely to the TLE's last digit.
    checks = {
        "epoch_jd": (built.jdsatepoch + built.jdsatepochF, parsed.jdsatepoch + parsed.jdsatepochF),
        "inclo": (built.inclo, parsed.inclo),
        "nodeo": (built.nodeo, parsed.nodeo),
        "ecco": (built.ecco, parsed.ecco),
        "argpo": (built.argpo, parsed.argpo),
        "mo": (built.mo, parsed.mo),
        "no_kozai": (built.no_kozai, parsed.no_kozai),
        "bstar": (built.bstar, parsed.bstar),
    }
    for field, (a, b) in checks.items():
        if not math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-13):
            raise SeedError(f"{where}: {field} built {a!r} but the TLE parses to {b!r}")
    for minutes in (0.0, 720.0, 1440.0 * 7):
        jd = built.jdsatepoch
        fr = built.jdsatepochF + minutes / 1440.0
        e1, r1, _ = built.sgp4(jd, fr)
        e2, r2, _ = parsed.sgp4(jd, fr)
        gap_km = math.dist(r1, r2)
        if e1 != 0 or e2 != 0 or gap_km > 1e-6:
            raise SeedError(
                f"{where}: positions {minutes} min after epoch differ by {gap_km} km "
                f"(errors {e1}, {e2})"
            )


def _tle_text(elements: list[_Element]) -> str:
    return "".join(f"{e.name}\n{e.line1}\n{e.line2}\n" for e in elements)


def _toml_str(value: str) -> str:
    if any(c in value for c in '"\\\n'):
        raise SeedError(f"value {value!r} needs TOML escaping, which the seed writer refuses")
    return f'"{value}"'


def _toml_float(value: float) -> str:
    text = repr(float(value))
    return text if ("." in text or "e" in text) else text + ".0"


def _stations_text() -> str:
    out = [
        "# groundlink seed ground stations",
        "# (generated by `groundlink seeds generate`; do not edit).",
        "#",
        "# Approximate public locations of existing agency ground stations, rounded to about",
        "# 1 km. lat_deg/lon_deg are geodetic WGS84 (east positive), alt_m is height above the",
        "# WGS84 ellipsoid in metres.",
        "#",
        "# horizon_mask: list of [az_deg, min_el_deg] points, azimuth clockwise from true north.",
        "# The first point is at az 0, azimuths strictly increase and stay below 360, and the",
        "# minimum elevation is linear in azimuth between neighbouring points, wrapping from",
        "# the last point back to the first through 360. A single point is a flat mask.",
        "# Non-flat masks are illustrative shapes, not surveys.",
    ]
    for st in STATIONS:
        mask = ", ".join(f"[{_toml_float(az)}, {_toml_float(el)}]" for az, el in st.horizon_mask)
        out += [
            "",
            "[[station]]",
            f"id = {_toml_str(st.id)}",
            f"name = {_toml_str(st.name)}",
            f"country = {_toml_str(st.country)}  # ISO 3166-1 alpha-2",
            f"lat_deg = {_toml_float(st.lat_deg)}",
            f"lon_deg = {_toml_float(st.lon_deg)}",
            f"alt_m = {_toml_float(st.alt_m)}",
            f"horizon_mask = [{mask}]  # {st.note}",
        ]
    return "\n".join(out) + "\n"


def _shell_toml(shell: Shell) -> list[str]:
    n_rev_day = round(mean_motion_rev_per_day(shell.altitude_km), _MEAN_MOTION_DECIMALS)
    period_min = 1440.0 / n_rev_day
    out = [
        "",
        "[[shell]]",
        f"key = {_toml_str(shell.key)}",
        f"description = {_toml_str(shell.description)}",
        f"file = {_toml_str(shell.file)}  # relative to the seeds directory",
        f"name_prefix = {_toml_str(shell.name_prefix)}",
        f"name_style = {_toml_str(shell.name_style)}"
        + (
            "  # <prefix>-Ppp-Sss: plane pp, slot ss, both from 1"
            if shell.name_style == "plane_slot"
            else "  # <prefix>NN: NN = plane * sats_per_plane + slot + 1"
        ),
        f"satellites = {shell.satellites}  # T = planes x sats_per_plane",
        f"planes = {shell.planes}  # P",
        f"sats_per_plane = {shell.sats_per_plane}  # S",
        f"phasing_f = {shell.phasing_f}  # Walker F: plane p is phased by 360*F*p/T deg",
        f"altitude_km = {_toml_float(shell.altitude_km)}"
        f"  # circular; mean motion {n_rev_day:.8f} rev/day, period {period_min:.3f} min",
    ]
    if shell.inclination_deg is not None:
        out.append(f"inclination_deg = {_toml_float(shell.inclination_deg)}")
        out.append(f"raan_start_deg = {_toml_float(shell.raan_start_deg)}  # node of plane 1")
    else:
        inc = round(sun_synchronous_inclination_deg(shell.altitude_km), _ANGLE_DECIMALS)
        raan0 = _round_angle(_raan_start_deg(shell))
        out.append(f"sun_synchronous = true  # inclination from the J2 condition: {inc:.4f} deg")
        out.append(
            f"ltan_h = {_toml_float(shell.ltan_h or 0.0)}"
            f"  # mean local time of the ascending node at the epoch; node {raan0:.4f} deg"
        )
    out += [
        f"raan_spread_deg = {_toml_float(shell.raan_spread_deg)}"
        "  # plane p (from 0) has node raan_start + p * spread / P",
        f"eccentricity = {_toml_float(shell.eccentricity)}",
        f"arg_perigee_deg = {_toml_float(shell.arg_perigee_deg)}  # mean anomaly = u - arg_perigee",
        f"bstar_per_earth_radii = {_toml_float(shell.bstar_per_earth_radii)}  # SGP4 drag term",
        f"norad_id_first = {shell.norad_id_first}",
        f"norad_id_last = {shell.norad_id_last}",
        f"launch_year = {shell.launch_year}  # international designator YY",
        f"launch_number_first = {shell.launch_number_first}"
        "  # plane p (from 0) is launch number first + p; pieces A.. without I and O",
    ]
    return out


def _scenario_text() -> str:
    out = [
        "# groundlink seed scenario (generated by `groundlink seeds generate`; do not edit).",
        "# Every parameter controller/seeds.py uses to build the TLE files. The generator",
        "# holds these values in code and writes this file from them; tests/test_seeds.py",
        "# checks the TLE files against it.",
        "",
        "[scenario]",
        f"epoch_utc = {_toml_str(EPOCH_UTC)}  # epoch of every generated element set",
        '# TLEs are built with Satrec.sgp4init (WGS72, opsmode "i") and written with',
        "# sgp4.exporter.export_tle; elements are rounded to TLE resolution first.",
        'gravity_model = "WGS72"',
        f"mu_km3_s2 = {_toml_float(_MU_KM3_S2)}  # WGS72, used for Kepler: n = sqrt(mu / a^3)",
        f"earth_radius_km = {_toml_float(_EARTH_RADIUS_KM)}  # WGS72, a = earth_radius + altitude",
        f"j2 = {_toml_float(_J2)}  # WGS72, for the sun-synchronous condition",
        f"tropical_year_days = {_toml_float(_TROPICAL_YEAR_DAYS)}"
        "  # sun-synchronous node rate = 360 deg per tropical year",
        'mean_sun_ra = "280.460 + 0.9856474 * (JD_UT - 2451545.0) deg"'
        "  # for ltan_h (Astronomical Almanac)",
        f"element_set_number = {_ELEMENT_SET_NUMBER}",
        'classification = "U"',
        "mean_motion_dot = 0.0  # first and second derivatives: not used by SGP4",
        "rev_number_at_epoch = 0",
        "",
        "[verification]",
        'file = "tle/sgp4_verification.tle"',
        'origin = "SGP4-VER.TLE from the sgp4 Python package (MIT), copied byte for byte"',
    ]
    for shell in (EU_SHELL, *JP_GROUPS):
        out += _shell_toml(shell)
    return "\n".join(out) + "\n"


def _verification_bytes() -> bytes:
    source = importlib.resources.files("sgp4").joinpath("SGP4-VER.TLE")
    try:
        return source.read_bytes()
    except OSError as exc:
        raise SeedError(f"cannot read sgp4's SGP4-VER.TLE at {source}: {exc}") from exc


def _write(path: Path, data: bytes) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise SeedError(f"cannot write seed file {path}: {exc}") from exc
    return path


def generate(out_dir: Path) -> list[Path]:
    """Write the seed scenario into ``out_dir``; return the paths written (same bytes each run)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SeedError(f"--out {out_dir} exists and is not a directory")
    jp_files = {group.file for group in JP_GROUPS}
    if len(jp_files) != 1:
        raise SeedError(f"JP_GROUPS must share one TLE file, got {sorted(jp_files)}")
    eu = _build_shell(EU_SHELL)
    jp = [element for group in JP_GROUPS for element in _build_shell(group)]
    # Line endings are forced to "\n" (write_bytes) so the files are identical on every OS.
    eu_path = _write(out_dir / EU_SHELL.file, _tle_text(eu).encode("ascii"))
    jp_path = _write(out_dir / JP_GROUPS[0].file, _tle_text(jp).encode("ascii"))
    ver_path = _write(out_dir / "tle" / "sgp4_verification.tle", _verification_bytes())
    stations_path = _write(out_dir / "stations.toml", _stations_text().encode("utf-8"))
    scenario_path = _write(out_dir / "scenario.toml", _scenario_text().encode("utf-8"))
    _validate_tle_file(eu_path, eu)
    _validate_tle_file(jp_path, jp)
    if ver_path.read_bytes() != _verification_bytes():
        raise SeedError(f"{ver_path}: copy differs from sgp4's SGP4-VER.TLE")
    return [eu_path, jp_path, ver_path, stations_path, scenario_path]
