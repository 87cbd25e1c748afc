"""The frozen seed scenario: reproducible, well-formed, and consistent with scenario.toml."""

from __future__ import annotations

import hashlib
import importlib.resources
import itertools
import json
import math
import re
import tomllib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sgp4.api import WGS72, Satrec, jday
from sgp4.propagation import gstime

from controller.seeds import SeedError, generate

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GOLDEN = SEEDS / "golden"
SCENARIO: dict[str, Any] = tomllib.loads((SEEDS / "scenario.toml").read_text(encoding="utf-8"))
SHELLS: list[dict[str, Any]] = SCENARIO["shell"]
# ISO 3166-1 alpha-2 codes of the EU member states.
EU_COUNTRIES = {
    *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"),
    *("IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"),
}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
GOLDEN_NAME = re.compile(
    r"^(verification_)?(?P<station>[a-z0-9-]+)_(?P<date>\d{8})_(?P<days>\d+)d_el(?P<mask>[0-9p]+)\.jsonl$"
)


def _checksum(line: str) -> int:
    # Written here from the TLE definition (digits count their value, '-' counts 1),
    # independently of sgp4's own helper.
    return sum(int(c) if c.isdigit() else int(c == "-") for c in line[:68]) % 10


def _three_line_records(path: Path) -> list[tuple[str, str, str]]:
    lines = path.read_text(encoding="ascii").splitlines()
    assert len(lines) % 3 == 0, f"{path}: {len(lines)} lines is not a multiple of 3"
    return [(lines[i], lines[i + 1], lines[i + 2]) for i in range(0, len(lines), 3)]


def _satellites(shell: dict[str, Any]) -> list[tuple[str, Satrec, str]]:
    records = _three_line_records(SEEDS / shell["file"])
    return [
        (name, Satrec.twoline2rv(l1, l2, WGS72), l1)
        for name, l1, l2 in records
        if name.startswith(shell["name_prefix"])
    ]


def _plane_slot(shell: dict[str, Any], name: str) -> tuple[int, int]:
    """0-based plane and slot decoded from the satellite name as scenario.toml describes it."""
    rest = name[len(shell["name_prefix"]) :]
    if shell["name_style"] == "plane_slot":
        m = re.fullmatch(r"-P(\d{2})-S(\d{2})", rest)
        assert m, f"name {name!r} does not follow <prefix>-Ppp-Sss"
        return int(m[1]) - 1, int(m[2]) - 1
    assert re.fullmatch(r"\d{2}", rest), f"name {name!r} does not follow <prefix>NN"
    plane, slot = divmod(int(rest) - 1, int(shell["sats_per_plane"]))
    return plane, slot


def _angle_gap_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _epoch_jd(text: str) -> float:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    jd, fr = jday(when.year, when.month, when.day, when.hour, when.minute, when.second)
    return float(jd + fr)


def _sso_inclination_deg(altitude_km: float) -> float:
    s = SCENARIO["scenario"]
    a_km = s["earth_radius_km"] + altitude_km
    n_rad_s = math.sqrt(s["mu_km3_s2"] / a_km**3)
    node_rate = 2.0 * math.pi / (s["tropical_year_days"] * 86400.0)
    cos_i = -node_rate / (1.5 * n_rad_s * s["j2"] * (s["earth_radius_km"] / a_km) ** 2)
    return math.degrees(math.acos(cos_i))


def test_regenerating_reproduces_the_committed_files(tmp_path: Path) -> None:
    """generate() into a fresh directory gives the committed seed files byte for byte."""
    out = tmp_path / "seeds"
    written = generate(out)
    names = sorted(p.relative_to(out).as_posix() for p in written)
    assert names == [
        "scenario.toml",
        "stations.toml",
        "tle/eu_constellation.tle",
        "tle/jp_groups.tle",
        "tle/sgp4_verification.tle",
    ]
    for path in written:
        rel = path.relative_to(out)
        assert path.read_bytes() == (SEEDS / rel).read_bytes(), f"{rel} differs from seeds/{rel}"


def test_generate_refuses_a_file_as_output_directory(tmp_path: Path) -> None:
    """An --out path that is a regular file is named in the error instead of crashing."""
    target = tmp_path / "not_a_dir"
    target.write_text("x")
    with pytest.raises(SeedError, match=r"not_a_dir.*not a directory"):
        generate(target)


def test_verification_set_is_sgp4s_file_unchanged() -> None:
    """The verification fixture is byte-identical to SGP4-VER.TLE shipped in the sgp4 package."""
    shipped = importlib.resources.files("sgp4").joinpath("SGP4-VER.TLE").read_bytes()
    assert (SEEDS / "tle" / "sgp4_verification.tle").read_bytes() == shipped


def test_verification_set_bad_checksums_are_only_its_deliberate_error_cases() -> None:
    """Only the upstream error-case records (33333-33335) carry wrong checksums."""
    lines = (SEEDS / "tle" / "sgp4_verification.tle").read_text(encoding="ascii").splitlines()
    tle_lines = [line for line in lines if line[:2] in ("1 ", "2 ")]
    assert len(tle_lines) == 66
    bad = {line[2:7] for line in tle_lines if str(_checksum(line)) != line[68]}
    assert bad == {"33333", "33334", "33335"}


@pytest.mark.parametrize("name", ["eu_constellation.tle", "jp_groups.tle"])
def test_every_generated_tle_line_has_a_valid_checksum(name: str) -> None:
    """Every line 1 and line 2 is 69 columns with the right modulo-10 checksum."""
    records = _three_line_records(SEEDS / "tle" / name)
    assert records
    for title, line1, line2 in records:
        assert not title.startswith(("1 ", "2 ")), title
        assert line1.startswith("1 ")
        assert line2.startswith("2 ")
        assert line1[2:7] == line2[2:7]
        for line in (line1, line2):
            assert len(line) == 69, line
            assert line[68] == str(_checksum(line)), line


def test_scenario_shells_cover_every_generated_satellite() -> None:
    """Each satellite belongs to exactly one shell and the EU layer is about 290 strong."""
    total = 0
    for file in {s["file"] for s in SHELLS}:
        names = [r[0] for r in _three_line_records(SEEDS / file)]
        owners = [[s["key"] for s in SHELLS if n.startswith(s["name_prefix"])] for n in names]
        assert all(len(o) == 1 for o in owners)
        total += len(names)
    assert total == sum(s["satellites"] for s in SHELLS)
    eu = [s for s in SHELLS if s["file"] == "tle/eu_constellation.tle"]
    assert 260 <= sum(len(_satellites(s)) for s in eu) <= 290


@pytest.mark.parametrize("shell", SHELLS, ids=[s["key"] for s in SHELLS])
def test_shell_elements_match_scenario(shell: dict[str, Any]) -> None:
    """Counts, ids, epoch, inclination, altitude, eccentricity and B* come out as declared."""
    s = SCENARIO["scenario"]
    sats = _satellites(shell)
    assert len(sats) == shell["satellites"] == shell["planes"] * shell["sats_per_plane"]
    ids = sorted(sat.satnum for _, sat, _ in sats)
    assert ids == list(range(shell["norad_id_first"], shell["norad_id_last"] + 1))
    epoch = _epoch_jd(s["epoch_utc"])
    if shell.get("sun_synchronous"):
        inclination = _sso_inclination_deg(shell["altitude_km"])
        assert 96.0 < inclination < 99.0
    else:
        inclination = shell["inclination_deg"]
    for name, sat, _ in sats:
        assert sat.error == 0, name
        assert abs(sat.jdsatepoch + sat.jdsatepochF - epoch) < 1e-8, name
        assert abs(math.degrees(sat.inclo) - inclination) <= 5.1e-5, name
        n_rad_s = sat.no_kozai / 60.0
        a_km = (s["mu_km3_s2"] / n_rad_s**2) ** (1.0 / 3.0)
        assert abs(a_km - s["earth_radius_km"] - shell["altitude_km"]) < 0.01, name
        assert abs(sat.ecco - shell["eccentricity"]) < 1e-9, name
        assert 1e-4 <= sat.ecco <= 1e-3, name
        assert math.isclose(sat.bstar, shell["bstar_per_earth_radii"], rel_tol=1e-4), name
        assert abs(math.degrees(sat.argpo) - shell["arg_perigee_deg"]) <= 5.1e-5, name


@pytest.mark.parametrize("shell", SHELLS, ids=[s["key"] for s in SHELLS])
def test_shell_follows_its_walker_pattern(shell: dict[str, Any]) -> None:
    """Planes are spaced by spread/P in RAAN and satellites phased by 360 s/S + 360 F p/T."""
    sats = _satellites(shell)
    planes, per_plane = shell["planes"], shell["sats_per_plane"]
    total, phasing = shell["satellites"], shell["phasing_f"]
    by_plane: dict[int, list[float]] = defaultdict(list)
    arg_lat: dict[tuple[int, int], float] = {}
    for name, sat, _ in sats:
        plane, slot = _plane_slot(shell, name)
        by_plane[plane].append(math.degrees(sat.nodeo))
        arg_lat[(plane, slot)] = math.degrees(sat.argpo + sat.mo) % 360.0
    assert sorted(by_plane) == list(range(planes))
    assert sorted(arg_lat) == [(p, k) for p in range(planes) for k in range(per_plane)]
    raan0 = by_plane[0][0]
    if not shell.get("sun_synchronous"):
        assert _angle_gap_deg(raan0, shell["raan_start_deg"]) <= 5.1e-5
    for plane, raans in by_plane.items():
        assert len(raans) == per_plane
        expected = raan0 + plane * shell["raan_spread_deg"] / planes
        assert all(_angle_gap_deg(r, expected) <= 1.1e-4 for r in raans), (plane, raans)
    u0 = arg_lat[(0, 0)]
    for (plane, slot), u in arg_lat.items():
        expected = u0 + 360.0 * slot / per_plane + 360.0 * phasing * plane / total
        assert _angle_gap_deg(u, expected) <= 2.1e-4, (plane, slot, u, expected)


@pytest.mark.parametrize("shell", SHELLS, ids=[s["key"] for s in SHELLS])
def test_international_designators_are_plausible(shell: dict[str, Any]) -> None:
    """YYNNNP designators: launch year, one launch per plane, pieces skip I and O."""
    seen = set()
    for name, _, line1 in _satellites(shell):
        plane, _slot = _plane_slot(shell, name)
        designator = line1[9:17].rstrip()
        m = re.fullmatch(r"(\d{2})(\d{3})([A-HJ-NP-Z])", designator)
        assert m, f"{name}: designator {designator!r}"
        assert int(m[1]) == shell["launch_year"] % 100
        assert int(m[2]) == shell["launch_number_first"] + plane
        seen.add(designator)
    assert len(seen) == shell["satellites"]


def _node_deg(r: tuple[float, float, float], v: tuple[float, float, float]) -> float:
    h = np.cross(r, v)
    return math.degrees(math.atan2(h[0], -h[1])) % 360.0


@pytest.mark.parametrize(
    "shell",
    [s for s in SHELLS if s.get("sun_synchronous")],
    ids=[s["key"] for s in SHELLS if s.get("sun_synchronous")],
)
def test_sun_synchronous_groups_keep_their_local_time(shell: dict[str, Any]) -> None:
    """SGP4 turns the node at the mean sun's rate, and the node sits at the declared LTAN."""
    _, sat, _ = _satellites(shell)[0]
    days = 30.0
    nodes = []
    for offset in (0.0, days):
        err, r, v = sat.sgp4(sat.jdsatepoch, sat.jdsatepochF + offset)
        assert err == 0
        nodes.append(_node_deg(r, v))
    rate_deg_day = ((nodes[1] - nodes[0] + 180.0) % 360.0 - 180.0) / days
    sun_rate = 360.0 / SCENARIO["scenario"]["tropical_year_days"]
    assert abs(rate_deg_day - sun_rate) < 0.005 * sun_rate, rate_deg_day
    # Local mean solar time: the mean sun's right ascension follows from GMST at 0h UT
    # (alpha_mean_sun = GMST + 12 h), here from sgp4's own GMST 1982 routine.
    epoch = sat.jdsatepoch + sat.jdsatepochF
    assert epoch % 1.0 == 0.5, "the test assumes an epoch at 0h UT"
    mean_sun_ra = (math.degrees(gstime(epoch)) + 180.0) % 360.0
    ltan_h = (12.0 + (math.degrees(sat.nodeo) - mean_sun_ra) / 15.0) % 24.0
    assert abs(ltan_h - shell["ltan_h"]) < 0.01, ltan_h


def _stations() -> list[dict[str, Any]]:
    data = tomllib.loads((SEEDS / "stations.toml").read_text(encoding="utf-8"))
    assert set(data) == {"station"}
    return list(data["station"])


def test_station_file_is_well_formed() -> None:
    """Stations have every field in range, unique ids and valid piecewise-linear masks."""
    stations = _stations()
    keys = {"id", "name", "country", "lat_deg", "lon_deg", "alt_m", "horizon_mask"}
    ids = [st["id"] for st in stations]
    assert len(ids) == len(set(ids))
    for st in stations:
        assert set(st) == keys, st["id"]
        assert re.fullmatch(r"[a-z]{2}-[a-z0-9-]+", st["id"]), st["id"]
        assert st["id"][:2] == st["country"].lower()
        assert isinstance(st["name"], str)
        assert st["name"]
        assert -90.0 <= st["lat_deg"] <= 90.0
        assert -180.0 <= st["lon_deg"] <= 180.0
        assert isinstance(st["alt_m"], float)
        assert -500.0 <= st["alt_m"] <= 9000.0
        mask = st["horizon_mask"]
        assert mask, st["id"]
        assert all(len(pt) == 2 for pt in mask), st["id"]
        azimuths = [float(az) for az, _ in mask]
        assert azimuths[0] == 0.0, st["id"]
        assert azimuths[-1] < 360.0, st["id"]
        assert all(a < b for a, b in itertools.pairwise(azimuths)), st["id"]
        assert all(0.0 <= el < 90.0 for _, el in mask), st["id"]


def test_stations_span_japan_and_the_eu_with_flat_and_shaped_masks() -> None:
    """At least two Japanese sites, sites in two EU countries, flat and non-flat masks."""
    stations = _stations()
    assert sum(st["country"] == "JP" for st in stations) >= 2
    assert len({st["country"] for st in stations} & EU_COUNTRIES) >= 2
    flat = [st for st in stations if {el for _, el in st["horizon_mask"]} == {0.0}]
    assert flat
    assert len(flat) < len(stations)


def _golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("*.jsonl"))


def test_golden_files_cover_japan_the_eu_and_the_verification_set() -> None:
    """Two constellation files (a Japanese and an EU station) and one verification file."""
    by_station = {st["id"]: st for st in _stations()}
    names = [p.name for p in _golden_files()]
    plain = [GOLDEN_NAME.match(n) for n in names if not n.startswith("verification_")]
    verification = [n for n in names if n.startswith("verification_")]
    assert all(plain)
    assert len(plain) == 2
    assert len(verification) == 1
    countries = {by_station[m["station"]]["country"] for m in plain if m}
    assert "JP" in countries
    assert countries & EU_COUNTRIES


@pytest.mark.parametrize("path", _golden_files(), ids=lambda p: p.name)
def test_golden_file_is_consistent(path: Path) -> None:
    """Header matches name, stations and current TLEs; each pass is ordered and in window."""
    m = GOLDEN_NAME.match(path.name)
    assert m, path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])["header"]
    rows = [json.loads(line) for line in lines[1:]]

    start = datetime.fromisoformat(header["window"]["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(header["window"]["end"].replace("Z", "+00:00"))
    assert start.strftime("%Y%m%d") == m["date"]
    assert end - start == timedelta(days=int(m["days"])) == timedelta(days=header["window"]["days"])
    assert header["mask"]["min_el_deg"] == float(m["mask"].replace("p", "."))
    assert header["timescale"]["dut1_s"] == 0.0
    station = {st["id"]: st for st in _stations()}[m["station"]]
    for key in ("lat_deg", "lon_deg", "alt_m"):
        assert header["station"][key] == station[key]
    known: set[int] = set()
    records = 0
    for entry in header["tle_files"]:
        tle = ROOT / entry["path"]
        assert hashlib.sha256(tle.read_bytes()).hexdigest() == entry["sha256"], (
            f"{path.name} was made from an older {entry['path']}; rerun make_golden"
        )
        text = tle.read_text(encoding="ascii").splitlines()
        ids = [int(line[2:7]) for line in text if line.startswith("1 ")]
        known.update(ids)
        records += len(ids)
    assert header["satellites"] == records - len(header["skipped"])
    assert header["passes"] == len(rows) > 0
    skipped = {s["norad_id"] for s in header["skipped"]}

    def when(text: str) -> datetime:
        assert ISO_UTC.match(text), text
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)

    keys = [(r["aos"], r["norad_id"]) for r in rows]
    assert keys == sorted(keys)
    last_los: dict[int, datetime] = {}
    mask = header["mask"]["min_el_deg"]
    for r in rows:
        aos, tca, los = when(r["aos"]), when(r["tca"]), when(r["los"])
        flags = set(r["flags"])
        assert flags <= {"clipped_start", "clipped_end", "multiple_culminations"}
        assert start <= aos <= tca <= los <= end, r
        assert aos < los, r
        assert ("clipped_start" in flags) == (aos == start), r
        assert ("clipped_end" in flags) == (los == end), r
        if not flags & {"clipped_start", "clipped_end"}:
            assert aos < tca < los, r
        assert r["norad_id"] in known, r
        assert r["norad_id"] not in skipped, r
        assert mask <= r["max_el_deg"] <= 90.0, r
        for key in ("aos_az_deg", "tca_az_deg", "los_az_deg"):
            assert 0.0 <= r[key] < 360.0, r
        assert abs(r["duration_s"] - (los - aos).total_seconds()) < 1e-6, r
        culminations = r.get("culminations", [])
        assert ("multiple_culminations" in flags) == (len(culminations) > 1), r
        if culminations:
            best = max(culminations, key=lambda c: c["el_deg"])
            assert best["time"] == r["tca"], r
            assert best["el_deg"] == r["max_el_deg"], r
            assert all(aos < when(c["time"]) < los for c in culminations), r
        # No double rises: a satellite's next pass starts after its previous one ended.
        if r["norad_id"] in last_los:
            assert aos > last_los[r["norad_id"]], r
        last_los[r["norad_id"]] = los
