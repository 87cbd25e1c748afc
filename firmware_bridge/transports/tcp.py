"""TCP transports: ``tcp://host:port`` clients and a small server for simulators.

Both sit on asyncio's transport/protocol layer (see ``base.InboxProtocol``). A peer that
hangs up ends the stream: buffered bytes are still read, then ``TransportClosed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Self
from urllib.parse import urlsplit

from firmware_bridge.errors import TransportClosed, TransportUrlError
from firmware_bridge.transports.base import AsyncioByteTransport, ByteTransport, InboxProtocol

__all__ = ["TcpServer", "open_tcp", "parse_tcp_url", "serve_tcp"]

_FORM = "tcp://HOST:PORT (e.g. tcp://127.0.0.1:4533 or tcp://[::1]:4533)"


def parse_tcp_url(url: str) -> tuple[str, int]:
    """Return ``(host, port)`` of ``tcp://host:port``; raise TransportUrlError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "tcp":
        raise TransportUrlError(f"{url!r} is not a tcp URL; expected {_FORM}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TransportUrlError(
            f"{url!r}: a tcp URL has no path, query or fragment; expected {_FORM}"
        )
    if parts.username is not None or parts.password is not None:
        raise TransportUrlError(f"{url!r}: credentials are not allowed; expected {_FORM}")
    host = parts.hostname
    if not host:
        raise TransportUrlError(f"{url!r}: the host is missing; expected {_FORM}")
    try:
        port = parts.port
    except ValueError as exc:
        raise TransportUrlError(
            f"{url!r}: the port must be an integer within 1..65535; expected {_FORM}"
        ) from exc
    if port is None or port == 0:
        raise TransportUrlError(
            f"{url!r}: the port must be an integer within 1..65535; expected {_FORM}"
        )
    return host, port


async def open_tcp(url: str) -> ByteTransport:
    """Connect to ``tcp://host:port``; TransportClosed if the connection is refused."""
    host, port = parse_tcp_url(url)
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_connection(
            lambda: InboxProtocol(url, lost_prefix="connection lost"), host, port
        )
    except OSError as exc:
        raise TransportClosed(f"{url}: cannot connect: {exc}") from exc
    assert isinstance(transport, asyncio.Transport)
    return AsyncioByteTransport(url, transport, protocol)


Handler = Callable[[ByteTransport], Awaitable[None]]


class _ServerProtocol(InboxProtocol):
    def __init__(self, server: TcpServer) -> None:
        super().__init__(server.url, lost_prefix="connection lost")
        self._server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Wrap the new connection and start the server's handler on it."""
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        url = f"{self._server.url} (client {peer})" if peer else self._server.url
        self._server._start_handler(AsyncioByteTransport(url, transport, self))


class TcpServer:
    """A listening socket that runs ``handler(transport)`` for every client."""

    def __init__(self, handler: Handler) -> None:
        """Create an idle server; use :func:`serve_tcp` instead."""
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._host = ""
        self._port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[ByteTransport] = set()

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """The ``tcp://`` URL clients open."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"tcp://{host}:{self._port}"

    async def _bind(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._host = host
        try:
            self._server = await loop.create_server(lambda: _ServerProtocol(self), host, port)
        except OSError as exc:
            raise TransportClosed(f"tcp://{host}:{port}: cannot listen: {exc}") from exc
        self._port = int(self._server.sockets[0].getsockname()[1])

    def _start_handler(self, transport: ByteTransport) -> None:
        self._connections.add(transport)
        task = asyncio.get_running_loop().create_task(
            self._run_handler(transport), name=f"tcp-handler {transport.url}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, transport: ByteTransport) -> None:
        try:
            # A client hanging up ends its handler; that is not an error of the server.
            with contextlib.suppress(TransportClosed):
                await self._handler(transport)
        finally:
            self._connections.discard(transport)
            await transport.close()

    async def close(self) -> None:
        """Stop listening, close every connection and wait for the handlers to end."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for transport in list(self._connections):
            await transport.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        """Use the server as a context manager; it closes on exit."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the server."""
        await self.close()


async def serve_tcp(host: str, port: int, handler: Handler) -> TcpServer:
    """Listen on ``host:port`` (0 picks a free port) and run ``handler`` per client."""
    server = TcpServer(handler)
    await server._bind(host, port)
    return server
