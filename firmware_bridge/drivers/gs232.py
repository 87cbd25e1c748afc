"""Yaesu GS-232A / GS-232B rotator drivers (ASCII, CR-ended commands).

Commands: ``C2`` reads both axes (the only query Hamlib uses), ``Waaa eee`` goes to a target
in whole degrees (0..450 azimuth, 0..180 elevation; values are rounded half-even like Hamlib's
``rint``), ``S`` stops. Write-only commands get no reply. The two variants differ only in the
``C2`` reply: GS-232B ``AZ=aaa  EL=eee``, GS-232A ``+0aaa+0eee``.
Facts: /work/shared/protocols/gs232.md. Timing follows Hamlib (400 ms per read, 3 retries).
"""

from __future__ import annotations

from typing import ClassVar

from firmware_bridge.drivers.base import register_driver
from firmware_bridge.drivers.rotator import RotatorCapabilities, RotatorDriver
from firmware_bridge.link import EventReplyDecoder, LinkPolicy, exchange
from firmware_bridge.protocols.base import Event
from firmware_bridge.protocols.base import Position as PositionReply
from firmware_bridge.protocols.gs232 import AZ_MAX_DEG, EL_MAX_DEG, Gs232Host, Gs232Variant
from firmware_bridge.transports import ByteTransport

__all__ = ["Gs232Driver", "Gs232aDriver", "Gs232bDriver"]

# A Yaesu G-5500 class rotator: 450 deg azimuth, 180 deg elevation, about 58 s per turn in
# azimuth and 67 s per half turn in elevation (data-sheet figures, not measured here).
_YAESU_G5500: RotatorCapabilities = RotatorCapabilities(
    az_min_deg=0.0,
    az_max_deg=450.0,
    el_min_deg=0.0,
    el_max_deg=180.0,
    az_rate_deg_s=6.0,
    el_rate_deg_s=2.7,
    az_accel_deg_s2=12.0,
    el_accel_deg_s2=6.0,
    az_resolution_deg=1.0,
    el_resolution_deg=1.0,
    park_az_deg=0.0,
    park_el_deg=0.0,
)


def _position(event: Event) -> PositionReply | None:
    return event if isinstance(event, PositionReply) else None


class Gs232Driver(RotatorDriver):
    """Shared GS-232 logic; the subclasses pick the reply dialect."""

    variant: ClassVar[Gs232Variant]
    default_capabilities = _YAESU_G5500
    wire_az_range_deg = (0.0, float(AZ_MAX_DEG))
    wire_el_range_deg = (0.0, float(EL_MAX_DEG))
    default_baud = 9600
    default_policy = LinkPolicy(timeout_s=0.4, retries=3)

    def _host(self) -> Gs232Host:
        return Gs232Host(self.variant)

    def _position_decoder(self) -> EventReplyDecoder[PositionReply]:
        def primed() -> Gs232Host:
            # The host decoder learns which reply to expect from the command it encoded.
            host = self._host()
            host.encode_get_position()
            return host

        return EventReplyDecoder(primed, _position)

    async def _probe(self, transport: ByteTransport) -> None:
        """A fresh connection counts once the controller answers ``C2``."""
        await exchange(
            transport,
            self._host().encode_get_position(),
            decoder=self._position_decoder(),
            clock=self._clock,
            timeout_s=self._policy.timeout_s,
        )

    async def _resync(self, transport: ByteTransport) -> None:
        """A bare CR ends whatever partial line the controller holds (it ignores empty lines)."""
        await transport.write(b"\r")
        await transport.drain()

    async def _raw_get(self) -> tuple[float, float | None]:
        reply = await self._request(self._host().encode_get_position(), self._position_decoder())
        return reply.az_deg, reply.el_deg

    async def _raw_set(self, az_deg: float, el_deg: float) -> None:
        await self._send(self._host().encode_set_position(az_deg, el_deg))

    async def _raw_stop(self) -> None:
        await self._send(self._host().encode_stop())


@register_driver("rotator", "gs232a")
class Gs232aDriver(Gs232Driver):
    """Yaesu GS-232A (Hamlib model 601): ``C2`` answered ``+0aaa+0eee``."""

    variant = Gs232Variant.A
    twin = "gs232a"


@register_driver("rotator", "gs232b")
class Gs232bDriver(Gs232Driver):
    """Yaesu GS-232B (Hamlib model 603): ``C2`` answered ``AZ=aaa  EL=eee``."""

    variant = Gs232Variant.B
    twin = "gs232b"
