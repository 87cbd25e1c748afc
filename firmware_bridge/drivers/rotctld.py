"""Client of Hamlib's ``rotctld`` network protocol (TCP, one LF-ended command per line).

``rotctld`` puts any rotator Hamlib supports behind one text protocol; this driver speaks it
with the host side of :mod:`firmware_bridge.protocols.hamlib_net`: ``p`` (get), ``P az el``
(set, two decimals, answered ``RPRT n``), ``S`` (stop), ``\\dump_state`` (limits).

On every connect the driver reads ``\\dump_state``: the daemon's limits become the wire range,
and, unless ``capabilities`` were passed, the capabilities' az/el limits (rates and
accelerations stay this module's defaults, which only size the stall watch: rotctld does not
report them). ``RPRT -n`` replies raise DeviceRejected with ``code`` = -n.
Facts: /work/shared/protocols/hamlib-net.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from firmware_bridge.drivers.base import register_driver
from firmware_bridge.drivers.rotator import RotatorCapabilities, RotatorDriver
from firmware_bridge.link import EventReplyDecoder, LinkPolicy, exchange
from firmware_bridge.protocols.base import Event
from firmware_bridge.protocols.base import Position as PositionReply
from firmware_bridge.protocols.hamlib_net import NetAck, RotctldHost, RotDumpState
from firmware_bridge.transports import ByteTransport

__all__ = ["RotctldDriver"]

R = TypeVar("R")

# rotctld -m 1 (dummy) limits; replaced by the daemon's own on connect.
_ROTCTLD_DEFAULT: RotatorCapabilities = RotatorCapabilities(
    az_min_deg=-180.0,
    az_max_deg=450.0,
    el_min_deg=0.0,
    el_max_deg=90.0,
    az_rate_deg_s=5.0,
    el_rate_deg_s=5.0,
    az_accel_deg_s2=10.0,
    el_accel_deg_s2=10.0,
    az_resolution_deg=0.01,
    el_resolution_deg=0.01,
    park_az_deg=0.0,
    park_el_deg=0.0,
)


def _position(event: Event) -> PositionReply | None:
    return event if isinstance(event, PositionReply) else None


def _ack(event: Event) -> NetAck | None:
    return event if isinstance(event, NetAck) else None


def _dump(event: Event) -> RotDumpState | None:
    return event if isinstance(event, RotDumpState) else None


def _host_expecting(prime: Callable[[RotctldHost], bytes]) -> Callable[[], RotctldHost]:
    """A factory of host codecs that expect the reply to the command ``prime`` encodes."""

    def new() -> RotctldHost:
        host = RotctldHost()
        prime(host)
        return host

    return new


@register_driver("rotator", "rotctld")
class RotctldDriver(RotatorDriver):
    """A rotator behind Hamlib's rotctld (``tcp://127.0.0.1:4533``)."""

    twin = "rotctld"
    default_capabilities = _ROTCTLD_DEFAULT
    # What the host codec accepts; narrowed to the daemon's limits once connected.
    wire_az_range_deg = (-360.0, 720.0)
    wire_el_range_deg = (-90.0, 180.0)
    default_policy = LinkPolicy(timeout_s=2.0, retries=1)

    def __init__(self, url: str, **options: Any) -> None:
        """Create the driver; without ``capabilities`` the daemon's limits are adopted."""
        self._explicit_caps = options.get("capabilities") is not None
        self._daemon: RotDumpState | None = None
        super().__init__(url, **options)

    @property
    def daemon_state(self) -> RotDumpState | None:
        """The daemon's last ``\\dump_state`` (None before the first connect)."""
        return self._daemon

    def _wire_az_range(self) -> tuple[float, float]:
        if self._daemon is None:
            return self.wire_az_range_deg
        return self._daemon.min_az_deg, self._daemon.max_az_deg

    def _wire_el_range(self) -> tuple[float, float]:
        if self._daemon is None:
            return self.wire_el_range_deg
        return self._daemon.min_el_deg, self._daemon.max_el_deg

    def _adopt(self, state: RotDumpState) -> None:
        self._daemon = state
        self._log.info(
            "rotctld limits",
            model=state.model,
            az=(state.min_az_deg, state.max_az_deg),
            el=(state.min_el_deg, state.max_el_deg),
        )
        if self._explicit_caps:
            caps = self._caps
            if not (
                state.min_az_deg <= caps.az_min_deg
                and caps.az_max_deg <= state.max_az_deg
                and state.min_el_deg <= caps.el_min_deg
                and caps.el_max_deg <= state.max_el_deg
            ):
                # Our limits are wider than the daemon's: it will answer RPRT -1 out there.
                self._log.warning("capabilities exceed the rotctld limits; it may refuse targets")
            return
        park_az = min(max(self._caps.park_az_deg, state.min_az_deg), state.max_az_deg)
        park_el = min(max(self._caps.park_el_deg, state.min_el_deg), state.max_el_deg)
        self._caps = self._caps.replace(
            az_min_deg=state.min_az_deg,
            az_max_deg=state.max_az_deg,
            el_min_deg=state.min_el_deg,
            el_max_deg=state.max_el_deg,
            park_az_deg=park_az,
            park_el_deg=park_el,
        )

    async def _probe(self, transport: ByteTransport) -> None:
        """Read ``\\dump_state`` on every connect: it proves the daemon answers and gives limits."""

        def prime(host: RotctldHost) -> bytes:
            return host.encode_dump_state()

        reply = await exchange(
            transport,
            prime(RotctldHost()),
            decoder=EventReplyDecoder(_host_expecting(prime), _dump),
            clock=self._clock,
            timeout_s=self._policy.timeout_s,
        )
        self._adopt(reply)

    async def _call(
        self, prime: Callable[[RotctldHost], bytes], match: Callable[[Event], R | None]
    ) -> R:
        return await self._request(
            prime(RotctldHost()), EventReplyDecoder(_host_expecting(prime), match)
        )

    async def _raw_get(self) -> tuple[float, float | None]:
        reply = await self._call(lambda host: host.encode_get_pos(), _position)
        return reply.az_deg, reply.el_deg

    async def _raw_set(self, az_deg: float, el_deg: float) -> None:
        await self._call(lambda host: host.encode_set_pos(az_deg, el_deg), _ack)

    async def _raw_stop(self) -> None:
        await self._call(lambda host: host.encode_stop(), _ack)
