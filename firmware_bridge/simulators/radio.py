"""Radio twins (``ic9700``, ``ic910``, ``rigctld``), their signal models, and a CI-V bus.

Every twin is built on the **device side** of its driver's codec and keeps a small radio
model: VFO frequencies and modes, the selected VFO, satellite mode, split, and an S-meter
driven by a pluggable :class:`SignalModel` evaluated on the injected clock
(``signal_db(clock.now(), rx_freq_hz)``, dB relative to S9; default :class:`NoiseFloor`). The
meter reads the receiver of the *current* VFO (the selected band on the Icoms). Frequency
ranges, modes, tuning step and S-meter scale come from the driver's capabilities (one source
of truth); a frequency off the tuning step is truncated to it (the twin's rule; every model
here tunes in 1 Hz steps over CI-V and rigctld). Reply latency (``latency_s``) and reply
faults (drop, garbage, truncate, late) come from :class:`~firmware_bridge.simulators.base.Twin`.

Icom twins (CI-V, answering at their address or 00; optional echo as the IC-9700's
"CI-V USB Echo Back" setting gives it)
    Two bands, MAIN and SUB. ``07 D0``/``07 D1`` select the band; ``03``/``05``/``04``/``06``
    act on the selected band's current VFO; ``00``/``01`` (transceive forms) are obeyed
    without an answer. IC-9700: each band has VFO A and B; ``07 00``/``07 01`` pick one,
    ``25``/``26 00`` address the current and ``25``/``26 01`` the other VFO *of the selected
    band* (CI-V reference guide; Hamlib needs them, civ.md). IC-910: one VFO per band;
    ``07 00``/``07 01`` act as MAIN/SUB, which is how Hamlib 4.5.4 addresses the IC-910's bands
    (captures/civ_910.log); the real radio's answer to them is not verified. Satellite mode
    ``16 5A`` (IC-9700) / ``1A 07`` (IC-910); split ``0F``; S-meter ``15 02``. A frequency
    outside the receive ranges or a mode the radio lacks is answered ``FA``; so is every
    command the twin does not model (Hamlib tolerates ``FA`` to ``1A 03``). Not modelled:
    the real radios cannot put both receivers in one band (2 m, 70 cm, 23 cm); what they do
    when told to (refuse, or swap the bands) is unverified, so the twin lets it happen.

rigctld twin (served over TCP or loop)
    Answers like ``rigctld -m 1`` (captures/rigctld_dummy.txt): VFOA (= Main) and VFOB (= Sub),
    ``F``/``f``, ``M``/``m`` (passband 0 = the mode's default), ``V``/``v``, ``U``/``u`` (SATMODE
    and any other function), ``l STRENGTH`` (integer dB rel. S9 from the signal model) and
    ``l RAWSTR``, split, PTT, ``\\chk_vfo``, ``\\dump_state`` (its own ranges, in the dummy's
    layout), ``q``. Unlike the dummy it refuses (``RPRT -1``) a frequency outside its ranges
    and a mode it does not have.

:class:`CivBus` is the two-wire CI-V bus in memory: every byte any station writes reaches
every station, the writer included (that is the echo), so several twins and controllers can
share one bus as on a CT-17.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

from firmware_bridge.clock import Clock
from firmware_bridge.drivers.radio import (
    FrequencyRange,
    RadioCapabilities,
    Vfo,
    get_radio_driver,
)
from firmware_bridge.errors import TransportClosed
from firmware_bridge.protocols.base import Decoder, Event, UnknownCommand
from firmware_bridge.protocols.civ import (
    IC910,
    IC9700,
    CivDevice,
    CivModel,
    CivTarget,
    CivVfo,
    ReadFrequency,
    ReadMode,
    ReadSatelliteMode,
    ReadSMeter,
    ReadSplit,
    SelectVfo,
    SetFrequency,
    SetMode,
    SetSatelliteMode,
    SetSplit,
)
from firmware_bridge.protocols.hamlib_net import (
    ChkVfo,
    DumpState,
    FreqRange,
    GetFreq,
    GetFunc,
    GetInfo,
    GetLevel,
    GetLockMode,
    GetPowerStat,
    GetPtt,
    GetRigMode,
    GetSplitFreq,
    GetSplitVfo,
    GetVfo,
    Quit,
    RigctldDevice,
    RigDumpState,
    SetFreq,
    SetFunc,
    SetLevel,
    SetLockMode,
    SetPowerStat,
    SetPtt,
    SetRigMode,
    SetSplitFreq,
    SetSplitVfo,
    SetVfo,
)
from firmware_bridge.simulators.base import Reply, Twin, register_simulator
from firmware_bridge.transports import (
    ByteTransport,
    FaultHook,
    LoopListener,
    LoopRegistry,
    LoopTransport,
    loop_pair,
)

__all__ = [
    "Beacon",
    "CivBus",
    "Ic910Twin",
    "Ic9700Twin",
    "IcomTwin",
    "NoiseFloor",
    "RadioTwin",
    "RigctldTwin",
    "SignalModel",
    "VfoState",
]

NOISE_FLOOR_DB: Final = -50.0
"""Default received level: just above S0 (-54 dB rel. S9), a quiet VHF/UHF band."""


@runtime_checkable
class SignalModel(Protocol):
    """What the S-meter measures: dB relative to S9 at ``rx_freq_hz``, time ``now`` (UTC)."""

    def signal_db(self, now: datetime, rx_freq_hz: int) -> float:
        """The received level in dB relative to S9 (S9 = -93 dBm above 30 MHz)."""
        ...


@dataclass(frozen=True, slots=True)
class NoiseFloor:
    """Nothing but noise: the same level everywhere, always."""

    level_db: float = NOISE_FLOOR_DB

    def signal_db(self, now: datetime, rx_freq_hz: int) -> float:
        """The noise level, whatever the time and frequency."""
        return self.level_db


@dataclass(frozen=True, slots=True)
class Beacon:
    """A steady carrier: ``level_db`` within ``bandwidth_hz`` around ``freq_hz``, else noise."""

    freq_hz: int
    level_db: float
    bandwidth_hz: int = 3000
    floor_db: float = NOISE_FLOOR_DB

    def signal_db(self, now: datetime, rx_freq_hz: int) -> float:
        """``level_db`` when tuned within half the bandwidth of the beacon, else the floor."""
        if abs(rx_freq_hz - self.freq_hz) <= self.bandwidth_hz / 2:
            return self.level_db
        return self.floor_db


@dataclass(slots=True)
class VfoState:
    """One VFO of a simulated radio."""

    freq_hz: int
    mode: str = "FM"
    filter_no: int = 1
    data_mode: int = 0


# Default passbands (Hz) a rigctld twin reports for "M mode 0" (the dummy's filter table).
_PASSBAND_HZ: Final = {"USB": 2400, "LSB": 2400, "CW": 500, "CWR": 500, "AM": 8000, "FM": 15000}
_DEFAULT_PASSBAND_HZ: Final = 2400


class RadioTwin(Twin):
    """Shared radio twin: capabilities from the driver, the signal model, satellite mode."""

    kind: ClassVar[str] = "radio"

    def __init__(
        self,
        *,
        clock: Clock,
        capabilities: RadioCapabilities | None = None,
        signal: SignalModel | None = None,
        latency_s: float = 0.0,
        name: str | None = None,
    ) -> None:
        """A twin with the driver's default capabilities unless given; noise unless a signal."""
        super().__init__(clock=clock, latency_s=latency_s, name=name)
        driver = get_radio_driver(self.sim_name)
        caps = capabilities if capabilities is not None else driver.default_capabilities
        if not isinstance(caps, RadioCapabilities):
            raise TypeError(f"{self.name}: capabilities={caps!r} is not a RadioCapabilities")
        self.capabilities = caps
        if signal is not None and not isinstance(signal, SignalModel):
            raise TypeError(f"{self.name}: signal={signal!r} has no signal_db(now, rx_freq_hz)")
        self.signal: SignalModel = signal if signal is not None else NoiseFloor()
        self.satellite_mode = False
        self.split = False

    def level_db(self, rx_freq_hz: int) -> float:
        """What the signal model gives now at ``rx_freq_hz`` (dB relative to S9)."""
        level = float(self.signal.signal_db(self._clock.now(), rx_freq_hz))
        if not math.isfinite(level):
            raise ValueError(f"{self.name}: the signal model returned {level!r} at {rx_freq_hz} Hz")
        return level

    def s_meter_raw(self, rx_freq_hz: int) -> int:
        """The raw meter value for the current signal at ``rx_freq_hz``."""
        return self.capabilities.s_meter.to_raw(self.level_db(rx_freq_hz))

    def tune(self, freq_hz: int) -> int | None:
        """The frequency the radio would tune to (on its step), None outside its ranges."""
        step = self.capabilities.freq_step_hz
        tuned = freq_hz - freq_hz % step
        return tuned if self.capabilities.in_rx_range(tuned) else None


# --------------------------------------------------------------------------- Icom


@dataclass(slots=True)
class _Band:
    """One receiver of an Icom dual-band radio: VFO A and B, one of them current."""

    a: VfoState
    b: VfoState
    on_b: bool = False

    @property
    def current(self) -> VfoState:
        """The VFO the band operates on."""
        return self.b if self.on_b else self.a

    @property
    def other(self) -> VfoState:
        """The other VFO (``25 01`` / ``26 01``)."""
        return self.a if self.on_b else self.b


class IcomTwin(RadioTwin):
    """Shared CI-V twin; see the module docstring."""

    model: ClassVar[CivModel]
    has_ab: ClassVar[bool]
    """True if each band has VFO A/B (IC-9700); else 07 00/01 act as MAIN/SUB (IC-910)."""

    def __init__(
        self,
        *,
        echo: bool = False,
        address: int | None = None,
        main_hz: int = 145_800_000,
        sub_hz: int = 435_000_000,
        **options: Any,
    ) -> None:
        """Create the twin; ``echo`` answers every command with its echo first, ``address``
        defaults to the model's; MAIN starts on ``main_hz`` and SUB on ``sub_hz`` (FM)."""
        super().__init__(**options)
        # The codec validates the address and names a bad one.
        CivDevice(self.model, address=address, echo=echo)
        self.echo = echo
        self.address = self.model.default_address if address is None else address
        for name, value in (("main_hz", main_hz), ("sub_hz", sub_hz)):
            if self.tune(value) != value:
                raise ValueError(f"{self.name}: {name}={value!r} is not a frequency it tunes")
        # VFO B starts where A is, as after the radio's A=B.
        self.bands: dict[Vfo, _Band] = {
            Vfo.MAIN: _Band(VfoState(main_hz), VfoState(main_hz)),
            Vfo.SUB: _Band(VfoState(sub_hz), VfoState(sub_hz)),
        }
        self.selected = Vfo.MAIN

    # -- views for tests -------------------------------------------------------------
    def vfo(self, band: Vfo) -> VfoState:
        """The current VFO of ``band`` (MAIN or SUB)."""
        return self.bands[band].current

    @property
    def rx_frequency_hz(self) -> int:
        """The frequency the meter measures: the selected band's current VFO."""
        return self.bands[self.selected].current.freq_hz

    def new_codec(self) -> CivDevice:
        """A CI-V device codec at this radio's address."""
        return CivDevice(self.model, address=self.address, echo=self.echo)

    # -- the device model ------------------------------------------------------------
    def _vfo_for(self, target: CivTarget) -> VfoState:
        """The VFO a command addresses: the selected band's current one, or its other one."""
        band = self.bands[self.selected]
        return band.other if target is CivTarget.UNSELECTED else band.current

    def handle(self, codec: Decoder, event: Event) -> Reply | None:
        """Answer like the radio (FB/FA, data frames; nothing to the transceive forms)."""
        assert isinstance(codec, CivDevice)
        if isinstance(event, SetFrequency | SetMode) and event.transceive:
            ok = self._apply(event)
            if not ok:
                self._log.debug("transceive command refused", command=repr(event))
            return Reply(codec.encode_echo(event))
        if isinstance(event, ReadFrequency):
            vfo = self._vfo_for(event.target)
            return Reply(codec.encode_frequency(event, vfo.freq_hz))
        if isinstance(event, ReadMode):
            vfo = self._vfo_for(event.target)
            return Reply(codec.encode_mode(event, vfo.mode, vfo.filter_no, vfo.data_mode))
        if isinstance(event, ReadSMeter):
            return Reply(codec.encode_s_meter(event, self.s_meter_raw(self.rx_frequency_hz)))
        if isinstance(event, ReadSatelliteMode):
            return Reply(codec.encode_satellite_mode(event, self.satellite_mode))
        if isinstance(event, ReadSplit):
            return Reply(codec.encode_split(event, self.split))
        if isinstance(event, UnknownCommand):
            return Reply(codec.encode_ng(event))
        ok = self._apply(event)
        return Reply(codec.encode_ok(event) if ok else codec.encode_ng(event))

    def _apply(self, event: Event) -> bool:
        """Apply a set command to the model; False if the radio refuses it."""
        if isinstance(event, SetFrequency):
            return self._set_frequency(event)
        if isinstance(event, SetMode):
            if event.mode not in self.capabilities.modes:
                return False
            vfo = self._vfo_for(event.target)
            vfo.mode = event.mode
            # 06/01 without a filter byte select the mode's default filter (FIL1 here).
            vfo.filter_no = event.filter_no if event.filter_no is not None else 1
            if event.data_mode is not None:
                vfo.data_mode = event.data_mode
            return True
        if isinstance(event, SelectVfo):
            return self._select(event.vfo)
        if isinstance(event, SetSatelliteMode):
            self.satellite_mode = event.on
            self._log.info("satellite mode", on=event.on)
            return True
        if isinstance(event, SetSplit):
            self.split = event.on
            return True
        return False

    def _set_frequency(self, event: SetFrequency) -> bool:
        tuned = self.tune(event.freq_hz)
        if tuned is None:
            return False
        vfo = self._vfo_for(event.target)
        vfo.freq_hz = tuned
        return True

    def _select(self, choice: CivVfo) -> bool:
        if choice in (CivVfo.MAIN, CivVfo.SUB) or not self.has_ab:
            # The IC-910 has no VFO A/B: Hamlib addresses its bands with 07 00 / 07 01.
            self.selected = Vfo.MAIN if choice in (CivVfo.MAIN, CivVfo.A) else Vfo.SUB
            return True
        self.bands[self.selected].on_b = choice is CivVfo.B
        return True


@register_simulator("radio", "ic9700")
class Ic9700Twin(IcomTwin):
    """IC-9700: address 0xA2, VFO A/B per band, ``25``/``26``, satellite mode ``16 5A``."""

    model = IC9700
    has_ab = True


@register_simulator("radio", "ic910")
class Ic910Twin(IcomTwin):
    """IC-910: address 0x60, one VFO per band, satellite mode ``1A 07``."""

    model = IC910
    has_ab = False


# --------------------------------------------------------------------------- rigctld

_A_NAMES: Final = frozenset({"VFOA", "Main", "MainA"})
_B_NAMES: Final = frozenset({"VFOB", "Sub", "SubA"})
_CURRENT_NAMES: Final = frozenset({"currVFO", "VFO"})
# Hamlib rig.h mode bits 0..8 (AM CW USB LSB RTTY FM WFM CWR RTTYR); see drivers/rigctld.py.
_MODE_BITS: Final = ("AM", "CW", "USB", "LSB", "RTTY", "FM", "WFM", "CWR", "RTTYR")
_TO_HAMLIB: Final = {"DV": "D-STAR"}
_FROM_HAMLIB: Final = {v: k for k, v in _TO_HAMLIB.items()}
_ENAVAIL: Final = -11
_EINVAL: Final = -1
# The parts of rigctld -m 1's \dump_state this twin copies as they are.
_DUMMY_VFO_MASK: Final = 0x77E00007
_DUMMY_ANTENNAS: Final = 0xF
_ALL_BITS: Final = (1 << 64) - 1


@register_simulator("radio", "rigctld")
class RigctldTwin(RadioTwin):
    """A radio behind rigctld; see the module docstring."""

    transports: ClassVar[frozenset[str]] = frozenset({"loop", "tcp"})
    info: ClassVar[str] = "groundlink radio simulator"
    hamlib_model: ClassVar[int] = 1
    """The model number \\dump_state reports (1, the dummy's: this twin behaves like it)."""

    def __init__(
        self, *, main_hz: int = 145_800_000, sub_hz: int = 435_000_000, **options: Any
    ) -> None:
        """Create the twin; VFOA (Main) starts on ``main_hz``, VFOB (Sub) on ``sub_hz``."""
        super().__init__(**options)
        for name, value in (("main_hz", main_hz), ("sub_hz", sub_hz)):
            if self.tune(value) != value:
                raise ValueError(f"{self.name}: {name}={value!r} is not a frequency it tunes")
        self.vfos: dict[str, VfoState] = {"A": VfoState(main_hz), "B": VfoState(sub_hz)}
        self.passband_hz: dict[str, int] = {"A": 15000, "B": 15000}
        self.current = "A"
        self.current_name = "VFOA"
        self.functions: dict[str, bool] = {}
        self.levels: dict[str, float] = {}
        self.ptt = 0
        self.tx_vfo = "VFOB"
        self.locked = False
        self.power = 1
        self._chk_vfo_seen = False

    @property
    def rx_frequency_hz(self) -> int:
        """The frequency the meter measures: the current VFO's."""
        return self.vfos[self.current].freq_hz

    def new_codec(self) -> RigctldDevice:
        """A rigctld codec for one client (the \\dump_state block once any client sent
        \\chk_vfo, as the daemon does)."""
        return RigctldDevice(chk_vfo_seen=self._chk_vfo_seen)

    def dump_state(self) -> RigDumpState:
        """This twin's \\dump_state: its ranges, in the layout of rigctld -m 1."""
        caps = self.capabilities
        mask = sum(1 << bit for bit, name in enumerate(_MODE_BITS) if name in caps.modes)

        def ranges(items: tuple[FrequencyRange, ...], low: int, high: int) -> tuple[FreqRange, ...]:
            return tuple(
                FreqRange(
                    float(r.low_hz),
                    float(r.high_hz),
                    mask,
                    low,
                    high,
                    _DUMMY_VFO_MASK,
                    _DUMMY_ANTENNAS,
                )
                for r in items
            )

        return RigDumpState(
            protocol_version=1,
            model=self.hamlib_model,
            itu_region=0,
            rx_ranges=ranges(caps.rx_ranges, -1, -1),
            tx_ranges=ranges(caps.tx_ranges, 5000, 100000),
            tuning_steps=((mask, caps.freq_step_hz),),
            filters=tuple(
                (sum(1 << b for b, n in enumerate(_MODE_BITS) if n == mode), width)
                for mode, width in _PASSBAND_HZ.items()
                if mode in caps.modes
            ),
            max_rit_hz=0,
            max_xit_hz=0,
            max_ifshift_hz=0,
            announces=0,
            preamp_db=(),
            attenuator_db=(),
            has_get_func=_ALL_BITS,
            has_set_func=_ALL_BITS,
            has_get_level=_ALL_BITS,
            has_set_level=_ALL_BITS,
            has_get_parm=_ALL_BITS,
            has_set_parm=_ALL_BITS,
            extra=(
                ("vfo_ops", "0x0"),
                ("ptt_type", "0x1"),
                ("targetable_vfo", "0x0"),
                ("has_set_vfo", "1"),
                ("has_get_vfo", "1"),
                ("has_set_freq", "1"),
                ("has_get_freq", "1"),
                ("has_set_conf", "0"),
                ("has_get_conf", "0"),
                ("has_power2mW", "0"),
                ("has_mW2power", "0"),
                ("timeout", "0"),
                ("rig_model", str(self.hamlib_model)),
                ("rigctld_version", f"groundlink {self.info}"),
            ),
        )

    def _vfo_key(self, name: str) -> str | None:
        if name in _A_NAMES:
            return "A"
        if name in _B_NAMES:
            return "B"
        if name in _CURRENT_NAMES:
            return self.current
        return None

    def handle(self, codec: Decoder, event: Event) -> Reply | None:
        """Answer like rigctld with a dummy-like backend."""
        assert isinstance(codec, RigctldDevice)
        vfo = self.vfos[self.current]
        if isinstance(event, GetFreq):
            return Reply(codec.encode_frequency(vfo.freq_hz))
        if isinstance(event, SetFreq):
            tuned = self.tune(event.freq_hz)
            if tuned is None:
                return Reply(codec.encode_error(_EINVAL))
            vfo.freq_hz = tuned
            return Reply(codec.encode_ok())
        if isinstance(event, GetRigMode):
            mode = _TO_HAMLIB.get(vfo.mode, vfo.mode)
            return Reply(codec.encode_mode(mode, self.passband_hz[self.current]))
        if isinstance(event, SetRigMode):
            return Reply(self._set_mode(codec, event))
        if isinstance(event, GetVfo):
            return Reply(codec.encode_vfo(self.current_name))
        if isinstance(event, SetVfo):
            key = self._vfo_key(event.vfo)
            if key is None:
                return Reply(codec.encode_error(_EINVAL))
            self.current = key
            if event.vfo not in _CURRENT_NAMES:
                self.current_name = event.vfo
            return Reply(codec.encode_ok())
        if isinstance(event, GetLevel):
            return Reply(codec.encode_level(self._level(event.level)))
        if isinstance(event, SetLevel):
            self.levels[event.level] = event.value
            return Reply(codec.encode_ok())
        if isinstance(event, GetFunc):
            if event.func == "SATMODE":
                return Reply(codec.encode_func(self.satellite_mode))
            return Reply(codec.encode_func(self.functions.get(event.func, False)))
        if isinstance(event, SetFunc):
            if event.func == "SATMODE":
                self.satellite_mode = event.on
                self._log.info("satellite mode", on=event.on)
            else:
                self.functions[event.func] = event.on
            return Reply(codec.encode_ok())
        return self._handle_rest(codec, event)

    def _handle_rest(self, codec: RigctldDevice, event: Event) -> Reply:
        """Split, PTT, power, lock, info, state, quit and errors."""
        if isinstance(event, GetSplitVfo):
            return Reply(codec.encode_split_vfo(self.split, self.tx_vfo))
        if isinstance(event, SetSplitVfo):
            if self._vfo_key(event.tx_vfo) is None:
                return Reply(codec.encode_error(_EINVAL))
            self.split, self.tx_vfo = event.split, event.tx_vfo
            return Reply(codec.encode_ok())
        if isinstance(event, GetSplitFreq):
            key = self._vfo_key(self.tx_vfo) or "B"
            return Reply(codec.encode_split_frequency(self.vfos[key].freq_hz))
        if isinstance(event, SetSplitFreq):
            tuned = self.tune(event.freq_hz)
            if tuned is None:
                return Reply(codec.encode_error(_EINVAL))
            self.vfos[self._vfo_key(self.tx_vfo) or "B"].freq_hz = tuned
            return Reply(codec.encode_ok())
        if isinstance(event, GetPtt):
            return Reply(codec.encode_ptt(self.ptt))
        if isinstance(event, SetPtt):
            self.ptt = event.ptt
            return Reply(codec.encode_ok())
        if isinstance(event, GetPowerStat):
            return Reply(codec.encode_powerstat(self.power))
        if isinstance(event, SetPowerStat):
            self.power = event.status
            return Reply(codec.encode_ok())
        if isinstance(event, GetLockMode):
            return Reply(codec.encode_lock_mode(self.locked))
        if isinstance(event, SetLockMode):
            self.locked = event.locked
            return Reply(codec.encode_ok())
        if isinstance(event, GetInfo):
            return Reply(codec.encode_info(self.info))
        if isinstance(event, ChkVfo):
            self._chk_vfo_seen = True
            return Reply(codec.encode_chk_vfo(False))
        if isinstance(event, DumpState):
            return Reply(codec.encode_dump_state(self.dump_state()))
        if isinstance(event, Quit):
            return Reply(codec.encode_quit(), hang_up=True)
        if isinstance(event, UnknownCommand):
            return Reply(codec.encode_error(_EINVAL))
        # Parsed but not modelled (send_cmd ...): not available on this backend.
        return Reply(codec.encode_error(_ENAVAIL))

    def _set_mode(self, codec: RigctldDevice, event: SetRigMode) -> bytes:
        mode = _FROM_HAMLIB.get(event.mode, event.mode)
        if mode not in self.capabilities.modes or event.passband_hz < -1:
            return codec.encode_error(_EINVAL)
        self.vfos[self.current].mode = mode
        if event.passband_hz == 0:
            self.passband_hz[self.current] = _PASSBAND_HZ.get(mode, _DEFAULT_PASSBAND_HZ)
        elif event.passband_hz > 0:
            self.passband_hz[self.current] = event.passband_hz
        return codec.encode_ok()

    def _level(self, level: str) -> float:
        if level == "STRENGTH":
            # rigctld prints STRENGTH as an integer (dB relative to S9).
            return float(round(self.level_db(self.rx_frequency_hz)))
        if level == "RAWSTR":
            return float(self.s_meter_raw(self.rx_frequency_hz))
        return self.levels.get(level, 0.0)


# --------------------------------------------------------------------------- CI-V bus


@dataclass
class _Port:
    """The hub's end of one station's connection."""

    transport: ByteTransport
    task: asyncio.Task[None] | None = field(default=None)


class CivBus:
    """The two-wire CI-V bus in memory: every byte any station writes reaches every station,
    the writer included (the echo). There are no collisions: writes are delivered whole, in
    the order they were made."""

    def __init__(self, clock: Clock, *, name: str = "civbus") -> None:
        """An empty bus; delays of attached loop links run on ``clock``."""
        self._clock = clock
        self._name = name
        self._ports: list[_Port] = []
        self._listeners: list[LoopListener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def stations(self) -> int:
        """Stations attached now."""
        return len(self._ports)

    def attach(self) -> LoopTransport:
        """A new station: the returned end reads everything on the bus and writes onto it."""
        self._check_open()
        station, hub = loop_pair(self._clock, name=self._name)
        self._add_port(hub)
        return station

    def add_twin(self, twin: Twin) -> None:
        """Put a twin on the bus (it serves its end until the bus closes)."""
        station = self.attach()
        self._spawn(twin.serve(station), f"{self._name}-{twin.name}")

    def listen(
        self,
        registry: LoopRegistry,
        name: str,
        *,
        to_bus: FaultHook | None = None,
        from_bus: FaultHook | None = None,
    ) -> str:
        """Let drivers join the bus by opening ``loop://name``; returns that URL.

        ``to_bus`` acts on what those stations write before the bus (and so their own echo)
        sees it, e.g. corruption that makes an echo differ; ``from_bus`` on what they read.
        """
        self._check_open()
        listener = registry.listen(name, to_server=to_bus, to_client=from_bus)
        self._listeners.append(listener)
        self._spawn(self._accept(listener), f"{self._name}-accept-{name}")
        return listener.url

    async def close(self) -> None:
        """Detach every station and stop listening; idempotent."""
        self._closed = True
        for listener in self._listeners:
            await listener.close()
        for port in list(self._ports):
            await port.transport.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._ports.clear()

    async def __aenter__(self) -> CivBus:
        """Use the bus as a context manager; it closes on exit."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the bus."""
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self._name}: the bus is closed")

    def _add_port(self, transport: ByteTransport) -> None:
        port = _Port(transport)
        self._ports.append(port)
        port.task = self._spawn(self._relay(port), f"{self._name}-relay")

    async def _accept(self, listener: LoopListener) -> None:
        while True:
            try:
                connection = await listener.accept()
            except TransportClosed:
                return
            self._add_port(connection)

    async def _relay(self, port: _Port) -> None:
        """Copy what one station writes to every station (itself included)."""
        try:
            async for chunk in port.transport:
                for other in list(self._ports):
                    with contextlib.suppress(TransportClosed):
                        await other.transport.write(chunk)
        except TransportClosed:
            pass
        finally:
            if port in self._ports:
                self._ports.remove(port)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
