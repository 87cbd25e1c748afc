"""SPID Rot2Prog / Rot1Prog / MD-01/02 rotator codec (binary fixed frames), host and device side.

Host to controller, always 13 bytes: ``57 H1 H2 H3 H4 PH V1 V2 V3 V4 PV K 20``, K = 0x0F stop,
0x1F status, 0x2F set (MD-01 adds 0x14 move, H1 a direction bit mask). In a set frame the
H/V bytes are ASCII digits of a pulse count ``PH * (360 + az)``; the controller ignores the
PH/PV bytes sent and uses its own resolution setting, which it reports in every reply.

Controller to host: Rot2Prog / MD-01 12 bytes ``57 H1 H2 H3 H4 PH V1 V2 V3 V4 PV 20`` with
binary digit values 0..9 giving ``360 + angle`` in tenths of a degree whatever the resolution;
Rot1Prog 5 bytes ``57 H1 H2 H3 20`` in whole degrees, azimuth only. Rot2Prog answers status
and stop, not set; MD-01 also answers set. There is no error frame: a controller that does not
like a frame just stays silent. Facts: /work/shared/protocols/rot2prog.md.

The host needs the controller's pulses per degree to encode a set frame: pass it when known,
or it is taken from the last position reply decoded (Hamlib's "auto-sense").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from firmware_bridge.errors import LocalProtocolError
from firmware_bridge.protocols.base import (
    DEFAULT_MAX_BUFFER,
    Decoder,
    Direction,
    Event,
    Garbage,
    GetPosition,
    Move,
    Position,
    SetPosition,
    Stop,
    UnknownCommand,
    check_finite,
    check_range,
)

__all__ = [
    "COMMAND_SIZE",
    "K_MOVE",
    "K_SET",
    "K_STATUS",
    "K_STOP",
    "SpidDevice",
    "SpidHost",
    "SpidPosition",
    "SpidVariant",
]

START: Final = 0x57
END: Final = 0x20
COMMAND_SIZE: Final = 13
K_STOP: Final = 0x0F
K_STATUS: Final = 0x1F
K_SET: Final = 0x2F
K_MOVE: Final = 0x14

_START_MARK: Final = bytes([START])
_OFFSET_DEG: Final = 360
_MOVE_BITS: Final = {
    Direction.LEFT: 0x01,
    Direction.RIGHT: 0x02,
    Direction.UP: 0x04,
    Direction.DOWN: 0x08,
}
_MOVE_DIRECTIONS: Final = {bits: direction for direction, bits in _MOVE_BITS.items()}


class SpidVariant(enum.Enum):
    """Which SPID controller: frame sizes and which commands are answered differ."""

    ROT2PROG = "Rot2Prog"
    ROT1PROG = "Rot1Prog"
    MD01 = "MD-01/02"

    @property
    def reply_size(self) -> int:
        """Bytes in a position reply: 5 for Rot1Prog, 12 otherwise."""
        return 5 if self is SpidVariant.ROT1PROG else 12


@dataclass(frozen=True, slots=True)
class SpidPosition(Position):
    """A position reply with the controller's resolution in pulses per degree (None: Rot1Prog)."""

    az_resolution_ph: int | None
    el_resolution_pv: int | None


def _check_resolution(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 255:
        raise LocalProtocolError(
            f"SPID: {field}={value!r} cannot be used; pulses per degree are one byte, 1..255 "
            "(the controller offers 1, 2 or 4; MD-01 also 10)"
        )
    return value


def _frame(h: bytes, ph: int, v: bytes, pv: int, k: int) -> bytes:
    return bytes([START]) + h + bytes([ph]) + v + bytes([pv, k, END])


def _ascii_digits(value: int) -> bytes:
    return b"%04d" % value


def _binary_digits(value: int, count: int) -> bytes:
    # Reply digits are byte values 0..9, not ASCII.
    return bytes(int(char) for char in f"{value:0{count}d}")


class SpidHost(Decoder):
    """Host side: encode 13-byte command frames, decode 12- or 5-byte position replies."""

    def __init__(
        self,
        variant: SpidVariant,
        *,
        az_resolution_ph: int | None = None,
        el_resolution_pv: int | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        """Create a host codec; resolutions None means "learn them from the replies"."""
        super().__init__(max_buffer=max_buffer)
        self._variant = variant
        self._configured_ph = (
            None
            if az_resolution_ph is None
            else _check_resolution("az_resolution_ph", az_resolution_ph)
        )
        self._configured_pv = (
            None
            if el_resolution_pv is None
            else _check_resolution("el_resolution_pv", el_resolution_pv)
        )
        self._seen_ph: int | None = None
        self._seen_pv: int | None = None
        self._awaiting = 0

    @property
    def variant(self) -> SpidVariant:
        """The controller type."""
        return self._variant

    @property
    def resolution(self) -> tuple[int, int] | None:
        """(PH, PV) used for set frames: configured, else from the last reply, else None."""
        ph = self._configured_ph if self._configured_ph is not None else self._seen_ph
        pv = self._configured_pv if self._configured_pv is not None else self._seen_pv
        if ph is None or pv is None:
            return None
        return ph, pv

    @property
    def awaiting_reply(self) -> bool:
        """True while a command that the controller answers has no decoded reply yet."""
        return self._awaiting > 0

    def _expect_reply(self) -> None:
        # A new request abandons an unanswered one (one request in flight per device).
        self._awaiting = 1

    def encode_get_position(self) -> bytes:
        """The status frame (K=0x1F); a SpidPosition follows."""
        self._expect_reply()
        return _frame(bytes(4), 0, bytes(4), 0, K_STATUS)

    def encode_stop(self) -> bytes:
        """The stop frame (K=0x0F); the controller stops and answers with a SpidPosition."""
        self._expect_reply()
        return _frame(bytes(4), 0, bytes(4), 0, K_STOP)

    def encode_set_position(self, az_deg: float, el_deg: float | None = None) -> bytes:
        """The set frame (K=0x2F). Rot1Prog: whole degrees, azimuth only (el_deg must be None).

        Pulse counts are rounded half-even to the nearest pulse (Hamlib truncates instead,
        which costs up to a whole step).
        """
        if self._variant is SpidVariant.ROT1PROG:
            if el_deg is not None:
                raise LocalProtocolError(
                    f"SPID Rot1Prog set: el_deg={el_deg!r} cannot be encoded; "
                    "Rot1Prog carries azimuth only, pass el_deg=None"
                )
            check_range(
                "az_deg", az_deg, -_OFFSET_DEG, 999 - _OFFSET_DEG, protocol="SPID Rot1Prog set"
            )
            degrees = round(_OFFSET_DEG + az_deg)
            # Rot1Prog reads H1..H3 as hundreds/tens/ones and ignores H4 (always '0').
            return _frame(b"%03d0" % degrees, 0, bytes(4), 0, K_SET)
        if el_deg is None:
            raise LocalProtocolError(
                f"SPID {self._variant.value} set: el_deg=None cannot be encoded; "
                "this controller needs an elevation"
            )
        resolution = self.resolution
        if resolution is None:
            raise LocalProtocolError(
                f"SPID {self._variant.value} set: the controller's pulses per degree are unknown; "
                "decode a position reply first (encode_get_position) or pass "
                "az_resolution_ph/el_resolution_pv"
            )
        ph, pv = resolution
        h = self._pulses("az_deg", az_deg, ph)
        v = self._pulses("el_deg", el_deg, pv)
        if self._variant is SpidVariant.MD01:
            self._expect_reply()
        else:
            self._awaiting = 0
        return _frame(_ascii_digits(h), ph, _ascii_digits(v), pv, K_SET)

    def _pulses(self, field: str, value: float, per_deg: int) -> int:
        where = f"SPID {self._variant.value} set at {per_deg} pulses/deg"
        check_finite(field, value, protocol=where)
        # Four ASCII digits: 0 <= per_deg * (360 + value) <= 9999.
        check_range(field, value, -_OFFSET_DEG, 9999 / per_deg - _OFFSET_DEG, protocol=where)
        return round(per_deg * (_OFFSET_DEG + value))

    def encode_move(self, direction: Direction) -> bytes:
        """MD-01 only: move frame (K=0x14) with the direction bit in H1; send a stop first."""
        if self._variant is not SpidVariant.MD01:
            raise LocalProtocolError(
                f"SPID {self._variant.value}: move cannot be encoded; only MD-01/02 has it"
            )
        self._awaiting = 0
        return _frame(bytes([_MOVE_BITS[direction], 0, 0, 0]), 0, bytes(4), 0, K_MOVE)

    def _parse(self) -> Event | None:
        buffer = self._buffer
        if not len(buffer):
            return None
        if not buffer.startswith(_START_MARK):
            return Garbage(buffer.skip_to(_START_MARK), "no SPID frame start (0x57)")
        size = self._variant.reply_size
        if len(buffer) < size:
            return None
        frame = buffer.peek(size)
        problem = self._frame_problem(frame)
        if problem:
            # Drop the false start byte and look for the next one.
            return Garbage(buffer.skip_to(_START_MARK, 1), problem)
        buffer.take(size)
        self._awaiting = 0
        if self._variant is SpidVariant.ROT1PROG:
            degrees = frame[1] * 100 + frame[2] * 10 + frame[3]
            return SpidPosition(
                az_deg=float(degrees - _OFFSET_DEG),
                el_deg=None,
                az_resolution_ph=None,
                el_resolution_pv=None,
            )
        self._seen_ph, self._seen_pv = frame[5], frame[10]
        return SpidPosition(
            az_deg=_tenths_to_deg(frame[1:5]),
            el_deg=_tenths_to_deg(frame[6:10]),
            az_resolution_ph=frame[5],
            el_resolution_pv=frame[10],
        )

    def _frame_problem(self, frame: bytes) -> str:
        """Why ``frame`` is not a reply of this variant ("" if it is one)."""
        if frame[-1] != END:
            return f"SPID {self._variant.value} reply does not end in 0x20 at byte {len(frame) - 1}"
        digit_slots = (
            (1, 2, 3) if self._variant is SpidVariant.ROT1PROG else (1, 2, 3, 4, 6, 7, 8, 9)
        )
        if any(frame[i] > 9 for i in digit_slots):
            return f"SPID {self._variant.value} reply holds a digit byte above 9"
        if self._variant is not SpidVariant.ROT1PROG and (frame[5] == 0 or frame[10] == 0):
            return f"SPID {self._variant.value} reply reports 0 pulses per degree"
        return ""


def _tenths_to_deg(digits: bytes) -> float:
    tenths = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3]
    # Integer arithmetic first, one division last: -10.3 comes out as the float nearest -10.3.
    return (tenths - _OFFSET_DEG * 10) / 10


class SpidDevice(Decoder):
    """Device side: decode 13-byte command frames, encode position replies.

    ``az_resolution_ph``/``el_resolution_pv`` are the controller's setting (pulses per
    degree): they turn pulse counts of set frames into degrees and are reported in replies.
    """

    def __init__(
        self,
        variant: SpidVariant,
        *,
        az_resolution_ph: int = 1,
        el_resolution_pv: int = 1,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        """Create a device codec with the controller's resolution setting."""
        super().__init__(max_buffer=max_buffer)
        self._variant = variant
        self._ph = _check_resolution("az_resolution_ph", az_resolution_ph)
        self._pv = _check_resolution("el_resolution_pv", el_resolution_pv)

    @property
    def variant(self) -> SpidVariant:
        """The controller type."""
        return self._variant

    @property
    def resolution(self) -> tuple[int, int]:
        """The controller's (PH, PV) in pulses per degree."""
        return self._ph, self._pv

    def encode_position(self, az_deg: float, el_deg: float | None = None) -> bytes:
        """A position reply: 12 bytes in tenths (Rot2Prog/MD-01), 5 bytes in degrees (Rot1Prog)."""
        where = f"SPID {self._variant.value} reply"
        if self._variant is SpidVariant.ROT1PROG:
            if el_deg is not None:
                raise LocalProtocolError(
                    f"{where}: el_deg={el_deg!r} cannot be encoded; Rot1Prog reports azimuth only"
                )
            check_range("az_deg", az_deg, -_OFFSET_DEG, 999 - _OFFSET_DEG, protocol=where)
            degrees = round(_OFFSET_DEG + az_deg)
            return bytes([START]) + _binary_digits(degrees, 3) + bytes([END])
        if el_deg is None:
            raise LocalProtocolError(f"{where}: el_deg=None cannot be encoded; need an elevation")
        h = self._tenths("az_deg", az_deg, where)
        v = self._tenths("el_deg", el_deg, where)
        return (
            bytes([START])
            + _binary_digits(h, 4)
            + bytes([self._ph])
            + _binary_digits(v, 4)
            + bytes([self._pv, END])
        )

    @staticmethod
    def _tenths(field: str, value: float, where: str) -> int:
        # Four digits of tenths: 0 <= 10 * (360 + value) <= 9999.
        check_range(field, value, -_OFFSET_DEG, 999.9 - _OFFSET_DEG, protocol=where)
        return round((_OFFSET_DEG + value) * 10)

    def _parse(self) -> Event | None:
        buffer = self._buffer
        if not len(buffer):
            return None
        if not buffer.startswith(_START_MARK):
            return Garbage(buffer.skip_to(_START_MARK), "no SPID frame start (0x57)")
        if len(buffer) < COMMAND_SIZE:
            return None
        frame = buffer.peek(COMMAND_SIZE)
        if frame[-1] != END:
            return Garbage(
                buffer.skip_to(_START_MARK, 1), "SPID command does not end in 0x20 at byte 12"
            )
        buffer.take(COMMAND_SIZE)
        return self._command(frame)

    def _command(self, frame: bytes) -> Event:
        k = frame[11]
        # Status and stop ignore bytes 1..10 (Hamlib leaves garbage in some of them).
        if k == K_STATUS:
            return GetPosition()
        if k == K_STOP:
            return Stop()
        if k == K_SET:
            return self._set(frame)
        if k == K_MOVE and self._variant is SpidVariant.MD01 and frame[1] in _MOVE_DIRECTIONS:
            return Move(_MOVE_DIRECTIONS[frame[1]])
        # No NAK exists in this protocol: the simulator stays silent, as the controller does.
        return UnknownCommand(frame)

    def _set(self, frame: bytes) -> Event:
        h, v = frame[1:5], frame[6:10]
        if self._variant is SpidVariant.ROT1PROG:
            if not h[:3].isdigit():
                return UnknownCommand(frame)
            return SetPosition(az_deg=float(int(h[:3]) - _OFFSET_DEG), el_deg=None)
        if not (h.isdigit() and v.isdigit()):
            return UnknownCommand(frame)
        # The PH/PV bytes in the frame are ignored: the controller's own setting counts.
        return SetPosition(
            az_deg=_pulses_to_deg(int(h), self._ph), el_deg=_pulses_to_deg(int(v), self._pv)
        )


def _pulses_to_deg(pulses: int, per_deg: int) -> float:
    return (pulses - _OFFSET_DEG * per_deg) / per_deg
