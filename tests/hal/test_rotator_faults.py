"""Faults between a rotator driver and its twin: lost device, garbage, partial frames, late
replies, a stalled axis. Each ends in a typed error or state, and recovery where it should."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers import (
    DriverState,
    Position,
    RotatorDriver,
    RotatorStalled,
    driver_names,
)
from firmware_bridge.drivers.rotator import get_rotator_driver
from firmware_bridge.errors import DeviceFault, TransportClosed, TransportTimeout
from firmware_bridge.protocols.base import Axis
from firmware_bridge.simulators import TwinFaults
from firmware_bridge.transports import FaultInjector
from tests.hal.conftest import HANG_GUARD_S, Rig, drive, inside_target, rotator_rig, wire_kind

READBACK = [
    n for n in driver_names("rotator") if get_rotator_driver(n).default_capabilities.readback
]
SERIAL_READBACK = [n for n in READBACK if wire_kind(n) == "pty"]


def caps_start_az(rig: Rig) -> float:
    """Where the twin started (its park azimuth): a stalled azimuth never left it."""
    return rig.twin.capabilities.park_az_deg


def state_of(driver: RotatorDriver) -> DriverState:
    """The driver's state, read afresh (keeps mypy from narrowing it across awaits)."""
    return driver.state


def link_counters(driver: RotatorDriver) -> dict[str, int]:
    """The driver's link counters as a dict."""
    health = driver.health()
    assert health.link is not None
    counters: dict[str, int] = health.link.counters.as_dict()
    return counters


@pytest.mark.parametrize("name", SERIAL_READBACK)
async def test_pty_closed_mid_command_then_reconnect(
    name: str, clock: VirtualClock, tmp_path: Path
) -> None:
    """The device vanishes while a reply is awaited: TransportClosed, faulted; back -> ok."""
    link = tmp_path / "rotator"
    async with rotator_rig(name, "pty", clock, link_path=link) as rig:
        assert rig.driver.url.startswith(f"serial://{link}")
        rig.twin.faults.drop_replies()
        count = rig.twin.command_count
        pending = asyncio.ensure_future(rig.driver.get_position())
        await asyncio.wait_for(rig.twin.wait_for_commands(count + 1), HANG_GUARD_S)
        await rig.server.drop()
        with pytest.raises(TransportClosed):
            await asyncio.wait_for(pending, HANG_GUARD_S)
        assert state_of(rig.driver) is DriverState.FAULTED
        with pytest.raises(DeviceFault, match="faulted"):
            await rig.driver.get_position()
        rig.twin.faults.clear()
        await rig.server.restore()
        # The reconnect waits its backoff on the clock, then opens the (re-linked) pty for real.
        assert rig.driver.link is not None
        await clock.advance(rig.driver.link.policy.backoff_initial_s)
        await asyncio.wait_for(rig.driver.wait_ready(), HANG_GUARD_S)
        assert state_of(rig.driver) is DriverState.OK
        position = await asyncio.wait_for(rig.driver.get_position(), HANG_GUARD_S)
        assert position == rig.twin.reported_position()
        assert link_counters(rig.driver)["reconnects"] == 1


async def test_loop_disconnect_for_a_while(clock: VirtualClock) -> None:
    """disconnect_for(): the link is faulted at once, without waiting for a request (a
    request fails fast naming the loss); reconnect attempts fail while the twin is away and
    succeed after."""
    async with rotator_rig("gs232b", "loop", clock) as rig:
        await rig.server.disconnect_for(5.0)
        assert not rig.server.up
        assert state_of(rig.driver) is DriverState.FAULTED
        with pytest.raises(DeviceFault, match=r"transport lost: .*the peer closed the connection"):
            await rig.call(rig.driver.get_position())
        await drive(clock, rig.driver.wait_ready(), limit_s=60.0)
        assert clock.monotonic() >= 5.0
        assert rig.server.up
        counters = link_counters(rig.driver)
        assert counters["reconnects"] == 1
        assert counters["reconnect_attempts"] >= 2
        assert await rig.call(rig.driver.get_position()) == Position(0.0, 0.0)


@pytest.mark.parametrize("name", READBACK)
async def test_garbage_reply_is_retried(name: str, clock: VirtualClock) -> None:
    """One garbage answer costs a retry; the reading that follows is right; state degraded."""
    async with rotator_rig(name, "loop", clock) as rig:
        rig.twin.faults.garbage_replies(1)
        position = await rig.call(rig.driver.get_position())
        assert position == rig.twin.reported_position()
        assert rig.twin.faults.garbled == 1
        assert link_counters(rig.driver)["retries"] == 1
        assert state_of(rig.driver) is DriverState.DEGRADED


@pytest.mark.parametrize("name", READBACK)
async def test_truncated_reply_is_retried(name: str, clock: VirtualClock) -> None:
    """A reply cut short times out; the stale half is flushed and the retry reads right."""
    async with rotator_rig(name, "loop", clock) as rig:
        target = inside_target(rig.driver.capabilities)
        await rig.command(rig.driver.set_position(target.az_deg, target.el_deg))
        await rig.settle_slew(target)
        rig.twin.faults.truncate_replies(1)
        position = await rig.call(rig.driver.get_position())
        assert position == rig.twin.reported_position()
        assert rig.twin.faults.truncated == 1
        counters = link_counters(rig.driver)
        assert counters["retries"] == 1
        assert counters["timeouts"] + counters["garbage"] == 1


@pytest.mark.parametrize("name", READBACK)
async def test_replies_split_into_single_bytes(name: str, clock: VirtualClock) -> None:
    """Every reply arriving one byte per read is still decoded, without retries."""
    splitter = FaultInjector().split(1)
    async with rotator_rig(name, "loop", clock, to_client=splitter) as rig:
        target = inside_target(rig.driver.capabilities)
        await rig.command(rig.driver.set_position(target.az_deg, target.el_deg))
        await rig.settle_slew(target)
        position = await rig.call(rig.driver.get_position())
        assert position == rig.twin.reported_position()
        assert abs(position.az_deg - target.az_deg) <= rig.driver.capabilities.az_resolution_deg
        assert link_counters(rig.driver)["retries"] == 0


@pytest.mark.parametrize("name", READBACK)
async def test_late_replies_time_out_then_recover(name: str, clock: VirtualClock) -> None:
    """Replies later than the timeout: TransportTimeout after every attempt; then normal."""
    async with rotator_rig(name, "loop", clock) as rig:
        assert rig.driver.link is not None
        policy = rig.driver.link.policy
        rig.twin.faults.late_replies(10 * policy.timeout_s)
        with pytest.raises(TransportTimeout, match=r"failed after \d+ attempt"):
            await rig.call(rig.driver.get_position())
        assert link_counters(rig.driver)["timeouts"] == 1 + policy.retries
        rig.twin.faults.clear()
        # Let the late answers arrive (the twin answers one command at a time).
        await clock.advance(10 * policy.timeout_s * (2 + policy.retries))
        assert await rig.call(rig.driver.get_position()) == rig.twin.reported_position()


async def test_silent_device_faults_the_link_and_recovers(clock: VirtualClock) -> None:
    """fault_after failed requests -> faulted and fail-fast; answers again -> reconnected."""
    async with rotator_rig("easycomm2", "loop", clock) as rig:
        await rig.silence()
        assert state_of(rig.driver) is DriverState.FAULTED
        with pytest.raises(DeviceFault):
            await rig.driver.get_position()
        rig.twin.faults.clear()
        await drive(clock, rig.driver.wait_ready())
        assert state_of(rig.driver) is DriverState.OK
        assert await rig.call(rig.driver.get_position()) == Position(0.0, 0.0)


def test_twin_fault_arguments_are_checked() -> None:
    """Fault settings refuse nonsense, naming the argument."""
    faults = TwinFaults()
    with pytest.raises(ValueError, match="count=-2"):
        faults.drop_replies(-2)
    with pytest.raises(ValueError, match="delay_s=-1"):
        faults.late_replies(-1)
    with pytest.raises(ValueError, match="at least one byte"):
        faults.garbage_replies(1, data=b"")


async def poll_until_stalled(
    driver: RotatorDriver, clock: VirtualClock, limit_s: float
) -> tuple[RotatorStalled, float]:
    """Read every 0.5 s until RotatorStalled; return it and the virtual time it took."""
    t0 = clock.monotonic()
    while clock.monotonic() - t0 < limit_s:
        await clock.advance(0.5)
        try:
            await drive(clock, driver.get_position())
        except RotatorStalled as exc:
            return exc, clock.monotonic() - t0
    raise AssertionError(f"no stall reported within {limit_s} s")


@pytest.mark.parametrize("name", READBACK)
async def test_stalled_axis_is_detected_and_cleared(name: str, clock: VirtualClock) -> None:
    """A jammed azimuth is reported after the debounce; the state clears once it moves."""
    async with rotator_rig(name, "loop", clock) as rig:
        driver = rig.driver
        target = inside_target(driver.capabilities)
        rig.twin.stall(Axis.AZ)
        await rig.command(driver.set_position(target.az_deg, target.el_deg))
        stall, took_s = await poll_until_stalled(driver, clock, limit_s=4 * driver.stall_timeout_s)
        assert stall.axes == (Axis.AZ,)
        assert (
            abs(stall.position.az_deg - caps_start_az(rig)) <= driver.capabilities.az_resolution_deg
        )
        assert driver.stall_timeout_s <= took_s <= driver.stall_timeout_s + 1.5
        assert state_of(driver) is DriverState.FAULTED
        health = driver.health()
        assert health.stalled_axes == (Axis.AZ,)
        assert health.device_fault is not None
        assert "az axis stalled" in health.device_fault
        # Reported once; later readings return the position while the state stays faulted.
        await clock.advance(0.5)
        await rig.call(driver.get_position())
        assert state_of(driver) is DriverState.FAULTED
        rig.twin.release(Axis.AZ)
        await clock.advance(1.0)
        await rig.call(driver.get_position())
        assert driver.health().stalled_axes == ()
        assert state_of(driver) is not DriverState.FAULTED


@pytest.mark.parametrize("name", READBACK)
async def test_normal_slew_is_not_a_stall(name: str, clock: VirtualClock) -> None:
    """Polling a whole healthy slew every 0.5 s never reports a stall."""
    async with rotator_rig(name, "loop", clock) as rig:
        driver = rig.driver
        caps = driver.capabilities
        far = Position(caps.az_min_deg + 0.8 * (caps.az_max_deg - caps.az_min_deg), caps.el_min_deg)
        await rig.command(driver.set_position(far.az_deg, far.el_deg))
        while rig.twin.model.moving():
            await clock.advance(0.5)
            await rig.call(driver.get_position())
        final = await rig.call(driver.get_position())
        assert abs(final.az_deg - far.az_deg) <= caps.az_resolution_deg
        assert driver.health().stalled_axes == ()
        assert state_of(driver) is not DriverState.FAULTED


async def test_stop_clears_a_stall(clock: VirtualClock) -> None:
    """stop() ends the stall report (the operator has taken note)."""
    async with rotator_rig("gs232a", "loop", clock) as rig:
        rig.twin.stall(Axis.AZ)
        await rig.command(rig.driver.set_position(200.0, 0.0))
        stall, _ = await poll_until_stalled(rig.driver, clock, limit_s=30.0)
        assert stall.axes == (Axis.AZ,)
        await rig.command(rig.driver.stop())
        assert rig.driver.health().stalled_axes == ()
        assert state_of(rig.driver) is not DriverState.FAULTED
