"""SPID Rot2Prog and Rot1Prog rotator drivers (binary 13-byte frames).

Rot2Prog answers the status (0x1F) and stop (0x0F) frames with a 12-byte position in tenths of
a degree that also carries its resolution setting (pulses per degree, PH/PV: 1, 2 or 4); it
does not answer set frames (0x2F). A set frame carries pulse counts, so the driver must know
PH/PV: pass ``az_resolution_ph``/``el_resolution_pv`` or let the driver learn them from the
first status reply (on every connect, like Hamlib's auto-sense). The capabilities' resolution
follows what the controller reports.

Rot1Prog is azimuth only, whole degrees, 5-byte replies; its capabilities have
``el_min_deg == el_max_deg == 0`` and ``get_position()`` reports elevation 0.

Timing follows Hamlib 4.5.4 (/work/shared/protocols/rot2prog.md): 600 baud (Rot1Prog 1200),
frames spaced at least 300 ms apart (Hamlib's post-write delay), 1 s per reply (a 12-byte
reply alone takes 0.2 s at 600 baud).
"""

from __future__ import annotations

from typing import Any, ClassVar

from firmware_bridge.drivers.base import register_driver
from firmware_bridge.drivers.rotator import RotatorCapabilities, RotatorDriver
from firmware_bridge.link import EventReplyDecoder, LinkPolicy, exchange
from firmware_bridge.protocols.base import Event
from firmware_bridge.protocols.rot2prog import SpidHost, SpidPosition, SpidVariant
from firmware_bridge.transports import ByteTransport

__all__ = ["Rot1ProgDriver", "Rot2ProgDriver", "SpidDriver"]

# Hamlib's limits for SPID (az -180..540, el -20..210). Rates are assumed (a SPID RAS class
# rotator, about 2 minutes per turn); configure them from the rotator's data sheet.
_SPID_RAS: RotatorCapabilities = RotatorCapabilities(
    az_min_deg=-180.0,
    az_max_deg=540.0,
    el_min_deg=-20.0,
    el_max_deg=210.0,
    az_rate_deg_s=3.0,
    el_rate_deg_s=3.0,
    az_accel_deg_s2=6.0,
    el_accel_deg_s2=6.0,
    az_resolution_deg=1.0,
    el_resolution_deg=1.0,
    park_az_deg=0.0,
    park_el_deg=0.0,
)
_SPID_AZ_ONLY: RotatorCapabilities = _SPID_RAS.replace(el_min_deg=0.0, el_max_deg=0.0)


def _spid_position(event: Event) -> SpidPosition | None:
    return event if isinstance(event, SpidPosition) else None


class SpidDriver(RotatorDriver):
    """Shared SPID logic; the subclasses pick the controller."""

    variant: ClassVar[SpidVariant]
    # Replies carry 4 digits of tenths of (360 + angle); set frames 4 digits of pulses.
    wire_az_range_deg = (-360.0, 639.9)
    wire_el_range_deg = (-360.0, 639.9)
    default_policy = LinkPolicy(timeout_s=1.0, retries=3, min_interval_s=0.3)

    def __init__(
        self,
        url: str,
        *,
        az_resolution_ph: int | None = None,
        el_resolution_pv: int | None = None,
        **options: Any,
    ) -> None:
        """Create the driver; PH/PV None means "learn them from the controller"."""
        super().__init__(url, **options)
        # The codec validates the values (1..255) and names them if they are wrong.
        SpidHost(self.variant, az_resolution_ph=az_resolution_ph, el_resolution_pv=el_resolution_pv)
        self._configured = (az_resolution_ph, el_resolution_pv)
        self._sensed: tuple[int, int] | None = None
        if az_resolution_ph is not None and el_resolution_pv is not None:
            self._apply_resolution(az_resolution_ph, el_resolution_pv)

    @property
    def resolution(self) -> tuple[int, int] | None:
        """The controller's (PH, PV) pulses per degree: configured, else sensed, else None."""
        ph, pv = self._configured
        if ph is not None and pv is not None:
            return ph, pv
        return self._sensed

    def _apply_resolution(self, ph: int, pv: int) -> None:
        az_deg, el_deg = 1.0 / ph, 1.0 / pv
        if (az_deg, el_deg) == (self._caps.az_resolution_deg, self._caps.el_resolution_deg):
            return  # every reading carries it: a copy per reading would be wasted work
        caps = self._caps.replace(az_resolution_deg=az_deg, el_resolution_deg=el_deg)
        if caps != self._caps:
            self._log.info("controller resolution", az_resolution_ph=ph, el_resolution_pv=pv)
            self._caps = caps

    def _note(self, reply: SpidPosition) -> SpidPosition:
        if reply.az_resolution_ph is None or reply.el_resolution_pv is None:
            return reply  # Rot1Prog replies carry no resolution
        sensed = (reply.az_resolution_ph, reply.el_resolution_pv)
        if sensed != self._sensed and self.resolution not in (None, sensed):
            # Set frames use the configured PH/PV; the controller reads them with its own.
            self._log.warning(
                "configured resolution differs from the controller's",
                configured=self.resolution,
                controller=sensed,
            )
        self._sensed = sensed
        if self.resolution == sensed:
            self._apply_resolution(*sensed)
        return reply

    def _decoder(self) -> EventReplyDecoder[SpidPosition]:
        return EventReplyDecoder(lambda: SpidHost(self.variant), _spid_position)

    async def _probe(self, transport: ByteTransport) -> None:
        """A fresh connection counts once the controller answers a status frame."""
        reply = await exchange(
            transport,
            SpidHost(self.variant).encode_get_position(),
            decoder=self._decoder(),
            clock=self._clock,
            timeout_s=self._policy.timeout_s,
        )
        self._note(reply)

    async def _raw_get(self) -> tuple[float, float | None]:
        reply = self._note(
            await self._request(SpidHost(self.variant).encode_get_position(), self._decoder())
        )
        return reply.az_deg, reply.el_deg

    async def _raw_stop(self) -> None:
        # The controller answers stop with its position; the reply confirms it was heard.
        self._note(await self._request(SpidHost(self.variant).encode_stop(), self._decoder()))


@register_driver("rotator", "rot2prog")
class Rot2ProgDriver(SpidDriver):
    """SPID Rot2Prog (Hamlib model 901)."""

    variant = SpidVariant.ROT2PROG
    twin = "rot2prog"
    default_capabilities = _SPID_RAS
    default_baud = 600

    async def _raw_set(self, az_deg: float, el_deg: float) -> None:
        if self.resolution is None:
            # Unknown pulses per degree: ask the controller first (Hamlib's auto-sense).
            await self._raw_get()
        assert self.resolution is not None
        ph, pv = self.resolution
        host = SpidHost(self.variant, az_resolution_ph=ph, el_resolution_pv=pv)
        await self._send(host.encode_set_position(az_deg, el_deg))


@register_driver("rotator", "rot1prog")
class Rot1ProgDriver(SpidDriver):
    """SPID Rot1Prog (Hamlib model 902): azimuth only, whole degrees."""

    variant = SpidVariant.ROT1PROG
    twin = "rot1prog"
    default_capabilities = _SPID_AZ_ONLY
    wire_az_range_deg = (-360.0, 639.0)
    wire_el_range_deg = (0.0, 0.0)
    default_baud = 1200

    async def _raw_set(self, az_deg: float, el_deg: float) -> None:
        await self._send(SpidHost(self.variant).encode_set_position(az_deg, None))
