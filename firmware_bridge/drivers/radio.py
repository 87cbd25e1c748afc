"""``RadioDriver``: the shared behaviour of every radio driver, its capabilities and S-meter.

The public API (``get_frequency``/``set_frequency`` per VFO, ``get_mode``/``set_mode``,
``get_satellite_mode``/``set_satellite_mode``, ``get_signal``, ``capabilities``, ``state``,
``health``) lives here once. A protocol module implements only the raw part, always on the
radio's *current* VFO, which this class selects first::

    _raw_select(vfo)            make a physical VFO (MAIN/SUB or A/B) the current one
    _raw_get_frequency()        -> Hz of the current VFO
    _raw_set_frequency(hz)
    _raw_get_mode()             -> mode name of the current VFO
    _raw_set_mode(mode)
    _raw_get_satellite_mode()   -> bool
    _raw_set_satellite_mode(on)
    _raw_get_signal()           -> SignalStrength of the current VFO's receiver

VFOs (:class:`Vfo`)
-------------------
``MAIN``/``SUB`` (dual-band radios: the two receivers) or ``A``/``B`` (one receiver, two
VFOs) are *physical* VFOs; which ones a radio has is ``capabilities.vfos``. ``UPLINK`` and
``DOWNLINK`` exist only while satellite mode is on and name the physical VFO the radio
transmits / receives on in that mode (``capabilities.sat_uplink_vfo`` / ``sat_downlink_vfo``).
Every operation selects its VFO before acting (one extra short frame) instead of trusting a
cached selection: an operator may have pressed MAIN/SUB on the front panel in between. A
driver-level lock keeps each select+act pair together when several tasks share a radio.

What this base class owns
-------------------------
* **Validation.** A frequency outside the radio's ranges (receive ranges; transmit ranges
  for the uplink), NaN, infinity, a mode the radio does not have or a VFO it does not have
  raises before a single byte is sent (:class:`~firmware_bridge.errors.LimitError`,
  :class:`VfoError`). Nothing is clamped. Frequencies are whole Hz: a float is rounded to
  the nearest multiple of ``capabilities.freq_step_hz`` (1 Hz for every radio here), which
  is quantisation, not clamping; ``set_frequency`` returns what was commanded.
* **S-meter mapping.** A raw reading (Icom ``15 02``: 0..255) becomes dB relative to S9 by
  linear interpolation in the radio's :class:`SMeterScale`, exactly like Hamlib's
  ``STRENGTH`` level (Hamlib 4.5.4 then makes it an integer: the Icom backend rounds, e.g.
  for the IC-9700; its frontend truncates when it derives STRENGTH from RAWSTR, e.g. for the
  IC-910. We keep the float).
  :class:`SignalStrength` turns dB into S-units with the IARU Region 1 Technical
  Recommendation R.1 convention: 6 dB per S-unit, S9 = -93 dBm above 30 MHz (so S0 is
  -54 dB). Radios are not calibrated instruments; ``dbm`` is nominal.
* **Logging** (structlog, bound to the device name), **state** (from the CommandLink) and
  :meth:`RadioDriver.health` (link health plus the last known frequencies, modes,
  satellite mode and signal).
"""

from __future__ import annotations

import asyncio
import bisect
import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Final

from firmware_bridge.clock import Clock
from firmware_bridge.drivers.base import Driver, DriverHealth, driver_names, get_driver
from firmware_bridge.errors import LimitError, LocalProtocolError
from firmware_bridge.link import LinkPolicy
from firmware_bridge.transports import ByteTransport, LoopRegistry

__all__ = [
    "DB_PER_S_UNIT",
    "GENERIC_ICOM_S_METER",
    "IC9700_S_METER",
    "RADIO_DRIVER_MODULES",
    "S9_DBM",
    "FrequencyRange",
    "RadioCapabilities",
    "RadioDriver",
    "RadioHealth",
    "SMeterScale",
    "SignalStrength",
    "Vfo",
    "VfoError",
    "create_radio",
    "get_radio_driver",
    "radio_driver_names",
]

S9_DBM: Final = -93.0
"""S9 above 30 MHz in dBm (IARU Region 1 Technical Recommendation R.1: 5 uV into 50 ohm)."""
DB_PER_S_UNIT: Final = 6.0
"""dB between S-units (IARU R.1)."""

RADIO_DRIVER_MODULES: Final = {
    "ic9700": "firmware_bridge.drivers.icom",
    "ic910": "firmware_bridge.drivers.icom",
    "rigctld": "firmware_bridge.drivers.rigctld",
}
"""Which module defines each built-in radio driver.

Duplicated here because ``drivers/base.py`` (``BUILTIN_DRIVER_MODULES["radio"]``) belongs to
another module owner; :func:`get_radio_driver` imports from this table, so radio drivers are
found by name even while that table is empty.
"""


class Vfo(enum.StrEnum):
    """A VFO as the public API names it; see the module docstring."""

    MAIN = "main"
    SUB = "sub"
    A = "a"
    B = "b"
    UPLINK = "uplink"
    DOWNLINK = "downlink"

    @property
    def is_satellite(self) -> bool:
        """True for the satellite-mode roles UPLINK and DOWNLINK."""
        return self in (Vfo.UPLINK, Vfo.DOWNLINK)


class VfoError(LocalProtocolError):
    """A VFO this radio does not have, or UPLINK/DOWNLINK while satellite mode is off."""


@dataclass(frozen=True, slots=True)
class FrequencyRange:
    """A closed frequency range in whole Hz."""

    low_hz: int
    high_hz: int

    def __post_init__(self) -> None:
        """Refuse an empty or non-integer range."""
        for name in ("low_hz", "high_hz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"FrequencyRange.{name}={value!r}: need an integer >= 0 (Hz)")
        if self.low_hz > self.high_hz:
            raise ValueError(
                f"FrequencyRange: low_hz={self.low_hz} is above high_hz={self.high_hz}"
            )

    def __contains__(self, freq_hz: object) -> bool:
        """True if ``freq_hz`` lies within the range (ends included)."""
        return isinstance(freq_hz, int | float) and self.low_hz <= freq_hz <= self.high_hz

    def __str__(self) -> str:
        """``144.000000-148.000000 MHz``."""
        return f"{self.low_hz / 1e6:.6f}-{self.high_hz / 1e6:.6f} MHz"

    @classmethod
    def mhz(cls, low_mhz: float, high_mhz: float) -> FrequencyRange:
        """A range given in MHz (for readable tables)."""
        return cls(round(low_mhz * 1_000_000), round(high_mhz * 1_000_000))


@dataclass(frozen=True, slots=True)
class SMeterScale:
    """Raw meter value -> dB relative to S9, by linear interpolation between points.

    ``points`` are ``(raw, db)`` pairs, both strictly increasing (Hamlib's ``str_cal``).
    Outside the table the meter pegs at the first/last point, as in Hamlib's
    ``rig_raw2val``.
    """

    points: tuple[tuple[int, float], ...]

    def __post_init__(self) -> None:
        """Refuse a table that is not strictly increasing in both columns."""
        if len(self.points) < 2:
            raise ValueError(f"SMeterScale: need at least two points, got {self.points!r}")
        for (raw0, db0), (raw1, db1) in zip(self.points, self.points[1:], strict=False):
            if not (raw1 > raw0 and db1 > db0):
                raise ValueError(
                    f"SMeterScale: points must increase in raw and dB; ({raw0}, {db0}) is "
                    f"followed by ({raw1}, {db1})"
                )

    @property
    def raw_range(self) -> tuple[int, int]:
        """The lowest and highest raw value of the table."""
        return self.points[0][0], self.points[-1][0]

    def to_db(self, raw: int) -> float:
        """dB relative to S9 for a raw reading (Hamlib ``STRENGTH`` before it is made an int)."""
        raws = [p[0] for p in self.points]
        if raw <= raws[0]:
            return float(self.points[0][1])
        if raw >= raws[-1]:
            return float(self.points[-1][1])
        i = bisect.bisect_right(raws, raw)
        (r0, d0), (r1, d1) = self.points[i - 1], self.points[i]
        return d0 + (raw - r0) * (d1 - d0) / (r1 - r0)

    def to_raw(self, db: float) -> int:
        """The raw reading a meter shows for ``db`` (nearest integer; pegs at the table ends)."""
        if not math.isfinite(db):
            raise ValueError(f"SMeterScale.to_raw: db={db!r} is not a finite level")
        dbs = [p[1] for p in self.points]
        if db <= dbs[0]:
            return self.points[0][0]
        if db >= dbs[-1]:
            return self.points[-1][0]
        i = bisect.bisect_right(dbs, db)
        (r0, d0), (r1, d1) = self.points[i - 1], self.points[i]
        return round(r0 + (db - d0) * (r1 - r0) / (d1 - d0))


IC9700_S_METER: Final = SMeterScale(
    ((0, -54.0), (10, -48.0), (30, -36.0), (60, -24.0), (90, -12.0), (120, 0.0), (241, 64.0))
)
"""Hamlib 4.5.4 ``IC9700_STR_CAL`` (civ.md; verified: raw 120 -> STRENGTH 0)."""

GENERIC_ICOM_S_METER: Final = SMeterScale(((0, -60.0), (255, 60.0)))
"""Hamlib's ``UNKNOWN_IC_STR_CAL``, used for the IC-910 (verified: raw 120 -> STRENGTH -3)."""


@dataclass(frozen=True, slots=True)
class SignalStrength:
    """A signal reading: dB relative to S9 (Hamlib ``STRENGTH``) and the raw meter value."""

    db_rel_s9: float
    raw: int | None = None
    """The radio's raw meter value (Icom 0..255), None when the protocol gives dB only."""

    @property
    def s_units(self) -> float:
        """S-units, 6 dB each (IARU R.1): 9.0 at S9 and above, 0.0 at S0 (-54 dB) and below."""
        return min(9.0, max(0.0, 9.0 + self.db_rel_s9 / DB_PER_S_UNIT))

    @property
    def over_s9_db(self) -> float:
        """dB above S9 (0 at or below S9)."""
        return max(0.0, self.db_rel_s9)

    @property
    def dbm(self) -> float:
        """Nominal received power: S9 = -93 dBm (IARU R.1, above 30 MHz)."""
        return S9_DBM + self.db_rel_s9

    def __str__(self) -> str:
        """``S7`` or ``S9+12dB``."""
        if self.db_rel_s9 > 0:
            return f"S9+{self.db_rel_s9:.0f}dB"
        return f"S{math.floor(self.s_units + 1e-9):d}"


@dataclass(frozen=True, slots=True)
class RadioCapabilities:
    """What a radio can do.

    ``vfos`` are its physical VFOs (MAIN/SUB or A/B). ``rx_ranges`` bound every frequency
    set; ``tx_ranges`` bound the satellite uplink. ``modes`` are Hamlib-style names (USB,
    LSB, CW, CWR, AM, FM, WFM, RTTY, RTTYR, DV, DD, ...). ``satellite_mode`` says whether
    the radio has one; ``sat_uplink_vfo``/``sat_downlink_vfo`` are the physical VFOs it
    transmits/receives on in that mode.
    """

    model: str
    vfos: tuple[Vfo, ...]
    rx_ranges: tuple[FrequencyRange, ...]
    tx_ranges: tuple[FrequencyRange, ...]
    modes: frozenset[str]
    freq_step_hz: int = 1
    satellite_mode: bool = True
    sat_uplink_vfo: Vfo | None = Vfo.SUB
    sat_downlink_vfo: Vfo | None = Vfo.MAIN
    s_meter: SMeterScale = GENERIC_ICOM_S_METER

    def __post_init__(self) -> None:
        """Refuse capabilities that cannot describe a radio, naming the field and value."""
        if not self.vfos or any(v.is_satellite for v in self.vfos):
            raise ValueError(
                f"RadioCapabilities.vfos={self.vfos!r}: need physical VFOs (MAIN/SUB or A/B)"
            )
        if not self.rx_ranges:
            raise ValueError("RadioCapabilities.rx_ranges: need at least one receive range")
        if not self.modes:
            raise ValueError("RadioCapabilities.modes: need at least one mode")
        step = self.freq_step_hz
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"RadioCapabilities.freq_step_hz={step!r}: need an integer >= 1")
        if self.satellite_mode:
            roles = (
                ("sat_uplink_vfo", self.sat_uplink_vfo),
                ("sat_downlink_vfo", self.sat_downlink_vfo),
            )
            for name, vfo in roles:
                if vfo not in self.vfos:
                    raise ValueError(
                        f"RadioCapabilities.{name}={vfo!r}: must be one of vfos={self.vfos!r}"
                    )
            if self.sat_uplink_vfo == self.sat_downlink_vfo:
                raise ValueError("RadioCapabilities: uplink and downlink must be different VFOs")

    def in_rx_range(self, freq_hz: float) -> bool:
        """True if the radio receives ``freq_hz``."""
        return any(freq_hz in r for r in self.rx_ranges)

    def in_tx_range(self, freq_hz: float) -> bool:
        """True if the radio transmits on ``freq_hz``."""
        return any(freq_hz in r for r in self.tx_ranges)

    def replace(self, **changes: Any) -> RadioCapabilities:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def _ranges_text(ranges: Iterable[FrequencyRange]) -> str:
    return ", ".join(str(r) for r in ranges) or "none"


@dataclass(frozen=True, slots=True)
class RadioHealth(DriverHealth):
    """A radio driver's health: the link's, plus what the driver last read or commanded."""

    satellite_mode: bool | None = None
    frequencies_hz: tuple[tuple[Vfo, int], ...] = ()
    modes: tuple[tuple[Vfo, str], ...] = ()
    last_signal: SignalStrength | None = None


@dataclass(slots=True)
class _Known:
    """What the driver last read or commanded, per physical VFO."""

    satellite_mode: bool | None = None
    frequencies_hz: dict[Vfo, int] = field(default_factory=dict)
    modes: dict[Vfo, str] = field(default_factory=dict)
    last_signal: SignalStrength | None = None


class RadioDriver(Driver, ABC):
    """Base of every radio driver; see the module docstring."""

    kind: ClassVar[str] = "radio"
    default_capabilities: ClassVar[RadioCapabilities]

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        loop_registry: LoopRegistry | None = None,
        device_name: str | None = None,
        policy: LinkPolicy | None = None,
        capabilities: RadioCapabilities | None = None,
    ) -> None:
        """Create the driver; ``capabilities`` default to the model's own."""
        super().__init__(
            url, clock=clock, loop_registry=loop_registry, device_name=device_name, policy=policy
        )
        caps = capabilities if capabilities is not None else self.default_capabilities
        if not isinstance(caps, RadioCapabilities):
            raise TypeError(f"{self._name}: capabilities={caps!r} is not a RadioCapabilities")
        self._caps = caps
        self._known = _Known()
        # One select+act sequence at a time: a Doppler task for the uplink and one for the
        # downlink must not interleave their VFO selections.
        self._op_lock = asyncio.Lock()

    # -- read-only views -----------------------------------------------------------
    @property
    def capabilities(self) -> RadioCapabilities:
        """What this radio can do (VFOs, ranges, modes, satellite mode, S-meter scale)."""
        return self._caps

    @property
    def satellite_mode(self) -> bool | None:
        """The satellite mode as last read or set (None: not known yet)."""
        return self._known.satellite_mode

    # -- validation ----------------------------------------------------------------
    def check_vfo(self, vfo: Vfo | str | None) -> Vfo:
        """The VFO as a :class:`Vfo` (None: the radio's first VFO); VfoError if it has none such."""
        if vfo is None:
            return self._caps.vfos[0]
        try:
            # Names are case-insensitive ("Main" as Hamlib writes it is main).
            value = Vfo(vfo.lower() if isinstance(vfo, str) else vfo)
        except ValueError:
            allowed = ", ".join(v.value for v in self._allowed_vfos())
            raise VfoError(f"{self._name}: vfo={vfo!r} is not a VFO; allowed: {allowed}") from None
        if value not in self._allowed_vfos():
            allowed = ", ".join(v.value for v in self._allowed_vfos())
            raise VfoError(
                f"{self._name}: the {self._caps.model} has no VFO {value.value!r}; "
                f"allowed: {allowed}; nothing was sent"
            )
        return value

    def _allowed_vfos(self) -> tuple[Vfo, ...]:
        extra = (Vfo.UPLINK, Vfo.DOWNLINK) if self._caps.satellite_mode else ()
        return (*self._caps.vfos, *extra)

    def validate_frequency(self, freq_hz: float, vfo: Vfo | str | None = None) -> int:
        """The frequency to command, in whole Hz, or LimitError (what set_frequency checks).

        The uplink is checked against the transmit ranges, every other VFO against the
        receive ranges. Nothing is clamped.
        """
        target = self.check_vfo(vfo)
        if isinstance(freq_hz, bool) or not isinstance(freq_hz, int | float):
            raise LimitError(f"{self._name}: freq_hz={freq_hz!r} is not a number of Hz")
        if not math.isfinite(freq_hz):
            raise LimitError(f"{self._name}: freq_hz={freq_hz!r} refused; need a finite number")
        step = self._caps.freq_step_hz
        quantised = round(freq_hz / step) * step
        if target is Vfo.UPLINK:
            ranges, ok, what = self._caps.tx_ranges, self._caps.in_tx_range(quantised), "transmit"
        else:
            ranges, ok, what = self._caps.rx_ranges, self._caps.in_rx_range(quantised), "receive"
        if not ok:
            raise LimitError(
                f"{self._name}: freq_hz={freq_hz!r} ({target.value} VFO) is outside the "
                f"{self._caps.model}'s {what} ranges ({_ranges_text(ranges)}); nothing was sent "
                "(frequencies are never clamped)"
            )
        return quantised

    def validate_mode(self, mode: str) -> str:
        """The mode name, or LimitError if the radio does not have it."""
        if not isinstance(mode, str) or mode not in self._caps.modes:
            raise LimitError(
                f"{self._name}: mode={mode!r} is not a mode of the {self._caps.model}; "
                f"allowed: {', '.join(sorted(self._caps.modes))}; nothing was sent"
            )
        return mode

    async def _physical(self, vfo: Vfo) -> Vfo:
        """The physical VFO a public VFO means now (UPLINK/DOWNLINK need satellite mode)."""
        if not vfo.is_satellite:
            return vfo
        if self._known.satellite_mode is None:
            self._known.satellite_mode = await self._raw_get_satellite_mode()
        if not self._known.satellite_mode:
            raise VfoError(
                f"{self._name}: the {vfo.value} VFO exists only in satellite mode, which is off; "
                "call set_satellite_mode(True) first, or name MAIN/SUB (A/B) directly"
            )
        physical = self._caps.sat_uplink_vfo if vfo is Vfo.UPLINK else self._caps.sat_downlink_vfo
        assert physical is not None  # checked by RadioCapabilities when satellite_mode is True
        return physical

    # -- public API ----------------------------------------------------------------
    async def get_frequency(self, vfo: Vfo | str | None = None) -> int:
        """Read the frequency of ``vfo`` (default: the radio's first VFO) in Hz."""
        target = self.check_vfo(vfo)
        async with self._op_lock:
            physical = await self._physical(target)
            await self._raw_select(physical)
            freq_hz = await self._raw_get_frequency()
        self._known.frequencies_hz[physical] = freq_hz
        return freq_hz

    async def set_frequency(self, freq_hz: float, vfo: Vfo | str | None = None) -> int:
        """Tune ``vfo``; LimitError (before any byte) outside the ranges. Returns the Hz sent."""
        target = self.check_vfo(vfo)
        quantised = self.validate_frequency(freq_hz, target)
        async with self._op_lock:
            physical = await self._physical(target)
            self._log.debug(
                "set_frequency", vfo=target.value, physical=physical.value, hz=quantised
            )
            await self._raw_select(physical)
            await self._raw_set_frequency(quantised)
        self._known.frequencies_hz[physical] = quantised
        return quantised

    async def get_mode(self, vfo: Vfo | str | None = None) -> str:
        """Read the mode of ``vfo`` (Hamlib-style name)."""
        target = self.check_vfo(vfo)
        async with self._op_lock:
            physical = await self._physical(target)
            await self._raw_select(physical)
            mode = await self._raw_get_mode()
        self._known.modes[physical] = mode
        return mode

    async def set_mode(self, mode: str, vfo: Vfo | str | None = None) -> None:
        """Set the mode of ``vfo``; LimitError (before any byte) for a mode the radio lacks."""
        target = self.check_vfo(vfo)
        name = self.validate_mode(mode)
        async with self._op_lock:
            physical = await self._physical(target)
            self._log.debug("set_mode", vfo=target.value, physical=physical.value, mode=name)
            await self._raw_select(physical)
            await self._raw_set_mode(name)
        self._known.modes[physical] = name

    async def get_satellite_mode(self) -> bool:
        """Read whether satellite mode is on."""
        self._require_satellite_mode()
        async with self._op_lock:
            on = await self._raw_get_satellite_mode()
        self._known.satellite_mode = on
        return on

    async def set_satellite_mode(self, on: bool) -> None:
        """Switch satellite mode on or off."""
        self._require_satellite_mode()
        if not isinstance(on, bool):
            raise LimitError(f"{self._name}: set_satellite_mode(on={on!r}): need True or False")
        self._log.info("set_satellite_mode", on=on)
        async with self._op_lock:
            await self._raw_set_satellite_mode(on)
        self._known.satellite_mode = on

    async def get_signal(self, vfo: Vfo | str | None = None) -> SignalStrength:
        """Read the S-meter of ``vfo``'s receiver (default: DOWNLINK in satellite mode, else
        the first VFO)."""
        if vfo is None and self._caps.satellite_mode and self._known.satellite_mode:
            vfo = Vfo.DOWNLINK
        target = self.check_vfo(vfo)
        async with self._op_lock:
            physical = await self._physical(target)
            await self._raw_select(physical)
            signal = await self._raw_get_signal()
        self._known.last_signal = signal
        return signal

    def health(self) -> RadioHealth:
        """A snapshot for health reports."""
        base = super().health()
        values = {f.name: getattr(base, f.name) for f in fields(DriverHealth)}
        known = self._known
        return RadioHealth(
            **values,
            satellite_mode=known.satellite_mode,
            frequencies_hz=tuple(sorted(known.frequencies_hz.items())),
            modes=tuple(sorted(known.modes.items())),
            last_signal=known.last_signal,
        )

    def _require_satellite_mode(self) -> None:
        if not self._caps.satellite_mode:
            raise VfoError(f"{self._name}: the {self._caps.model} has no satellite mode")

    async def _probe(self, transport: ByteTransport) -> None:
        """Forget what was known about the radio on every (re)connect; subclasses check it."""
        self._known.satellite_mode = None

    # -- the raw part each protocol implements --------------------------------------
    @abstractmethod
    async def _raw_select(self, vfo: Vfo) -> None:
        """Make the physical ``vfo`` (MAIN/SUB/A/B) the current one."""

    @abstractmethod
    async def _raw_get_frequency(self) -> int:
        """Read the current VFO's frequency in Hz."""

    @abstractmethod
    async def _raw_set_frequency(self, freq_hz: int) -> None:
        """Tune the current VFO (already validated)."""

    @abstractmethod
    async def _raw_get_mode(self) -> str:
        """Read the current VFO's mode."""

    @abstractmethod
    async def _raw_set_mode(self, mode: str) -> None:
        """Set the current VFO's mode (already validated)."""

    @abstractmethod
    async def _raw_get_satellite_mode(self) -> bool:
        """Read the satellite mode."""

    @abstractmethod
    async def _raw_set_satellite_mode(self, on: bool) -> None:
        """Set the satellite mode."""

    @abstractmethod
    async def _raw_get_signal(self) -> SignalStrength:
        """Read the S-meter of the current VFO's receiver."""


def radio_driver_names() -> list[str]:
    """Names of the built-in radio drivers (and any registered since), sorted."""
    return sorted(set(RADIO_DRIVER_MODULES) | set(driver_names("radio")))


def get_radio_driver(name: str) -> type[RadioDriver]:
    """The radio driver class called ``name`` (importing its module on first use)."""
    module = RADIO_DRIVER_MODULES.get(name)
    if module is not None:
        __import__(module)
    try:
        cls = get_driver("radio", name)
    except ValueError:
        raise ValueError(
            f"no radio driver called {name!r}; available: {', '.join(radio_driver_names())}"
        ) from None
    if not issubclass(cls, RadioDriver):
        raise TypeError(f"radio driver {name!r} ({cls.__qualname__}) is not a RadioDriver")
    return cls


def create_radio(
    name: str,
    url: str,
    *,
    clock: Clock,
    loop_registry: LoopRegistry | None = None,
    **options: Any,
) -> RadioDriver:
    """Build the radio driver ``name`` for ``url`` (not opened yet)."""
    return get_radio_driver(name)(url, clock=clock, loop_registry=loop_registry, **options)
