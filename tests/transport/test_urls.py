"""Transport URL parsing: every malformed URL gets a precise TransportUrlError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.errors import TransportUrlError
from firmware_bridge.transports import (
    SerialSettings,
    open_transport,
    parse_loop_url,
    parse_serial_url,
    parse_tcp_url,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_serial_url_with_every_parameter() -> None:
    """All serial parameters are read into SerialSettings."""
    url = "serial:///dev/ttyUSB0?baud=115200&bytesize=7&parity=e&stopbits=2&rtscts=1&xonxoff=0"
    assert parse_serial_url(url) == SerialSettings(
        path="/dev/ttyUSB0",
        baud=115200,
        bytesize=7,
        parity="E",
        stopbits=2.0,
        rtscts=True,
        xonxoff=False,
    )


def test_serial_url_defaults_are_9600_8n1() -> None:
    """A bare serial URL means 9600 baud, 8 data bits, no parity, 1 stop bit, no flow control."""
    settings = parse_serial_url("serial:///dev/pts/3")
    assert (settings.path, settings.baud, settings.bytesize) == ("/dev/pts/3", 9600, 8)
    assert (settings.parity, settings.stopbits, settings.rtscts) == ("N", 1.0, False)


def test_tcp_and_loop_urls_parse() -> None:
    """Host and port of tcp URLs (IPv6 in brackets) and the name of loop URLs are extracted."""
    assert parse_tcp_url("tcp://127.0.0.1:4533") == ("127.0.0.1", 4533)
    assert parse_tcp_url("tcp://[::1]:4532") == ("::1", 4532)
    assert parse_loop_url("loop://rot1") == "rot1"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://host/file", r"scheme 'ftp' is not supported; allowed schemes are serial://"),
        ("/dev/ttyUSB0", r"no scheme is not supported.*serial:///dev/ttyUSB0"),
        ("pty:///dev/pts/1", r"served, not opened.*PtyEndpoint"),
        ("serial://dev/ttyUSB0", r"three slashes.*'dev' was read as a host"),
        ("serial://", r"device path is missing"),
        ("serial:///dev/ttyUSB0?speed=9600", r"unknown parameter 'speed'; allowed: baud, "),
        ("serial:///dev/ttyUSB0?baud=fast", r"baud='fast' is not allowed; baud must be an integer"),
        ("serial:///dev/ttyUSB0?baud=10", r"baud='10' is not allowed.*50\.\.4000000"),
        ("serial:///dev/ttyUSB0?bytesize=9", r"bytesize='9'.*one of 5, 6, 7, 8"),
        ("serial:///dev/ttyUSB0?parity=X", r"parity='X'.*one of N, E, O, M, S"),
        ("serial:///dev/ttyUSB0?stopbits=3", r"stopbits='3'.*one of 1, 1\.5, 2"),
        ("serial:///dev/ttyUSB0?rtscts=yes", r"rtscts='yes'.*0 or 1"),
        ("serial:///dev/ttyUSB0?baud=9600&baud=4800", r"'baud' is given more than once"),
        ("serial:///dev/ttyUSB0?baud", r"key=value pairs"),
        ("serial:///dev/ttyUSB0#x", r"no #fragment"),
        ("tcp://127.0.0.1", r"'tcp://127\.0\.0\.1': the port must be an integer within 1\.\.65535"),
        ("tcp://127.0.0.1:99999", r"port must be an integer within 1\.\.65535"),
        ("tcp://127.0.0.1:0", r"port must be an integer within 1\.\.65535"),
        ("tcp://:4533", r"the host is missing"),
        ("tcp://127.0.0.1:4533/rot", r"no path, query or fragment"),
        ("tcp://user:pw@127.0.0.1:4533", r"credentials are not allowed"),
        ("loop://", r"name '': a loop name is 1-64 characters"),
        ("loop://rot 1", r"name 'rot 1'"),
        ("loop://rot1/x", r"no path, query or fragment"),
    ],
)
async def test_bad_urls_are_refused_precisely(url: str, match: str) -> None:
    """open_transport names the URL, the faulty part and what is allowed."""
    with pytest.raises(TransportUrlError, match=match) as info:
        await open_transport(url, clock=VirtualClock(T0))
    assert repr(url) in str(info.value)


def test_url_error_is_also_a_value_error() -> None:
    """TransportUrlError can be caught as ValueError (it is bad input)."""
    with pytest.raises(ValueError, match="bytesize"):
        parse_serial_url("serial:///dev/ttyS0?bytesize=4")
