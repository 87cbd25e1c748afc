"""Yaesu GS-232A / GS-232B rotator codec (ASCII lines over serial), host side and device side.

Host to controller: one command per line ended by CR (``C2``, ``Waaa eee``, ``S`` ...).
Controller to host: replies only to the read commands ``C2``, ``C`` and ``B``; the reply has
no framing other than its line end, and its format depends on the variant:

* GS-232B (Hamlib 603): ``AZ=aaa  EL=eee`` CR LF
* GS-232A (Hamlib 601): ``+0aaa+0eee`` CR LF

So the host decoder must know which reply it waits for: encoding a read command sets that
expectation, the matching reply clears it. Unknown commands get ``?>`` from a real unit
(unverified, see /work/shared/protocols/gs232.md); the device side answers it with
``encode_error()``. Some controllers answer write-only commands with a bare CR LF, which the
host ignores (empty lines are skipped in both directions).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from firmware_bridge.errors import LocalProtocolError
from firmware_bridge.protocols.base import (
    DEFAULT_MAX_BUFFER,
    Axis,
    ByteBuffer,
    Decoder,
    Direction,
    ErrorReply,
    Event,
    Garbage,
    GetPosition,
    Move,
    Position,
    SetPosition,
    Stop,
    StopAxis,
    UnknownCommand,
    check_finite,
    check_range,
)

__all__ = [
    "AZ_MAX_DEG",
    "EL_MAX_DEG",
    "Elevation",
    "GetAzimuth",
    "GetElevation",
    "Gs232Device",
    "Gs232Host",
    "Gs232Variant",
    "SetSpeed",
]

# The command set itself defines these ranges (3-digit fields, 450 deg overlap units);
# whether a given rotator reaches them is the driver's business, not the codec's.
AZ_MAX_DEG: Final = 450
EL_MAX_DEG: Final = 180
# Replies carry three digits; a real unit may report a little past its end stop.
_REPLY_MAX_DEG: Final = 999
# The longest legal line is 9 bytes ("W180 046" + CR); anything this long without a line end
# is noise.
_MAX_LINE: Final = 64

_CR: Final = b"\r"
_LF: Final = b"\n"


class Gs232Variant(enum.Enum):
    """Which reply dialect the controller speaks."""

    A = "A"
    B = "B"


@dataclass(frozen=True, slots=True)
class Elevation(Event):
    """Host side: the reply to the ``B`` (read elevation) command."""

    el_deg: float


@dataclass(frozen=True, slots=True)
class GetAzimuth(Event):
    """Device side: ``C``, read azimuth only."""


@dataclass(frozen=True, slots=True)
class GetElevation(Event):
    """Device side: ``B``, read elevation only."""


@dataclass(frozen=True, slots=True)
class SetSpeed(Event):
    """Device side: ``Xn``, azimuth rotation speed level 1 (slowest) .. 4 (fastest)."""

    level: int


class _Expect(enum.Enum):
    NOTHING = "no reply"
    POSITION = "a C2 (azimuth and elevation) reply"
    AZIMUTH = "a C (azimuth) reply"
    ELEVATION = "a B (elevation) reply"


_MOVE_LETTERS: Final = {
    Direction.LEFT: b"L",
    Direction.RIGHT: b"R",
    Direction.UP: b"U",
    Direction.DOWN: b"D",
}
_STOP_AXIS_LETTERS: Final = {Axis.AZ: b"A", Axis.EL: b"E"}

# Reply patterns, anchored at the line end and searched (not matched) so that noise in front
# of a reply on the same line is split off as Garbage instead of costing the reply.
_REPLY_PATTERNS: Final = {
    Gs232Variant.B: {
        # Azimuth-only units (Hamlib mentions a 12PR1A) answer C2 with "AZ=aaa" alone.
        _Expect.POSITION: re.compile(rb"AZ=(\d{1,3})(?: *EL=(\d{1,3}))?$"),
        _Expect.AZIMUTH: re.compile(rb"AZ=(\d{1,3})$"),
        _Expect.ELEVATION: re.compile(rb"EL=(\d{1,3})$"),
    },
    Gs232Variant.A: {
        _Expect.POSITION: re.compile(rb"\+(\d{4})\+(\d{4})$"),
        _Expect.AZIMUTH: re.compile(rb"\+(\d{4})$"),
        _Expect.ELEVATION: re.compile(rb"\+(\d{4})$"),
    },
}
_ERROR_PATTERN: Final = re.compile(rb"\?>?$")

_SET_BOTH: Final = re.compile(rb"W(\d{3}) (\d{3})")
_SET_AZ: Final = re.compile(rb"M(\d{3})")
_SPEED: Final = re.compile(rb"X([1-4])")


def _take_line(buffer: ByteBuffer) -> bytes | Garbage | None:
    """Remove the next non-empty line (CR and/or LF ended) from ``buffer``."""
    while True:
        ends = [i for i in (buffer.find(_CR), buffer.find(_LF)) if i >= 0]
        if not ends:
            if len(buffer) > _MAX_LINE:
                return Garbage(buffer.clear(), f"no line end within {_MAX_LINE} bytes")
            return None
        line = buffer.take(min(ends) + 1)[:-1].rstrip(b" ")
        if line:
            return line


def _round_field(field: str, value: float, high: int, *, where: str) -> int:
    """Round like Hamlib's rint() (half to even) after checking the raw value fits 0..high."""
    check_range(field, value, 0, high, protocol=where)
    return round(value)


class Gs232Host(Decoder):
    """Host side: encode commands for a GS-232 controller and decode its replies."""

    def __init__(self, variant: Gs232Variant, *, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        """Create a host codec for the given reply dialect."""
        super().__init__(max_buffer=max_buffer)
        self._variant = variant
        self._expect = _Expect.NOTHING

    @property
    def variant(self) -> Gs232Variant:
        """The reply dialect."""
        return self._variant

    @property
    def awaiting_reply(self) -> bool:
        """True while a read command was encoded and its reply has not been decoded."""
        return self._expect is not _Expect.NOTHING

    def _command(self, body: bytes, expect: _Expect) -> bytes:
        # A new command replaces any outstanding expectation: the link sends one request at a
        # time, so a reply that never came is abandoned, as Hamlib does by flushing input.
        self._expect = expect
        return body + _CR

    def encode_get_position(self) -> bytes:
        """``C2``: read azimuth and elevation; a Position event follows."""
        return self._command(b"C2", _Expect.POSITION)

    def encode_get_azimuth(self) -> bytes:
        """``C``: read azimuth only; a Position event with el_deg=None follows."""
        return self._command(b"C", _Expect.AZIMUTH)

    def encode_get_elevation(self) -> bytes:
        """``B``: read elevation only; an Elevation event follows."""
        return self._command(b"B", _Expect.ELEVATION)

    def encode_set_position(self, az_deg: float, el_deg: float) -> bytes:
        """``Waaa eee``: go to az 0..450 and el 0..180, rounded half-even to whole degrees."""
        where = f"GS-232{self._variant.value} W command"
        az = _round_field("az_deg", az_deg, AZ_MAX_DEG, where=where)
        el = _round_field("el_deg", el_deg, EL_MAX_DEG, where=where)
        return self._command(b"W%03d %03d" % (az, el), _Expect.NOTHING)

    def encode_set_azimuth(self, az_deg: float) -> bytes:
        """``Maaa``: go to azimuth 0..450, rounded half-even to whole degrees."""
        az = _round_field(
            "az_deg", az_deg, AZ_MAX_DEG, where=f"GS-232{self._variant.value} M command"
        )
        return self._command(b"M%03d" % az, _Expect.NOTHING)

    def encode_stop(self) -> bytes:
        """``S``: stop both axes."""
        return self._command(b"S", _Expect.NOTHING)

    def encode_stop_axis(self, axis: Axis) -> bytes:
        """``A`` / ``E``: stop azimuth / elevation only."""
        return self._command(_STOP_AXIS_LETTERS[axis], _Expect.NOTHING)

    def encode_move(self, direction: Direction) -> bytes:
        """``L``/``R``/``U``/``D``: move until stopped."""
        return self._command(_MOVE_LETTERS[direction], _Expect.NOTHING)

    def encode_speed(self, level: int) -> bytes:
        """``X1``..``X4``: azimuth speed level, 1 slowest, 4 fastest."""
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 4:
            raise LocalProtocolError(
                f"GS-232{self._variant.value} X command: level={level!r} cannot be encoded; "
                "allowed integers 1..4"
            )
        return self._command(b"X%d" % level, _Expect.NOTHING)

    def _parse(self) -> Event | None:
        line = _take_line(self._buffer)
        if line is None or isinstance(line, Garbage):
            return line
        error = _ERROR_PATTERN.search(line)
        if error is not None:
            self._expect = _Expect.NOTHING
            reply = ErrorReply(code="?>", text=line[error.start() :].decode("ascii"))
            return self._split(line, error.start(), reply)
        expect = self._expect
        if expect is _Expect.NOTHING:
            return Garbage(line, "unsolicited line: no GS-232 read command is outstanding")
        match = _REPLY_PATTERNS[self._variant][expect].search(line)
        if match is None:
            return Garbage(
                line, f"not {expect.value} in GS-232{self._variant.value} format: {line!r}"
            )
        self._expect = _Expect.NOTHING
        first = float(int(match[1]))
        event: Event
        if expect is _Expect.POSITION:
            second = match[2]
            event = Position(az_deg=first, el_deg=None if second is None else float(int(second)))
        elif expect is _Expect.AZIMUTH:
            event = Position(az_deg=first, el_deg=None)
        else:
            event = Elevation(el_deg=first)
        return self._split(line, match.start(), event)

    def _split(self, line: bytes, start: int, event: Event) -> Event:
        """Return Garbage for the noise in front of a reply (queueing the reply), or the reply."""
        if start == 0:
            return event
        self._push(event)
        return Garbage(line[:start], "noise before a GS-232 reply on the same line")


class Gs232Device(Decoder):
    """Device side: decode host command lines, encode replies the way the controller sends them."""

    def __init__(self, variant: Gs232Variant, *, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        """Create a device codec speaking the given reply dialect."""
        super().__init__(max_buffer=max_buffer)
        self._variant = variant

    @property
    def variant(self) -> Gs232Variant:
        """The reply dialect."""
        return self._variant

    def _reply_field(self, field: str, value: float) -> int:
        check_finite(field, value, protocol=f"GS-232{self._variant.value} reply")
        rounded = round(value)
        # Reject rather than clamp: a simulator reporting a negative angle is a bug upstream.
        check_range(
            field, rounded, 0, _REPLY_MAX_DEG, protocol=f"GS-232{self._variant.value} reply"
        )
        return rounded

    def encode_position(self, az_deg: float, el_deg: float) -> bytes:
        """The reply to ``C2`` (B: ``AZ=aaa  EL=eee``, A: ``+0aaa+0eee``), CR LF ended."""
        az = self._reply_field("az_deg", az_deg)
        el = self._reply_field("el_deg", el_deg)
        if self._variant is Gs232Variant.B:
            return b"AZ=%03d  EL=%03d\r\n" % (az, el)
        return b"+0%03d+0%03d\r\n" % (az, el)

    def encode_azimuth(self, az_deg: float) -> bytes:
        """The reply to ``C`` (B: ``AZ=aaa``, A: ``+0aaa``)."""
        az = self._reply_field("az_deg", az_deg)
        if self._variant is Gs232Variant.B:
            return b"AZ=%03d\r\n" % az
        return b"+0%03d\r\n" % az

    def encode_elevation(self, el_deg: float) -> bytes:
        """The reply to ``B`` (B: ``EL=eee``, A: ``+0eee``)."""
        el = self._reply_field("el_deg", el_deg)
        if self._variant is Gs232Variant.B:
            return b"EL=%03d\r\n" % el
        return b"+0%03d\r\n" % el

    def encode_error(self) -> bytes:
        """The answer to a command the controller does not accept: ``?>``."""
        return b"?>\r\n"

    def encode_ack(self) -> bytes:
        """The bare line end some controllers send after write-only commands."""
        return b"\r\n"

    def _parse(self) -> Event | None:
        line = _take_line(self._buffer)
        if line is None or isinstance(line, Garbage):
            return line
        cut = max((i + 1 for i, byte in enumerate(line) if not 0x20 <= byte <= 0x7E), default=0)
        if cut:
            # Binary noise cannot be part of a command: keep what follows the last noise byte.
            command = line[cut:]
            if command:
                self._push(self._command(command))
            return Garbage(line[:cut], "non-printable bytes in a GS-232 command line")
        return self._command(line)

    def _command(self, line: bytes) -> Event:
        if line in _PLAIN_COMMANDS:
            return _PLAIN_COMMANDS[line]
        if match := _SET_BOTH.fullmatch(line):
            az, el = int(match[1]), int(match[2])
            if az <= AZ_MAX_DEG and el <= EL_MAX_DEG:
                return SetPosition(az_deg=float(az), el_deg=float(el))
        elif match := _SET_AZ.fullmatch(line):
            az = int(match[1])
            if az <= AZ_MAX_DEG:
                return SetPosition(az_deg=float(az), el_deg=None)
        elif match := _SPEED.fullmatch(line):
            return SetSpeed(level=int(match[1]))
        # Out-of-range W/M values land here too: the real unit answers both with "?>".
        return UnknownCommand(line)


# Events are frozen dataclasses, so one shared instance per command is safe.
_PLAIN_COMMANDS: Final[dict[bytes, Event]] = {
    b"C2": GetPosition(),
    b"C": GetAzimuth(),
    b"B": GetElevation(),
    b"S": Stop(),
    b"A": StopAxis(Axis.AZ),
    b"E": StopAxis(Axis.EL),
    b"L": Move(Direction.LEFT),
    b"R": Move(Direction.RIGHT),
    b"U": Move(Direction.UP),
    b"D": Move(Direction.DOWN),
}
