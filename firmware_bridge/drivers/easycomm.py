"""EasyComm I / II / III rotator drivers (ASCII, LF-ended lines, tenths of a degree).

* ``easycomm2`` / ``easycomm3``: ``AZaaa.a ELeee.e`` sets, ``AZ EL`` queries (reply
  ``AZaaa.a ELeee.e``), ``SA SE`` stops. Level III only adds velocity and status registers,
  which these drivers do not need.
* ``easycomm1``: **no readback.** EasyComm I is one set-only line
  (``AZaaa.a ELeee.e UP000 XXX DN000 XXX``) and the controller never answers, so
  ``get_position()`` raises LocalProtocolError, a lost controller goes unnoticed until the
  transport itself fails, and stalls cannot be detected. ``stop()`` sends ``SA SE`` (what
  Hamlib sends for every level), which a strict level-I controller may ignore.

Bytes follow Hamlib 4.5.4 models 201/202/204 (/work/shared/protocols/easycomm.md): values
``%.1f``, 19200 baud default, 200 ms timeout.
"""

from __future__ import annotations

from typing import ClassVar

from firmware_bridge.drivers.base import register_driver
from firmware_bridge.drivers.rotator import RotatorCapabilities, RotatorDriver
from firmware_bridge.link import EventReplyDecoder, LinkPolicy, exchange
from firmware_bridge.protocols.base import Event
from firmware_bridge.protocols.base import Position as PositionReply
from firmware_bridge.protocols.easycomm import (
    AZ_MAX_DEG,
    EL_MAX_DEG,
    EL_MIN_DEG,
    EasycommHost,
    EasycommVariant,
)
from firmware_bridge.transports import ByteTransport

__all__ = ["Easycomm1Driver", "Easycomm2Driver", "Easycomm3Driver", "EasycommDriver"]

# A typical amateur az/el rotator behind an EasyComm controller: one turn of azimuth (the
# range Hamlib allows for EasyComm), 0..180 elevation, tenths of a degree. Rates are common
# values for such controllers, not a specific product's data sheet.
_EASYCOMM_ROTATOR: RotatorCapabilities = RotatorCapabilities(
    az_min_deg=0.0,
    az_max_deg=360.0,
    el_min_deg=0.0,
    el_max_deg=180.0,
    az_rate_deg_s=4.0,
    el_rate_deg_s=4.0,
    az_accel_deg_s2=8.0,
    el_accel_deg_s2=8.0,
    az_resolution_deg=0.1,
    el_resolution_deg=0.1,
    park_az_deg=0.0,
    park_el_deg=0.0,
)


def _both_axes(event: Event) -> PositionReply | None:
    # A controller may volunteer a bare "AZaaa.a" line; only a full reply answers "AZ EL".
    if isinstance(event, PositionReply) and event.el_deg is not None:
        return event
    return None


class EasycommDriver(RotatorDriver):
    """Shared EasyComm logic; the subclasses pick the protocol level."""

    variant: ClassVar[EasycommVariant]
    default_capabilities = _EASYCOMM_ROTATOR
    wire_az_range_deg = (0.0, float(AZ_MAX_DEG))
    wire_el_range_deg = (float(EL_MIN_DEG), float(EL_MAX_DEG))
    default_baud = 19200
    default_policy = LinkPolicy(timeout_s=0.2, retries=3)

    def _host(self) -> EasycommHost:
        return EasycommHost(self.variant)

    def _position_decoder(self) -> EventReplyDecoder[PositionReply]:
        return EventReplyDecoder(self._host, _both_axes)

    async def _probe(self, transport: ByteTransport) -> None:
        """A fresh connection counts once the controller answers ``AZ EL`` (levels II, III)."""
        if not self._caps.readback:
            return
        await exchange(
            transport,
            self._host().encode_get_position(),
            decoder=self._position_decoder(),
            clock=self._clock,
            timeout_s=self._policy.timeout_s,
        )

    async def _resync(self, transport: ByteTransport) -> None:
        """A bare LF ends whatever partial line the controller holds."""
        await transport.write(b"\n")
        await transport.drain()

    async def _raw_get(self) -> tuple[float, float | None]:
        reply = await self._request(self._host().encode_get_position(), self._position_decoder())
        return reply.az_deg, reply.el_deg

    async def _raw_set(self, az_deg: float, el_deg: float) -> None:
        await self._send(self._host().encode_set_position(az_deg, el_deg))

    async def _raw_stop(self) -> None:
        await self._send(self._host().encode_stop())


@register_driver("rotator", "easycomm1")
class Easycomm1Driver(EasycommDriver):
    """EasyComm I (Hamlib model 201): set-only, no position readback (see module docstring)."""

    variant = EasycommVariant.I
    twin = "easycomm1"
    default_capabilities = _EASYCOMM_ROTATOR.replace(readback=False)


@register_driver("rotator", "easycomm2")
class Easycomm2Driver(EasycommDriver):
    """EasyComm II (Hamlib model 202)."""

    variant = EasycommVariant.II
    twin = "easycomm2"


@register_driver("rotator", "easycomm3")
class Easycomm3Driver(EasycommDriver):
    """EasyComm III (Hamlib model 204); driven like level II."""

    variant = EasycommVariant.III
    twin = "easycomm3"
