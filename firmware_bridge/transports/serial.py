"""Serial transport: ``serial:///dev/ttyUSB0?baud=9600&bytesize=8&parity=N&stopbits=1&rtscts=0``.

Built on pyserial and pyserial-asyncio-fast's transport/protocol API. Reads are driven by
the event loop's reader callback on the non-blocking port, never by a blocking
``Serial.read``; opening and closing the port (which can block in the kernel: termios
set-up, DTR/RTS ioctls, the close-time output drain of a real UART) run in the default
executor inside pyserial-asyncio-fast.

A device that vanishes (EIO or ENXIO on read, as when a USB adapter is unplugged or the
master of a pseudo-terminal is closed) ends the stream at once: the pending ``read()``
raises ``TransportClosed`` naming the URL and the OS error.
"""

from __future__ import annotations

import asyncio
import termios
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import serial
import serial_asyncio_fast

from firmware_bridge.errors import TransportClosed, TransportUrlError
from firmware_bridge.transports.base import AsyncioByteTransport, ByteTransport, InboxProtocol

__all__ = ["SerialSettings", "open_serial", "parse_serial_url"]

_FORM = "serial:///dev/ttyUSB0?baud=9600&bytesize=8&parity=N&stopbits=1&rtscts=0&xonxoff=0"
_MAX_BAUD = 4_000_000
_ALLOWED = {
    "baud": "an integer baud rate within 50..4000000 (e.g. 9600)",
    "bytesize": "one of 5, 6, 7, 8",
    "parity": "one of N, E, O, M, S",
    "stopbits": "one of 1, 1.5, 2",
    "rtscts": "0 or 1",
    "xonxoff": "0 or 1",
}


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """A parsed serial URL: the device path and its line settings."""

    path: str
    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1.0
    rtscts: bool = False
    xonxoff: bool = False


def _bad(url: str, key: str, value: str) -> TransportUrlError:
    return TransportUrlError(
        f"{url!r}: {key}={value!r} is not allowed; {key} must be {_ALLOWED[key]}"
    )


def _parse_flag(url: str, key: str, value: str) -> bool:
    if value not in ("0", "1"):
        raise _bad(url, key, value)
    return value == "1"


def parse_serial_url(url: str) -> SerialSettings:
    """Parse and validate a serial URL; every mistake raises TransportUrlError naming it."""
    parts = urlsplit(url)
    if parts.scheme != "serial":
        raise TransportUrlError(f"{url!r} is not a serial URL; expected {_FORM}")
    if parts.netloc:
        raise TransportUrlError(
            f"{url!r}: the device path must be absolute, written with three slashes "
            f"(serial:///dev/...); {parts.netloc!r} was read as a host name"
        )
    if not parts.path.startswith("/") or parts.path == "/":
        raise TransportUrlError(f"{url!r}: the device path is missing; expected {_FORM}")
    if parts.fragment:
        raise TransportUrlError(f"{url!r}: a serial URL has no #fragment; expected {_FORM}")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise TransportUrlError(
            f"{url!r}: the query must be key=value pairs joined by '&'; expected {_FORM}"
        ) from exc
    values: dict[str, str] = {}
    for key, value in pairs:
        if key not in _ALLOWED:
            allowed = ", ".join(_ALLOWED)
            raise TransportUrlError(f"{url!r}: unknown parameter {key!r}; allowed: {allowed}")
        if key in values:
            raise TransportUrlError(f"{url!r}: parameter {key!r} is given more than once")
        values[key] = value

    default = SerialSettings(path=parts.path)
    baud = values.get("baud", str(default.baud))
    if not (baud.isascii() and baud.isdigit()) or not 50 <= int(baud) <= _MAX_BAUD:
        raise _bad(url, "baud", baud)
    bytesize = values.get("bytesize", str(default.bytesize))
    if bytesize not in ("5", "6", "7", "8"):
        raise _bad(url, "bytesize", bytesize)
    parity = values.get("parity", default.parity)
    if parity.upper() not in ("N", "E", "O", "M", "S"):
        raise _bad(url, "parity", parity)
    stopbits = values.get("stopbits", "1")
    if stopbits not in ("1", "1.5", "2"):
        raise _bad(url, "stopbits", stopbits)
    return SerialSettings(
        path=parts.path,
        baud=int(baud),
        bytesize=int(bytesize),
        parity=parity.upper(),
        stopbits=float(stopbits),
        rtscts=_parse_flag(url, "rtscts", values.get("rtscts", "0")),
        xonxoff=_parse_flag(url, "xonxoff", values.get("xonxoff", "0")),
    )


class _SerialByteTransport(AsyncioByteTransport):
    """AsyncioByteTransport over a pyserial-asyncio-fast SerialTransport."""

    def _flush_os_input(self) -> None:
        port = self._transport.get_extra_info("serial")
        if isinstance(port, serial.Serial) and port.is_open:
            try:
                # tcflush(TCIFLUSH) returns at once (it discards, it does not wait), so it is
                # called here directly rather than through the executor.
                port.reset_input_buffer()
            except (OSError, serial.SerialException, termios.error, TypeError) as exc:
                # A tty that hung up (USB adapter unplugged, pty master closed) fails tcflush
                # with termios.error, which is not an OSError: typed here so that the link
                # declares the device lost and reconnects instead of seeing an unknown error.
                # TypeError: pyserial-asyncio-fast closes a hung-up port in a worker thread,
                # and pyserial drops the descriptor (fd = None) before it clears is_open, so
                # a flush in between hands termios None (seen: an antenna task failed so).
                raise TransportClosed(
                    f"{self._url}: device lost: cannot flush input: {exc}"
                ) from exc


async def open_serial(url: str) -> ByteTransport:
    """Open the serial port named by ``url``; TransportClosed if it cannot be opened."""
    settings = parse_serial_url(url)
    loop = asyncio.get_running_loop()
    try:
        # serial_for_url (open + termios set-up) runs in the executor inside
        # create_serial_connection, because opening a tty can block in the kernel.
        transport, protocol = await serial_asyncio_fast.create_serial_connection(
            loop,
            lambda: InboxProtocol(url, lost_prefix="device lost"),
            settings.path,
            baudrate=settings.baud,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            rtscts=settings.rtscts,
            xonxoff=settings.xonxoff,
        )
    except (OSError, serial.SerialException) as exc:
        raise TransportClosed(f"{url}: cannot open the serial port: {exc}") from exc
    assert isinstance(protocol, InboxProtocol)
    return _SerialByteTransport(url, transport, protocol)
