"""Shared pieces of the HAL tests: a rig of driver + twin + server, and clock helpers.

Two ways of running a driver against its twin:

* ``loop``: in memory; the twin answers after a modelled latency on the VirtualClock, so
  every driver call is *driven*: the clock is advanced in small steps until the call is done.
* ``wire``: a real pseudo-terminal (``serial://`` on PtyEndpoint) or, for the TCP protocol
  rotctld, a real loopback socket. Real I/O cannot be waited for on a manual VirtualClock,
  so the twin answers at once (latency 0), the driver's minimum spacing between frames is
  set to 0, and the clock is only advanced between calls (to move the physics);
  ``asyncio.wait_for`` with a generous real limit only guards against a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers import (
    Position,
    RotatorCapabilities,
    RotatorDriver,
    create_rotator,
    get_rotator_driver,
)
from firmware_bridge.errors import TransportTimeout
from firmware_bridge.simulators import SimServer, create_simulator
from firmware_bridge.simulators.rotator import RotatorTwin
from firmware_bridge.transports import FaultHook, LoopRegistry

T0: Final = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HANG_GUARD_S: Final = 10.0
LOOP_LATENCY_S: Final = 0.05
"""Reply latency of the twins in loop tests (virtual seconds)."""

T = TypeVar("T")


@pytest.fixture
def clock() -> VirtualClock:
    """A manual virtual clock at a fixed start time."""
    return VirtualClock(T0)


async def drive(
    clock: VirtualClock, awaitable: Awaitable[T], *, step_s: float = 0.05, limit_s: float = 120.0
) -> T:
    """Run ``awaitable`` while advancing the clock in ``step_s`` steps until it finishes."""
    task = asyncio.ensure_future(awaitable)
    await clock.settle()
    waited = 0.0
    while not task.done():
        if waited > limit_s:
            task.cancel()
            raise AssertionError(f"still not done after {limit_s} virtual seconds")
        await clock.advance(step_s)
        waited += step_s
    return task.result()


def travel_time_s(caps: RotatorCapabilities, start: Position, end: Position) -> float:
    """Upper bound of the time a trapezoidal slew from ``start`` to ``end`` takes, plus 1 s."""
    worst = 0.0
    for distance, rate, accel in (
        (abs(end.az_deg - start.az_deg), caps.az_rate_deg_s, caps.az_accel_deg_s2),
        (abs(end.el_deg - start.el_deg), caps.el_rate_deg_s, caps.el_accel_deg_s2),
    ):
        if distance > rate * rate / accel:
            worst = max(worst, distance / rate + rate / accel)
        else:
            worst = max(worst, 2 * math.sqrt(distance / accel))
    return worst + 1.0


def on_grid(value: float, step: float) -> bool:
    """True if ``value`` is a whole number of ``step``s (a reading at the firmware resolution)."""
    return abs(value / step - round(value / step)) < 1e-6


def inside_target(caps: RotatorCapabilities) -> Position:
    """A target well inside the limits, off the resolution grid (123.4, 45.6 when possible)."""
    az = 123.4 if caps.az_min_deg <= 123.4 <= caps.az_max_deg else caps.az_min_deg + 10.3
    el = 45.6 if caps.el_min_deg <= 45.6 <= caps.el_max_deg else caps.el_min_deg
    return Position(az, el)


@dataclass
class Rig:
    """A driver talking to its twin through one server."""

    name: str
    transport: str
    driver: RotatorDriver
    twin: RotatorTwin
    server: SimServer
    clock: VirtualClock

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Await a driver call the way this transport needs (driven clock or hang guard)."""
        if self.transport == "loop":
            return await drive(self.clock, awaitable)
        return await asyncio.wait_for(awaitable, HANG_GUARD_S)

    async def command(self, awaitable: Awaitable[T]) -> T:
        """A driver call that sends a command: also wait until the twin has acted on it.

        Over a real wire a write-only command may still be in the kernel when the call
        returns; the clock must not move before the twin has applied it.
        """
        count = self.twin.command_count
        result = await self.call(awaitable)
        await self.call(self.twin.wait_for_commands(count + 1))
        return result

    async def silence(self) -> None:
        """The twin stops answering; call until the link has given up (``fault_after``
        timed-out requests), which faults it."""
        assert self.driver.link is not None
        self.twin.faults.drop_replies()
        for _ in range(self.driver.link.policy.fault_after):
            with pytest.raises(TransportTimeout):
                await self.call(self.driver.get_position())

    async def settle_slew(self, target: Position) -> None:
        """Advance the clock until a slew from the twin's position to ``target`` is over."""
        start = self.twin.model.position()
        await self.clock.advance(travel_time_s(self.twin.capabilities, start, target))


def wire_kind(name: str) -> str:
    """The real transport a driver's twin is reached over: its pty, or TCP for rotctld."""
    cls = get_rotator_driver(name)
    return "tcp" if cls.twin == "rotctld" else "pty"


@contextlib.asynccontextmanager
async def rotator_rig(
    name: str,
    transport: str,
    clock: VirtualClock,
    *,
    link_path: Path | None = None,
    driver_options: dict[str, Any] | None = None,
    twin_options: dict[str, Any] | None = None,
    to_server: FaultHook | None = None,
    to_client: FaultHook | None = None,
) -> AsyncIterator[Rig]:
    """Build the twin the driver names, serve it, open the driver; check the twin had no bug."""
    cls = get_rotator_driver(name)
    options = {"latency_s": LOOP_LATENCY_S if transport == "loop" else 0.0}
    options.update(twin_options or {})
    twin = create_simulator("rotator", cls.twin, clock=clock, **options)
    assert isinstance(twin, RotatorTwin)
    registry = LoopRegistry(clock)
    server: SimServer
    if transport == "loop":
        server = await twin.serve_loop(registry, "rot", to_server=to_server, to_client=to_client)
    elif transport == "pty":
        server = await twin.serve_pty(link_path=link_path)
    elif transport == "tcp":
        server = await twin.serve_tcp()
    else:
        raise AssertionError(f"unknown transport {transport!r}")
    opts: dict[str, Any] = {"device_name": f"{name}-{transport}"}
    if transport != "loop":
        # Frame spacing waits on the clock, which stands still during real I/O (module doc).
        opts["policy"] = replace(cls.default_policy, min_interval_s=0.0)
    opts.update(driver_options or {})
    driver = create_rotator(name, server.url, clock=clock, loop_registry=registry, **opts)
    try:
        if transport == "loop":
            await drive(clock, driver.open())
        else:
            await asyncio.wait_for(driver.open(), HANG_GUARD_S)
        yield Rig(name, transport, driver, twin, server, clock)
    finally:
        await driver.close()
        await server.close()
    assert twin.errors == []
