"""The pieces of the radio HAL that need no link: S-meter scales and S-units, capabilities,
VFO names, the rigctld mode mask, signal models, twin settings, and a daemon in VFO mode."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers.icom import IC9700_CAPABILITIES
from firmware_bridge.drivers.radio import (
    GENERIC_ICOM_S_METER,
    IC9700_S_METER,
    FrequencyRange,
    RadioCapabilities,
    SignalStrength,
    SMeterScale,
    Vfo,
    VfoError,
    create_radio,
)
from firmware_bridge.drivers.rigctld import modes_from_mask
from firmware_bridge.errors import LimitError
from firmware_bridge.protocols.base import Event
from firmware_bridge.protocols.hamlib_net import ChkVfo, RigctldDevice, RigctldHost, RigDumpState
from firmware_bridge.simulators import Reply, create_simulator
from firmware_bridge.simulators.radio import Beacon, CivBus, NoiseFloor, RigctldTwin
from firmware_bridge.transports import LoopRegistry
from tests.hal.conftest import drive
from tests.hal.test_radio_conformance import RADIOS

assert "rigctld" in RADIOS  # the conformance module registered the radio drivers and twins

# --------------------------------------------------------------------------- S-meter


@pytest.mark.parametrize(
    ("raw", "db"),
    [(0, -54.0), (10, -48.0), (45, -30.0), (120, 0.0), (241, 64.0), (255, 64.0)],
)
def test_ic9700_scale_matches_hamlibs_table(raw: int, db: float) -> None:
    """Hamlib's IC9700_STR_CAL points, a midpoint, and the meter pegging above 241."""
    assert IC9700_S_METER.to_db(raw) == pytest.approx(db)


def test_generic_icom_scale_gives_minus_3_5_at_raw_120() -> None:
    """0..255 -> -60..+60 dB: raw 120 is -3.53 dB (Hamlib prints -3 for the IC-910)."""
    assert GENERIC_ICOM_S_METER.to_db(120) == pytest.approx(-60 + 120 * 120 / 255)


@pytest.mark.parametrize("scale", [IC9700_S_METER, GENERIC_ICOM_S_METER])
def test_scale_inverse_returns_every_raw_value(scale: SMeterScale) -> None:
    """The twin's level -> raw is the inverse of the driver's raw -> level on the whole table."""
    low, high = scale.raw_range
    assert [scale.to_raw(scale.to_db(raw)) for raw in range(low, high + 1)] == list(
        range(low, high + 1)
    )
    assert scale.to_raw(-200.0) == low
    assert scale.to_raw(200.0) == high
    with pytest.raises(ValueError, match="not a finite level"):
        scale.to_raw(math.nan)


def test_scale_must_increase() -> None:
    """A table that does not rise in both columns is refused, naming the points."""
    with pytest.raises(ValueError, match=r"\(10, -48.0\) is followed by \(10, -40.0\)"):
        SMeterScale(((0, -54.0), (10, -48.0), (10, -40.0)))
    with pytest.raises(ValueError, match="at least two points"):
        SMeterScale(((0, -54.0),))


@pytest.mark.parametrize(
    ("db", "s_units", "text", "dbm"),
    [
        (-54.0, 0.0, "S0", -147.0),
        (-60.0, 0.0, "S0", -153.0),
        (-6.0, 8.0, "S8", -99.0),
        (-9.0, 7.5, "S7", -102.0),
        (0.0, 9.0, "S9", -93.0),
        (12.0, 9.0, "S9+12dB", -81.0),
    ],
)
def test_s_units_follow_iaru_r1(db: float, s_units: float, text: str, dbm: float) -> None:
    """6 dB per S-unit, S9 = -93 dBm above 30 MHz (IARU Region 1 Technical Rec. R.1)."""
    signal = SignalStrength(db)
    assert signal.s_units == s_units
    assert str(signal) == text
    assert signal.dbm == dbm
    assert signal.over_s9_db == max(0.0, db)


# --------------------------------------------------------------------------- capabilities


def test_capabilities_refuse_nonsense() -> None:
    """Each bad field is named."""
    base = IC9700_CAPABILITIES
    with pytest.raises(ValueError, match="vfos"):
        base.replace(vfos=(Vfo.UPLINK,))
    with pytest.raises(ValueError, match="freq_step_hz=0"):
        base.replace(freq_step_hz=0)
    with pytest.raises(ValueError, match=r"sat_uplink_vfo=<Vfo\.A: 'a'>"):
        base.replace(sat_uplink_vfo=Vfo.A)
    with pytest.raises(ValueError, match="different VFOs"):
        base.replace(sat_uplink_vfo=Vfo.MAIN)
    with pytest.raises(ValueError, match="rx_ranges"):
        base.replace(rx_ranges=())
    with pytest.raises(ValueError, match="modes"):
        base.replace(modes=frozenset())
    with pytest.raises(ValueError, match="low_hz=10 is above high_hz=5"):
        FrequencyRange(10, 5)
    with pytest.raises(ValueError, match="low_hz=True"):
        FrequencyRange(True, 5)


def test_ranges_contain_their_ends_only() -> None:
    """Both ends belong to a range; one Hz outside does not."""
    two_metres = FrequencyRange.mhz(144, 148)
    assert 144_000_000 in two_metres
    assert 148_000_000 in two_metres
    assert 143_999_999 not in two_metres
    assert 148_000_001 not in two_metres
    assert str(two_metres) == "144.000000-148.000000 MHz"


def test_vfos_a_radio_does_not_have(clock: VirtualClock) -> None:
    """Without satellite mode there is no UPLINK; bad names list what is allowed."""
    plain = IC9700_CAPABILITIES.replace(satellite_mode=False, sat_uplink_vfo=None)
    driver = create_radio("ic9700", "loop://x", clock=clock, capabilities=plain)
    assert driver.check_vfo(None) is Vfo.MAIN
    assert driver.check_vfo("sub") is Vfo.SUB
    with pytest.raises(VfoError, match=r"no VFO 'uplink'.*allowed: main, sub"):
        driver.check_vfo(Vfo.UPLINK)
    with pytest.raises(VfoError, match="vfo='VFOA' is not a VFO; allowed: main, sub"):
        driver.check_vfo("VFOA")


async def test_satellite_mode_calls_on_a_radio_without_one(clock: VirtualClock) -> None:
    """set/get_satellite_mode on a radio without the mode: an error, nothing sent."""
    plain = IC9700_CAPABILITIES.replace(satellite_mode=False)
    driver = create_radio("ic9700", "loop://x", clock=clock, capabilities=plain)
    with pytest.raises(VfoError, match="has no satellite mode"):
        await driver.set_satellite_mode(True)
    with pytest.raises(VfoError, match="has no satellite mode"):
        await driver.get_satellite_mode()


async def test_set_satellite_mode_needs_a_bool(clock: VirtualClock) -> None:
    """1 is not True: refused before sending."""
    driver = create_radio("ic910", "loop://x", clock=clock)
    with pytest.raises(LimitError, match="on=1"):
        await driver.set_satellite_mode(1)  # type: ignore[arg-type]


def test_driver_options_are_checked(clock: VirtualClock) -> None:
    """A bad echo setting or CI-V address is named when the driver is built."""
    with pytest.raises(ValueError, match="echo='yes'"):
        create_radio("ic9700", "loop://x", clock=clock, echo="yes")
    with pytest.raises(ValueError, match="radio_address=255"):
        create_radio("ic9700", "loop://x", clock=clock, radio_address=0xFF)
    with pytest.raises(TypeError, match="capabilities="):
        create_radio("ic9700", "loop://x", clock=clock, capabilities="IC-9700")


# --------------------------------------------------------------------------- rigctld


def test_mode_mask_names_the_first_nine_hamlib_modes() -> None:
    """0x1ff (rigctld -m 1) is AM..RTTYR; a higher bit lets every known mode through."""
    assert modes_from_mask(0x1FF) == {
        "AM", "CW", "USB", "LSB", "RTTY", "FM", "WFM", "CWR", "RTTYR"
    }  # fmt: skip
    assert modes_from_mask(0x24) == {"USB", "FM"}
    wide = modes_from_mask(0x1FF | (1 << 24))
    assert {"DV", "PKTUSB", "C4FM"} <= wide


def test_rigctld_twin_dump_state_parses_with_the_client_codec(clock: VirtualClock) -> None:
    """The twin's \\dump_state, encoded by the daemon codec, parses back to its ranges."""
    twin = create_simulator("radio", "rigctld", clock=clock)
    assert isinstance(twin, RigctldTwin)
    device = RigctldDevice(chk_vfo_seen=True)
    device.receive_data(b"\\dump_state\n")
    assert len(device.events()) == 1
    wire = device.encode_dump_state(twin.dump_state())
    host = RigctldHost()
    host.encode_dump_state(expect_block=True)
    host.receive_data(wire)
    (state,) = host.events()
    assert isinstance(state, RigDumpState)
    assert [(r.start_hz, r.end_hz) for r in state.rx_ranges] == [(150_000.0, 1_500_000_000.0)]
    assert state.extra_value("rig_model") == "1"


class VfoModeTwin(RigctldTwin):
    """A rigctld started with -o: \\chk_vfo answers 1."""

    def handle(self, codec: object, event: Event) -> Reply | None:
        """Answer \\chk_vfo with 1, the rest like the plain twin."""
        if isinstance(event, ChkVfo):
            assert isinstance(codec, RigctldDevice)
            return Reply(codec.encode_chk_vfo(True))
        return super().handle(codec, event)  # type: ignore[arg-type]


async def test_rigctld_in_vfo_mode_is_refused_with_a_reason(clock: VirtualClock) -> None:
    """The driver does not send VFO arguments, so a -o daemon is refused and says why."""
    twin = VfoModeTwin(clock=clock)
    registry = LoopRegistry(clock)
    server = await twin.serve_loop(registry, "rigctld")
    driver = create_radio("rigctld", server.url, clock=clock, loop_registry=registry)
    try:
        await drive(clock, driver.open(), step_s=0.01)
        health = driver.health()
        assert health.state.value == "faulted"
        assert health.link is not None
        assert "VFO mode" in (health.link.last_error or "")
    finally:
        await driver.close()
        await server.close()


# --------------------------------------------------------------------------- twins


def test_signal_models_and_twin_settings(clock: VirtualClock) -> None:
    """The built-in models, and twin settings that cannot work."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    beacon = Beacon(145_950_000, level_db=10.0, bandwidth_hz=2000, floor_db=-50.0)
    assert beacon.signal_db(now, 145_951_000) == 10.0
    assert beacon.signal_db(now, 145_951_001) == -50.0
    assert NoiseFloor().signal_db(now, 1) == -50.0
    with pytest.raises(ValueError, match="main_hz=200000000"):
        create_simulator("radio", "ic9700", clock=clock, main_hz=200_000_000)
    with pytest.raises(TypeError, match="signal_db"):
        create_simulator("radio", "ic910", clock=clock, signal=-50.0)
    with pytest.raises(ValueError, match=r"address=0|address=254|usable radio address"):
        create_simulator("radio", "ic910", clock=clock, address=0xFE)


async def test_closed_bus_refuses_new_stations(clock: VirtualClock) -> None:
    """A bus that was closed cannot be joined again."""
    bus = CivBus(clock)
    station = bus.attach()
    assert bus.stations == 1
    await bus.close()
    assert station.closed
    with pytest.raises(RuntimeError, match="closed"):
        bus.attach()


def test_capabilities_are_a_value(clock: VirtualClock) -> None:
    """Drivers and twins built from the same capabilities agree on them."""
    caps: RadioCapabilities = create_radio("ic9700", "loop://x", clock=clock).capabilities
    twin = create_simulator("radio", "ic9700", clock=clock)
    assert twin.capabilities == caps  # type: ignore[attr-defined]
