"""Serving a device on a pseudo-terminal, so other programs can open it as a serial port.

``PtyEndpoint.open()`` creates a pty pair in raw mode. The endpoint itself is the device
side (a :class:`ByteTransport` on the master); ``endpoint.path`` is the slave
(``/dev/pts/N``) a client opens: ours with ``serial:///dev/pts/N?baud=9600`` or Hamlib's
``rotctl -m 603 -r /dev/pts/N``.

The endpoint keeps its own descriptor of the slave open. Without it the master reads EIO
whenever no client has the slave open, and a client that closes and reopens the port
(as ``rotctl`` does on every run) would end the device side. Closing the endpoint closes
the master, which hangs up the slave: a client's pending read then fails with EIO, which
our serial transport reports as ``TransportClosed``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import tty

from firmware_bridge.errors import TransportClosed
from firmware_bridge.transports.base import ByteTransport, Inbox

__all__ = ["PtyEndpoint"]

_READ_SIZE = 65536


class PtyEndpoint(ByteTransport):
    """The device side of a pseudo-terminal pair; clients open :attr:`path`."""

    def __init__(self, master_fd: int, slave_fd: int, path: str) -> None:
        """Wrap an open pty pair; use :meth:`open` instead."""
        super().__init__(f"pty://{path}")
        self._master_fd = master_fd
        self._slave_fd = slave_fd
        self._path = path
        self._loop = asyncio.get_running_loop()
        self._inbox = Inbox(self._url, coalesce=True)
        self._out = bytearray()
        self._drained: asyncio.Future[None] | None = None
        self._closed_reason: str | None = None
        self._loop.add_reader(master_fd, self._on_readable)

    @classmethod
    async def open(cls) -> PtyEndpoint:
        """Create a raw-mode pty pair and start reading its master side."""
        master_fd, slave_fd = os.openpty()
        try:
            # Raw mode on the slave: the tty line discipline must not echo, translate CR/LF
            # or treat ^C/^S as signals; a serial device does none of that.
            tty.setraw(slave_fd)
            os.set_blocking(master_fd, False)
            path = os.ttyname(slave_fd)
        except BaseException:
            os.close(master_fd)
            os.close(slave_fd)
            raise
        return cls(master_fd, slave_fd, path)

    @property
    def path(self) -> str:
        """The slave device path (``/dev/pts/N``) a client program opens."""
        return self._path

    @property
    def client_url(self) -> str:
        """The URL our own serial transport opens to talk to this endpoint."""
        return f"serial://{self._path}"

    @property
    def closed(self) -> bool:
        """True once the endpoint was closed or its master failed."""
        return self._closed_reason is not None

    async def read(self, max_bytes: int = 4096) -> bytes:
        """Wait for bytes the client wrote."""
        return await self._inbox.get(max_bytes)

    async def write(self, data: bytes) -> None:
        """Queue bytes for the client (kept here while the pty's buffer is full)."""
        self._check_open()
        if self._out:
            self._out += data
            return
        sent = self._try_write(bytes(data))
        if sent is None:
            self._check_open()
            return
        if sent < len(data):
            self._out += data[sent:]
            self._loop.add_writer(self._master_fd, self._on_writable)

    async def drain(self) -> None:
        """Wait until every queued byte is in the pty (the client may not have read it yet)."""
        self._check_open()
        while self._out:
            if self._drained is None or self._drained.done():
                self._drained = self._loop.create_future()
            await self._drained
            self._check_open()

    async def reset_input(self) -> int:
        """Discard what the client wrote and we have not read yet."""
        dropped = self._inbox.clear()
        while self._closed_reason is None:
            try:
                chunk = os.read(self._master_fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                self._fail(exc)
                break
            if not chunk:
                break
            dropped += len(chunk)
        return dropped

    async def close(self) -> None:
        """Close the master (hanging up the client) and our slave descriptor."""
        if self._master_fd < 0:
            return
        self._shutdown(f"{self._url}: closed locally")
        self._inbox.end(f"{self._url}: closed locally", discard=True)
        os.close(self._master_fd)
        os.close(self._slave_fd)
        self._master_fd = self._slave_fd = -1

    # -- event-loop callbacks -----------------------------------------------------
    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._master_fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(exc)
            return
        if chunk:
            self._inbox.feed(chunk)
        else:
            self._fail(OSError(errno.EIO, "end of file on the pty master"))

    def _on_writable(self) -> None:
        sent = self._try_write(bytes(self._out))
        if sent is None:
            return  # _fail() already ended the stream and woke drain()
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self._master_fd)
            self._wake_drain()

    def _try_write(self, data: bytes) -> int | None:
        """Write what the pty takes now; None if the master failed (the stream is ended)."""
        try:
            return os.write(self._master_fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self._fail(exc)
            return None

    # -- state --------------------------------------------------------------------
    def _fail(self, exc: OSError) -> None:
        reason = f"{self._url}: the pty master failed: {exc}"
        self._shutdown(reason)
        self._inbox.end(reason)

    def _shutdown(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
        if self._master_fd >= 0:
            self._loop.remove_reader(self._master_fd)
            self._loop.remove_writer(self._master_fd)
        self._out.clear()
        self._wake_drain()

    def _wake_drain(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _check_open(self) -> None:
        if self._closed_reason is not None:
            raise TransportClosed(self._closed_reason)
