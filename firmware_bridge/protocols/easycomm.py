"""EasyComm I / II / III rotator codec (ASCII, LF-ended lines), host side and device side.

Host to controller: two-letter mnemonics, optionally followed by a value, separated by a
space, CR or LF (``AZ180.3 EL45.0``, ``AZ EL`` to query, ``SA SE`` to stop). Controller to
host: query replies echo the mnemonic followed by the value (``AZ180.3 EL45.0``), so they
are self-describing; the controller may also send lines unsolicited (``ALxxx`` alarms,
position feedback). EasyComm I is one set-only line with no feedback at all.

Exact bytes follow Hamlib 4.5.4 models 201/202/204 (see /work/shared/protocols/easycomm.md):
values ``%.1f`` without padding, LF line end, ``PARK`` and ``RESET`` (Hamlib extensions).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from firmware_bridge.errors import LocalProtocolError
from firmware_bridge.protocols.base import (
    DEFAULT_MAX_BUFFER,
    Axis,
    ByteBuffer,
    Decoder,
    Direction,
    Event,
    Garbage,
    GetPosition,
    Move,
    Park,
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
    "EL_MIN_DEG",
    "Alarm",
    "EasycommDevice",
    "EasycommHost",
    "EasycommVariant",
    "Elevation",
    "ErrorRegister",
    "GetAzimuth",
    "GetElevation",
    "GetErrorRegister",
    "GetStatus",
    "GetVersion",
    "Reset",
    "SetElevation",
    "Status",
    "Velocity",
    "Version",
]

# "AZaaa.a ELeee.e": the spec writes azimuth unsigned with three integer digits; elevation
# beyond -90..180 has no meaning. Whether a rotator reaches these is the driver's business.
AZ_MAX_DEG: Final = 999.9
EL_MIN_DEG: Final = -90.0
EL_MAX_DEG: Final = 180.0
# Replies: one decimal place, at most three integer digits, sign allowed.
_REPLY_ABS_MAX_DEG: Final = 999.9
# The longest line Hamlib sends is EasyComm I's (~40 bytes); longer without LF is noise.
_MAX_LINE: Final = 128

_NUM: Final = rb"([+-]?(?:\d+(?:\.\d*)?|\.\d+))"


class EasycommVariant(enum.Enum):
    """Protocol level: I (set only), II (queries, moves), III (adds velocity and registers)."""

    I = "I"  # noqa: E741 - the protocol's own name for its first level
    II = "II"
    III = "III"


@dataclass(frozen=True, slots=True)
class Elevation(Event):
    """Host side: an ``ELeee.e`` line without azimuth."""

    el_deg: float


@dataclass(frozen=True, slots=True)
class Version(Event):
    """Host side: the ``VExxx`` reply."""

    text: str


@dataclass(frozen=True, slots=True)
class Status(Event):
    """Host side: the ``GSn`` reply (EasyComm III bits: 1 idle, 2 moving, 4 pointing, 8 error)."""

    flags: int


@dataclass(frozen=True, slots=True)
class ErrorRegister(Event):
    """Host side: the ``GEn`` reply (EasyComm III bits: 1 sensor, 2 jam, 4 homing)."""

    flags: int


@dataclass(frozen=True, slots=True)
class Alarm(Event):
    """Host side: an unsolicited ``ALxxx`` alarm line from the controller."""

    text: str


@dataclass(frozen=True, slots=True)
class GetAzimuth(Event):
    """Device side: a bare ``AZ`` without ``EL`` on the same line."""


@dataclass(frozen=True, slots=True)
class GetElevation(Event):
    """Device side: a bare ``EL`` without ``AZ`` on the same line."""


@dataclass(frozen=True, slots=True)
class SetElevation(Event):
    """Device side: ``ELeee.e`` without an azimuth value on the same line."""

    el_deg: float


@dataclass(frozen=True, slots=True)
class Velocity(Event):
    """Device side: EasyComm III ``VL``/``VR``/``VU``/``VD`` move at a speed in mdeg/s."""

    direction: Direction
    mdeg_per_s: int


@dataclass(frozen=True, slots=True)
class GetVersion(Event):
    """Device side: ``VE``."""


@dataclass(frozen=True, slots=True)
class GetStatus(Event):
    """Device side: ``GS`` (EasyComm III)."""


@dataclass(frozen=True, slots=True)
class GetErrorRegister(Event):
    """Device side: ``GE`` (EasyComm III)."""


@dataclass(frozen=True, slots=True)
class Reset(Event):
    """Device side: ``RESET`` (a Hamlib extension, not in the spec)."""


class _Expect(enum.Enum):
    NOTHING = "no reply"
    POSITION = "an AZ/EL position reply"
    AZIMUTH = "an AZ reply"
    ELEVATION = "an EL reply"
    VERSION = "a VE reply"
    STATUS = "a GS reply"
    ERRORS = "a GE reply"


_MOVE_MNEMONICS: Final = {
    Direction.LEFT: b"ML",
    Direction.RIGHT: b"MR",
    Direction.UP: b"MU",
    Direction.DOWN: b"MD",
}
_VELOCITY_MNEMONICS: Final = {
    Direction.LEFT: b"VL",
    Direction.RIGHT: b"VR",
    Direction.UP: b"VU",
    Direction.DOWN: b"VD",
}

# Host-side reply patterns, anchored at the line end and searched so that noise before a
# reply on the same line becomes Garbage without costing the reply.
_POSITION_REPLY: Final = re.compile(rb"AZ *" + _NUM + rb" *EL *" + _NUM + rb"$")
_AZ_REPLY: Final = re.compile(rb"AZ *" + _NUM + rb"$")
_EL_REPLY: Final = re.compile(rb"EL *" + _NUM + rb"$")
_VERSION_REPLY: Final = re.compile(rb"VE([\x20-\x7e]*)$")
_STATUS_REPLY: Final = re.compile(rb"GS(\d+)$")
_ERRORS_REPLY: Final = re.compile(rb"GE(\d+)$")
_ALARM: Final = re.compile(rb"AL([\x20-\x7e]*)$")

_VALUE: Final = re.compile(_NUM)
_INTEGER: Final = re.compile(rb"\d+")


def _take_line(buffer: ByteBuffer) -> bytes | Garbage | None:
    """Remove the next non-empty line (CR and/or LF ended) from ``buffer``."""
    while True:
        ends = [i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0]
        if not ends:
            if len(buffer) > _MAX_LINE:
                return Garbage(buffer.clear(), f"no line end within {_MAX_LINE} bytes")
            return None
        line = buffer.take(min(ends) + 1)[:-1].strip(b" ")
        if line:
            return line


def _format_deg(value: float) -> bytes:
    """``%.1f`` as Hamlib prints it, without the "-0.0" a tiny negative value would give."""
    text = b"%.1f" % value
    return b"0.0" if text == b"-0.0" else text


def _split_noise(line: bytes) -> tuple[bytes, bytes]:
    """Split a line after its last non-printable byte: (noise, rest)."""
    cut = max((i + 1 for i, byte in enumerate(line) if not 0x20 <= byte <= 0x7E), default=0)
    return line[:cut], line[cut:]


class EasycommHost(Decoder):
    """Host side: encode EasyComm commands and decode the controller's lines."""

    def __init__(self, variant: EasycommVariant, *, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        """Create a host codec for the given protocol level."""
        super().__init__(max_buffer=max_buffer)
        self._variant = variant
        self._expect = _Expect.NOTHING

    @property
    def variant(self) -> EasycommVariant:
        """The protocol level."""
        return self._variant

    @property
    def awaiting_reply(self) -> bool:
        """True while a query was encoded and its reply has not been decoded."""
        return self._expect is not _Expect.NOTHING

    def _require(self, levels: tuple[EasycommVariant, ...], what: str) -> None:
        if self._variant not in levels:
            allowed = "/".join(level.value for level in levels)
            raise LocalProtocolError(
                f"EasyComm {self._variant.value} has no {what}; it exists in EasyComm {allowed}"
            )

    def _command(self, body: bytes, expect: _Expect) -> bytes:
        # One request at a time: a new command abandons a reply that never came.
        self._expect = expect
        return body + b"\n"

    def encode_set_position(self, az_deg: float, el_deg: float) -> bytes:
        """``AZaaa.a ELeee.e`` (EasyComm I adds Hamlib's empty ``UP000 XXX DN000 XXX``)."""
        where = f"EasyComm {self._variant.value} set position"
        check_range("az_deg", az_deg, 0.0, AZ_MAX_DEG, protocol=where)
        check_range("el_deg", el_deg, EL_MIN_DEG, EL_MAX_DEG, protocol=where)
        body = b"AZ" + _format_deg(az_deg) + b" EL" + _format_deg(el_deg)
        if self._variant is EasycommVariant.I:
            # The level-I line always carries the radio fields; Hamlib fills them like this.
            body += b" UP000 XXX DN000 XXX"
        return self._command(body, _Expect.NOTHING)

    def encode_get_position(self) -> bytes:
        """``AZ EL`` (the bytes Hamlib sends, trailing space included); a Position follows."""
        self._require((EasycommVariant.II, EasycommVariant.III), "position query")
        return self._command(b"AZ EL ", _Expect.POSITION)

    def encode_get_azimuth(self) -> bytes:
        """``AZ``: query azimuth; a Position with el_deg=None follows."""
        self._require((EasycommVariant.II, EasycommVariant.III), "azimuth query")
        return self._command(b"AZ", _Expect.AZIMUTH)

    def encode_get_elevation(self) -> bytes:
        """``EL``: query elevation; an Elevation event follows."""
        self._require((EasycommVariant.II, EasycommVariant.III), "elevation query")
        return self._command(b"EL", _Expect.ELEVATION)

    def encode_stop(self) -> bytes:
        """``SA SE``: stop both axes (Hamlib sends this for every level)."""
        return self._command(b"SA SE ", _Expect.NOTHING)

    def encode_stop_axis(self, axis: Axis) -> bytes:
        """``SA`` / ``SE``: stop one axis."""
        return self._command(b"SA" if axis is Axis.AZ else b"SE", _Expect.NOTHING)

    def encode_move(self, direction: Direction) -> bytes:
        """``ML``/``MR``/``MU``/``MD``: move until stopped (EasyComm II/III)."""
        self._require((EasycommVariant.II, EasycommVariant.III), "move command")
        return self._command(_MOVE_MNEMONICS[direction], _Expect.NOTHING)

    def encode_velocity(self, direction: Direction, mdeg_per_s: int) -> bytes:
        """``VL``/``VR``/``VU``/``VD`` with a speed in millidegrees per second (EasyComm III)."""
        self._require((EasycommVariant.III,), "velocity command")
        if isinstance(mdeg_per_s, bool) or not isinstance(mdeg_per_s, int) or mdeg_per_s < 0:
            raise LocalProtocolError(
                f"EasyComm III velocity: mdeg_per_s={mdeg_per_s!r} cannot be encoded; "
                "need a non-negative integer"
            )
        return self._command(_VELOCITY_MNEMONICS[direction] + b"%04d" % mdeg_per_s, _Expect.NOTHING)

    def encode_park(self) -> bytes:
        """``PARK`` (Hamlib extension, not in the spec; EasyComm II/III)."""
        self._require((EasycommVariant.II, EasycommVariant.III), "park command")
        return self._command(b"PARK", _Expect.NOTHING)

    def encode_reset(self) -> bytes:
        """``RESET`` (Hamlib extension, not in the spec; EasyComm II/III)."""
        self._require((EasycommVariant.II, EasycommVariant.III), "reset command")
        return self._command(b"RESET", _Expect.NOTHING)

    def encode_get_version(self) -> bytes:
        """``VE``: a Version event follows (EasyComm II/III)."""
        self._require((EasycommVariant.II, EasycommVariant.III), "version query")
        return self._command(b"VE", _Expect.VERSION)

    def encode_get_status(self) -> bytes:
        """``GS``: a Status event follows (EasyComm III)."""
        self._require((EasycommVariant.III,), "status register")
        return self._command(b"GS", _Expect.STATUS)

    def encode_get_error_register(self) -> bytes:
        """``GE``: an ErrorRegister event follows (EasyComm III)."""
        self._require((EasycommVariant.III,), "error register")
        return self._command(b"GE", _Expect.ERRORS)

    def _parse(self) -> Event | None:
        line = _take_line(self._buffer)
        if line is None or isinstance(line, Garbage):
            return line
        # Replies are printable ASCII: noise up to the last non-printable byte is split off.
        noise, rest = _split_noise(line)
        events: list[Event] = []
        if noise:
            events.append(Garbage(noise, "non-printable bytes in an EasyComm line"))
        if rest:
            events.extend(self._reply(rest))
        for event in events[1:]:
            self._push(event)
        return events[0]

    def _reply(self, line: bytes) -> list[Event]:
        """Decode one printable line; replies are self-describing, so order of tries matters."""
        event: Event
        satisfies: tuple[_Expect, ...]
        if alarm := _ALARM.match(line):
            return [Alarm(alarm[1].decode("ascii"))]
        if match := _VERSION_REPLY.match(line):
            event, satisfies = Version(match[1].decode("ascii")), (_Expect.VERSION,)
        elif match := _STATUS_REPLY.match(line):
            event, satisfies = Status(int(match[1])), (_Expect.STATUS,)
        elif match := _ERRORS_REPLY.match(line):
            event, satisfies = ErrorRegister(int(match[1])), (_Expect.ERRORS,)
        elif match := _POSITION_REPLY.search(line):
            event = Position(az_deg=float(match[1]), el_deg=float(match[2]))
            satisfies = (_Expect.POSITION, _Expect.AZIMUTH, _Expect.ELEVATION)
        elif match := _AZ_REPLY.search(line):
            event, satisfies = Position(az_deg=float(match[1]), el_deg=None), (_Expect.AZIMUTH,)
        elif match := _EL_REPLY.search(line):
            event, satisfies = Elevation(el_deg=float(match[1])), (_Expect.ELEVATION,)
        else:
            return [Garbage(line, f"not an EasyComm reply (waiting for {self._expect.value})")]
        # The controller may volunteer these lines; they only clear a matching expectation.
        if self._expect in satisfies:
            self._expect = _Expect.NOTHING
        if match.start() == 0:
            return [event]
        return [Garbage(line[: match.start()], "noise before an EasyComm reply"), event]


class EasycommDevice(Decoder):
    """Device side: decode EasyComm command lines, encode the controller's replies.

    Per line: an ``AZ`` value and an ``EL`` value become one SetPosition, bare ``AZ`` and
    ``EL`` one GetPosition, ``SA`` and ``SE`` one Stop; each other token is its own event.
    Tokens the codec does not model (``UP000``, ``XXX``, ``ST``...) become UnknownCommand,
    which a simulator ignores (Hamlib expects no answer to them).
    """

    def __init__(self, *, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        """Create a device codec (one decoder serves all three levels)."""
        super().__init__(max_buffer=max_buffer)

    def _reply_value(self, field: str, value: float) -> bytes:
        check_finite(field, value, protocol="EasyComm reply")
        check_range(
            field,
            round(value, 1),
            -_REPLY_ABS_MAX_DEG,
            _REPLY_ABS_MAX_DEG,
            protocol="EasyComm reply",
        )
        return _format_deg(value)

    def encode_position(self, az_deg: float, el_deg: float) -> bytes:
        """The reply to ``AZ EL``: ``AZaaa.a ELeee.e`` LF."""
        return (
            b"AZ"
            + self._reply_value("az_deg", az_deg)
            + b" EL"
            + self._reply_value("el_deg", el_deg)
            + b"\n"
        )

    def encode_azimuth(self, az_deg: float) -> bytes:
        """The reply to a bare ``AZ``: ``AZaaa.a`` LF."""
        return b"AZ" + self._reply_value("az_deg", az_deg) + b"\n"

    def encode_elevation(self, el_deg: float) -> bytes:
        """The reply to a bare ``EL``: ``ELeee.e`` LF."""
        return b"EL" + self._reply_value("el_deg", el_deg) + b"\n"

    @staticmethod
    def _text(field: str, text: str) -> bytes:
        if not all(0x20 <= ord(char) <= 0x7E for char in text):
            raise LocalProtocolError(
                f"EasyComm reply: {field}={text!r} cannot be encoded; "
                "only printable ASCII without line ends is allowed"
            )
        return text.encode("ascii")

    def encode_version(self, text: str) -> bytes:
        """The reply to ``VE``: ``VExxx`` LF."""
        return b"VE" + self._text("text", text) + b"\n"

    @staticmethod
    def _flags(field: str, flags: int) -> int:
        if isinstance(flags, bool) or not isinstance(flags, int) or flags < 0:
            raise LocalProtocolError(
                f"EasyComm reply: {field}={flags!r} cannot be encoded; need a non-negative integer"
            )
        return flags

    def encode_status(self, flags: int) -> bytes:
        """The reply to ``GS``: ``GSn`` LF."""
        return b"GS%d\n" % self._flags("flags", flags)

    def encode_error_register(self, flags: int) -> bytes:
        """The reply to ``GE``: ``GEn`` LF."""
        return b"GE%d\n" % self._flags("flags", flags)

    def encode_alarm(self, text: str) -> bytes:
        """An unsolicited alarm line: ``ALxxx`` LF."""
        return b"AL" + self._text("text", text) + b"\n"

    def _parse(self) -> Event | None:
        # Loop, not recursion: a run of lines holding no command (";") must not nest calls.
        while True:
            line = _take_line(self._buffer)
            if line is None or isinstance(line, Garbage):
                return line
            noise, rest = _split_noise(line)
            events = self._commands(rest)
            if noise:
                for event in events:
                    self._push(event)
                return Garbage(noise, "non-printable bytes in an EasyComm command line")
            if events:
                for event in events[1:]:
                    self._push(event)
                return events[0]

    def _commands(self, line: bytes) -> list[Event]:
        """Turn one line of tokens into command events, pairing AZ/EL and SA/SE."""
        # A stray ";" follows some Hamlib get_conf commands; it separates, it means nothing.
        events = [self._token(token) for token in line.replace(b";", b" ").split()]
        _pair(
            events,
            lambda e: isinstance(e, SetPosition),
            lambda e: isinstance(e, SetElevation),
            _combine_set,
        )
        _pair(
            events,
            lambda e: isinstance(e, GetAzimuth),
            lambda e: isinstance(e, GetElevation),
            lambda a, b: GetPosition(),
        )
        _pair(
            events,
            lambda e: e == StopAxis(Axis.AZ),
            lambda e: e == StopAxis(Axis.EL),
            lambda a, b: Stop(),
        )
        return events

    @staticmethod
    def _token(token: bytes) -> Event:
        """Decode one token into its own event (pairing across tokens happens afterwards)."""
        if token in _PLAIN_TOKENS:
            return _PLAIN_TOKENS[token]
        mnemonic, value = token[:2], token[2:]
        if mnemonic == b"AZ" and _VALUE.fullmatch(value):
            return SetPosition(az_deg=float(value), el_deg=None)
        if mnemonic == b"EL" and _VALUE.fullmatch(value):
            return SetElevation(el_deg=float(value))
        if mnemonic in _VELOCITY_DIRECTIONS and _INTEGER.fullmatch(value):
            return Velocity(_VELOCITY_DIRECTIONS[mnemonic], int(value))
        return UnknownCommand(token)


def _pair(
    events: list[Event],
    first: Callable[[Event], bool],
    second: Callable[[Event], bool],
    combine: Callable[[Event, Event], Event],
) -> None:
    """Replace the first event matching ``first`` and the first matching ``second`` (if both
    exist) by ``combine(a, b)`` at the earlier of the two places."""
    i = next((k for k, event in enumerate(events) if first(event)), None)
    j = next((k for k, event in enumerate(events) if second(event)), None)
    if i is None or j is None:
        return
    combined = combine(events[i], events[j])
    events[min(i, j)] = combined
    del events[max(i, j)]


def _combine_set(azimuth: Event, elevation: Event) -> Event:
    """One SetPosition from an ``AZaaa.a`` token's event and an ``ELeee.e`` token's event."""
    if not (isinstance(azimuth, SetPosition) and isinstance(elevation, SetElevation)):
        raise TypeError(f"cannot pair {azimuth!r} with {elevation!r}")  # caller bug, not input
    return SetPosition(az_deg=azimuth.az_deg, el_deg=elevation.el_deg)


_PLAIN_TOKENS: Final[dict[bytes, Event]] = {
    b"AZ": GetAzimuth(),
    b"EL": GetElevation(),
    b"SA": StopAxis(Axis.AZ),
    b"SE": StopAxis(Axis.EL),
    b"ML": Move(Direction.LEFT),
    b"MR": Move(Direction.RIGHT),
    b"MU": Move(Direction.UP),
    b"MD": Move(Direction.DOWN),
    b"VE": GetVersion(),
    b"GS": GetStatus(),
    b"GE": GetErrorRegister(),
    b"PARK": Park(),
    b"RESET": Reset(),
}
_VELOCITY_DIRECTIONS: Final = {mnemonic: d for d, mnemonic in _VELOCITY_MNEMONICS.items()}
