"""Faults between a radio driver and its twin: split, corrupted, garbage, truncated, dropped and
late replies, a vanishing device, and the CI-V bus with its echo, other stations and
collisions. Each ends in the right value after a retry, or a typed error, and recovery."""

from __future__ import annotations

import asyncio

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers import DriverState
from firmware_bridge.drivers.icom import IcomDriver
from firmware_bridge.drivers.radio import RadioDriver, Vfo, create_radio
from firmware_bridge.errors import DeviceFault, TransportClosed, TransportTimeout
from firmware_bridge.protocols.civ import (
    IC910,
    IC9700,
    CivHost,
    ReadFrequency,
    SetFrequency,
    encode_bcd_frequency,
)
from firmware_bridge.simulators import create_simulator
from firmware_bridge.simulators.radio import CivBus, IcomTwin
from firmware_bridge.transports import FaultInjector, LoopRegistry
from tests.hal.conftest import drive
from tests.hal.test_radio_conformance import RADIOS, radio_rig


def counters(driver: RadioDriver) -> dict[str, int]:
    """The driver's link counters."""
    health = driver.health()
    assert health.link is not None
    result: dict[str, int] = health.link.counters.as_dict()
    return result


def state_of(driver: RadioDriver) -> DriverState:
    """The driver's state, read afresh (keeps mypy from narrowing it across awaits)."""
    return driver.state


# --------------------------------------------------------------------------- reply faults


@pytest.mark.parametrize("name", RADIOS)
async def test_replies_one_byte_at_a_time_are_reassembled(name: str, clock: VirtualClock) -> None:
    """Every reply arrives in 1-byte pieces: no retry, right values."""
    split = FaultInjector(seed=1).split(1)
    async with radio_rig(name, "loop", clock, to_client=split) as rig:
        await rig.call(rig.driver.set_frequency(145_912_345))
        assert await rig.call(rig.driver.get_frequency()) == 145_912_345
        assert await rig.call(rig.driver.get_satellite_mode()) is False
        assert counters(rig.driver)["retries"] == 0
        assert split.bytes_seen > 0


@pytest.mark.parametrize("name", RADIOS)
async def test_garbage_reply_is_retried(name: str, clock: VirtualClock) -> None:
    """The twin answers garbage once: the driver counts it, retries, and gets the value."""
    async with radio_rig(name, "loop", clock) as rig:
        await rig.call(rig.driver.set_frequency(145_923_456))
        rig.twin.faults.garbage_replies(1)
        assert await rig.call(rig.driver.get_frequency()) == 145_923_456
        seen = counters(rig.driver)
        assert seen["garbage"] == 1
        assert seen["retries"] == 1
        assert rig.twin.faults.garbled == 1
        assert rig.driver.state is DriverState.DEGRADED


@pytest.mark.parametrize("name", RADIOS)
async def test_truncated_reply_times_out_then_retry(name: str, clock: VirtualClock) -> None:
    """Half a reply (no end marker) times out on the clock; the retry gets the whole one."""
    async with radio_rig(name, "loop", clock) as rig:
        await rig.call(rig.driver.set_frequency(145_934_567))
        rig.twin.faults.truncate_replies(1)
        start = clock.monotonic()
        assert await rig.call(rig.driver.get_frequency()) == 145_934_567
        link = rig.driver.link
        assert link is not None
        assert clock.monotonic() - start >= link.policy.timeout_s
        assert counters(rig.driver)["timeouts"] == 1
        assert rig.twin.faults.truncated == 1


async def test_corrupted_preamble_is_garbage_then_retried(clock: VirtualClock) -> None:
    """A CI-V reply whose first FE is hit on the wire is dropped as garbage and re-asked."""
    noise = FaultInjector(seed=7)
    async with radio_rig("ic9700", "loop", clock, to_client=noise) as rig:
        await rig.call(rig.driver.set_frequency(145_945_678))
        # Position 0 of what the twin writes next: the first byte of the 07 D0 answer.
        noise.corrupt(positions=[0])
        assert await rig.call(rig.driver.get_frequency()) == 145_945_678
        assert counters(rig.driver)["garbage"] == 1


@pytest.mark.parametrize("name", RADIOS)
async def test_silent_device_faults_then_recovers(name: str, clock: VirtualClock) -> None:
    """No replies at all: timeouts, then the link is faulted; replies back: ok again."""
    async with radio_rig(name, "loop", clock) as rig:
        driver = rig.driver
        rig.twin.faults.drop_replies()
        for _ in range(3):
            with pytest.raises(TransportTimeout, match="failed after"):
                await drive(clock, driver.get_frequency(), step_s=0.1)
        assert state_of(driver) is DriverState.FAULTED
        with pytest.raises(DeviceFault, match="faulted"):
            await driver.get_frequency()
        rig.twin.faults.clear()
        await drive(clock, driver.wait_ready(), step_s=0.1)
        assert state_of(driver) in (DriverState.OK, DriverState.DEGRADED)
        assert (
            await rig.call(driver.get_frequency()) == rig.state(driver.capabilities.vfos[0]).freq_hz
        )


@pytest.mark.parametrize("name", RADIOS)
async def test_device_gone_then_back(name: str, clock: VirtualClock) -> None:
    """The device vanishes (link cut): TransportClosed, faulted; it comes back: reconnected."""
    async with radio_rig(name, "loop", clock) as rig:
        driver = rig.driver
        await rig.server.disconnect_for(5.0)
        with pytest.raises((TransportClosed, DeviceFault)):
            await rig.call(driver.get_frequency())
        assert state_of(driver) is DriverState.FAULTED
        await drive(clock, driver.wait_ready(), step_s=0.1)
        assert clock.monotonic() >= 5.0
        assert counters(driver)["reconnects"] == 1
        await rig.call(driver.set_frequency(145_956_789))
        assert await rig.call(driver.get_frequency()) == 145_956_789


@pytest.mark.parametrize("name", RADIOS)
async def test_reply_latency_is_modelled_on_the_clock(name: str, clock: VirtualClock) -> None:
    """With 0.3 s per reply a select+read takes 0.6 virtual seconds, and not before."""
    async with radio_rig(name, "loop", clock, twin_options={"latency_s": 0.3}) as rig:
        task = asyncio.ensure_future(rig.driver.get_frequency())
        await clock.advance(0.59)
        assert not task.done()
        await clock.advance(0.02)
        assert task.done()
        assert task.result() == rig.state(rig.driver.capabilities.vfos[0]).freq_hz


# --------------------------------------------------------------------------- the twin's side


async def test_twin_skips_garbage_and_other_stations(clock: VirtualClock) -> None:
    """Noise, a frame for another radio, then frames for the twin and for 00 (broadcast)."""
    twin = create_simulator("radio", "ic9700", clock=clock)
    assert isinstance(twin, IcomTwin)
    registry = LoopRegistry(clock)
    server = await twin.serve_loop(registry, "ic9700")
    host = CivHost(IC9700)
    other = CivHost(IC910)
    try:
        raw = await registry.connect("ic9700")
        await raw.write(b"\x00\x13noise\xfd" + other.encode_read_frequency())
        await raw.write(host.encode_read_frequency())
        answer = await asyncio.wait_for(raw.read(), 5.0)
        # FE FE E0 A2 03 <145.8 MHz> FD: from A2, for E0.
        assert answer == b"\xfe\xfe\xe0\xa2\x03" + encode_bcd_frequency(145_800_000) + b"\xfd"
        await raw.write(b"\xfe\xfe\x00\xe0\x03\xfd")
        answer = await asyncio.wait_for(raw.read(), 5.0)
        assert answer.startswith(b"\xfe\xfe\xe0\xa2\x03")
        assert twin.garbage_events >= 1
        assert [type(c) for c in twin.commands] == [ReadFrequency, ReadFrequency]
        await raw.close()
    finally:
        await server.close()
    assert twin.errors == []


async def test_transceive_set_is_obeyed_silently(clock: VirtualClock) -> None:
    """The ``00`` form sets the frequency with no answer; only its echo comes back."""
    twin = create_simulator("radio", "ic9700", clock=clock, echo=True)
    assert isinstance(twin, IcomTwin)
    registry = LoopRegistry(clock)
    server = await twin.serve_loop(registry, "ic9700")
    try:
        raw = await registry.connect("ic9700")
        frame = b"\xfe\xfe\xa2\xe0\x00" + encode_bcd_frequency(145_967_890) + b"\xfd"
        await raw.write(frame + CivHost(IC9700).encode_read_frequency())
        first = await asyncio.wait_for(raw.read(), 5.0)
        assert first == frame
        assert isinstance(twin.commands[0], SetFrequency)
        assert twin.vfo(Vfo.MAIN).freq_hz == 145_967_890
        await raw.close()
    finally:
        await server.close()


# --------------------------------------------------------------------------- the CI-V bus


async def test_two_radios_and_two_controllers_share_a_bus(clock: VirtualClock) -> None:
    """On one two-wire bus every frame echoes and both radios hear everything: each driver
    still gets its own radio's answers, at the same time, with echo configured or detected."""
    registry = LoopRegistry(clock)
    async with CivBus(clock) as bus:
        ic9700 = create_simulator("radio", "ic9700", clock=clock, latency_s=0.01)
        ic910 = create_simulator("radio", "ic910", clock=clock, latency_s=0.01)
        assert isinstance(ic9700, IcomTwin)
        assert isinstance(ic910, IcomTwin)
        bus.add_twin(ic9700)
        bus.add_twin(ic910)
        url = bus.listen(registry, "civ")
        # Another program on the bus at controller address E1, talking to the IC-910 too.
        other = bus.attach()
        first = create_radio("ic9700", url, clock=clock, loop_registry=registry, echo=True)
        second = create_radio("ic910", url, clock=clock, loop_registry=registry)
        assert isinstance(second, IcomDriver)

        async def work() -> list[int]:
            async with first, second:
                third_party = CivHost(IC910, controller_address=0xE1)
                await other.write(third_party.encode_read_frequency())
                await asyncio.gather(
                    first.set_frequency(145_978_901, Vfo.MAIN),
                    second.set_frequency(435_089_012, Vfo.SUB),
                )
                pair = await asyncio.gather(
                    first.get_frequency("main"), second.get_frequency("sub")
                )
                return list(pair)

        got = await drive(clock, work(), step_s=0.01)
        assert got == [145_978_901, 435_089_012]
        assert ic9700.vfo(Vfo.MAIN).freq_hz == 145_978_901
        assert ic910.vfo(Vfo.SUB).freq_hz == 435_089_012
        assert second.echo is True
        await clock.settle()
        assert bus.stations == 3  # two twins and the third party; the drivers hung up
        assert ic9700.errors == []
        assert ic910.errors == []


async def test_echo_that_differs_is_a_collision_and_retried(clock: VirtualClock) -> None:
    """A set damaged on the bus reaches the radio wrong and comes back as a differing echo:
    the driver sees the collision and repeats the set, so the radio ends on the right value."""
    registry = LoopRegistry(clock)
    damage = FaultInjector(seed=1)
    async with CivBus(clock) as bus:
        twin = create_simulator("radio", "ic9700", clock=clock, latency_s=0.01)
        assert isinstance(twin, IcomTwin)
        bus.add_twin(twin)
        url = bus.listen(registry, "civ", to_bus=damage)
        driver = create_radio("ic9700", url, clock=clock, loop_registry=registry, echo=True)

        async def work() -> None:
            async with driver:
                # Positions 0-6 are the 07 D0 select, 7-17 the 05 set: 14 is its BCD byte
                # 0x98 (the 100 kHz/1 MHz digits), which seed 1 turns into 0x45.
                damage.corrupt(positions=[14])
                await driver.set_frequency(145_989_012)

        await drive(clock, work(), step_s=0.01)
        sets = [c.freq_hz for c in twin.commands if isinstance(c, SetFrequency)]
        assert sets == [145_459_012, 145_989_012]
        assert twin.vfo(Vfo.MAIN).freq_hz == 145_989_012
        health = driver.health()
        assert health.link is not None
        assert health.link.counters.garbage == 1
        assert health.link.counters.retries == 1
        assert twin.errors == []


@pytest.mark.parametrize("twin_echo", [False, True])
@pytest.mark.parametrize("driver_echo", [None, False, True])
async def test_echo_setting_and_radio_echo_in_any_combination(
    driver_echo: bool | None, twin_echo: bool, clock: VirtualClock
) -> None:
    """Echo configured or detected, present or not: our own frames are never taken for
    answers, and auto-detection finds what the radio does."""
    async with radio_rig(
        "ic9700",
        "loop",
        clock,
        driver_options={"echo": driver_echo},
        twin_options={"echo": twin_echo},
    ) as rig:
        await rig.call(rig.driver.set_frequency(144_390_000))
        assert await rig.call(rig.driver.get_frequency()) == 144_390_000
        assert counters(rig.driver)["retries"] == 0
        assert isinstance(rig.driver, IcomDriver)
        assert rig.driver.echo is (twin_echo if driver_echo is None else driver_echo)
