"""Pieces shared by every sans-I/O codec: the NEED_DATA sentinel, event bases, a capped buffer.

A decoder follows the h11 pattern: the caller feeds whatever bytes arrived with
``receive_data(data)`` and then calls ``next_event()`` until it returns ``NEED_DATA``.
Decoders never raise on bad input from the wire: bytes that cannot be framed are
discarded up to the next plausible frame start and reported as a ``Garbage`` event, so a
caller (``CommandLink``) can count them and decide what to do. Encoders raise
``LocalProtocolError`` when asked to encode something the protocol cannot carry.

This module's API is shared by all codecs (rotators, CI-V, Hamlib net) and is kept stable.
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

from firmware_bridge.errors import LocalProtocolError

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "NEED_DATA",
    "Ack",
    "Axis",
    "ByteBuffer",
    "Decoder",
    "Direction",
    "ErrorReply",
    "Event",
    "Garbage",
    "GetPosition",
    "Move",
    "NeedData",
    "Park",
    "Position",
    "SetPosition",
    "Stop",
    "StopAxis",
    "UnknownCommand",
    "check_finite",
    "check_range",
]

# Far above any frame of the protocols we speak (the longest, an EasyComm I line, is ~60 bytes;
# a CI-V frame is < 64): a buffer this full without a frame is noise, not a slow frame.
DEFAULT_MAX_BUFFER: Final = 4096


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Final = _Sentinel.NEED_DATA
"""Returned by ``next_event()`` when the buffered bytes do not yet hold a complete frame."""

NeedData = Literal[_Sentinel.NEED_DATA]
"""The type of ``NEED_DATA`` (use ``event is NEED_DATA`` to narrow)."""


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event a decoder emits (host side: replies; device side: commands)."""


@dataclass(frozen=True, slots=True)
class Garbage(Event):
    """Bytes that were discarded to resynchronise; ``reason`` says why they did not fit."""

    data: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Ack(Event):
    """The device acknowledged a command (e.g. CI-V OK, RPRT 0, a bare line end)."""


@dataclass(frozen=True, slots=True)
class ErrorReply(Event):
    """The device answered with an error; ``code`` is the device's own code when it has one."""

    code: int | str | None
    text: str


@dataclass(frozen=True, slots=True)
class Position(Event):
    """A rotator position report; ``el_deg`` is None when the reply carries no elevation."""

    az_deg: float
    el_deg: float | None


@dataclass(frozen=True, slots=True)
class SetPosition(Event):
    """Device side: the host commands a move; ``el_deg`` is None for azimuth-only commands."""

    az_deg: float
    el_deg: float | None


@dataclass(frozen=True, slots=True)
class GetPosition(Event):
    """Device side: the host asks for the current position."""


@dataclass(frozen=True, slots=True)
class Stop(Event):
    """Device side: the host asks to stop all motion."""


class Axis(enum.Enum):
    """A rotator axis."""

    AZ = "az"
    EL = "el"


class Direction(enum.Enum):
    """A manual rotator motion direction (LEFT = counter-clockwise in azimuth)."""

    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"

    @property
    def axis(self) -> Axis:
        """The axis this direction moves."""
        return Axis.AZ if self in (Direction.LEFT, Direction.RIGHT) else Axis.EL


@dataclass(frozen=True, slots=True)
class StopAxis(Event):
    """Device side: the host asks to stop one axis only."""

    axis: Axis


@dataclass(frozen=True, slots=True)
class Move(Event):
    """Device side: the host asks for continuous motion in one direction until stopped."""

    direction: Direction


@dataclass(frozen=True, slots=True)
class Park(Event):
    """Device side: the host asks to go to the park position."""


@dataclass(frozen=True, slots=True)
class UnknownCommand(Event):
    """Device side: a well-framed command the codec does not know; the simulator answers it as
    the real device would (e.g. GS-232B ``?>``)."""

    data: bytes


def check_finite(field: str, value: float, *, protocol: str) -> None:
    """Raise LocalProtocolError when ``value`` is NaN or infinite."""
    if not math.isfinite(value):
        raise LocalProtocolError(
            f"{protocol}: {field}={value!r} cannot be encoded; need a finite number"
        )


def check_range(field: str, value: float, low: float, high: float, *, protocol: str) -> None:
    """Raise LocalProtocolError naming field, value and allowed range if out of [low, high]."""
    check_finite(field, value, protocol=protocol)
    if not low <= value <= high:
        raise LocalProtocolError(
            f"{protocol}: {field}={value!r} cannot be encoded; "
            f"the wire format carries {low}..{high}"
        )


class ByteBuffer:
    """A receive buffer with a size cap and the few operations framers need.

    When appended bytes push it over ``max_size`` the oldest bytes are dropped and returned,
    so the caller can report them as ``Garbage`` (a frame never grows that long).
    """

    __slots__ = ("_data", "_max_size")

    def __init__(self, max_size: int = DEFAULT_MAX_BUFFER) -> None:
        """Create an empty buffer holding at most ``max_size`` bytes."""
        if max_size < 1:
            raise ValueError(f"max_size={max_size!r}: need at least 1 byte")
        self._data = bytearray()
        self._max_size = max_size

    @property
    def max_size(self) -> int:
        """The cap in bytes."""
        return self._max_size

    def __len__(self) -> int:
        """Number of buffered bytes."""
        return len(self._data)

    def __bytes__(self) -> bytes:
        """A copy of the buffered bytes."""
        return bytes(self._data)

    def append(self, data: bytes) -> bytes:
        """Add bytes at the end; return the oldest bytes dropped to keep the cap (b"" if none)."""
        self._data += data
        excess = len(self._data) - self._max_size
        if excess <= 0:
            return b""
        dropped = bytes(self._data[:excess])
        del self._data[:excess]
        return dropped

    def peek(self, n: int | None = None) -> bytes:
        """The first ``n`` bytes (all if None) without removing them."""
        return bytes(self._data if n is None else self._data[:n])

    def find(self, sub: bytes, start: int = 0) -> int:
        """Index of the first ``sub`` at or after ``start``, or -1."""
        return self._data.find(sub, start)

    def startswith(self, prefix: bytes) -> bool:
        """True if the buffer starts with ``prefix``."""
        return self._data.startswith(prefix)

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` bytes (fewer if fewer are buffered)."""
        out = bytes(self._data[:n])
        del self._data[:n]
        return out

    def take_until(self, delimiter: bytes) -> bytes | None:
        """Remove and return everything up to and including ``delimiter``; None if it is absent."""
        index = self._data.find(delimiter)
        if index < 0:
            return None
        return self.take(index + len(delimiter))

    def skip_to(self, marker: bytes, start: int = 0) -> bytes:
        """Resync: drop bytes before the first ``marker`` found at or after ``start``; return them.

        Without a marker, everything is dropped except a tail that could be the beginning of
        a marker split across reads.
        """
        index = self._data.find(marker, start)
        if index < 0:
            keep = 0
            for size in range(min(len(marker) - 1, len(self._data)), 0, -1):
                if marker.startswith(bytes(self._data[-size:])) and len(self._data) - size >= start:
                    keep = size
                    break
            index = len(self._data) - keep
        return self.take(index)

    def clear(self) -> bytes:
        """Remove and return everything."""
        return self.take(len(self._data))


class Decoder(ABC):
    """Base of a buffered decoder: ``receive_data()`` then ``next_event()`` until ``NEED_DATA``.

    Subclasses implement ``_parse()``, which looks at ``self._buffer`` and returns one event
    (consuming its bytes) or None when more bytes are needed. They may queue extra events
    with ``_push()``; queued events are returned before parsing continues.
    """

    def __init__(self, *, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        """Create a decoder whose receive buffer holds at most ``max_buffer`` bytes."""
        self._buffer = ByteBuffer(max_buffer)
        self._pending: deque[Event] = deque()

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet turned into events."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the wire. Never raises on content; overflow becomes a Garbage event."""
        dropped = self._buffer.append(data)
        if dropped:
            self._pending.append(
                Garbage(
                    dropped,
                    f"receive buffer exceeded {self._buffer.max_size} bytes without a frame",
                )
            )

    def next_event(self) -> Event | NeedData:
        """Return the next event, or NEED_DATA when the buffered bytes hold no complete frame."""
        if self._pending:
            return self._pending.popleft()
        event = self._parse()
        if event is None:
            return NEED_DATA
        return event

    def events(self) -> list[Event]:
        """Drain and return every event available now (convenience for tests and simple loops)."""
        out: list[Event] = []
        while (event := self.next_event()) is not NEED_DATA:
            out.append(event)
        return out

    def _push(self, event: Event) -> None:
        """Queue an event to be returned before further parsing."""
        self._pending.append(event)

    @abstractmethod
    def _parse(self) -> Event | None:
        """Consume and return one event from ``self._buffer``, or None if a frame is incomplete."""
