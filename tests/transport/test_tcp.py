"""TCP transport against loopback servers on port 0 (asyncio's own, and serve_tcp)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.errors import TransportClosed
from firmware_bridge.transports import ByteTransport, open_transport, serve_tcp

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HANG_GUARD_S = 10.0


async def read_exactly(transport: ByteTransport, n: int) -> bytes:
    """Read until ``n`` bytes arrived."""
    out = b""
    while len(out) < n:
        out += await asyncio.wait_for(transport.read(n - len(out)), HANG_GUARD_S)
    return out


@pytest.fixture
async def rotctld_like() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A streams server on 127.0.0.1:0: each line gets 'RPRT 0'; 'q' hangs up."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            received.append(line)
            if line.strip() == b"q":
                break
            writer.write(b"RPRT 0\n")
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, received
    finally:
        server.close()
        await server.wait_closed()


async def test_tcp_round_trip(rotctld_like: tuple[int, list[bytes]]) -> None:
    """A line sent over tcp:// reaches the server and its reply comes back."""
    port, received = rotctld_like
    client = await open_transport(f"tcp://127.0.0.1:{port}", clock=VirtualClock(T0))
    try:
        await client.write(b"P 180.00 45.00\n")
        await client.drain()
        assert await read_exactly(client, 7) == b"RPRT 0\n"
        assert received == [b"P 180.00 45.00\n"]
    finally:
        await client.close()
    assert client.closed


async def test_server_hangup_raises_transport_closed(rotctld_like: tuple[int, list[bytes]]) -> None:
    """When the server closes the connection, the client's read raises TransportClosed."""
    port, _ = rotctld_like
    client = await open_transport(f"tcp://127.0.0.1:{port}", clock=VirtualClock(T0))
    try:
        await client.write(b"q\n")
        with pytest.raises(TransportClosed, match="peer closed"):
            await asyncio.wait_for(client.read(), HANG_GUARD_S)
        with pytest.raises(TransportClosed):
            await client.write(b"p\n")
    finally:
        await client.close()


async def test_refused_connection_is_transport_closed() -> None:
    """Connecting to a loopback port nobody listens on raises TransportClosed naming the URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    with pytest.raises(TransportClosed, match=f"{url}: cannot connect"):
        await open_transport(url, clock=VirtualClock(T0))


async def test_serve_tcp_runs_handler_per_client() -> None:
    """serve_tcp hands each client to the handler as a ByteTransport."""

    async def shout(transport: ByteTransport) -> None:
        async for chunk in transport:
            await transport.write(chunk.upper())

    async with await serve_tcp("127.0.0.1", 0, shout) as server:
        assert server.port > 0
        assert server.url == f"tcp://127.0.0.1:{server.port}"
        clients = [await open_transport(server.url, clock=VirtualClock(T0)) for _ in range(2)]
        for i, client in enumerate(clients):
            await client.write(f"get_pos {i}".encode())
            assert await read_exactly(client, 9) == f"GET_POS {i}".encode()
    for client in clients:
        with pytest.raises(TransportClosed):
            await asyncio.wait_for(client.read(), HANG_GUARD_S)
        await client.close()


async def test_client_reset_input_drops_unread_reply(rotctld_like: tuple[int, list[bytes]]) -> None:
    """reset_input() discards a reply that arrived but was not read."""
    port, _ = rotctld_like
    client = await open_transport(f"tcp://127.0.0.1:{port}", clock=VirtualClock(T0))
    try:
        await client.write(b"p\n")
        assert await asyncio.wait_for(client.read(1), HANG_GUARD_S) == b"R"
        # The server wrote the 7-byte line at once; on loopback it arrives as one segment,
        # so the other 6 bytes are buffered here now.
        assert await client.reset_input() == 6
        await client.write(b"S\n")
        assert await read_exactly(client, 7) == b"RPRT 0\n"
    finally:
        await client.close()
