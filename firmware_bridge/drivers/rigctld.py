"""Client of Hamlib's ``rigctld`` network protocol (TCP, one LF-ended command per line).

``rigctld`` puts any radio Hamlib supports behind one text protocol; this driver speaks it
with the host side of :mod:`firmware_bridge.protocols.hamlib_net`:

=====================  ======================  ===================================
operation              command                 reply
=====================  ======================  ===================================
select a VFO           ``V VFOA|VFOB|Main|Sub``  ``RPRT 0``
read / set frequency   ``f`` / ``F hz``        ``145900000`` / ``RPRT 0``
read / set mode        ``m`` / ``M mode 0``    ``FM`` + passband / ``RPRT 0``
satellite mode         ``u SATMODE`` / ``U SATMODE 0|1``
signal                 ``l STRENGTH``          dB relative to S9 (integer)
=====================  ======================  ===================================

On every connect the driver sends ``\\chk_vfo`` (as Hamlib's own client does first) and
``\\dump_state``; the daemon's receive/transmit ranges become the capabilities' ranges
(unless ``capabilities`` were passed), so a frequency the daemon's radio cannot tune is
refused before sending. Mode bits 0..8 of the ranges (AM CW USB LSB RTTY FM WFM CWR RTTYR,
Hamlib ``rig.h``) name the allowed modes; when higher bits are set every mode name the codec
knows is allowed and the daemon decides. A daemon in VFO mode (``rigctld -o``, ``\\chk_vfo``
answers 1) wants a VFO argument on every command, which this driver does not send: the
connection is refused with a message saying so.

VFOs: ``A``/``B``/``MAIN``/``SUB`` map to ``VFOA``/``VFOB``/``Main``/``Sub``; in satellite mode
the downlink is ``Main`` and the uplink ``Sub`` (the gpredict convention for Icom radios behind
rigctld, "Main Down Sub Up"). ``DV`` is sent as Hamlib's ``D-STAR``. ``RPRT -n`` raises
DeviceRejected with ``code`` = -n. Facts: /work/shared/protocols/hamlib-net.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from firmware_bridge.drivers.base import register_driver
from firmware_bridge.drivers.radio import (
    FrequencyRange,
    RadioCapabilities,
    RadioDriver,
    SignalStrength,
    Vfo,
)
from firmware_bridge.errors import DeviceRejected
from firmware_bridge.link import EventReplyDecoder, LinkPolicy, exchange
from firmware_bridge.protocols.base import Event
from firmware_bridge.protocols.hamlib_net import (
    MODE_NAMES,
    ChkVfoReply,
    FreqReply,
    FuncReply,
    LevelReply,
    ModeReply,
    NetAck,
    RigctldHost,
    RigDumpState,
)
from firmware_bridge.transports import ByteTransport

__all__ = ["RIGCTLD_DEFAULT_CAPABILITIES", "RigctldDriver", "modes_from_mask"]

R = TypeVar("R")

_VFO_NAMES: Final = {Vfo.A: "VFOA", Vfo.B: "VFOB", Vfo.MAIN: "Main", Vfo.SUB: "Sub"}
# Our mode names where Hamlib spells them differently.
_TO_HAMLIB: Final = {"DV": "D-STAR"}
_FROM_HAMLIB: Final = {hamlib: ours for ours, hamlib in _TO_HAMLIB.items()}
# Hamlib rig.h: RIG_MODE_AM (1<<0) .. RIG_MODE_RTTYR (1<<8).
_MODE_BITS: Final = ("AM", "CW", "USB", "LSB", "RTTY", "FM", "WFM", "CWR", "RTTYR")
_KNOWN_MODE_MASK: Final = (1 << len(_MODE_BITS)) - 1

RIGCTLD_DEFAULT_CAPABILITIES: Final = RadioCapabilities(
    model="rigctld",
    vfos=(Vfo.A, Vfo.B, Vfo.MAIN, Vfo.SUB),
    # rigctld -m 1 (dummy) reports 150 kHz .. 1.5 GHz; replaced by the daemon's own ranges.
    rx_ranges=(FrequencyRange(150_000, 1_500_000_000),),
    tx_ranges=(FrequencyRange(150_000, 1_500_000_000),),
    modes=frozenset(_MODE_BITS),
    satellite_mode=True,
    sat_uplink_vfo=Vfo.SUB,
    sat_downlink_vfo=Vfo.MAIN,
)
"""Until the daemon's ``\\dump_state`` is read: what ``rigctld -m 1`` reports."""


def modes_from_mask(mask: int) -> frozenset[str]:
    """Our mode names for a Hamlib mode bit mask (every known name if unknown bits are set)."""
    names = {name for bit, name in enumerate(_MODE_BITS) if mask & (1 << bit)}
    if mask & ~_KNOWN_MODE_MASK:
        names |= {_FROM_HAMLIB.get(m, m) for m in MODE_NAMES}
    return frozenset(names)


def _ranges(state_ranges: tuple[Any, ...]) -> tuple[FrequencyRange, ...]:
    return tuple(FrequencyRange(int(r.start_hz), int(r.end_hz)) for r in state_ranges)


def _match(kind: type[R]) -> Callable[[Event], R | None]:
    def match(event: Event) -> R | None:
        return event if isinstance(event, kind) else None

    return match


def _host_expecting(prime: Callable[[RigctldHost], bytes]) -> Callable[[], RigctldHost]:
    """A factory of client codecs that expect the reply to the command ``prime`` encodes."""

    def new() -> RigctldHost:
        host = RigctldHost()
        prime(host)
        return host

    return new


@register_driver("radio", "rigctld")
class RigctldDriver(RadioDriver):
    """A radio behind Hamlib's rigctld (``tcp://127.0.0.1:4532``)."""

    twin = "rigctld"
    default_capabilities = RIGCTLD_DEFAULT_CAPABILITIES
    default_policy = LinkPolicy(timeout_s=2.0, retries=1)

    def __init__(self, url: str, **options: Any) -> None:
        """Create the driver; without ``capabilities`` the daemon's ranges are adopted."""
        self._explicit_caps = options.get("capabilities") is not None
        self._daemon: RigDumpState | None = None
        super().__init__(url, **options)

    @property
    def daemon_state(self) -> RigDumpState | None:
        """The daemon's last ``\\dump_state`` (None before the first connect)."""
        return self._daemon

    async def _probe(self, transport: ByteTransport) -> None:
        """``\\chk_vfo`` and ``\\dump_state`` on every connect: the daemon answers, gives ranges."""
        await super()._probe(transport)
        timeout_s = self._policy.timeout_s

        def chk(host: RigctldHost) -> bytes:
            return host.encode_chk_vfo()

        vfo_mode = await exchange(
            transport,
            chk(RigctldHost()),
            decoder=EventReplyDecoder(_host_expecting(chk), _match(ChkVfoReply)),
            clock=self._clock,
            timeout_s=timeout_s,
        )
        if vfo_mode.vfo_mode:
            raise DeviceRejected(
                f"{self._name}: rigctld runs in VFO mode (started with -o/--vfo) and wants a "
                "VFO argument on every command; start it without -o for this driver",
                code="vfo_mode",
            )

        def dump(host: RigctldHost) -> bytes:
            return host.encode_dump_state(expect_block=True)

        state = await exchange(
            transport,
            dump(RigctldHost()),
            decoder=EventReplyDecoder(_host_expecting(dump), _match(RigDumpState)),
            clock=self._clock,
            timeout_s=timeout_s,
        )
        self._adopt(state)

    def _adopt(self, state: RigDumpState) -> None:
        self._daemon = state
        rx, tx = _ranges(state.rx_ranges), _ranges(state.tx_ranges)
        mask = 0
        for r in (*state.rx_ranges, *state.tx_ranges):
            mask |= r.modes
        self._log.info(
            "rigctld state",
            model=state.model,
            rx=[str(r) for r in rx],
            tx=[str(r) for r in tx],
            mode_mask=hex(mask),
        )
        if self._explicit_caps or not rx:
            return
        self._caps = self._caps.replace(
            model=f"rigctld (Hamlib model {state.model})",
            rx_ranges=rx,
            tx_ranges=tx or rx,
            modes=modes_from_mask(mask) or self._caps.modes,
        )

    async def _call(
        self, prime: Callable[[RigctldHost], bytes], match: Callable[[Event], R | None]
    ) -> R:
        return await self._request(
            prime(RigctldHost()), EventReplyDecoder(_host_expecting(prime), match)
        )

    async def _raw_select(self, vfo: Vfo) -> None:
        name = _VFO_NAMES[vfo]
        await self._call(lambda host: host.encode_set_vfo(name), _match(NetAck))

    async def _raw_get_frequency(self) -> int:
        reply = await self._call(lambda host: host.encode_get_freq(), _match(FreqReply))
        return reply.freq_hz

    async def _raw_set_frequency(self, freq_hz: int) -> None:
        await self._call(lambda host: host.encode_set_freq(freq_hz), _match(NetAck))

    async def _raw_get_mode(self) -> str:
        reply = await self._call(lambda host: host.encode_get_mode(), _match(ModeReply))
        return _FROM_HAMLIB.get(reply.mode, reply.mode)

    async def _raw_set_mode(self, mode: str) -> None:
        name = _TO_HAMLIB.get(mode, mode)
        # Passband 0: the radio's default width for the mode.
        await self._call(lambda host: host.encode_set_mode(name, 0), _match(NetAck))

    async def _raw_get_satellite_mode(self) -> bool:
        reply = await self._call(lambda host: host.encode_get_func("SATMODE"), _match(FuncReply))
        return reply.on

    async def _raw_set_satellite_mode(self, on: bool) -> None:
        await self._call(lambda host: host.encode_set_func("SATMODE", on), _match(NetAck))

    async def _raw_get_signal(self) -> SignalStrength:
        reply = await self._call(lambda host: host.encode_get_level("STRENGTH"), _match(LevelReply))
        return SignalStrength(float(reply.value))
