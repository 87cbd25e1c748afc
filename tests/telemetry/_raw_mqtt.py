"""A raw MQTT 3.1.1 client over a plain socket: the broker tests' way to send exactly the
bytes a protocol case needs (malformed ones included) and to see exactly what comes back.

Its encoders are written from the specification, apart from the broker's own on purpose:
a test that encoded with the code under test could not catch an encoding bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from .conftest import DEADLINE_S


def varint(n: int) -> bytes:
    """MQTT's remaining-length encoding."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def string(value: str | bytes) -> bytes:
    """A length-prefixed MQTT string."""
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def packet(head: int, body: bytes) -> bytes:
    """Fixed header + body."""
    return bytes((head,)) + varint(len(body)) + body


def connect_packet(
    client_id: str,
    *,
    clean: bool = True,
    keepalive_s: int = 60,
    will: tuple[str, bytes, int, bool] | None = None,
    name: bytes = b"MQTT",
    level: int = 4,
    username: str | None = None,
) -> bytes:
    """A CONNECT packet (``will`` = topic, payload, QoS, retain)."""
    flags = 0x02 if clean else 0
    payload = string(client_id)
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += string(topic) + string(message)
    if username is not None:
        flags |= 0x80
        payload += string(username)
    body = string(name) + bytes((level, flags)) + struct.pack("!H", keepalive_s) + payload
    return packet(0x10, body)


def publish_packet(
    topic: str | bytes,
    payload: bytes,
    *,
    qos: int = 0,
    retain: bool = False,
    pid: int = 0,
    dup: bool = False,
) -> bytes:
    """A PUBLISH packet."""
    head = 0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = string(topic) + (struct.pack("!H", pid) if qos else b"") + payload
    return packet(head, body)


def subscribe_packet(pid: int, *filters: tuple[str, int]) -> bytes:
    """A SUBSCRIBE packet."""
    body = struct.pack("!H", pid) + b"".join(string(f) + bytes((q,)) for f, q in filters)
    return packet(0x82, body)


def unsubscribe_packet(pid: int, *filters: str) -> bytes:
    """An UNSUBSCRIBE packet."""
    return packet(0xA2, struct.pack("!H", pid) + b"".join(string(f) for f in filters))


def ack_packet(kind: int, pid: int) -> bytes:
    """PUBACK (4), PUBREC (5), PUBREL (6, with its flags) or PUBCOMP (7)."""
    return bytes(((kind << 4) | (2 if kind == 6 else 0), 2)) + struct.pack("!H", pid)


class Publish:
    """A PUBLISH packet received."""

    def __init__(self, head: int, body: bytes) -> None:
        self.qos = (head >> 1) & 3
        self.retain = bool(head & 1)
        self.dup = bool(head & 8)
        tlen = struct.unpack("!H", body[:2])[0]
        self.topic = body[2 : 2 + tlen].decode()
        pos = 2 + tlen
        self.pid = struct.unpack("!H", body[pos : pos + 2])[0] if self.qos else 0
        self.payload = body[pos + 2 :] if self.qos else body[pos:]


class RawClient:
    """One TCP connection to a broker, reading packet by packet under a deadline."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        """Connect to 127.0.0.1:port."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), DEADLINE_S
        )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        """Write bytes as they are."""
        self.writer.write(data)
        await self.writer.drain()

    async def packet(self, timeout_s: float = DEADLINE_S) -> tuple[int, bytes]:
        """(first byte, body) of the next packet; IncompleteReadError at end of stream."""

        async def read() -> tuple[int, bytes]:
            head = (await self.reader.readexactly(1))[0]
            length, shift = 0, 0
            while True:
                byte = (await self.reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            return head, await self.reader.readexactly(length)

        return await asyncio.wait_for(read(), timeout_s)

    async def publish_received(self, timeout_s: float = DEADLINE_S) -> Publish:
        """The next packet, which must be a PUBLISH."""
        head, body = await self.packet(timeout_s)
        assert head >> 4 == 3, f"expected PUBLISH, got packet type {head >> 4}"
        return Publish(head, body)

    async def connect(self, client_id: str, **options: object) -> tuple[int, int]:
        """CONNECT; returns the CONNACK's (session present, return code)."""
        await self.send(connect_packet(client_id, **options))  # type: ignore[arg-type]
        head, body = await self.packet()
        assert head == 0x20, f"expected CONNACK, got {head:#x}"
        return body[0], body[1]

    async def subscribe(self, pid: int, *filters: tuple[str, int]) -> list[int]:
        """SUBSCRIBE; returns the SUBACK's return codes."""
        await self.send(subscribe_packet(pid, *filters))
        head, body = await self.packet()
        assert head == 0x90, f"expected SUBACK, got {head:#x}"
        assert struct.unpack("!H", body[:2])[0] == pid
        return list(body[2:])

    async def ping(self) -> list[tuple[int, bytes]]:
        """PINGREQ, and read up to its PINGRESP: everything sent before has been handled.
        Returns the packets that came before the PINGRESP."""
        await self.send(b"\xc0\x00")
        before = []
        while (received := await self.packet()) != (0xD0, b""):
            before.append(received)
        return before

    async def closed_by_broker(self, timeout_s: float = DEADLINE_S) -> bytes:
        """Wait for the broker to close the connection; returns what came before the end."""

        async def until_eof() -> bytes:
            data = bytearray()
            try:
                while chunk := await self.reader.read(65536):
                    data += chunk
            except ConnectionResetError:
                pass
            return bytes(data)

        return await asyncio.wait_for(until_eof(), timeout_s)

    async def close(self) -> None:
        """Close the socket (no DISCONNECT)."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
