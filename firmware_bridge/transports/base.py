"""The ``ByteTransport`` interface and the receive buffer the concrete transports share.

A transport is a byte pipe and nothing more: it knows no protocol, frames nothing and
never times out on its own (timeouts live in ``CommandLink``, on the injected clock).
Its contract:

* ``read()`` waits for at least one byte and returns what arrived (at most ``max_bytes``).
  It never returns ``b""``: a peer that hung up, a device that vanished (EIO/ENXIO) or a
  transport closed locally raises :class:`~firmware_bridge.errors.TransportClosed`.
  Bytes that arrived before the peer hung up are still returned first.
* ``write()`` queues bytes (it does not wait for the wire); ``drain()`` waits until the
  queue is below its high-water mark, like ``asyncio.StreamWriter.drain``.
* ``reset_input()`` discards input that has arrived but not been read (stale replies
  before a retry).
* ``close()`` is explicit and idempotent and never waits for unsent bytes (call
  ``drain()`` first when they matter). It is also what leaving ``async with`` does.
* ``async for chunk in transport`` yields chunks until the link is lost, then raises
  ``TransportClosed`` inside the loop (as aiomqtt does).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Self

from firmware_bridge.errors import TransportClosed

__all__ = ["ByteTransport"]


class ByteTransport(ABC):
    """An open, bidirectional byte pipe; see the module docstring for the contract."""

    def __init__(self, url: str) -> None:
        """Remember the URL this transport was opened from (for messages and logs)."""
        self._url = url
        self._entered = False

    @property
    def url(self) -> str:
        """The URL this transport was opened from."""
        return self._url

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once this end can no longer be used (closed locally, peer gone, link cut)."""

    @abstractmethod
    async def read(self, max_bytes: int = 4096) -> bytes:
        """Wait for bytes and return 1..max_bytes of them; raise TransportClosed when closed."""

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Queue ``data`` for sending; raise TransportClosed when closed."""

    @abstractmethod
    async def drain(self) -> None:
        """Wait until queued output is below the high-water mark; raise TransportClosed if lost."""

    @abstractmethod
    async def reset_input(self) -> int:
        """Discard input received but not yet read; return how many buffered bytes were dropped.

        Bytes the operating system flushed on our behalf (tcflush) cannot be counted.
        """

    @abstractmethod
    async def close(self) -> None:
        """Close this end now; idempotent. Pending reads raise TransportClosed."""

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once when the far end goes away (device unplugged, pty
        or socket closed by the peer, link cut), not on a local close.

        So that a link can declare a vanished device at once instead of at its next
        request. Transports that cannot tell never call it (the default).
        """
        del callback  # this transport cannot tell: nothing to watch

    async def __aenter__(self) -> Self:
        """Enter once; the transport is closed on exit. Re-entering is an error."""
        if self._entered:
            raise RuntimeError(
                f"{self._url}: this transport is already inside an 'async with'; enter it once"
            )
        if self.closed:
            raise TransportClosed(f"{self._url}: cannot enter a closed transport; open a new one")
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the transport."""
        self._entered = False
        await self.close()

    def __aiter__(self) -> Self:
        """Iterate over received chunks; a lost link raises TransportClosed inside the loop."""
        return self

    async def __anext__(self) -> bytes:
        """Return the next received chunk."""
        return await self.read()

    def __repr__(self) -> str:
        """Show the URL and whether the transport is closed."""
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self._url} {state}>"


def check_max_bytes(url: str, max_bytes: int) -> None:
    """Refuse a read size that cannot return anything."""
    if max_bytes < 1:
        raise ValueError(f"{url}: read(max_bytes={max_bytes}): max_bytes must be >= 1")


class Inbox:
    """Received bytes waiting to be read, plus the reason the stream ended (if it did).

    With ``coalesce`` a read returns as many buffered bytes as fit in ``max_bytes``;
    without it a read returns at most one delivered chunk, so that the chunk boundaries a
    fault injector creates reach the reader exactly as injected.
    """

    def __init__(self, url: str, *, coalesce: bool) -> None:
        """Create an empty inbox for the transport at ``url``."""
        self._url = url
        self._coalesce = coalesce
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._end_reason: str | None = None

    @property
    def ended(self) -> bool:
        """True once no more bytes will be fed."""
        return self._end_reason is not None

    @property
    def buffered(self) -> int:
        """Bytes waiting to be read."""
        return sum(len(c) for c in self._chunks)

    def feed(self, data: bytes) -> None:
        """Add received bytes and wake a waiting reader (ignored once the stream ended)."""
        if not data or self._end_reason is not None:
            return
        self._chunks.append(bytes(data))
        self._wake()

    def end(self, reason: str, *, discard: bool = False) -> None:
        """Mark the stream ended; readers get what is buffered (unless ``discard``), then raise."""
        if self._end_reason is None:
            self._end_reason = reason
        if discard:
            self._chunks.clear()
        self._wake()

    def clear(self) -> int:
        """Drop everything buffered and return how many bytes that was."""
        dropped = self.buffered
        self._chunks.clear()
        return dropped

    async def get(self, max_bytes: int) -> bytes:
        """Return 1..max_bytes buffered bytes, waiting for them; raise when the stream ended."""
        check_max_bytes(self._url, max_bytes)
        while not self._chunks:
            if self._end_reason is not None:
                raise TransportClosed(self._end_reason)
            if self._waiter is not None:
                # Two readers would race for the same bytes; the caller has a bug.
                raise RuntimeError(f"{self._url}: read() is already waiting in another task")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not self._coalesce:
            head = self._chunks.popleft()
            if len(head) > max_bytes:
                self._chunks.appendleft(head[max_bytes:])
                head = head[:max_bytes]
            return head
        out = bytearray()
        while self._chunks and len(out) < max_bytes:
            head = self._chunks.popleft()
            room = max_bytes - len(out)
            if len(head) > room:
                self._chunks.appendleft(head[room:])
                head = head[:room]
            out += head
        return bytes(out)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class InboxProtocol(asyncio.Protocol):
    """An asyncio protocol that feeds an :class:`Inbox` and tracks write flow control.

    Shared by the TCP and serial transports, which both sit on asyncio's transport/protocol
    layer (the layer asyncio streams are built on) so that ``reset_input()`` can discard
    buffered input without reaching into ``StreamReader`` internals.
    """

    def __init__(self, url: str, *, lost_prefix: str) -> None:
        """Create the protocol; ``lost_prefix`` starts the message of a lost connection."""
        self.inbox = Inbox(url, coalesce=True)
        self._url = url
        self._lost_prefix = lost_prefix
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost_reason: str | None = None
        self.lost_callbacks: list[Callable[[str], None]] = []

    def data_received(self, data: bytes) -> None:
        """Buffer received bytes."""
        self.inbox.feed(data)

    def eof_received(self) -> bool:
        """The peer hung up: end the stream (buffered bytes stay readable)."""
        self._mark_lost(f"{self._url}: {self._lost_prefix}: the peer closed the connection")
        return False  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        """End the stream and release drain waiters."""
        if exc is None:
            self._mark_lost(f"{self._url}: {self._lost_prefix}: connection closed")
        else:
            self._mark_lost(f"{self._url}: {self._lost_prefix}: {exc}")
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        """The transport's write buffer is above its high-water mark."""
        self._paused = True

    def resume_writing(self) -> None:
        """The write buffer drained below its low-water mark."""
        self._paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    async def wait_writable(self) -> None:
        """Wait while writing is paused; raise TransportClosed if the connection is lost."""
        while self._paused and self.lost_reason is None:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter
        if self.lost_reason is not None:
            raise TransportClosed(self.lost_reason)

    def _mark_lost(self, reason: str) -> None:
        if self.lost_reason is None:
            self.lost_reason = reason
            callbacks, self.lost_callbacks = self.lost_callbacks, []
            for callback in callbacks:
                callback(reason)
        self.inbox.end(self.lost_reason)


class AsyncioByteTransport(ByteTransport):
    """A ByteTransport over an asyncio transport and an :class:`InboxProtocol`."""

    def __init__(self, url: str, transport: asyncio.Transport, protocol: InboxProtocol) -> None:
        """Wrap an already connected asyncio transport."""
        super().__init__(url)
        self._transport = transport
        self._protocol = protocol
        self._closed_locally = False

    @property
    def closed(self) -> bool:
        """True once closed locally or the connection was lost."""
        return self._closed_locally or self._protocol.lost_reason is not None

    async def read(self, max_bytes: int = 4096) -> bytes:
        """Wait for bytes; raise TransportClosed when the connection ended."""
        return await self._protocol.inbox.get(max_bytes)

    async def write(self, data: bytes) -> None:
        """Queue bytes on the asyncio transport."""
        self._check_writable()
        self._transport.write(bytes(data))

    async def drain(self) -> None:
        """Wait for write flow control to release."""
        self._check_writable()
        await self._protocol.wait_writable()

    async def reset_input(self) -> int:
        """Discard buffered input (and the operating system's, where the transport can)."""
        self._flush_os_input()
        return self._protocol.inbox.clear()

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """See :meth:`ByteTransport.on_lost` (at once if the connection is lost already)."""
        if self._closed_locally:
            return
        if self._protocol.lost_reason is not None:
            callback(self._protocol.lost_reason)
        else:
            self._protocol.lost_callbacks.append(callback)

    async def close(self) -> None:
        """Abort the connection (unsent bytes are dropped) and wait until it is gone."""
        if not self._closed_locally:
            self._closed_locally = True
            # A local close is no loss of the far end.
            self._protocol.lost_callbacks.clear()
            self._protocol.inbox.end(f"{self._url}: closed locally", discard=True)
            if not self._transport.is_closing():
                # abort(), not close(): close() waits for the peer to take queued bytes and
                # would hang on a peer that stopped reading; drain() is the explicit way.
                self._transport.abort()
        if not self._protocol.lost.done():
            await asyncio.shield(self._protocol.lost)

    def _flush_os_input(self) -> None:
        """Flush input held by the operating system; nothing to do for sockets."""

    def _check_writable(self) -> None:
        if self._closed_locally:
            raise TransportClosed(f"{self._url}: closed locally; open a new transport")
        if self._protocol.lost_reason is not None:
            raise TransportClosed(self._protocol.lost_reason)
