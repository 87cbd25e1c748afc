"""rotctld- and rigctld-compatible TCP servers in front of any groundlink driver.

Hamlib's network clients (``rotctl -m 2``, ``rigctl -m 2``), gpredict and SatNOGS speak the
rotctld/rigctld text protocol. A *bridge* answers that protocol from a groundlink driver, so
those programs drive any rotator or radio the HAL supports (real or a simulator twin)::

    bridge = RotctldBridge(rotator_driver)
    server = await bridge.listen("127.0.0.1", 4533)     # TcpServer; port 0 picks a free one
    ...                                                 # rotctl -m 2 -r 127.0.0.1:4533 P 180 45
    await server.close()

or both at once with :func:`serve_hamlib`. Facts: /work/shared/protocols/hamlib-net.md.

Per connection the device side of :mod:`firmware_bridge.protocols.hamlib_net` parses the
client's lines (default and extended ``+``/``;``/``|``/``,`` replies); every command is
answered from the **driver**: its real limits (``\\dump_state``), its validation (a target or
frequency outside them is refused, never clamped), its readings. Several clients may be
connected; the bridge sends one request at a time to its driver (an asyncio lock), and each
connection gets its replies in order. The driver's lifecycle (open/close) is the caller's.

Errors
------
A driver error becomes ``RPRT -n`` (:func:`hamlib_error_code`); the connection stays open.

==========================================  ==============================================
error                                       reply
==========================================  ==============================================
LimitError (target, frequency, mode)        ``RPRT -1``  EINVAL
unknown command, bad arguments              ``RPRT -1``  EINVAL (what 4.5.4 answers)
VfoError (a VFO the radio does not have)    ``RPRT -16`` EVFO
LocalProtocolError (cannot be expressed)    ``RPRT -1``  EINVAL
TransportTimeout                            ``RPRT -5``  ETIMEOUT
TransportClosed / other transport errors    ``RPRT -6``  EIO
RemoteProtocolError (device sent nonsense)  ``RPRT -8``  EPROTO
DeviceRejected                              the device's own ``RPRT -n`` (rotctld/rigctld
                                            drivers), else ``RPRT -9`` ERJCTED
DeviceFault, DeviceStalled (e.g. a stall)   ``RPRT -6``  EIO
a feature the HAL does not offer            ``RPRT -11`` ENAVAIL
anything else (a bug; logged)               ``RPRT -7``  EINTERNAL
==========================================  ==============================================

rotctld side
------------
``P``/``p``/``S``/``K``, ``_`` and ``\\dump_state`` (protocol 1, the rotator's Hamlib model
number, the driver's az/el limits; ``rot_type=Az`` for azimuth-only rotators). ``p`` on a
rotator without readback (EasyComm I) is ``RPRT -11``, as Hamlib's own backend answers. Move,
reset, speed levels and raw commands are not offered by the HAL: ``RPRT -11``.

rigctld side
------------
``F``/``f``, ``M``/``m``, ``V``/``v``, ``l STRENGTH`` (integer dB relative to S9, rounded
half away from zero as C's ``lround``) and ``l RAWSTR`` (when the driver has a raw meter
reading; not advertised in ``\\dump_state``, as not every driver has one),
``U``/``u SATMODE``, ``\\chk_vfo`` (always 0: no VFO argument mode), ``\\dump_state``
(the driver's receive/transmit ranges, modes and tuning step; the ``key=value`` block after
any client sent ``\\chk_vfo``, as rigctld does) and ``\\get_lock_mode`` (0: the bridge has
no mode lock).

The *current VFO* is bridge-wide, as a rig's VFO is for every rigctld client: ``V`` selects
it, and ``F``/``f``/``M``/``m``/``l`` act on it. Names map to the radio's VFOs: ``VFOA``/
``Main``/``MainA`` -> A or MAIN, ``VFOB``/``Sub``/``SubA`` -> B or SUB (whichever the radio
has, as Hamlib maps them), ``TX``/``RX`` -> the satellite uplink/downlink, ``currVFO``/``VFO``
-> unchanged. ``v`` answers the canonical name (``VFOA``, ``VFOB``, ``Main``, ``Sub``, ``TX``,
``RX``). ``M mode width``: the HAL has no passband control, so the width is not sent to the
radio (logged), and ``m`` reports passband 0 (Hamlib's "the mode's normal width"). Split,
PTT, power and other levels/functions are not offered by the HAL: ``RPRT -11``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar, Final, Self, TypeVar

import structlog

from firmware_bridge.drivers.base import Driver
from firmware_bridge.drivers.radio import FrequencyRange, RadioDriver, Vfo, VfoError
from firmware_bridge.drivers.rotator import RotatorDriver
from firmware_bridge.errors import (
    BridgeError,
    DeviceError,
    DeviceRejected,
    LimitError,
    LocalProtocolError,
    RemoteProtocolError,
    TransportError,
    TransportTimeout,
)
from firmware_bridge.link import LinkPolicy
from firmware_bridge.protocols.base import (
    NEED_DATA,
    Event,
    Garbage,
    GetPosition,
    Park,
    SetPosition,
    Stop,
    UnknownCommand,
)
from firmware_bridge.protocols.hamlib_net import (
    HAMLIB_ERRORS,
    MODE_NAMES,
    RIGCTLD_PORT,
    ROTCTLD_PORT,
    ChkVfo,
    DumpState,
    FreqRange,
    GetFreq,
    GetFunc,
    GetInfo,
    GetLevel,
    GetLockMode,
    GetRigMode,
    GetVfo,
    Quit,
    RigctldDevice,
    RigDumpState,
    RotctldDevice,
    RotDumpState,
    SetFreq,
    SetFunc,
    SetRigMode,
    SetVfo,
)
from firmware_bridge.transports import ByteTransport, TcpServer, serve_tcp

__all__ = [
    "EINTERNAL",
    "EINVAL",
    "EIO",
    "ENAVAIL",
    "EPROTO",
    "ERJCTED",
    "ETIMEOUT",
    "EVFO",
    "HAMLIB_RIG_MODELS",
    "HAMLIB_ROT_MODELS",
    "HamlibBridge",
    "HamlibServers",
    "RigctldBridge",
    "RotctldBridge",
    "hamlib_error_code",
    "serve_hamlib",
]

EINVAL: Final = -1
"""``RPRT -1``: invalid parameter."""
ETIMEOUT: Final = -5
"""``RPRT -5``: communication timed out."""
EIO: Final = -6
"""``RPRT -6``: I/O error."""
EINTERNAL: Final = -7
"""``RPRT -7``: internal error."""
EPROTO: Final = -8
"""``RPRT -8``: protocol error."""
ERJCTED: Final = -9
"""``RPRT -9``: command rejected by the device."""
ENAVAIL: Final = -11
"""``RPRT -11``: function not available."""
EVFO: Final = -16
"""``RPRT -16``: invalid VFO."""

HAMLIB_ROT_MODELS: Final[dict[str, int]] = {
    "easycomm1": 201,
    "easycomm2": 202,
    "easycomm3": 204,
    "gs232a": 601,
    "gs232b": 603,
    "rot2prog": 901,
    "rot1prog": 902,
    "rotctld": 2,
}
"""Hamlib 4.5.4 rotator model number of each rotator driver (``rotctl -l``)."""

HAMLIB_RIG_MODELS: Final[dict[str, int]] = {"ic910": 3044, "ic9700": 3081, "rigctld": 2}
"""Hamlib 4.5.4 rig model number of each radio driver (``rigctl -l``)."""

_DUMMY_MODEL: Final = 1
"""What ``\\dump_state`` reports for a driver Hamlib has no model for (Hamlib's dummy)."""

# Hamlib rig.h RIG_MODE_* bit numbers, by the mode names rigctld prints.
_MODE_BITS: Final[dict[str, int]] = {
    "AM": 0, "CW": 1, "USB": 2, "LSB": 3, "RTTY": 4, "FM": 5, "WFM": 6, "CWR": 7, "RTTYR": 8,
    "AMS": 9, "PKTLSB": 10, "PKTUSB": 11, "PKTFM": 12, "ECSSUSB": 13, "ECSSLSB": 14, "FAX": 15,
    "SAM": 16, "SAL": 17, "SAH": 18, "DSB": 19, "FMN": 21, "PKTAM": 22, "P25": 23,
    "D-STAR": 24, "DPMR": 25, "NXDNVN": 26, "NXDN-N": 27, "DCR": 28, "AMN": 29, "PSK": 30,
    "PSKR": 31, "DD": 32, "C4FM": 33, "PKTFMN": 34, "SPEC": 35,
}  # fmt: skip
# Our mode names where Hamlib spells them differently (as drivers/rigctld.py).
_TO_HAMLIB: Final = {"DV": "D-STAR"}
_FROM_HAMLIB: Final = {hamlib: ours for ours, hamlib in _TO_HAMLIB.items()}
# Hamlib rig.h RIG_VFO_N(n) bit numbers of the physical VFOs.
_VFO_BITS: Final = {Vfo.A: 0, Vfo.B: 1, Vfo.SUB: 25, Vfo.MAIN: 26}
_RIG_ANT_1: Final = 1
_RIG_LEVEL_STRENGTH: Final = 1 << 30
_RIG_FUNC_SATMODE: Final = 1 << 26
_UNKNOWN_POWER_MW: Final = -1

# Hamlib VFO names -> the VFOs they may mean, in order of preference (the first the radio has).
_VFO_CHOICES: Final[dict[str, tuple[Vfo, ...]]] = {
    "VFOA": (Vfo.A, Vfo.MAIN),
    "VFOB": (Vfo.B, Vfo.SUB),
    "Main": (Vfo.MAIN, Vfo.A),
    "MainA": (Vfo.MAIN, Vfo.A),
    "Sub": (Vfo.SUB, Vfo.B),
    "SubA": (Vfo.SUB, Vfo.B),
    "TX": (Vfo.UPLINK,),
    "RX": (Vfo.DOWNLINK,),
}
_CURRENT_VFO_NAMES: Final = frozenset({"currVFO", "VFO"})
_VFO_HAMLIB_NAMES: Final = {
    Vfo.A: "VFOA",
    Vfo.B: "VFOB",
    Vfo.MAIN: "Main",
    Vfo.SUB: "Sub",
    Vfo.UPLINK: "TX",
    Vfo.DOWNLINK: "RX",
}

T = TypeVar("T")
D = TypeVar("D", bound=Driver)


def hamlib_error_code(exc: BaseException) -> int:
    """The ``RPRT`` code (negative Hamlib error code) for an error a driver raised.

    See the module docstring for the table. A ``DeviceRejected`` carrying a Hamlib code (from
    the rotctld/rigctld drivers, e.g. -11) is passed on as it came.
    """
    if isinstance(exc, DeviceRejected):
        code = exc.code
        if isinstance(code, int) and not isinstance(code, bool) and -code in HAMLIB_ERRORS:
            return code if code < 0 else ERJCTED
        return ERJCTED
    if isinstance(exc, LimitError):
        return EINVAL
    if isinstance(exc, VfoError):
        return EVFO
    if isinstance(exc, LocalProtocolError):
        return EINVAL
    if isinstance(exc, TransportTimeout):
        return ETIMEOUT
    if isinstance(exc, TransportError):
        return EIO
    if isinstance(exc, RemoteProtocolError):
        return EPROTO
    if isinstance(exc, DeviceError):
        return EIO
    return EINTERNAL


class _Unavailable(BridgeError):
    """A command the HAL does not offer (answered ENAVAIL)."""


class HamlibBridge(ABC):
    """A Hamlib network daemon answered from one driver; see the module docstring."""

    protocol: ClassVar[str] = ""
    default_port: ClassVar[int] = 0

    def __init__(self, driver: Driver, *, info: str | None = None) -> None:
        """Answer clients from ``driver`` (opened and closed by the caller)."""
        self._driver = driver
        self._info = (info or f"groundlink {driver.driver_name} bridge").replace("\n", " ")
        # One request at a time to the driver, whichever client sent it.
        self._lock = asyncio.Lock()
        self._connections = 0
        self.commands = 0
        """Commands answered so far (every client)."""
        self.errors = 0
        """Commands answered with an RPRT error so far."""
        self.internal_errors: list[BaseException] = []
        """Unexpected exceptions (bugs) turned into EINTERNAL: tests assert none."""
        self._log: structlog.typing.FilteringBoundLogger = structlog.get_logger(
            "firmware_bridge.hamlib_server"
        ).bind(bridge=self.protocol, device=driver.name)

    @property
    def driver(self) -> Driver:
        """The driver every command is answered from."""
        return self._driver

    @property
    def connections(self) -> int:
        """Clients connected now."""
        return self._connections

    async def listen(self, host: str = "127.0.0.1", port: int | None = None) -> TcpServer:
        """Serve on ``host:port`` (default: the daemon's usual port; 0 picks a free one).

        Raises TransportClosed naming the address if it cannot listen (port in use).
        """
        return await serve_tcp(host, self.default_port if port is None else port, self.serve)

    async def serve(self, transport: ByteTransport) -> None:
        """Serve one client connection until it quits or hangs up."""
        codec = self.new_codec()
        self._connections += 1
        self._log.info("client connected", url=transport.url, connections=self._connections)
        try:
            async for data in transport:
                codec.receive_data(data)
                while (event := codec.next_event()) is not NEED_DATA:
                    if isinstance(event, Garbage):
                        # Only a line longer than the codec allows; there is no command to answer.
                        self._log.warning("garbage from client", reason=event.reason)
                        continue
                    reply, hang_up = await self._answer(codec, event)
                    if reply:
                        await transport.write(reply)
                        await transport.drain()
                    if hang_up:
                        return
        except BridgeError as exc:
            # The client went away (TransportClosed inside ``async for`` or on write).
            self._log.info("client gone", reason=str(exc))
        finally:
            self._connections -= 1
            await transport.close()
            self._log.info("client disconnected", connections=self._connections)

    async def _answer(
        self, codec: RotctldDevice | RigctldDevice, event: Event
    ) -> tuple[bytes, bool]:
        """The reply to one command (never raises for a driver error) and whether to hang up."""
        self.commands += 1
        if isinstance(event, Quit):
            return codec.encode_quit(), True
        if isinstance(event, UnknownCommand):
            self.errors += 1
            self._log.info("bad command", data=event.data)
            return codec.encode_error(EINVAL), False
        pending = codec.unanswered
        try:
            return await self.handle(codec, event), False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = ENAVAIL if isinstance(exc, _Unavailable) else hamlib_error_code(exc)
            self.errors += 1
            if code == EINTERNAL:
                self.internal_errors.append(exc)
                self._log.exception("command failed unexpectedly", command=repr(event))
            else:
                self._log.info("command refused", command=repr(event), code=code, reason=str(exc))
            if codec.unanswered < pending:
                # The reply was taken from the codec before the failure: answer by hand.
                return f"RPRT {code}\n".encode("ascii"), False
            return codec.encode_error(code), False

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run one driver operation while holding the bridge's driver lock."""
        async with self._lock:
            return await work()

    def _link_policy(self) -> LinkPolicy:
        link = self._driver.link
        return link.policy if link is not None else type(self._driver).default_policy

    @abstractmethod
    def new_codec(self) -> RotctldDevice | RigctldDevice:
        """A fresh device-side codec for one client connection."""

    @abstractmethod
    async def handle(self, codec: RotctldDevice | RigctldDevice, event: Event) -> bytes:
        """Answer one command from the driver; raise a driver/bridge error to refuse it."""


class RotctldBridge(HamlibBridge):
    """rotctld in front of a :class:`RotatorDriver`."""

    protocol = "rotctld"
    default_port = ROTCTLD_PORT

    def __init__(
        self, driver: RotatorDriver, *, info: str | None = None, hamlib_model: int | None = None
    ) -> None:
        """Answer rotctld clients from ``driver``; ``hamlib_model`` overrides the model number
        ``\\dump_state`` reports (default: :data:`HAMLIB_ROT_MODELS`, else 1)."""
        if not isinstance(driver, RotatorDriver):
            raise TypeError(f"RotctldBridge: {driver!r} is not a RotatorDriver")
        super().__init__(driver, info=info)
        self._rotator = driver
        self.hamlib_model = (
            hamlib_model
            if hamlib_model is not None
            else HAMLIB_ROT_MODELS.get(driver.driver_name, _DUMMY_MODEL)
        )

    def new_codec(self) -> RotctldDevice:
        """A rotctld codec for one client."""
        return RotctldDevice()

    def dump_state(self) -> RotDumpState:
        """What ``\\dump_state`` answers: the driver's limits now."""
        caps = self._rotator.capabilities
        return RotDumpState(
            protocol_version=1,
            model=self.hamlib_model,
            min_az_deg=caps.az_min_deg,
            max_az_deg=caps.az_max_deg,
            min_el_deg=caps.el_min_deg,
            max_el_deg=caps.el_max_deg,
            rot_type="AzEl" if caps.has_elevation else "Az",
        )

    async def handle(self, codec: RotctldDevice | RigctldDevice, event: Event) -> bytes:
        """Answer one rotctld command from the rotator driver."""
        assert isinstance(codec, RotctldDevice)
        rotator = self._rotator
        if isinstance(event, GetPosition):
            if not rotator.capabilities.readback:
                raise _Unavailable(f"{rotator.name}: this rotator cannot report its position")
            position = await self._call(rotator.get_position)
            return codec.encode_position(position.az_deg, position.el_deg)
        if isinstance(event, SetPosition):
            az_deg = event.az_deg
            el_deg = event.el_deg if event.el_deg is not None else rotator.capabilities.el_min_deg
            await self._call(lambda: rotator.set_position(az_deg, el_deg))
            return codec.encode_ok()
        if isinstance(event, Stop):
            await self._call(rotator.stop)
            return codec.encode_ok()
        if isinstance(event, Park):
            await self._call(rotator.park)
            return codec.encode_ok()
        if isinstance(event, DumpState):
            return codec.encode_dump_state(self.dump_state())
        if isinstance(event, GetInfo):
            return codec.encode_info(self._info)
        raise _Unavailable(f"{type(event).__name__} is not offered by the HAL")


class RigctldBridge(HamlibBridge):
    """rigctld in front of a :class:`RadioDriver`."""

    protocol = "rigctld"
    default_port = RIGCTLD_PORT

    def __init__(
        self, driver: RadioDriver, *, info: str | None = None, hamlib_model: int | None = None
    ) -> None:
        """Answer rigctld clients from ``driver``; ``hamlib_model`` overrides the model number
        ``\\dump_state`` reports (default: :data:`HAMLIB_RIG_MODELS`, else 1)."""
        if not isinstance(driver, RadioDriver):
            raise TypeError(f"RigctldBridge: {driver!r} is not a RadioDriver")
        super().__init__(driver, info=info)
        self._radio = driver
        self.hamlib_model = (
            hamlib_model
            if hamlib_model is not None
            else HAMLIB_RIG_MODELS.get(driver.driver_name, _DUMMY_MODEL)
        )
        self._vfo: Vfo = driver.capabilities.vfos[0]
        # rigctld appends the key=value block to \dump_state once any client sent \chk_vfo.
        self._chk_vfo_seen = False

    @property
    def vfo(self) -> Vfo:
        """The current VFO (bridge-wide, as a rig's VFO is for every rigctld client)."""
        return self._vfo

    def new_codec(self) -> RigctldDevice:
        """A rigctld codec for one client."""
        return RigctldDevice(chk_vfo_seen=self._chk_vfo_seen)

    def resolve_vfo(self, name: str) -> Vfo:
        """The radio's VFO a Hamlib VFO name means (see the module docstring); VfoError if none."""
        if name in _CURRENT_VFO_NAMES:
            return self._vfo
        radio = self._radio
        for choice in _VFO_CHOICES.get(name, ()):
            with contextlib.suppress(VfoError):
                return radio.check_vfo(choice)
        have = sorted({n for n, c in _VFO_CHOICES.items() if self._has_any(c)} | {"currVFO"})
        raise VfoError(
            f"{radio.name}: the {radio.capabilities.model} has no VFO {name!r}; "
            f"allowed: {', '.join(have)}"
        )

    def _has_any(self, choices: tuple[Vfo, ...]) -> bool:
        for choice in choices:
            with contextlib.suppress(VfoError):
                self._radio.check_vfo(choice)
                return True
        return False

    def dump_state(self) -> RigDumpState:
        """What ``\\dump_state`` answers: the driver's ranges, modes and tuning step."""
        caps = self._radio.capabilities
        modes = 0
        for mode in caps.modes:
            bit = _MODE_BITS.get(_TO_HAMLIB.get(mode, mode))
            if bit is not None:
                modes |= 1 << bit
        vfos = 0
        for vfo in caps.vfos:
            vfos |= 1 << _VFO_BITS[vfo]
        policy = self._link_policy()
        # The longest a client may wait for one answer: every attempt timing out (ms).
        timeout_ms = math.ceil(1000 * policy.timeout_s * (1 + policy.retries))

        def ranges(items: tuple[FrequencyRange, ...]) -> tuple[FreqRange, ...]:
            # Powers are not part of the capabilities: -1 (unknown), as for receive ranges.
            power = _UNKNOWN_POWER_MW
            return tuple(
                FreqRange(float(r.low_hz), float(r.high_hz), modes, power, power, vfos, _RIG_ANT_1)
                for r in items
            )

        funcs = _RIG_FUNC_SATMODE if caps.satellite_mode else 0
        return RigDumpState(
            protocol_version=1,
            model=self.hamlib_model,
            itu_region=0,
            rx_ranges=ranges(caps.rx_ranges),
            tx_ranges=ranges(caps.tx_ranges),
            tuning_steps=((modes, caps.freq_step_hz),),
            filters=(),
            max_rit_hz=0,
            max_xit_hz=0,
            max_ifshift_hz=0,
            announces=0,
            preamp_db=(),
            attenuator_db=(),
            has_get_func=funcs,
            has_set_func=funcs,
            # RAWSTR is answered when the driver has a raw reading, but not every driver has.
            has_get_level=_RIG_LEVEL_STRENGTH,
            has_set_level=0,
            has_get_parm=0,
            has_set_parm=0,
            extra=(
                ("vfo_ops", "0x0"),
                ("ptt_type", "0x0"),
                ("targetable_vfo", "0x0"),
                ("has_set_vfo", "1"),
                ("has_get_vfo", "1"),
                ("has_set_freq", "1"),
                ("has_get_freq", "1"),
                ("has_set_conf", "0"),
                ("has_get_conf", "0"),
                ("has_power2mW", "0"),
                ("has_mW2power", "0"),
                ("timeout", str(timeout_ms)),
                ("rig_model", str(self.hamlib_model)),
                ("rigctld_version", self._info),
            ),
        )

    async def handle(self, codec: RotctldDevice | RigctldDevice, event: Event) -> bytes:
        """Answer one rigctld command from the radio driver."""
        assert isinstance(codec, RigctldDevice)
        radio = self._radio
        vfo = self._vfo
        if isinstance(event, GetFreq):
            freq_hz = await self._call(lambda: radio.get_frequency(vfo))
            return codec.encode_frequency(freq_hz)
        if isinstance(event, SetFreq):
            await self._call(lambda: radio.set_frequency(event.freq_hz, vfo))
            return codec.encode_ok()
        if isinstance(event, GetRigMode):
            mode = await self._call(lambda: radio.get_mode(vfo))
            name = _TO_HAMLIB.get(mode, mode)
            if name not in MODE_NAMES:
                raise _Unavailable(f"{radio.name}: mode {mode!r} has no Hamlib name")
            # The HAL has no passband control: 0 is Hamlib's "normal width for the mode".
            return codec.encode_mode(name, 0)
        if isinstance(event, SetRigMode):
            return await self._set_mode(codec, event, vfo)
        if isinstance(event, GetVfo):
            return codec.encode_vfo(_VFO_HAMLIB_NAMES[vfo])
        if isinstance(event, SetVfo):
            self._vfo = self.resolve_vfo(event.vfo)
            return codec.encode_ok()
        if isinstance(event, GetLevel):
            return await self._get_level(codec, event, vfo)
        if isinstance(event, GetFunc | SetFunc):
            return await self._func(codec, event)
        if isinstance(event, ChkVfo):
            self._chk_vfo_seen = True
            return codec.encode_chk_vfo(False)
        if isinstance(event, DumpState):
            codec.chk_vfo_seen = codec.chk_vfo_seen or self._chk_vfo_seen
            return codec.encode_dump_state(self.dump_state())
        if isinstance(event, GetLockMode):
            return codec.encode_lock_mode(False)
        if isinstance(event, GetInfo):
            return codec.encode_info(self._info)
        raise _Unavailable(f"{type(event).__name__} is not offered by the HAL")

    async def _set_mode(self, codec: RigctldDevice, event: SetRigMode, vfo: Vfo) -> bytes:
        radio = self._radio
        mode = _FROM_HAMLIB.get(event.mode, event.mode)
        if event.passband_hz < -1:
            raise LimitError(
                f"{radio.name}: passband {event.passband_hz} Hz refused; use 0 (normal width), "
                "-1 (unchanged) or a width in Hz"
            )
        await self._call(lambda: radio.set_mode(mode, vfo))
        if event.passband_hz > 0:
            self._log.info(
                "passband not applied: the HAL has no passband control",
                mode=mode,
                passband_hz=event.passband_hz,
            )
        return codec.encode_ok()

    async def _get_level(self, codec: RigctldDevice, event: GetLevel, vfo: Vfo) -> bytes:
        radio = self._radio
        if event.level not in ("STRENGTH", "RAWSTR"):
            raise _Unavailable(f"level {event.level} is not offered by the HAL")
        signal = await self._call(lambda: radio.get_signal(vfo))
        if event.level == "STRENGTH":
            # Hamlib's STRENGTH is an integer; C's lround takes halves away from zero.
            db = signal.db_rel_s9
            return codec.encode_level(float(math.copysign(math.floor(abs(db) + 0.5), db)))
        if signal.raw is None:
            raise _Unavailable(f"{radio.name}: the driver reports no raw meter value")
        return codec.encode_level(float(signal.raw))

    async def _func(self, codec: RigctldDevice, event: GetFunc | SetFunc) -> bytes:
        radio = self._radio
        if event.func != "SATMODE" or not radio.capabilities.satellite_mode:
            raise _Unavailable(f"function {event.func} is not offered by the HAL for this radio")
        if isinstance(event, GetFunc):
            on = await self._call(radio.get_satellite_mode)
            return codec.encode_func(on)
        await self._call(lambda: radio.set_satellite_mode(event.on))
        return codec.encode_ok()


class HamlibServers:
    """The servers :func:`serve_hamlib` started; ``endpoints`` names them (``host:port``)."""

    def __init__(self) -> None:
        """Start empty."""
        self.endpoints: dict[str, str] = {}
        """``{"rotctld": "127.0.0.1:4533", "rigctld": "127.0.0.1:4532"}`` (those served)."""
        self.bridges: dict[str, HamlibBridge] = {}
        """The bridges by protocol name."""
        self._servers: list[TcpServer] = []

    def _add(self, bridge: HamlibBridge, server: TcpServer) -> None:
        self.bridges[bridge.protocol] = bridge
        self._servers.append(server)
        self.endpoints[bridge.protocol] = server.url.removeprefix("tcp://")

    async def close(self) -> None:
        """Stop listening and close every client connection; idempotent."""
        servers, self._servers = self._servers, []
        for server in reversed(servers):
            await server.close()

    async def __aenter__(self) -> Self:
        """Use as a context manager; the servers close on exit."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the servers."""
        await self.close()


async def serve_hamlib(
    *,
    rotator: RotatorDriver | None = None,
    radio: RadioDriver | None = None,
    host: str = "127.0.0.1",
    rot_port: int = ROTCTLD_PORT,
    rig_port: int = RIGCTLD_PORT,
) -> HamlibServers:
    """Serve rotctld for ``rotator`` on ``rot_port`` and rigctld for ``radio`` on ``rig_port``.

    Port 0 picks a free one (see ``endpoints``). If a port cannot be bound, whatever was
    started is closed again and TransportClosed names the address.
    """
    if rotator is None and radio is None:
        raise ValueError("serve_hamlib: pass a rotator and/or a radio driver")
    for name, port in (("rot_port", rot_port), ("rig_port", rig_port)):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"serve_hamlib: {name}={port!r} must be within 0..65535 (0: free)")
    served = HamlibServers()
    try:
        if rotator is not None:
            rot_bridge = RotctldBridge(rotator)
            served._add(rot_bridge, await rot_bridge.listen(host, rot_port))
        if radio is not None:
            rig_bridge = RigctldBridge(radio)
            served._add(rig_bridge, await rig_bridge.listen(host, rig_port))
    except BaseException:
        await served.close()
        raise
    return served
