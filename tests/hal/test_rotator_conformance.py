"""One conformance suite for every rotator driver in the registry, against its simulator twin.

Each driver runs over ``loop://`` (in memory, modelled latency) and over a real wire (a
pseudo-terminal opened as ``serial://``; TCP for rotctld). A driver whose twin is missing
fails here (python-can's Back2Back idea).
"""

from __future__ import annotations

import math

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers import (
    DriverState,
    Position,
    RotatorCapabilities,
    driver_names,
    get_driver,
    get_rotator_driver,
)
from firmware_bridge.errors import LimitError, LocalProtocolError
from firmware_bridge.protocols.base import GetPosition, SetPosition, UnknownCommand
from firmware_bridge.simulators import get_simulator, simulator_names
from firmware_bridge.simulators.rotator import RotatorTwin
from tests.hal.conftest import Rig, drive, inside_target, on_grid, rotator_rig, wire_kind

ROTATORS = driver_names("rotator")
CASES = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name in ROTATORS
    for kind in ("loop", wire_kind(name))
]


def test_registry_lists_the_rotator_drivers_of_the_issue() -> None:
    """All eight protocols of the issue are registered."""
    assert set(ROTATORS) >= {
        "gs232a",
        "gs232b",
        "easycomm1",
        "easycomm2",
        "easycomm3",
        "rot2prog",
        "rot1prog",
        "rotctld",
    }


@pytest.mark.parametrize("name", ROTATORS)
def test_every_driver_has_a_twin(name: str) -> None:
    """The twin a driver names exists in the simulator registry and is a rotator twin."""
    cls = get_rotator_driver(name)
    assert cls.twin in simulator_names("rotator")
    twin_cls = get_simulator("rotator", cls.twin)
    assert issubclass(twin_cls, RotatorTwin)
    assert twin_cls.sim_name == cls.twin


async def readback(rig: Rig) -> Position:
    """The position the driver reads, or for a driver without readback the twin's true one."""
    if rig.driver.capabilities.readback:
        return await rig.call(rig.driver.get_position())
    return rig.twin.true_position()


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_set_then_read_back_within_resolution(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """After the slew the reading equals the target within the firmware's resolution."""
    async with rotator_rig(name, transport, clock) as rig:
        caps = rig.driver.capabilities
        target = inside_target(caps)
        await rig.command(rig.driver.set_position(target.az_deg, target.el_deg))
        assert rig.twin.model.moving()
        await rig.settle_slew(target)
        assert not rig.twin.model.moving()
        position = await readback(rig)
        assert abs(position.az_deg - target.az_deg) <= caps.az_resolution_deg
        assert abs(position.el_deg - target.el_deg) <= caps.el_resolution_deg
        if caps.readback:
            # What the firmware reports: a whole number of its resolution steps.
            assert on_grid(position.az_deg, caps.az_resolution_deg)
            assert on_grid(position.el_deg, caps.el_resolution_deg)
            assert position == rig.twin.reported_position()
        assert rig.driver.state in (DriverState.OK, DriverState.DEGRADED)


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_stop_mid_slew_holds_position(name: str, transport: str, clock: VirtualClock) -> None:
    """stop() halfway: the rotator comes to rest between start and target and stays there."""
    async with rotator_rig(name, transport, clock) as rig:
        caps = rig.driver.capabilities
        start = rig.twin.model.position()
        far = Position(caps.az_min_deg + 0.9 * (caps.az_max_deg - caps.az_min_deg), caps.el_min_deg)
        await rig.command(rig.driver.set_position(far.az_deg, far.el_deg))
        await clock.advance(0.4 * (far.az_deg - start.az_deg) / caps.az_rate_deg_s)
        await rig.command(rig.driver.stop())
        await clock.advance(caps.az_rate_deg_s / caps.az_accel_deg_s2 + 1.0)
        first = await readback(rig)
        await clock.advance(30.0)
        second = await readback(rig)
        assert first == second
        assert start.az_deg + 10 * caps.az_resolution_deg < first.az_deg < far.az_deg - 10
        assert rig.driver.target is None


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_park_returns_to_the_park_position(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """park() after a move ends at capabilities.park within the resolution."""
    async with rotator_rig(name, transport, clock) as rig:
        caps = rig.driver.capabilities
        target = inside_target(caps)
        await rig.command(rig.driver.set_position(target.az_deg, target.el_deg))
        await rig.settle_slew(target)
        await rig.command(rig.driver.park())
        await rig.settle_slew(caps.park)
        position = await readback(rig)
        assert abs(position.az_deg - caps.park_az_deg) <= caps.az_resolution_deg
        assert abs(position.el_deg - caps.park_el_deg) <= caps.el_resolution_deg
        assert rig.driver.target == caps.park


def out_of_range(caps: RotatorCapabilities) -> list[tuple[object, object]]:
    """Targets every rotator must refuse."""
    ok = inside_target(caps)
    return [
        (caps.az_max_deg + 0.5, ok.el_deg),
        (caps.az_min_deg - 0.5, ok.el_deg),
        (ok.az_deg, caps.el_max_deg + 0.5),
        (ok.az_deg, caps.el_min_deg - 0.5),
        (math.nan, ok.el_deg),
        (ok.az_deg, math.inf),
        ("123", ok.el_deg),
        (True, ok.el_deg),
    ]


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_limits_raise_before_any_byte_is_sent(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """Each bad target raises LimitError and the twin receives nothing; then a good one goes."""
    async with rotator_rig(name, transport, clock) as rig:
        caps = rig.driver.capabilities
        before = (rig.twin.rx_bytes, rig.twin.command_count)
        for az, el in out_of_range(caps):
            with pytest.raises(LimitError, match=r"az_deg|el_deg"):
                await rig.driver.set_position(az, el)  # type: ignore[arg-type]
        await clock.settle()
        assert (rig.twin.rx_bytes, rig.twin.command_count) == before
        # The next command on the wire is the good one, so nothing was queued before it.
        good = inside_target(caps)
        await rig.command(rig.driver.set_position(good.az_deg, good.el_deg))
        await rig.call(rig.twin.wait_for_commands(before[1] + 1))
        await clock.settle()
        new = list(rig.twin.commands)[before[1] - rig.twin.command_count :]
        assert isinstance(new[0], SetPosition)
        # Only EasyComm I pads its line with tokens the twin decodes as separate commands.
        assert all(isinstance(c, UnknownCommand) for c in new[1:])


@pytest.mark.parametrize("name", ROTATORS)
async def test_position_readback_matches_protocol(name: str, clock: VirtualClock) -> None:
    """Drivers with readback query the twin; EasyComm I refuses to pretend it has one."""
    async with rotator_rig(name, "loop", clock) as rig:
        count = rig.twin.command_count
        if rig.driver.capabilities.readback:
            await rig.call(rig.driver.get_position())
            assert isinstance(rig.twin.commands[-1], GetPosition)
        else:
            with pytest.raises(LocalProtocolError, match="no readback"):
                await rig.driver.get_position()
            assert rig.twin.command_count == count


async def test_wrap_normalisation_sends_bearing_inside_wire_range(clock: VirtualClock) -> None:
    """A -180..180 rotator on GS-232 (wire 0..450): -10 goes out as 350 and reads back as -10."""
    caps = get_rotator_driver("gs232b").default_capabilities.replace(
        az_min_deg=-180.0, az_max_deg=180.0
    )
    twin_caps = caps.replace(az_min_deg=0.0, az_max_deg=360.0)
    async with rotator_rig(
        "gs232b",
        "loop",
        clock,
        driver_options={"capabilities": caps},
        twin_options={"capabilities": twin_caps},
    ) as rig:
        await rig.command(rig.driver.set_position(-10.0, 20.0))
        assert rig.twin.commands[-1] == SetPosition(az_deg=350.0, el_deg=20.0)
        await rig.settle_slew(Position(350.0, 20.0))
        assert await rig.call(rig.driver.get_position()) == Position(-10.0, 20.0)
        await rig.command(rig.driver.set_position(170.0, 20.0))
        assert rig.twin.commands[-1] == SetPosition(az_deg=170.0, el_deg=20.0)


async def test_overlap_range_positions_stay_distinct(clock: VirtualClock) -> None:
    """On a 0..450 rotator 400 deg is sent and read as 400, not folded to 40."""
    async with rotator_rig("gs232b", "loop", clock) as rig:
        assert rig.driver.capabilities.az_overlap_deg == 90.0
        await rig.command(rig.driver.set_position(400.0, 10.0))
        assert rig.twin.commands[-1] == SetPosition(az_deg=400.0, el_deg=10.0)
        await rig.settle_slew(Position(400.0, 10.0))
        assert await rig.call(rig.driver.get_position()) == Position(400.0, 10.0)


def test_capabilities_that_the_protocol_cannot_carry_are_refused(clock: VirtualClock) -> None:
    """A 720 deg rotator on GS-232 (wire 0..450) is a configuration error, named as such."""
    caps = RotatorCapabilities(az_min_deg=-180.0, az_max_deg=540.0, el_max_deg=90.0)
    with pytest.raises(ValueError, match=r"-180\.\.540 cannot be carried by gs232b"):
        get_rotator_driver("gs232b")("loop://x", clock=clock, capabilities=caps)


def test_bad_capabilities_name_the_field() -> None:
    """RotatorCapabilities refuses nonsense with the field and value in the message."""
    with pytest.raises(ValueError, match=r"az_rate_deg_s=0"):
        RotatorCapabilities(az_rate_deg_s=0)
    with pytest.raises(ValueError, match=r"park_el_deg=95"):
        RotatorCapabilities(park_el_deg=95)
    with pytest.raises(ValueError, match=r"az_min_deg=nan"):
        RotatorCapabilities(az_min_deg=math.nan)


def test_registry_errors_name_what_is_available() -> None:
    """Unknown names and kinds are refused with the allowed values in the message."""
    with pytest.raises(ValueError, match=r"no rotator driver called 'nope'; available: .*gs232b"):
        get_driver("rotator", "nope")
    with pytest.raises(ValueError, match=r"kind 'antenna' is not known; allowed: rotator, radio"):
        driver_names("antenna")  # type: ignore[arg-type]


async def test_driver_reuse_allowed_reentry_refused(clock: VirtualClock) -> None:
    """A closed driver opens again; entering it twice at once is an error."""
    async with rotator_rig("gs232b", "loop", clock) as rig:
        driver = rig.driver
        await driver.close()
        assert driver.state is DriverState.DISCONNECTED
        # Entered by hand: the twin's latency needs the clock driven while the probe runs.
        assert await drive(clock, driver.__aenter__()) is driver
        try:
            with pytest.raises(RuntimeError, match="already inside"):
                await driver.__aenter__()
            assert await rig.call(driver.get_position()) == Position(0.0, 0.0)
        finally:
            await driver.__aexit__(None, None, None)
        assert driver.state is DriverState.DISCONNECTED
