"""Golden pass lists from skyfield, the independent reference for the pass predictor.

Run from the repository root::

    .venv/bin/python -m tests.reference.make_golden [--out seeds/golden]

It writes one JSON-lines file per (station, window): a header object first, then one pass
per line sorted by (aos, norad_id). Passes come from ``EarthSatellite.find_events`` and
every event is then refined with skyfield's own geometric altitude
(``(sat - topos).at(t).altaz()``, no refraction): AOS and LOS by bisection of
altitude(t) = mask to 1e-4 s, culminations by golden-section maximisation to 1e-3 s.
The timescale has TT - UT1 fixed at 69.184 s, which makes UT1 = UTC exactly (TT - UTC has
been 69.184 s since 2017), so the golden files need no IERS data.

This module is test tooling: the controller never imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tomllib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sgp4.api import SGP4_ERRORS, accelerated
from skyfield.api import EarthSatellite, load, wgs84

__all__ = [
    "DELTA_T_S",
    "GOLDEN_DAYS",
    "GOLDEN_STATIONS",
    "VERIFICATION_DAYS",
    "VERIFICATION_STATION",
    "WINDOW_START",
    "Pass",
    "TleRecord",
    "compute_passes",
    "golden_name",
    "main",
    "read_tle_records",
    "write_golden",
]

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"

WINDOW_START = datetime(2026, 11, 26, tzinfo=UTC)
GOLDEN_DAYS = 7
VERIFICATION_DAYS = 1
GOLDEN_STATIONS = ("jp-katsuura", "de-weilheim")
VERIFICATION_STATION = "de-weilheim"
MASK_DEG = 0.0
# TT - UT1 pinned so that UT1 = UTC (TT - UTC = 32.184 s + 37 leap seconds since 2017).
DELTA_T_S = 69.184
CONSTELLATION_FILES = ("tle/eu_constellation.tle", "tle/jp_groups.tle")
VERIFICATION_FILE = "tle/sgp4_verification.tle"

AOS_LOS_TOLERANCE_S = 1e-4
TCA_TOLERANCE_S = 1e-3
# find_events reports events to about half a second; these brackets are wide enough to
# contain the true event and narrow enough that altitude is monotonic (AOS/LOS) or
# unimodal (culmination) inside them.
EVENT_BRACKET_S = 3.0
CULMINATION_BRACKET_S = 60.0
# Verification records are checked for SGP4 errors on this grid before use.
PROPAGATION_CHECK_STEP_S = 10.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TleRecord:
    """One element set read from a TLE file (2-line or 3-line)."""

    norad_id: int
    name: str
    line1: str
    line2: str
    source: str
    lineno: int


@dataclass
class Pass:
    """One refined pass; times are seconds after the window start."""

    norad_id: int
    name: str
    aos_s: float
    los_s: float
    tca_s: float
    culminations_s: list[float] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def read_tle_records(path: Path, source: str) -> list[TleRecord]:
    """Read 3-line or 2-line element sets, ignoring ``#`` comments and trailing columns."""
    lines = path.read_text(encoding="ascii").splitlines()
    records: list[TleRecord] = []
    previous = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("1 "):
            if index + 1 >= len(lines) or not lines[index + 1].startswith("2 "):
                raise ValueError(f"{path}:{index + 1}: line 1 not followed by a line 2")
            line2 = lines[index + 1]
            norad_id = int(line[2:7])
            name = previous.strip()
            if not name or name.startswith("#"):
                name = f"SGP4-VER {line[2:7]}"
            records.append(TleRecord(norad_id, name, line[:69], line2[:69], source, index + 1))
            previous = ""
            index += 2
            continue
        previous = line
        index += 1
    return records


def _iso(start: datetime, seconds: float) -> str:
    when = start + timedelta(microseconds=round(seconds * 1e6))
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Sky:
    """Altitude and azimuth of one satellite from one site, as functions of window seconds."""

    def __init__(self, ts: Any, topos: Any, sat: Any, start: datetime) -> None:
        self._ts = ts
        self._topos = topos
        self._sat = sat
        self._start = start
        self._diff = sat - topos

    @property
    def satellite(self) -> Any:
        """The skyfield EarthSatellite."""
        return self._sat

    @property
    def topos(self) -> Any:
        """The skyfield ground site."""
        return self._topos

    def time(self, seconds: float | FloatArray) -> Any:
        """Skyfield Time for window seconds, built from UTC fields to keep full precision."""
        s = self._start
        return self._ts.utc(s.year, s.month, s.day, s.hour, s.minute, s.second + seconds)

    def altaz(self, seconds: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Geometric altitude and azimuth in degrees (no refraction)."""
        alt, az, _ = self._diff.at(self.time(np.asarray(seconds, dtype=float))).altaz()
        return np.asarray(alt.degrees, dtype=float), np.asarray(az.degrees, dtype=float)

    def alt(self, seconds: FloatArray) -> FloatArray:
        """Geometric altitude in degrees."""
        return self.altaz(seconds)[0]


def _bracket_crossings(
    sky: _Sky, guess_s: FloatArray, rising: bool, mask_deg: float, end_s: float
) -> tuple[FloatArray, FloatArray]:
    """Brackets [lo, hi] with altitude below the mask on one side and above on the other."""
    half = np.full(guess_s.shape, EVENT_BRACKET_S)
    lo = np.clip(guess_s - half, 0.0, end_s)
    hi = np.clip(guess_s + half, 0.0, end_s)
    for _ in range(10):
        above_lo = sky.alt(lo) >= mask_deg
        above_hi = sky.alt(hi) >= mask_deg
        good = (~above_lo & above_hi) if rising else (above_lo & ~above_hi)
        if good.all():
            return lo, hi
        half = np.where(good, half, half * 2.0)
        lo = np.where(good, lo, np.clip(guess_s - half, 0.0, end_s))
        hi = np.where(good, hi, np.clip(guess_s + half, 0.0, end_s))
    bad = guess_s[~good]
    raise RuntimeError(f"no altitude crossing found near window seconds {bad.tolist()}")


def _refine_crossings(
    sky: _Sky, guess_s: FloatArray, rising: bool, mask_deg: float, end_s: float
) -> FloatArray:
    """Bisect altitude(t) = mask to AOS_LOS_TOLERANCE_S for every guess at once."""
    if guess_s.size == 0:
        return guess_s
    lo, hi = _bracket_crossings(sky, guess_s, rising, mask_deg, end_s)
    while float(np.max(hi - lo)) > AOS_LOS_TOLERANCE_S:
        mid = 0.5 * (lo + hi)
        above = sky.alt(mid) >= mask_deg
        # Rising: below at lo, above at hi. Setting: above at lo, below at hi.
        move_hi = above if rising else ~above
        hi = np.where(move_hi, mid, hi)
        lo = np.where(move_hi, lo, mid)
    return 0.5 * (lo + hi)


def _refine_maxima(sky: _Sky, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Golden-section search for the altitude maximum in each [lo, hi] to TCA_TOLERANCE_S."""
    if lo.size == 0:
        return lo
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.copy(), hi.copy()
    while float(np.max(b - a)) > TCA_TOLERANCE_S:
        # Both interior points are evaluated afresh each round (one vectorised call), which
        # costs one extra evaluation but cannot drift; the interval still shrinks by 0.618.
        c = b - inv_phi * (b - a)
        d = a + inv_phi * (b - a)
        f = sky.alt(np.concatenate((c, d)))
        left = f[: c.size] > f[c.size :]  # the maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
    return 0.5 * (a + b)


def _group_events(
    record: TleRecord, times_s: Sequence[float], kinds: Sequence[int], up_at_start: bool
) -> list[Pass]:
    """Turn find_events' rise/culminate/set sequence into passes with unrefined times."""
    passes: list[Pass] = []
    current: Pass | None = None
    if up_at_start:
        current = Pass(record.norad_id, record.name, 0.0, math.nan, math.nan)
        current.flags.append("clipped_start")
    for t_s, kind in zip(times_s, kinds, strict=True):
        if kind == 0:
            if current is not None:
                raise RuntimeError(f"{record.name}: rise at {t_s} s inside an open pass")
            current = Pass(record.norad_id, record.name, t_s, math.nan, math.nan)
        elif kind == 1:
            if current is None:
                raise RuntimeError(f"{record.name}: culmination at {t_s} s outside a pass")
            current.culminations_s.append(t_s)
        elif kind == 2:
            if current is None:
                raise RuntimeError(f"{record.name}: set at {t_s} s outside a pass")
            current.los_s = t_s
            passes.append(current)
            current = None
        else:
            raise RuntimeError(f"{record.name}: unknown event kind {kind}")
    if current is not None:
        current.flags.append("clipped_end")
        passes.append(current)
    return passes


DEEP_SPACE_SCAN_S = 60.0


def _scan_events(sky: _Sky, end_s: float, mask_deg: float) -> tuple[list[float], list[int]]:
    """Events from skyfield's altitude on a uniform grid: rise 0, culmination 1, set 2.

    Used instead of find_events for deep-space orbits: find_events misses the set and
    the next rise of near-geosynchronous satellites (seen on 26900 of the verification
    set, which dips 5 deg below the horizon for six hours while find_events reports one
    culmination only). A grid of DEEP_SPACE_SCAN_S cannot miss any window longer than
    that, which holds for orbits with periods of hours.
    """
    grid = np.arange(0.0, end_s + DEEP_SPACE_SCAN_S, DEEP_SPACE_SCAN_S)
    grid[-1] = min(grid[-1], end_s)
    alt = sky.alt(grid)
    above = alt >= mask_deg
    events: list[tuple[float, int]] = []
    for i in range(1, len(grid)):
        if above[i] and not above[i - 1]:
            events.append((0.5 * (grid[i - 1] + grid[i]), 0))
        elif above[i - 1] and not above[i]:
            events.append((0.5 * (grid[i - 1] + grid[i]), 2))
    for i in range(1, len(grid) - 1):
        if alt[i - 1] < alt[i] >= alt[i + 1] and alt[i] >= mask_deg:
            events.append((float(grid[i]), 1))
    events.sort()
    return [t for t, _ in events], [k for _, k in events]


def compute_passes(sky: _Sky, record: TleRecord, days: int, mask_deg: float) -> list[Pass]:
    """All passes of ``record`` seen by ``sky``'s site in the window of ``days``, refined."""
    end_s = days * 86400.0
    t0 = sky.time(0.0)
    t1 = sky.time(end_s)
    if sky.satellite.model.no_kozai * 225.0 < 2.0 * math.pi:  # period > 225 min
        offsets, kind_list = _scan_events(sky, end_s, mask_deg)
        offsets_s = np.array(offsets)
        kinds = np.array(kind_list, dtype=int)
    else:
        times, kinds = sky.satellite.find_events(sky.topos, t0, t1, altitude_degrees=mask_deg)
        # Whole days and fractions kept apart so the offsets keep sub-millisecond precision.
        offsets_s = ((times.whole - t0.whole) + (times.tt_fraction - t0.tt_fraction)) * 86400.0
    up_at_start = bool(sky.alt(np.array([0.0]))[0] >= mask_deg)
    passes = _group_events(record, offsets_s.tolist(), kinds.tolist(), up_at_start)

    rises = [p for p in passes if "clipped_start" not in p.flags]
    sets = [p for p in passes if "clipped_end" not in p.flags]
    aos = _refine_crossings(sky, np.array([p.aos_s for p in rises]), True, mask_deg, end_s)
    los = _refine_crossings(sky, np.array([p.los_s for p in sets]), False, mask_deg, end_s)
    for p, t_s in zip(rises, aos.tolist(), strict=True):
        p.aos_s = t_s
    for p, t_s in zip(sets, los.tolist(), strict=True):
        p.los_s = t_s
    for p in passes:
        if "clipped_end" in p.flags:
            p.los_s = end_s

    # Culmination brackets: +-CULMINATION_BRACKET_S, never past the pass ends nor past the
    # midpoint to a neighbouring culmination (so each bracket holds a single maximum).
    owners: list[tuple[Pass, int]] = []
    lows: list[float] = []
    highs: list[float] = []
    for p in passes:
        c = p.culminations_s
        for i, t_s in enumerate(c):
            lower = p.aos_s if i == 0 else 0.5 * (c[i - 1] + t_s)
            upper = p.los_s if i == len(c) - 1 else 0.5 * (t_s + c[i + 1])
            lows.append(max(t_s - CULMINATION_BRACKET_S, lower))
            highs.append(min(t_s + CULMINATION_BRACKET_S, upper))
            owners.append((p, i))
    refined = _refine_maxima(sky, np.array(lows), np.array(highs))
    for (p, i), t_s, lo_s, hi_s in zip(owners, refined.tolist(), lows, highs, strict=True):
        edge = min(t_s - lo_s, hi_s - t_s)
        at_pass_end = (t_s - lo_s < 1e-2 and lo_s == p.aos_s) or (
            hi_s - t_s < 1e-2 and hi_s == p.los_s
        )
        if edge < 1e-2 and not at_pass_end:
            raise RuntimeError(f"{p.name}: culmination near {t_s} s hit its search bracket edge")
        p.culminations_s[i] = t_s

    for p in passes:
        if p.culminations_s:
            alts = sky.alt(np.array(p.culminations_s))
            p.tca_s = p.culminations_s[int(np.argmax(alts))]
        else:
            # A clipped pass that only descends (or only climbs) inside the window peaks at
            # the clipped end.
            ends = sky.alt(np.array([p.aos_s, p.los_s]))
            p.tca_s = p.aos_s if ends[0] >= ends[1] else p.los_s
        if len(p.culminations_s) > 1:
            p.flags.append("multiple_culminations")
    return passes


def _pass_json(sky: _Sky, p: Pass, start: datetime) -> dict[str, Any]:
    alt, az = sky.altaz(np.array([p.aos_s, p.tca_s, p.los_s]))
    # Durations from the microsecond-rounded times, so they agree with the ISO strings.
    aos_us = round(p.aos_s * 1e6)
    los_us = round(p.los_s * 1e6)
    out: dict[str, Any] = {
        "norad_id": p.norad_id,
        "name": p.name,
        "aos": _iso(start, p.aos_s),
        "tca": _iso(start, p.tca_s),
        "los": _iso(start, p.los_s),
        "max_el_deg": round(float(alt[1]), 6),
        "aos_az_deg": round(float(az[0]), 6),
        "tca_az_deg": round(float(az[1]), 6),
        "los_az_deg": round(float(az[2]), 6),
        "duration_s": round((los_us - aos_us) / 1e6, 6),
        "flags": sorted(p.flags),
    }
    if len(p.culminations_s) > 1:
        c_alt, c_az = sky.altaz(np.array(p.culminations_s))
        out["culminations"] = [
            {"time": _iso(start, t_s), "el_deg": round(float(e), 6), "az_deg": round(float(a), 6)}
            for t_s, e, a in zip(p.culminations_s, c_alt.tolist(), c_az.tolist(), strict=True)
        ]
    return out


def _propagation_error(record: TleRecord, start: datetime, days: int) -> str | None:
    """Why SGP4 cannot propagate ``record`` over the window, or None if it can."""
    from sgp4.api import Satrec, jday

    sat = Satrec.twoline2rv(record.line1, record.line2)
    if sat.error:
        return f"twoline2rv error {sat.error}: {SGP4_ERRORS[sat.error]}"
    jd, fr = jday(start.year, start.month, start.day, start.hour, start.minute, start.second)
    grid = np.arange(0.0, days * 86400.0 + PROPAGATION_CHECK_STEP_S, PROPAGATION_CHECK_STEP_S)
    errors, _, _ = sat.sgp4_array(np.full(grid.shape, jd), fr + grid / 86400.0)
    codes = sorted({int(e) for e in errors if e})
    if codes:
        return "sgp4 error " + ", ".join(f"{c}: {SGP4_ERRORS[c]}" for c in codes)
    return None


def _station(station_id: str) -> dict[str, Any]:
    stations = tomllib.loads((SEEDS / "stations.toml").read_text(encoding="utf-8"))["station"]
    for st in stations:
        if st["id"] == station_id:
            return dict(st)
    raise SystemExit(f"station {station_id!r} not in seeds/stations.toml")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def golden_name(station_id: str, start: datetime, days: int, mask_deg: float) -> str:
    """File name ``<station>_<YYYYMMDD>_<days>d_el<mask>.jsonl`` of a golden pass list."""
    mask = f"{mask_deg:g}".replace(".", "p")
    return f"{station_id}_{start:%Y%m%d}_{days}d_el{mask}.jsonl"


def write_golden(
    out: Path,
    station_id: str,
    tle_files: Sequence[str],
    days: int,
    prefix: str = "",
    skip_unpropagatable: bool = False,
    verbose: bool = False,
) -> Path:
    """Compute and write one golden file; return its path."""
    ts = load.timescale(delta_t=DELTA_T_S)
    st = _station(station_id)
    topos = wgs84.latlon(st["lat_deg"], st["lon_deg"], elevation_m=st["alt_m"])
    records = [r for f in tle_files for r in read_tle_records(SEEDS / f, f)]
    skipped: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for record in records:
        if skip_unpropagatable:
            reason = _propagation_error(record, WINDOW_START, days)
            if reason is not None:
                skipped.append(
                    {
                        "norad_id": record.norad_id,
                        "file": record.source,
                        "line": record.lineno,
                        "reason": reason,
                    }
                )
                continue
        sat = EarthSatellite(record.line1, record.line2, record.name, ts)
        sky = _Sky(ts, topos, sat, WINDOW_START)
        for p in compute_passes(sky, record, days, MASK_DEG):
            rows.append(_pass_json(sky, p, WINDOW_START))
        if verbose:
            print(f"{station_id}: {record.name} done, {len(rows)} passes so far", file=sys.stderr)
    rows.sort(key=lambda r: (r["aos"], r["norad_id"]))
    end = WINDOW_START + timedelta(days=days)
    header = {
        "header": {
            "station": {k: st[k] for k in ("id", "name", "country", "lat_deg", "lon_deg", "alt_m")},
            "window": {
                "start": WINDOW_START.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "days": days,
            },
            "mask": {
                "kind": "flat",
                "min_el_deg": MASK_DEG,
                "note": "the station's own horizon mask is not applied",
            },
            "timescale": {
                "delta_t_s": DELTA_T_S,
                "dut1_s": 0.0,
                "tt_minus_utc_s": 69.184,
                "note": "skyfield load.timescale(delta_t=69.184): UT1 = UTC exactly",
            },
            "geometry": "wgs84.latlon(lat, lon, elevation_m=alt); (sat - topos).at(t).altaz(); "
            "geometric, no refraction, no polar motion",
            "refinement": {
                "events": "EarthSatellite.find_events",
                "aos_los": f"bisection of altitude = mask to {AOS_LOS_TOLERANCE_S} s",
                "tca": f"golden-section maximum of altitude to {TCA_TOLERANCE_S} s; "
                "the highest culmination of the pass",
                "clipped": "a pass up at the window start has aos = start and flag "
                "clipped_start; one up at the end has los = end and flag clipped_end",
            },
            "skyfield_version": version("skyfield"),
            "sgp4_version": version("sgp4"),
            "sgp4_accelerated": bool(accelerated),
            "tle_files": [{"path": f"seeds/{f}", "sha256": _sha256(SEEDS / f)} for f in tle_files],
            "satellites": len(records) - len(skipped),
            "skipped": skipped,
            "passes": len(rows),
            "generator": "python -m tests.reference.make_golden",
        }
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / (prefix + golden_name(station_id, WINDOW_START, days, MASK_DEG))
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for obj in (header, *rows):
            fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Write every golden file (constellation for two stations, verification set for one)."""
    parser = argparse.ArgumentParser(description="Write the skyfield golden pass lists.")
    parser.add_argument("--out", type=Path, default=SEEDS / "golden")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one per file)")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--only",
        choices=["all", "constellation", "verification"],
        default="all",
        help="which files to (re)write",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    tasks: list[dict[str, Any]] = [
        {"station_id": sid, "tle_files": CONSTELLATION_FILES, "days": GOLDEN_DAYS}
        for sid in GOLDEN_STATIONS
    ]
    tasks.append(
        {
            "station_id": VERIFICATION_STATION,
            "tle_files": (VERIFICATION_FILE,),
            "days": VERIFICATION_DAYS,
            "prefix": "verification_",
            "skip_unpropagatable": True,
        }
    )
    if args.only == "constellation":
        tasks = tasks[:-1]
    elif args.only == "verification":
        tasks = tasks[-1:]
    # Each file is independent and skyfield is single-threaded: one process per file.
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(write_golden, args.out, verbose=args.verbose, **task) for task in tasks
        ]
        for future in futures:
            print(f"wrote {future.result()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
