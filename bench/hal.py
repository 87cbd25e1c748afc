"""Benchmark: driver round trips per second against the simulator twins (SystemClock).

For every rotator driver, a round trip is ``set_position`` + ``get_position`` (EasyComm I,
which has no readback: ``set_position`` alone); for every radio driver ``set_frequency`` +
``get_frequency`` (each with its VFO select frame), run for a fixed time over ``loop://`` (in
memory) and over a real wire (a pseudo-terminal opened as ``serial://``; TCP for rotctld and
rigctld).
The twins answer at once (latency 0), so the figures measure our stack. The driver's own
link policy applies (Rot2Prog spaces frames 300 ms apart, as Hamlib does; ``--no-spacing``
removes that). The last column is what the real serial line would allow at the protocol's
default baud for the bytes one round trip moves (8N1: 10 bits per byte).

    .venv/bin/python bench/hal.py [--seconds 1.0] [--no-spacing]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import time
from dataclasses import dataclass, replace

import structlog

from firmware_bridge.clock import SystemClock
from firmware_bridge.drivers import RotatorDriver, create_rotator, driver_names, get_rotator_driver
from firmware_bridge.drivers.radio import create_radio, get_radio_driver, radio_driver_names
from firmware_bridge.simulators import SimServer, create_simulator
from firmware_bridge.transports import LoopRegistry


@dataclass
class Row:
    """One measured cell."""

    kind: str
    name: str
    transport: str
    round_trips: int
    seconds: float
    bytes_per_trip: float
    baud: int | None

    @property
    def per_second(self) -> float:
        """Round trips per second."""
        return self.round_trips / self.seconds

    @property
    def line_limit(self) -> str:
        """Round trips per second a real serial line at the default baud would allow."""
        if self.baud is None or self.transport == "loop" or not self.bytes_per_trip:
            return "-"
        return f"{self.baud / (10 * self.bytes_per_trip):.1f}"


async def round_trip(driver: RotatorDriver, az_deg: float, el_deg: float) -> None:
    """One set (+ get when the protocol has readback)."""
    await driver.set_position(az_deg, el_deg)
    if driver.capabilities.readback:
        await driver.get_position()


async def bench_rotator(name: str, transport: str, seconds: float, spacing: bool) -> Row:
    """Measure one rotator driver over one transport."""
    clock = SystemClock()
    cls = get_rotator_driver(name)
    twin = create_simulator("rotator", cls.twin, clock=clock)
    registry = LoopRegistry(clock)
    server: SimServer
    if transport == "loop":
        server = await twin.serve_loop(registry, "bench")
    elif transport == "pty":
        server = await twin.serve_pty()
    else:
        server = await twin.serve_tcp()
    policy = cls.default_policy if spacing else replace(cls.default_policy, min_interval_s=0.0)
    driver = create_rotator(name, server.url, clock=clock, loop_registry=registry, policy=policy)
    try:
        async with driver:
            await driver.wait_ready()
            caps = driver.capabilities
            targets = [
                (caps.az_min_deg + 10.0, caps.el_min_deg),
                (caps.az_min_deg + 20.0, caps.el_min_deg),
            ]
            rx0, tx0 = twin.rx_bytes, twin.tx_bytes
            count = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds or count < 3:
                await round_trip(driver, *targets[count % 2])
                count += 1
            moved = (twin.rx_bytes - rx0) + (twin.tx_bytes - tx0)
    finally:
        await server.close()
    baud = cls.default_baud if transport == "pty" else None
    return Row("rotator", name, transport, count, elapsed, moved / count, baud)


async def bench_radio(name: str, transport: str, seconds: float) -> Row:
    """Measure one radio driver over one transport: set_frequency + get_frequency."""
    # Importing the twins registers them (the shared simulator table has no radio entries).
    import firmware_bridge.simulators.radio  # noqa: F401

    clock = SystemClock()
    cls = get_radio_driver(name)
    twin = create_simulator("radio", cls.twin, clock=clock)
    registry = LoopRegistry(clock)
    server: SimServer
    if transport == "loop":
        server = await twin.serve_loop(registry, "bench")
    elif transport == "pty":
        server = await twin.serve_pty()
    else:
        server = await twin.serve_tcp()
    driver = create_radio(name, server.url, clock=clock, loop_registry=registry)
    try:
        async with driver:
            await driver.wait_ready()
            vfo = driver.capabilities.vfos[0]
            targets = [145_900_000, 145_900_010]
            rx0, tx0 = twin.rx_bytes, twin.tx_bytes
            count = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds or count < 3:
                await driver.set_frequency(targets[count % 2], vfo)
                await driver.get_frequency(vfo)
                count += 1
            moved = (twin.rx_bytes - rx0) + (twin.tx_bytes - tx0)
    finally:
        await server.close()
    baud = cls.default_baud if transport == "pty" else None
    return Row("radio", name, transport, count, elapsed, moved / count, baud)


async def bench_radios(seconds: float) -> list[Row]:
    """Every radio driver over loop:// and its wire (pty for CI-V, TCP for rigctld)."""
    rows: list[Row] = []
    for name in radio_driver_names():
        wire = "tcp" if get_radio_driver(name).twin == "rigctld" else "pty"
        for transport in ("loop", wire):
            rows.append(await bench_radio(name, transport, seconds))
    return rows


def print_table(rows: list[Row]) -> None:
    """Print the results as a fixed-width table."""
    header = (
        f"{'kind':8} {'driver':10} {'transport':9} {'trips':>6} {'trips/s':>9} "
        f"{'bytes/trip':>10} {'line limit/s':>12}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.kind:8} {row.name:10} {row.transport:9} {row.round_trips:6d} "
            f"{row.per_second:9.1f} {row.bytes_per_trip:10.1f} {row.line_limit:>12}"
        )


async def main_async(seconds: float, spacing: bool) -> list[Row]:
    """Run every cell, one after the other."""
    rows: list[Row] = []
    for name in driver_names("rotator"):
        wire = "tcp" if get_rotator_driver(name).twin == "rotctld" else "pty"
        for transport in ("loop", wire):
            rows.append(await bench_rotator(name, transport, seconds, spacing))
    rows += await bench_radios(seconds)
    return rows


def main() -> None:
    """Parse arguments, run, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per cell (default 1.0)")
    ap.add_argument(
        "--no-spacing", action="store_true", help="drop the drivers' minimum frame spacing"
    )
    args = ap.parse_args()
    # Per-request debug logs would dominate the timing.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(
        f"python {platform.python_version()} on {platform.machine()}, {args.seconds:g} s per cell"
    )
    rows = asyncio.run(main_async(args.seconds, not args.no_spacing))
    print_table(rows)


if __name__ == "__main__":
    main()
