"""Icom IC-9700 and IC-910 over CI-V (``FE FE to from cmd .. FD`` frames, BCD frequencies).

Commands used (facts: /work/shared/protocols/civ.md):

=====================  ====================================  ==========================
operation              frames                                reply
=====================  ====================================  ==========================
select MAIN / SUB      ``07 D0`` / ``07 D1``                 ``FB``
read / set frequency   ``03`` / ``05 <5 BCD>``               ``03 <bcd>`` / ``FB``
read / set mode        ``04`` / ``06 <mode>`` (radio's       ``04 <mode> <filter>`` /
                       default filter)                       ``FB``
satellite mode         IC-9700 ``16 5A [00/01]``,            ``16 5A 0x`` / ``FB``
                       IC-910 ``1A 07 [00/01]``
S-meter                ``15 02``                             ``15 02 <2 BCD 0..255>``
=====================  ====================================  ==========================

Every operation first selects its band (``07 D0``/``07 D1``) and then uses the operating-VFO
commands, on both radios and in both modes (Hamlib 4.5.4 does the same in satellite mode,
civ.md). The IC-9700's ``25``/``26`` address VFO A/B *of the selected band* (the CI-V
reference guide's "selected/unselected VFO"; Hamlib issue #1456), not MAIN/SUB, so they are
not needed here; the twin implements them for Hamlib.

``FA`` (NG) raises :class:`~firmware_bridge.errors.DeviceRejected` (code ``"NG"``) and is not
retried, as in Hamlib.

Echo (the two-wire bus returns every byte we send; the IC-9700's "CI-V USB Echo Back"):
``echo=True``/``False`` when known, ``None`` (default) to detect it per frame like Hamlib.
Either way our own frames are never mistaken for answers; with echo known to be on, an echo
that differs from what we sent is reported as a collision and the request retried. The
detected setting is :attr:`IcomDriver.echo`. Frames for other stations on a shared bus and
unsolicited transceive broadcasts are skipped.

Satellite mode: MAIN is the downlink (receive) and SUB the uplink (transmit) on both radios,
per gpredict's setup notes for the IC-9700 and IC-910 ("VFO Up/Down: Main Down Sub Up");
not checked against a radio here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Final, TypeVar

from firmware_bridge.drivers.base import register_driver
from firmware_bridge.drivers.radio import (
    GENERIC_ICOM_S_METER,
    IC9700_S_METER,
    FrequencyRange,
    RadioCapabilities,
    RadioDriver,
    SignalStrength,
    Vfo,
)
from firmware_bridge.link import EventReplyDecoder, LinkPolicy, exchange
from firmware_bridge.protocols.base import Ack, Event
from firmware_bridge.protocols.civ import (
    CONTROLLER_ADDRESS,
    IC910,
    IC9700,
    CivFrequency,
    CivHost,
    CivMode,
    CivModel,
    CivTarget,
    CivVfo,
    SatelliteMode,
    SMeter,
)
from firmware_bridge.transports import ByteTransport

__all__ = ["IC910_CAPABILITIES", "IC9700_CAPABILITIES", "Ic910Driver", "Ic9700Driver", "IcomDriver"]

R = TypeVar("R")

_BANDS_USA: Final = (
    FrequencyRange.mhz(144, 148),
    FrequencyRange.mhz(430, 450),
    FrequencyRange.mhz(1240, 1300),
)

IC9700_CAPABILITIES: Final = RadioCapabilities(
    model="IC-9700",
    vfos=(Vfo.MAIN, Vfo.SUB),
    # Hamlib 4.5.x ic9700 caps, USA version (rx_range_list1 / tx_range_list1); the European
    # version stops at 146 and 440 MHz: pass capabilities=IC9700_CAPABILITIES.replace(...).
    rx_ranges=_BANDS_USA,
    tx_ranges=_BANDS_USA,
    # IC9700_ALL_RX_MODES in Hamlib; DV = D-STAR voice, DD = D-STAR data (1.2 GHz only).
    modes=frozenset({"LSB", "USB", "AM", "CW", "CWR", "RTTY", "RTTYR", "FM", "DV", "DD"}),
    satellite_mode=True,
    sat_uplink_vfo=Vfo.SUB,
    sat_downlink_vfo=Vfo.MAIN,
    s_meter=IC9700_S_METER,
)
"""IC-9700 (Hamlib model 3081): the USA version's bands, 1 Hz steps, the Hamlib S-meter table."""

IC910_CAPABILITIES: Final = RadioCapabilities(
    model="IC-910",
    vfos=(Vfo.MAIN, Vfo.SUB),
    # Hamlib ic910.c rx/tx_range_list1 (USA); 1240-1300 MHz needs the optional UX-910 unit.
    rx_ranges=_BANDS_USA,
    tx_ranges=_BANDS_USA,
    # IC910_MODES = SSB | CW | FM in Hamlib.
    modes=frozenset({"LSB", "USB", "CW", "FM"}),
    satellite_mode=True,
    sat_uplink_vfo=Vfo.SUB,
    sat_downlink_vfo=Vfo.MAIN,
    s_meter=GENERIC_ICOM_S_METER,
)
"""IC-910 (Hamlib model 3044): USA bands, SSB/CW/FM, Hamlib's generic Icom S-meter table."""

_BAND_SELECT: Final = {Vfo.MAIN: CivVfo.MAIN, Vfo.SUB: CivVfo.SUB}

# Hamlib 4.5.4's Icom timing: 1000 ms per reply, 3 retries (civ.md).
_ICOM_POLICY: Final = LinkPolicy(timeout_s=1.0, retries=3)


def _ack(event: Event) -> Ack | None:
    return event if isinstance(event, Ack) else None


def _frequency(event: Event) -> CivFrequency | None:
    if isinstance(event, CivFrequency) and event.target is CivTarget.OPERATING:
        return event
    return None


def _mode(event: Event) -> CivMode | None:
    if isinstance(event, CivMode) and event.target is CivTarget.OPERATING:
        return event
    return None


def _satmode(event: Event) -> SatelliteMode | None:
    return event if isinstance(event, SatelliteMode) else None


def _smeter(event: Event) -> SMeter | None:
    return event if isinstance(event, SMeter) else None


class IcomDriver(RadioDriver):
    """Shared CI-V logic; the subclasses name the model."""

    model: ClassVar[CivModel]
    default_policy = _ICOM_POLICY

    def __init__(
        self,
        url: str,
        *,
        echo: bool | None = None,
        radio_address: int | None = None,
        controller_address: int = CONTROLLER_ADDRESS,
        **options: Any,
    ) -> None:
        """Create the driver; ``echo`` None detects the bus echo, ``radio_address`` defaults
        to the model's (IC-9700 0xA2, IC-910 0x60)."""
        if echo is not None and not isinstance(echo, bool):
            raise ValueError(f"{type(self).__name__}: echo={echo!r}: need True, False or None")
        # Building a codec validates both addresses and names a bad one.
        CivHost(self.model, radio_address=radio_address, controller_address=controller_address)
        self._echo_setting = echo
        self._echo_detected: bool | None = echo
        self._radio_address = radio_address
        self._controller_address = controller_address
        super().__init__(url, **options)

    @property
    def echo(self) -> bool | None:
        """Whether the bus echoes our frames: as configured, or as detected (None: not yet)."""
        return self._echo_detected

    @property
    def radio_address(self) -> int:
        """The radio's CI-V address."""
        return self._new_host().radio_address

    def _new_host(self) -> CivHost:
        return CivHost(
            self.model,
            radio_address=self._radio_address,
            controller_address=self._controller_address,
            echo=self._echo_detected,
        )

    def _decoder(
        self, prime: Callable[[CivHost], bytes], match: Callable[[Event], R | None]
    ) -> tuple[bytes, EventReplyDecoder[R]]:
        """The frame for one command and a reply decoder whose codec expects its echo."""
        hosts: list[CivHost] = []

        def new() -> CivHost:
            # The codec recognises the echo of the frames *it* encoded, so every fresh codec
            # (one per attempt) encodes the command once; the bytes are the same each time.
            host = self._new_host()
            prime(host)
            hosts.append(host)
            return host

        decoder = EventReplyDecoder(new, self._learning(hosts, match))
        return prime(self._new_host()), decoder

    def _learning(
        self, hosts: list[CivHost], match: Callable[[Event], R | None]
    ) -> Callable[[Event], R | None]:
        """Wrap ``match`` so that a completed reply also records the detected echo."""

        def learn(event: Event) -> R | None:
            reply = match(event)
            if reply is not None and self._echo_setting is None and hosts:
                detected = hosts[-1].echo
                if detected is not None and detected != self._echo_detected:
                    self._log.info("CI-V echo detected", echo=detected)
                    self._echo_detected = detected
            return reply

        return learn

    async def _call(
        self, prime: Callable[[CivHost], bytes], match: Callable[[Event], R | None]
    ) -> R:
        data, decoder = self._decoder(prime, match)
        return await self._request(data, decoder)

    async def _probe(self, transport: ByteTransport) -> None:
        """A fresh connection counts once the radio answers a frequency read (``03``)."""
        await super()._probe(transport)
        data, decoder = self._decoder(lambda host: host.encode_read_frequency(), _frequency)
        await exchange(
            transport, data, decoder=decoder, clock=self._clock, timeout_s=self._policy.timeout_s
        )

    async def _raw_select(self, vfo: Vfo) -> None:
        band = _BAND_SELECT[vfo]
        await self._call(lambda host: host.encode_select_vfo(band), _ack)

    async def _raw_get_frequency(self) -> int:
        reply = await self._call(lambda host: host.encode_read_frequency(), _frequency)
        return reply.freq_hz

    async def _raw_set_frequency(self, freq_hz: int) -> None:
        await self._call(lambda host: host.encode_set_frequency(freq_hz), _ack)

    async def _raw_get_mode(self) -> str:
        reply = await self._call(lambda host: host.encode_read_mode(), _mode)
        return reply.mode

    async def _raw_set_mode(self, mode: str) -> None:
        # No filter byte: the radio picks the mode's default filter (CI-V guide; Hamlib
        # sends the IC-910 the same short form).
        await self._call(lambda host: host.encode_set_mode(mode, filter_no=None), _ack)

    async def _raw_get_satellite_mode(self) -> bool:
        reply = await self._call(lambda host: host.encode_read_satellite_mode(), _satmode)
        return reply.on

    async def _raw_set_satellite_mode(self, on: bool) -> None:
        await self._call(lambda host: host.encode_set_satellite_mode(on), _ack)

    async def _raw_get_signal(self) -> SignalStrength:
        reply = await self._call(lambda host: host.encode_read_s_meter(), _smeter)
        return SignalStrength(self._caps.s_meter.to_db(reply.raw), raw=reply.raw)


@register_driver("radio", "ic9700")
class Ic9700Driver(IcomDriver):
    """Icom IC-9700 (Hamlib model 3081): CI-V address 0xA2, 38400 baud."""

    model = IC9700
    twin = "ic9700"
    default_capabilities = IC9700_CAPABILITIES
    default_baud = IC9700.default_baud


@register_driver("radio", "ic910")
class Ic910Driver(IcomDriver):
    """Icom IC-910 (Hamlib model 3044): CI-V address 0x60, 19200 baud."""

    model = IC910
    twin = "ic910"
    default_capabilities = IC910_CAPABILITIES
    default_baud = IC910.default_baud
