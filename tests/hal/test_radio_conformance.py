"""One conformance suite for every radio driver in the registry, against its simulator twin.

Each driver runs over ``loop://`` (in memory, the twin answering after a modelled latency on
the VirtualClock) and over a real wire: a pseudo-terminal opened as ``serial://`` for the CI-V
radios, a loopback TCP socket for rigctld. The helpers here (:func:`radio_rig`) are shared by
the other ``test_radio_*`` modules.

Expected values come from the test's own arithmetic (frequencies set, signal levels chosen),
never from the code under test; S-meter readings are compared with the signal model within
one raw meter step (at most 0.6 dB on these scales).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, TypeVar

import pytest

# Importing the modules registers the drivers and twins (the shared lazy tables in
# drivers/base.py and simulators/base.py have no radio entries yet).
import firmware_bridge.drivers.icom
import firmware_bridge.drivers.rigctld
import firmware_bridge.simulators.radio  # noqa: F401
from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers import DriverState, create_driver, driver_names
from firmware_bridge.drivers.radio import (
    FrequencyRange,
    RadioCapabilities,
    RadioDriver,
    Vfo,
    VfoError,
    create_radio,
    get_radio_driver,
    radio_driver_names,
)
from firmware_bridge.errors import DeviceRejected, LimitError
from firmware_bridge.simulators import SimServer, create_simulator, get_simulator, simulator_names
from firmware_bridge.simulators.radio import (
    Beacon,
    IcomTwin,
    RadioTwin,
    RigctldTwin,
    SignalModel,
    VfoState,
)
from firmware_bridge.transports import FaultHook, LoopRegistry
from tests.hal.conftest import HANG_GUARD_S, LOOP_LATENCY_S, T0, drive

T = TypeVar("T")

RADIOS: Final = radio_driver_names()
METER_STEP_DB: Final = 0.61
"""The widest dB step between two raw meter values on the scales used here (IC-9700 0..10)."""


def wire_kind(name: str) -> str:
    """The real transport a radio's twin is reached over: its pty, or TCP for rigctld."""
    return "tcp" if get_radio_driver(name).twin == "rigctld" else "pty"


CASES: Final = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name in RADIOS
    for kind in ("loop", wire_kind(name))
]


@dataclass
class RadioRig:
    """A radio driver talking to its twin through one server."""

    name: str
    transport: str
    driver: RadioDriver
    twin: RadioTwin
    server: SimServer
    clock: VirtualClock

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Await a driver call: drive the virtual clock on loop, a real hang guard on a wire."""
        if self.transport == "loop":
            return await drive(self.clock, awaitable, step_s=0.01)
        return await asyncio.wait_for(awaitable, HANG_GUARD_S)

    def state(self, physical: Vfo) -> VfoState:
        """The twin's current VFO state behind a physical VFO of the driver."""
        twin = self.twin
        if isinstance(twin, IcomTwin):
            return twin.vfo(physical)
        assert isinstance(twin, RigctldTwin)
        return twin.vfos["A" if physical in (Vfo.A, Vfo.MAIN) else "B"]


@contextlib.asynccontextmanager
async def radio_rig(
    name: str,
    transport: str,
    clock: VirtualClock,
    *,
    signal: SignalModel | None = None,
    driver_options: dict[str, Any] | None = None,
    twin_options: dict[str, Any] | None = None,
    to_server: FaultHook | None = None,
    to_client: FaultHook | None = None,
) -> AsyncIterator[RadioRig]:
    """Build the twin the driver names, serve it, open the driver; check the twin had no bug."""
    cls = get_radio_driver(name)
    options: dict[str, Any] = {"latency_s": LOOP_LATENCY_S if transport == "loop" else 0.0}
    if signal is not None:
        options["signal"] = signal
    options.update(twin_options or {})
    twin = create_simulator("radio", cls.twin, clock=clock, **options)
    assert isinstance(twin, RadioTwin)
    registry = LoopRegistry(clock)
    server: SimServer
    if transport == "loop":
        server = await twin.serve_loop(registry, "radio", to_server=to_server, to_client=to_client)
    elif transport == "pty":
        server = await twin.serve_pty()
    elif transport == "tcp":
        server = await twin.serve_tcp()
    else:
        raise AssertionError(f"unknown transport {transport!r}")
    opts: dict[str, Any] = {"device_name": f"{name}-{transport}"}
    opts.update(driver_options or {})
    driver = create_radio(name, server.url, clock=clock, loop_registry=registry, **opts)
    rig = RadioRig(name, transport, driver, twin, server, clock)
    try:
        await rig.call(driver.open())
        yield rig
    finally:
        await driver.close()
        await server.close()
    assert twin.errors == []


class Steps:
    """A signal that changes every minute (a test model, independent of the code under test)."""

    def __init__(self, levels_db: list[float]) -> None:
        """``levels_db[i]`` holds from minute i after T0; the last one holds afterwards."""
        self.levels_db = levels_db

    def signal_db(self, now: datetime, rx_freq_hz: int) -> float:
        """The level of the current minute."""
        minute = int((now - T0).total_seconds() // 60)
        return self.levels_db[min(minute, len(self.levels_db) - 1)]


def other_freq(caps: RadioCapabilities, vfo_index: int) -> int:
    """A frequency inside a receive range, off the twin's defaults, different per VFO."""
    r = caps.rx_ranges[min(vfo_index, len(caps.rx_ranges) - 1)]
    return r.low_hz + 1_234_567 + 1000 * vfo_index


# --------------------------------------------------------------------------- registry


def test_registry_lists_the_radio_drivers_of_the_issue() -> None:
    """ic9700, ic910 and rigctld are registered radio drivers."""
    assert set(RADIOS) >= {"ic9700", "ic910", "rigctld"}
    assert set(driver_names("radio")) >= {"ic9700", "ic910", "rigctld"}


@pytest.mark.parametrize("name", RADIOS)
def test_every_radio_driver_has_a_twin(name: str) -> None:
    """The twin a driver names exists in the simulator registry and is a radio twin."""
    cls = get_radio_driver(name)
    assert cls.twin in simulator_names("radio")
    twin_cls = get_simulator("radio", cls.twin)
    assert issubclass(twin_cls, RadioTwin)
    assert twin_cls.sim_name == cls.twin


def test_unknown_radio_driver_names_the_choices() -> None:
    """Asking for a driver that does not exist lists the ones that do."""
    with pytest.raises(ValueError, match=r"no radio driver called 'ic7300'.*ic9700"):
        get_radio_driver("ic7300")


async def test_create_driver_by_kind_builds_a_radio(clock: VirtualClock) -> None:
    """The shared registry builds radio drivers by (kind, name)."""
    driver = create_driver("radio", "ic910", "serial:///dev/ttyUSB0", clock=clock)
    assert isinstance(driver, RadioDriver)
    # The model's default baud is added to a serial URL without one (Hamlib: IC-910 19200).
    assert driver.url == "serial:///dev/ttyUSB0?baud=19200"
    assert driver.state is DriverState.DISCONNECTED


# --------------------------------------------------------------------------- frequency


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_set_and_read_frequency_on_each_vfo(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """Every physical VFO keeps its own frequency; the twin holds what was set."""
    async with radio_rig(name, transport, clock) as rig:
        caps = rig.driver.capabilities
        targets = {vfo: other_freq(caps, i) for i, vfo in enumerate(caps.vfos[:2])}
        for vfo, freq_hz in targets.items():
            assert await rig.call(rig.driver.set_frequency(freq_hz, vfo)) == freq_hz
        for vfo, freq_hz in targets.items():
            assert rig.state(vfo).freq_hz == freq_hz
            assert await rig.call(rig.driver.get_frequency(vfo)) == freq_hz
        assert dict(rig.driver.health().frequencies_hz) == targets
        assert rig.driver.state is DriverState.OK


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_fractional_frequency_is_rounded_to_whole_hz(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """A Doppler-corrected float is sent as the nearest whole Hz and reported as sent."""
    async with radio_rig(name, transport, clock) as rig:
        base = other_freq(rig.driver.capabilities, 0)
        assert await rig.call(rig.driver.set_frequency(base + 0.6)) == base + 1
        assert await rig.call(rig.driver.get_frequency()) == base + 1
        assert await rig.call(rig.driver.set_frequency(base + 0.4)) == base


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_limits_raise_before_any_byte(name: str, transport: str, clock: VirtualClock) -> None:
    """Out-of-range, non-finite or non-numeric frequencies, unknown modes and VFOs: no byte."""
    async with radio_rig(name, transport, clock) as rig:
        driver = rig.driver
        caps = driver.capabilities
        low = min(r.low_hz for r in caps.rx_ranges)
        high = max(r.high_hz for r in caps.rx_ranges)
        sent = rig.twin.rx_bytes
        for bad in (low - 1, high + 1, math.nan, math.inf, -math.inf):
            with pytest.raises(LimitError, match="freq_hz"):
                await driver.set_frequency(bad)
        with pytest.raises(LimitError, match="not a number"):
            await driver.set_frequency(True)
        with pytest.raises(LimitError, match="mode='XYZ'"):
            await driver.set_mode("XYZ")
        with pytest.raises(VfoError, match="vfo='left'"):
            await driver.get_frequency("left")
        for missing in {Vfo.A, Vfo.B, Vfo.MAIN, Vfo.SUB} - set(caps.vfos):
            with pytest.raises(VfoError, match=f"no VFO '{missing.value}'"):
                await driver.set_frequency(low, missing)
        assert rig.twin.rx_bytes == sent
        assert rig.twin.errors == []


async def test_gap_between_bands_is_refused(clock: VirtualClock) -> None:
    """200 MHz lies between the IC-9700's 2 m and 70 cm bands: refused, nothing sent."""
    async with radio_rig("ic9700", "loop", clock) as rig:
        sent = rig.twin.rx_bytes
        with pytest.raises(LimitError, match=r"144\.000000-148\.000000 MHz"):
            await rig.driver.set_frequency(200_000_000, Vfo.SUB)
        assert rig.twin.rx_bytes == sent


async def test_radio_refusal_is_a_device_rejection(clock: VirtualClock) -> None:
    """An IC-910 without the 23 cm unit answers FA; the driver raises at once, no retry."""
    no_23cm = get_radio_driver("ic910").default_capabilities
    twin_caps = no_23cm.replace(rx_ranges=no_23cm.rx_ranges[:2], tx_ranges=no_23cm.tx_ranges[:2])
    async with radio_rig("ic910", "loop", clock, twin_options={"capabilities": twin_caps}) as rig:
        with pytest.raises(DeviceRejected, match="NG") as info:
            await rig.call(rig.driver.set_frequency(1_296_100_000, Vfo.SUB))
        assert info.value.code == "NG"
        health = rig.driver.health()
        assert health.link is not None
        assert health.link.counters.retries == 0
        assert health.link.counters.rejected == 1
        assert rig.state(Vfo.SUB).freq_hz != 1_296_100_000
        assert rig.driver.state is DriverState.OK


# --------------------------------------------------------------------------- modes


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_set_and_read_mode_on_each_vfo(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """Each physical VFO keeps its own mode."""
    async with radio_rig(name, transport, clock) as rig:
        first, second = rig.driver.capabilities.vfos[:2]
        await rig.call(rig.driver.set_mode("USB", first))
        await rig.call(rig.driver.set_mode("CW", second))
        assert await rig.call(rig.driver.get_mode(first)) == "USB"
        assert await rig.call(rig.driver.get_mode(second)) == "CW"
        assert (rig.state(first).mode, rig.state(second).mode) == ("USB", "CW")


async def test_mode_only_some_radios_have(clock: VirtualClock) -> None:
    """D-STAR voice is an IC-9700 mode, not an IC-910 one."""
    async with radio_rig("ic9700", "loop", clock) as rig:
        await rig.call(rig.driver.set_mode("DV"))
        assert await rig.call(rig.driver.get_mode()) == "DV"
    async with radio_rig("ic910", "loop", clock) as rig:
        with pytest.raises(LimitError, match="allowed: CW, FM, LSB, USB"):
            await rig.driver.set_mode("DV")


# --------------------------------------------------------------------------- satellite mode


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_satellite_mode_maps_uplink_and_downlink(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """Satellite mode on: UPLINK/DOWNLINK land on the radio's TX/RX VFOs; off again: refused."""
    async with radio_rig(name, transport, clock) as rig:
        driver = rig.driver
        caps = driver.capabilities
        assert await rig.call(driver.get_satellite_mode()) is False
        sent = rig.twin.rx_bytes
        with pytest.raises(VfoError, match="only in satellite mode"):
            await driver.set_frequency(other_freq(caps, 0), Vfo.UPLINK)
        assert rig.twin.rx_bytes == sent
        await rig.call(driver.set_satellite_mode(True))
        assert rig.twin.satellite_mode is True
        assert await rig.call(driver.get_satellite_mode()) is True
        up_hz, down_hz = 435_123_456, 145_876_543
        await rig.call(driver.set_frequency(up_hz, Vfo.UPLINK))
        await rig.call(driver.set_frequency(down_hz, Vfo.DOWNLINK))
        assert caps.sat_uplink_vfo is not None
        assert caps.sat_downlink_vfo is not None
        assert rig.state(caps.sat_uplink_vfo).freq_hz == up_hz
        assert rig.state(caps.sat_downlink_vfo).freq_hz == down_hz
        assert await rig.call(driver.get_frequency(Vfo.UPLINK)) == up_hz
        assert await rig.call(driver.get_frequency(Vfo.DOWNLINK)) == down_hz
        assert driver.health().satellite_mode is True
        await rig.call(driver.set_satellite_mode(False))
        assert rig.twin.satellite_mode is False
        with pytest.raises(VfoError, match="only in satellite mode"):
            await driver.get_frequency(Vfo.DOWNLINK)


async def test_uplink_checked_against_transmit_ranges(clock: VirtualClock) -> None:
    """A receive-only frequency is fine for the downlink, refused for the uplink."""
    caps = get_radio_driver("ic9700").default_capabilities
    # A radio that receives 136-174 MHz but transmits only on 144-146 MHz.
    wide = caps.replace(rx_ranges=(FrequencyRange.mhz(136, 174), *caps.rx_ranges[1:]))
    narrow_tx = wide.replace(tx_ranges=(FrequencyRange.mhz(144, 146), *caps.tx_ranges[1:]))
    options = {"capabilities": narrow_tx}
    async with radio_rig(
        "ic9700", "loop", clock, driver_options=options, twin_options={"capabilities": wide}
    ) as rig:
        await rig.call(rig.driver.set_satellite_mode(True))
        await rig.call(rig.driver.set_frequency(137_100_000, Vfo.DOWNLINK))
        sent = rig.twin.rx_bytes
        with pytest.raises(LimitError, match="transmit ranges"):
            await rig.driver.set_frequency(137_100_000, Vfo.UPLINK)
        assert rig.twin.rx_bytes == sent


# --------------------------------------------------------------------------- S-meter


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_s_meter_follows_the_signal_model(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """Minute by minute the reading tracks a changing signal within one meter step."""
    levels = [-54.0, -30.0, -6.0, 0.0, 20.0, -40.0]
    async with radio_rig(name, transport, clock, signal=Steps(levels)) as rig:
        readings = []
        for minute, level in enumerate(levels):
            await clock.run_until(T0.replace(minute=minute, second=30))
            signal = await rig.call(rig.driver.get_signal())
            readings.append(signal.db_rel_s9)
            # rigctld prints STRENGTH as a whole number of dB.
            assert abs(signal.db_rel_s9 - level) <= METER_STEP_DB, (minute, signal)
        assert readings[:5] == sorted(readings[:5])
        assert readings[5] < readings[4]
        assert rig.driver.health().last_signal is not None


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_s_meter_reads_the_receiver_tuned_to_the_beacon(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """Only the VFO tuned to the beacon sees it; the satellite downlink is read by default."""
    beacon_hz = 145_950_000
    signal = Beacon(beacon_hz, level_db=24.0, bandwidth_hz=3000, floor_db=-48.0)
    async with radio_rig(name, transport, clock, signal=signal) as rig:
        driver = rig.driver
        caps = driver.capabilities
        await rig.call(driver.set_frequency(beacon_hz + 100_000, caps.vfos[0]))
        quiet = await rig.call(driver.get_signal(caps.vfos[0]))
        await rig.call(driver.set_frequency(beacon_hz + 1000, caps.vfos[0]))
        loud = await rig.call(driver.get_signal(caps.vfos[0]))
        assert abs(quiet.db_rel_s9 + 48.0) <= METER_STEP_DB
        assert abs(loud.db_rel_s9 - 24.0) <= METER_STEP_DB
        assert quiet.s_units == pytest.approx(1.0, abs=0.11)
        assert loud.s_units == 9.0
        assert loud.over_s9_db == pytest.approx(24.0, abs=0.61)
        await rig.call(driver.set_satellite_mode(True))
        await rig.call(driver.set_frequency(435_000_000, Vfo.UPLINK))
        await rig.call(driver.set_frequency(beacon_hz, Vfo.DOWNLINK))
        # The last VFO touched was the uplink; get_signal() still reads the downlink.
        await rig.call(driver.set_frequency(435_000_100, Vfo.UPLINK))
        assert abs((await rig.call(driver.get_signal())).db_rel_s9 - 24.0) <= METER_STEP_DB


# --------------------------------------------------------------------------- misc


@pytest.mark.parametrize(("name", "transport"), CASES)
async def test_reuse_after_close_and_no_reentry(
    name: str, transport: str, clock: VirtualClock
) -> None:
    """A closed driver reads disconnected and can be used again; entering twice is an error."""
    async with radio_rig(name, transport, clock) as rig:
        driver = rig.driver
        await driver.close()
        assert driver.state is DriverState.DISCONNECTED
        expected = rig.state(driver.capabilities.vfos[0]).freq_hz

        async def reuse() -> int:
            async with driver:
                with pytest.raises(RuntimeError, match="already inside"):
                    async with driver:
                        pass
                assert driver.state is DriverState.OK
                return await driver.get_frequency()

        assert await rig.call(reuse()) == expected
        assert driver.state is DriverState.DISCONNECTED


async def test_concurrent_tasks_keep_select_and_act_together(clock: VirtualClock) -> None:
    """Uplink and downlink Doppler tasks at once: each value lands on its own band."""
    async with radio_rig("ic9700", "loop", clock) as rig:
        driver = rig.driver
        await rig.call(driver.set_satellite_mode(True))
        ups = [435_100_000 + 10 * i for i in range(5)]
        downs = [145_900_000 - 10 * i for i in range(5)]

        async def uplink() -> None:
            for hz in ups:
                await driver.set_frequency(hz, Vfo.UPLINK)

        async def downlink() -> None:
            for hz in downs:
                await driver.set_frequency(hz, Vfo.DOWNLINK)

        async def both() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(uplink())
                group.create_task(downlink())

        await rig.call(both())
        assert isinstance(rig.twin, IcomTwin)
        assert rig.twin.vfo(Vfo.SUB).freq_hz == ups[-1]
        assert rig.twin.vfo(Vfo.MAIN).freq_hz == downs[-1]


async def test_capabilities_can_be_narrowed(clock: VirtualClock) -> None:
    """European IC-9700: 145.9 MHz is fine, 147 MHz is refused before sending."""
    caps = get_radio_driver("ic9700").default_capabilities
    europe = replace(
        caps,
        rx_ranges=(FrequencyRange.mhz(144, 146), FrequencyRange.mhz(430, 440)),
        tx_ranges=(FrequencyRange.mhz(144, 146), FrequencyRange.mhz(430, 440)),
    )
    async with radio_rig("ic9700", "loop", clock, driver_options={"capabilities": europe}) as rig:
        await rig.call(rig.driver.set_frequency(145_900_000))
        sent = rig.twin.rx_bytes
        with pytest.raises(LimitError, match=r"144\.000000-146\.000000 MHz"):
            await rig.driver.set_frequency(147_000_000)
        assert rig.twin.rx_bytes == sent


async def test_tuning_steps_of_driver_and_twin(clock: VirtualClock) -> None:
    """A driver told of 10 Hz steps rounds to them; a 10 Hz radio truncates what it gets."""
    caps = get_radio_driver("ic9700").default_capabilities.replace(freq_step_hz=10)
    async with radio_rig("ic9700", "loop", clock, twin_options={"capabilities": caps}) as rig:
        # Our driver assumes 1 Hz: the twin tunes 145.900007 MHz down to its 10 Hz grid.
        assert await rig.call(rig.driver.set_frequency(145_900_007)) == 145_900_007
        assert await rig.call(rig.driver.get_frequency()) == 145_900_000
    async with radio_rig("ic9700", "loop", clock, driver_options={"capabilities": caps}) as rig:
        assert await rig.call(rig.driver.set_frequency(145_900_007)) == 145_900_010
        assert rig.state(Vfo.MAIN).freq_hz == 145_900_010
