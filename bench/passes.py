"""Benchmark: the seed constellation x 7 days x one station, groundlink vs skyfield.

Both predictors run in this process on the same TLEs, station and window, alternating
run by run. Prints the median of N runs of each, the ratio (also the median of the
per-run ratios, and in CPU time), the peak memory of groundlink's run (tracemalloc,
which numpy reports to), and how the two pass lists compare.

    .venv/bin/python bench/passes.py [--runs 3] [--station de-weilheim] [--days 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from skyfield.api import EarthSatellite, load, wgs84

from controller.config import load_station_list
from controller.orbit.catalog import Catalog
from controller.orbit.predictor import PassPredictor

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 26, tzinfo=UTC)


def main() -> None:
    """Run the benchmark and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--station", default="de-weilheim")
    ap.add_argument("--days", type=float, default=7.0)
    args = ap.parse_args()

    tles = [ROOT / "seeds/tle/eu_constellation.tle", ROOT / "seeds/tle/jp_groups.tle"]
    catalog = Catalog.from_files(tles)
    stations = {s.id: s for s in load_station_list(ROOT / "seeds/stations.toml")}
    st = stations[args.station].station()
    end = START + timedelta(days=args.days)
    sats = list(catalog)

    # Memory: one traced run (tracemalloc sees numpy's buffers), not timed.
    tracemalloc.start()
    traced = PassPredictor(sats).passes(st, START, end)
    assert traced.passes is not None  # build the Pass objects too, inside the trace
    peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()

    ts = load.timescale(delta_t=69.184)
    topos = wgs84.latlon(st.lat_deg, st.lon_deg, elevation_m=st.alt_m)
    t_start, t_end = ts.from_datetime(START), ts.from_datetime(end)

    def skyfield_rises() -> int:
        rises = 0
        for entry in sats:
            assert entry.line1 is not None
            assert entry.line2 is not None
            es = EarthSatellite(entry.line1, entry.line2, entry.name, ts)
            _, events = es.find_events(topos, t_start, t_end, altitude_degrees=st.mask.min_el_deg)
            rises += int((events == 0).sum())
        return rises

    ours_s: list[float] = []
    ours_cpu: list[float] = []
    objects_s: list[float] = []
    sky_s: list[float] = []
    sky_cpu: list[float] = []
    result = None
    sky_rises = 0
    # The two predictors alternate run by run, so a change in the machine's load (other
    # processes share the cores) hits both alike; per-run ratios are reported too.
    for _ in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        result = PassPredictor(sats).passes(st, START, end)
        ours_s.append(time.perf_counter() - t0)
        ours_cpu.append(time.process_time() - c0)
        # The search yields a columnar table (like skyfield's arrays); Pass objects with
        # datetimes are built on demand, timed separately.
        t0 = time.perf_counter()
        _ = result.passes
        objects_s.append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        sky_rises = skyfield_rises()
        sky_s.append(time.perf_counter() - t0)
        sky_cpu.append(time.process_time() - c0)
    assert result is not None

    ours = statistics.median(ours_s)
    objects = statistics.median(objects_s)
    sky = statistics.median(sky_s)
    clipped = sum(1 for p in result.passes if "clipped_start" in p.flags)
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"
    )
    print(
        f"workload: {len(sats)} satellites x {args.days:g} days over {args.station} "
        f"({st.lat_deg}, {st.lon_deg}), mask {st.mask.min_el_deg}..{st.mask.max_el_deg} deg"
    )
    print(
        f"groundlink: {len(result.passes)} passes ({clipped} in progress at start), "
        f"{result.samples} sgp4 samples; median {ours:.3f} s of {[round(x, 3) for x in ours_s]}"
    )
    print(
        f"skyfield find_events: {sky_rises} rises; median {sky:.3f} s of "
        f"{[round(x, 3) for x in sky_s]}"
    )
    print(f"groundlink Pass objects built on demand: median {objects:.3f} s more")
    print(
        f"ratio: groundlink is {sky / ours:.1f}x faster than skyfield find_events "
        f"({sky / (ours + objects):.1f}x including Pass objects)"
    )
    cpu_ours, cpu_sky = statistics.median(ours_cpu), statistics.median(sky_cpu)
    # CPU time is less disturbed than wall time when other processes share the cores.
    print(
        f"CPU time medians: groundlink {cpu_ours:.3f} s, skyfield {cpu_sky:.3f} s, "
        f"ratio {cpu_sky / cpu_ours:.1f}x"
    )
    pair_wall = statistics.median(b / a for a, b in zip(ours_s, sky_s, strict=True))
    pair_cpu = statistics.median(b / a for a, b in zip(ours_cpu, sky_cpu, strict=True))
    print(f"median of per-run ratios: wall {pair_wall:.1f}x, CPU {pair_cpu:.1f}x")
    print(f"groundlink peak traced memory: {peak_mb:.1f} MB")


if __name__ == "__main__":
    main()
