"""Shared pieces of the tracking tests: the seed scenario's station, predictor and passes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import structlog

from controller.orbit.predictor import Pass, PassPredictor, Station
from controller.telemetry.sink import InMemorySink
from controller.tracking.closed_loop import hard_passes, load_seed
from controller.tracking.config import TrackingConfig
from controller.tracking.link import Emitter, LinkSignalModel
from controller.tracking.tracker import AntennaTracker
from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers.radio import create_radio
from firmware_bridge.drivers.rotator import Position, RotatorCapabilities, create_rotator
from firmware_bridge.simulators import create_simulator
from firmware_bridge.simulators.radio import RigctldTwin
from firmware_bridge.simulators.rotator import RotatorTwin
from firmware_bridge.transports import LoopRegistry

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "simulated.toml"
DAY = datetime(2026, 11, 26, tzinfo=UTC)


@dataclass(frozen=True)
class Seed:
    """The seed scenario around the simulated config's station."""

    station: Station
    predictor: PassPredictor
    passes: tuple[Pass, ...]
    """Every pass of every satellite on DAY."""
    hard: tuple[tuple[Pass, str], ...]
    """The hard passes of the two following days, with their category."""

    def first(self, category: str) -> Pass:
        """The first hard pass of a category."""
        return next(p for p, c in self.hard if c == category)

    def crosses_north(self, p: Pass) -> bool:
        """True if the pass's azimuth goes through 0."""
        n = max(8, int(p.duration_s / 5))
        times = [p.aos + timedelta(seconds=p.duration_s * k / (n - 1)) for k in range(n)]
        az = self.predictor.look_angles(p.norad_id, self.station, times).az_deg
        return bool(np.any(np.abs(np.diff(az)) > 180.0))


@cache
def seed() -> Seed:
    """Built once per test process (the catalog, the predictor and a day of passes)."""
    station, predictor, _ = load_seed(CONFIG, DAY)
    passes = tuple(predictor.passes(station, DAY, DAY + timedelta(days=1)).passes)
    end = DAY + timedelta(days=1)
    hard = tuple(hard_passes(predictor, station, end, end + timedelta(days=2)))
    return Seed(station, predictor, passes, hard)


@pytest.fixture
def seed_data() -> Seed:
    """The seed scenario (cached for the whole test process)."""
    return seed()


def caps(
    az_max: float = 450.0,
    el_max: float = 180.0,
    *,
    rate: float = 6.0,
    accel: float = 6.0,
    az_min: float = 0.0,
    resolution: float = 0.01,
) -> RotatorCapabilities:
    """A rotator for the tests (rotctld-like two-decimal resolution, parked at the zenith)."""
    return RotatorCapabilities(
        az_min_deg=az_min,
        az_max_deg=az_max,
        el_min_deg=0.0,
        el_max_deg=el_max,
        az_rate_deg_s=rate,
        el_rate_deg_s=rate,
        az_accel_deg_s2=accel,
        el_accel_deg_s2=accel,
        az_resolution_deg=resolution,
        el_resolution_deg=resolution,
        park_az_deg=max(0.0, az_min),
        park_el_deg=90.0 if el_max >= 90.0 else el_max,
    )


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """Info logs of the planner would flood the captured output; warnings still show."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.reset_defaults()


@dataclass
class Rig:
    """A tracker wired to its rotator and radio twins over loop:// on a virtual clock."""

    clock: VirtualClock
    tracker: AntennaTracker
    rotator: RotatorTwin
    radio: RigctldTwin
    sink: InMemorySink
    signal: LinkSignalModel


@contextlib.asynccontextmanager
async def rig(
    start: datetime,
    rotator_caps: RotatorCapabilities,
    *,
    config: TrackingConfig | None = None,
    beamwidth_deg: float = 12.0,
    rotator_latency_s: float = 0.05,
    rotator_start: Position | None = None,
    emitters: tuple[Emitter, ...] = (),
) -> AsyncIterator[Rig]:
    """Build the twins, serve them, open the drivers and make the tracker; close it all after."""
    s = seed()
    clock = VirtualClock(start)
    registry = LoopRegistry(clock)
    rot = create_simulator(
        "rotator",
        "rotctld",
        clock=clock,
        capabilities=rotator_caps,
        latency_s=rotator_latency_s,
        start=rotator_start,
    )
    assert isinstance(rot, RotatorTwin)
    signal = LinkSignalModel(
        s.predictor,
        s.station,
        lambda: (rot.true_position().az_deg, rot.true_position().el_deg),
        emitters,
    )
    radio = create_simulator("radio", "rigctld", clock=clock, signal=signal)
    assert isinstance(radio, RigctldTwin)
    rot_server = await rot.serve_loop(registry, "rot")
    radio_server = await radio.serve_loop(registry, "radio")
    rot_driver = create_rotator(
        "rotctld", rot_server.url, clock=clock, loop_registry=registry, capabilities=rotator_caps
    )
    radio_driver = create_radio("rigctld", radio_server.url, clock=clock, loop_registry=registry)
    opening = asyncio.ensure_future(asyncio.gather(rot_driver.open(), radio_driver.open()))
    while not opening.done():
        await clock.advance(0.05)
    opening.result()
    sink = InMemorySink(clock, "test")
    tracker = AntennaTracker(
        antenna_id="ant1",
        rotator=rot_driver,
        radio=radio_driver,
        clock=clock,
        predictor=s.predictor,
        station=s.station,
        beamwidth_deg=beamwidth_deg,
        sink=sink,
        config=config,
    )
    try:
        yield Rig(clock, tracker, rot, radio, sink, signal)
    finally:
        await rot_driver.close()
        await radio_driver.close()
        await rot_server.close()
        await radio_server.close()
    assert rot.errors == []
    assert radio.errors == []
