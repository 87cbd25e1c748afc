"""A real pseudo-terminal served by PtyEndpoint and opened by our serial transport.

Real file descriptors and the real event loop are used; ``asyncio.wait_for`` with a
generous real timeout only guards against a hang, it is not what is being tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.errors import TransportClosed
from firmware_bridge.transports import ByteTransport, PtyEndpoint, open_transport

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HANG_GUARD_S = 10.0


@pytest.fixture
async def endpoint() -> AsyncIterator[PtyEndpoint]:
    """A fresh pty endpoint, closed after the test."""
    ep = await PtyEndpoint.open()
    try:
        yield ep
    finally:
        await ep.close()


async def open_client(ep: PtyEndpoint) -> ByteTransport:
    """Open the slave side with our serial transport at 9600 baud."""
    clock = VirtualClock(T0)
    return await open_transport(f"serial://{ep.path}?baud=9600", clock=clock)


async def read_exactly(transport: ByteTransport, n: int) -> bytes:
    """Read until ``n`` bytes arrived (a tty may hand them over in pieces)."""
    out = b""
    while len(out) < n:
        out += await asyncio.wait_for(transport.read(n - len(out)), HANG_GUARD_S)
    return out


async def test_client_and_endpoint_exchange_bytes(endpoint: PtyEndpoint) -> None:
    """Bytes cross the pty unchanged in both directions (raw mode: no echo, no CR/LF mapping)."""
    assert endpoint.path.startswith("/dev/pts/")
    client = await open_client(endpoint)
    try:
        command = b"AZ180.0 EL45.0\r\n\x03\x13"  # ^C and ^S must not act as signals
        await client.write(command)
        assert await read_exactly(endpoint, len(command)) == command
        await endpoint.write(b"+0180+0045\r")
        await endpoint.drain()
        assert await read_exactly(client, 11) == b"+0180+0045\r"
    finally:
        await client.close()


async def test_closing_endpoint_fails_pending_client_read(endpoint: PtyEndpoint) -> None:
    """Closing the master makes the client's waiting read raise TransportClosed, not hang."""
    client = await open_client(endpoint)
    try:
        pending = asyncio.ensure_future(client.read())
        await endpoint.write(b"x")
        assert await asyncio.wait_for(pending, HANG_GUARD_S) == b"x"
        pending = asyncio.ensure_future(client.read())
        await endpoint.close()
        with pytest.raises(TransportClosed, match=r"serial:///dev/pts/\d+.*device lost"):
            await asyncio.wait_for(pending, HANG_GUARD_S)
        assert client.closed
        with pytest.raises(TransportClosed):
            await client.write(b"anyone?")
    finally:
        await client.close()


async def test_endpoint_survives_client_reconnect(endpoint: PtyEndpoint) -> None:
    """A client closing the port does not end the device side; the next client is served."""
    first = await open_client(endpoint)
    await first.write(b"one")
    assert await read_exactly(endpoint, 3) == b"one"
    await first.close()
    assert not endpoint.closed
    second = await open_client(endpoint)
    try:
        await second.write(b"two")
        assert await read_exactly(endpoint, 3) == b"two"
    finally:
        await second.close()


async def test_client_reset_input_drops_stale_bytes(endpoint: PtyEndpoint) -> None:
    """reset_input() on the serial client discards what the device sent before it."""
    client = await open_client(endpoint)
    try:
        await endpoint.write(b"stale reply\r")
        await endpoint.drain()
        await client.reset_input()
        await endpoint.write(b"fresh\r")
        assert await read_exactly(client, 6) == b"fresh\r"
    finally:
        await client.close()


async def test_endpoint_reset_input_drops_what_client_wrote(endpoint: PtyEndpoint) -> None:
    """reset_input() on the device side discards unread host bytes."""
    client = await open_client(endpoint)
    try:
        await client.write(b"old")
        await client.drain()
        assert await read_exactly(endpoint, 1) == b"o"
        await endpoint.reset_input()
        await client.write(b"new")
        assert await read_exactly(endpoint, 3) == b"new"
    finally:
        await client.close()


async def test_endpoint_read_raises_after_close(endpoint: PtyEndpoint) -> None:
    """The device side's own pending read raises TransportClosed when it is closed."""
    pending = asyncio.ensure_future(endpoint.read())
    await endpoint.close()
    with pytest.raises(TransportClosed, match="closed locally"):
        await asyncio.wait_for(pending, HANG_GUARD_S)
    await endpoint.close()


async def test_opening_missing_device_names_it(tmp_path: Path) -> None:
    """A serial URL for a device that does not exist raises TransportClosed naming the path."""
    missing = tmp_path / "ttyUSB9"
    with pytest.raises(TransportClosed, match=f"serial://{missing}.*cannot open"):
        await open_transport(f"serial://{missing}", clock=VirtualClock(T0))


async def test_reset_input_on_a_hung_up_tty_is_a_typed_closed_error(
    endpoint: PtyEndpoint,
) -> None:
    """tcflush on a hung-up tty raises TransportClosed naming the URL, not termios.error."""
    client = await open_client(endpoint)
    try:
        await endpoint.close()
        # No await in between: the reader callback has not yet seen the hang-up, so the
        # flush itself meets the dead tty (the path a request takes before its write).
        with pytest.raises(TransportClosed, match=r"serial:///dev/pts/.*device lost"):
            await client.reset_input()
    finally:
        await client.close()


async def test_reset_input_while_the_port_closes_is_a_typed_closed_error(
    endpoint: PtyEndpoint,
) -> None:
    """A flush that meets the port mid-close (pyserial has dropped its descriptor but not
    yet cleared is_open, as its close in a worker thread leaves it for a moment) raises
    TransportClosed naming the URL, not the TypeError termios gives for a None descriptor."""
    client = await open_client(endpoint)
    try:
        port = client._transport.get_extra_info("serial")  # type: ignore[attr-defined]
        assert port.is_open
        fd, port.fd = port.fd, None  # the state between pyserial's two steps of close()
        try:
            with pytest.raises(TransportClosed, match=r"serial:///dev/pts/.*device lost"):
                await client.reset_input()
        finally:
            port.fd = fd
    finally:
        await client.close()


async def test_closing_endpoint_calls_the_lost_callback_without_a_read(
    endpoint: PtyEndpoint,
) -> None:
    """Closing the master calls on_lost's callback once, with nobody reading or writing (a
    link can declare the device gone at once); a local close calls nobody."""
    client = await open_client(endpoint)
    other = await open_client(endpoint)
    reasons: list[str] = []
    gone = asyncio.get_running_loop().create_future()

    def lost(reason: str) -> None:
        reasons.append(reason)
        if not gone.done():
            gone.set_result(None)

    try:
        client.on_lost(lost)
        await other.close()  # closing another client is not a loss of this one
        await endpoint.close()
        await asyncio.wait_for(gone, HANG_GUARD_S)
        assert len(reasons) == 1
        assert "device lost" in reasons[0]
        late: list[str] = []
        client.on_lost(late.append)  # registered after the loss: called at once
        assert late == reasons
    finally:
        await client.close()


async def test_a_local_close_is_no_loss(endpoint: PtyEndpoint) -> None:
    """Closing the client itself does not call its on_lost callback."""
    client = await open_client(endpoint)
    reasons: list[str] = []
    client.on_lost(reasons.append)
    await client.close()
    await endpoint.write(b"after")
    assert reasons == []
