"""Byte transports: one ``ByteTransport`` interface, opened from a URL.

==========================================================  =================================
URL                                                         transport
==========================================================  =================================
``serial:///dev/ttyUSB0?baud=9600&bytesize=8&parity=N``     pyserial + pyserial-asyncio-fast
``&stopbits=1&rtscts=0&xonxoff=0`` (all parameters          (defaults 9600 8N1, no flow
optional)                                                   control)
``tcp://127.0.0.1:4533``                                    asyncio (client)
``loop://rot1``                                             in-memory, via a ``LoopRegistry``
==========================================================  =================================

Served endpoints are created directly: :class:`PtyEndpoint` (a device on ``/dev/pts/N``),
:func:`serve_tcp`, :meth:`LoopRegistry.listen`, and :func:`loop_pair` for tests.
See :mod:`firmware_bridge.transports.base` for the read/write/close contract.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from firmware_bridge.clock import Clock
from firmware_bridge.errors import TransportUrlError
from firmware_bridge.transports.base import ByteTransport
from firmware_bridge.transports.loop import (
    Delivery,
    FaultHook,
    FaultInjector,
    LoopListener,
    LoopRegistry,
    LoopTransport,
    loop_pair,
    parse_loop_url,
)
from firmware_bridge.transports.pty import PtyEndpoint
from firmware_bridge.transports.serial import SerialSettings, open_serial, parse_serial_url
from firmware_bridge.transports.tcp import TcpServer, open_tcp, parse_tcp_url, serve_tcp

__all__ = [
    "SCHEMES",
    "ByteTransport",
    "Delivery",
    "FaultHook",
    "FaultInjector",
    "LoopListener",
    "LoopRegistry",
    "LoopTransport",
    "PtyEndpoint",
    "SerialSettings",
    "TcpServer",
    "loop_pair",
    "open_transport",
    "parse_loop_url",
    "parse_serial_url",
    "parse_tcp_url",
    "serve_tcp",
]

SCHEMES = ("serial", "tcp", "loop")
"""URL schemes :func:`open_transport` accepts."""

_EXAMPLES = "serial:///dev/ttyUSB0?baud=9600, tcp://127.0.0.1:4533, loop://rot1"


async def open_transport(
    url: str, *, clock: Clock, loop_registry: LoopRegistry | None = None
) -> ByteTransport:
    """Open the transport ``url`` names.

    ``clock`` is what loop links delay on; ``loop_registry`` is required for ``loop://``.
    A malformed URL raises TransportUrlError naming the URL and what is allowed; a
    well-formed one that cannot be reached (no such device, connection refused, nobody
    listening) raises TransportClosed.
    """
    if not isinstance(url, str):
        raise TransportUrlError(f"transport URL {url!r} is not a string; e.g. {_EXAMPLES}")
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme == "serial":
        return await open_serial(url)
    if scheme == "tcp":
        return await open_tcp(url)
    if scheme == "loop":
        name = parse_loop_url(url)
        if loop_registry is None:
            raise TransportUrlError(
                f"{url!r}: loop:// URLs are resolved in a LoopRegistry; "
                "pass open_transport(url, clock=..., loop_registry=registry)"
            )
        return await loop_registry.connect(name)
    if scheme == "pty":
        raise TransportUrlError(
            f"{url!r}: a pty is served, not opened: create it with PtyEndpoint.open() and "
            "let clients open serial:///dev/pts/N"
        )
    allowed = ", ".join(f"{s}://" for s in SCHEMES)
    shown = f"scheme {scheme!r}" if scheme else "no scheme"
    raise TransportUrlError(
        f"{url!r}: {shown} is not supported; allowed schemes are {allowed} (e.g. {_EXAMPLES})"
    )
