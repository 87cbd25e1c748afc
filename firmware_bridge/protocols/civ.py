"""Icom CI-V codec (IC-9700, IC-910), host side (controller) and device side (radio twin).

Frame: ``FE FE <to> <from> <cmd> [<sub>] [<data>...] FD``. The controller (Hamlib and we use
``0xE0``) sends to the radio's address (IC-9700 ``0xA2``, IC-910 ``0x60``); the radio answers
with the addresses swapped, with ``FB`` (OK), ``FA`` (NG) or the command repeated followed by
its data. Frequencies are 10 packed-BCD digits, least significant byte first
(145 800 000 Hz -> ``00 00 80 45 01``). Facts and captures: /work/shared/protocols/civ.md.

Bus behaviour the host decoder handles:

* **Echo**: on the two-wire bus every byte we send comes back before the answer. With
  ``echo=True`` the decoder drops the echo of each frame we encoded (and reports a
  ``Collision`` when it differs); with ``echo=None`` it detects the echo the way Hamlib 4.5.4
  does (the first frame back is either our own frame or the answer); with ``echo=False`` our
  own frames are simply not addressed to us and are ignored.
* Frames addressed to other controllers or sent by other stations are ignored (counted in
  ``ignored_frames``); frames from the radio to ``00`` (transceive broadcasts) become
  ``Transceive*`` events.
* Collisions: any frame or fragment holding the jam byte ``FC`` becomes a ``Collision``; a
  frame cut off by a new ``FE FE`` before its ``FD``, bytes outside frames and over-long
  frames become ``Garbage``. The decoder never raises on received bytes.

The device side decodes commands addressed to its own address (or ``00``) into typed command
events carrying the request frame, and encodes answers exactly as the radio sends them; with
``echo=True`` every answer is preceded by the echo of the request, as the bus delivers it.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from firmware_bridge.errors import LocalProtocolError
from firmware_bridge.protocols.base import (
    DEFAULT_MAX_BUFFER,
    Ack,
    ByteBuffer,
    Decoder,
    ErrorReply,
    Event,
    Garbage,
    UnknownCommand,
)

__all__ = [
    "BROADCAST_ADDRESS",
    "CONTROLLER_ADDRESS",
    "FREQ_MAX_HZ",
    "IC910",
    "IC9700",
    "MODES",
    "PREAMBLE",
    "CivCommand",
    "CivDevice",
    "CivFrequency",
    "CivHost",
    "CivMode",
    "CivModel",
    "CivReply",
    "CivTarget",
    "CivVfo",
    "Collision",
    "InvalidCivCommand",
    "ReadFrequency",
    "ReadMode",
    "ReadSMeter",
    "ReadSatelliteMode",
    "ReadSplit",
    "SMeter",
    "SatelliteMode",
    "SelectVfo",
    "SetFrequency",
    "SetMode",
    "SetSatelliteMode",
    "SetSplit",
    "SplitState",
    "TransceiveFrame",
    "TransceiveFrequency",
    "TransceiveMode",
    "decode_bcd_frequency",
    "encode_bcd_frequency",
]

PREAMBLE: Final = b"\xfe\xfe"
"""Every CI-V frame starts with FE FE (radios may send more FE bytes)."""
_PRE: Final = 0xFE
_EOM: Final = 0xFD
_JAM: Final = 0xFC
_OK: Final = 0xFB
_NG: Final = 0xFA

CONTROLLER_ADDRESS: Final = 0xE0
"""The controller address Hamlib (and groundlink) uses."""
BROADCAST_ADDRESS: Final = 0x00
"""Radios accept commands sent to 00 and send transceive updates to 00."""
FREQ_MAX_HZ: Final = 9_999_999_999
"""Five BCD bytes carry ten digits."""

# A CI-V frame is at most ~20 bytes; 64 without an FD is noise, not a slow frame.
_MAX_FRAME: Final = 64
# Echo bookkeeping: the link has one request in flight, so a handful is plenty; bounded so a
# radio that never echoes cannot grow it.
_MAX_SENT: Final = 16

_CMD_TRX_FREQ: Final = 0x00
_CMD_TRX_MODE: Final = 0x01
_CMD_READ_FREQ: Final = 0x03
_CMD_READ_MODE: Final = 0x04
_CMD_SET_FREQ: Final = 0x05
_CMD_SET_MODE: Final = 0x06
_CMD_VFO: Final = 0x07
_CMD_SPLIT: Final = 0x0F
_CMD_METER: Final = 0x15
_SUB_S_METER: Final = 0x02
_CMD_SEL_FREQ: Final = 0x25
_CMD_SEL_MODE: Final = 0x26

MODES: Final[dict[str, int]] = {
    "LSB": 0x00,
    "USB": 0x01,
    "AM": 0x02,
    "CW": 0x03,
    "RTTY": 0x04,
    "FM": 0x05,
    "WFM": 0x06,
    "CWR": 0x07,
    "RTTYR": 0x08,
    "DV": 0x17,
    "DD": 0x22,
}
"""CI-V mode bytes by Hamlib-style mode name (DV = D-STAR voice, DD = D-STAR data)."""
_MODE_NAMES: Final = {code: name for name, code in MODES.items()}


class CivVfo(enum.Enum):
    """The ``07`` sub-command bytes: VFO A/B, or the MAIN/SUB band of dual-band radios."""

    A = 0x00
    B = 0x01
    MAIN = 0xD0
    SUB = 0xD1


class CivTarget(enum.Enum):
    """Which frequency/mode a command addresses."""

    OPERATING = "operating"
    """``03``/``04``/``05``/``06``: the current VFO of the current band."""
    SELECTED = "selected"
    """IC-9700 ``25 00``/``26 00``: the selected VFO."""
    UNSELECTED = "unselected"
    """IC-9700 ``25 01``/``26 01``: the unselected VFO."""


_TARGET_SUB: Final = {CivTarget.SELECTED: 0x00, CivTarget.UNSELECTED: 0x01}
_SUB_TARGET: Final = {code: target for target, code in _TARGET_SUB.items()}


@dataclass(frozen=True, slots=True)
class CivModel:
    """What differs between the radios this codec speaks to."""

    name: str
    default_address: int
    default_baud: int
    has_selected_vfo_commands: bool
    """True if the radio has ``25``/``26`` (read/set frequency and mode of sel/unsel VFO)."""
    satmode_command: bytes
    """Command and sub-command that read/set satellite mode."""


IC9700: Final = CivModel(
    name="IC-9700",
    default_address=0xA2,
    default_baud=38400,
    has_selected_vfo_commands=True,
    satmode_command=b"\x16\x5a",
)
IC910: Final = CivModel(
    name="IC-910",
    default_address=0x60,
    default_baud=19200,
    has_selected_vfo_commands=False,
    satmode_command=b"\x1a\x07",
)


# --------------------------------------------------------------------------- BCD helpers


def encode_bcd_frequency(freq_hz: int) -> bytes:
    """Frequency in Hz as 5 packed-BCD bytes, least significant byte first."""
    if isinstance(freq_hz, bool) or not isinstance(freq_hz, int):
        raise LocalProtocolError(
            f"CI-V frequency: freq_hz={freq_hz!r} cannot be encoded; need an int number of Hz"
        )
    if not 0 <= freq_hz <= FREQ_MAX_HZ:
        raise LocalProtocolError(
            f"CI-V frequency: freq_hz={freq_hz!r} cannot be encoded; "
            f"five BCD bytes carry 0..{FREQ_MAX_HZ} Hz"
        )
    digits = f"{freq_hz:010d}"
    # Pairs of digits from the least significant end, each byte = (tens << 4) | units.
    return bytes(int(digits[i - 2 : i], 16) for i in range(10, 0, -2))


def _bcd_value(data: bytes) -> int:
    """Digits of packed-BCD bytes, most significant byte first; ValueError on a non-digit."""
    value = 0
    for byte in data:
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise ValueError(f"byte {byte:02X} is not two BCD digits")
        value = value * 100 + high * 10 + low
    return value


def decode_bcd_frequency(data: bytes) -> int:
    """Frequency in Hz from packed-BCD bytes, least significant byte first."""
    return _bcd_value(bytes(reversed(data)))


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def _check_address(name: str, value: int) -> None:
    # 00 is the broadcast address and E0.. belong to controllers and framing bytes.
    if isinstance(value, bool) or not isinstance(value, int) or not 0x01 <= value <= 0xDF:
        raise LocalProtocolError(
            f"CI-V: {name}={value!r} is not a usable radio address; allowed 0x01..0xDF"
        )


def _mode_byte(mode: str, *, where: str) -> int:
    code = MODES.get(mode)
    if code is None:
        raise LocalProtocolError(
            f"{where}: mode={mode!r} cannot be encoded; allowed {', '.join(MODES)}"
        )
    return code


def _check_filter(filter_no: int, *, where: str) -> None:
    if isinstance(filter_no, bool) or not isinstance(filter_no, int) or not 1 <= filter_no <= 3:
        raise LocalProtocolError(
            f"{where}: filter_no={filter_no!r} cannot be encoded; allowed 1, 2, 3 (FIL1..FIL3)"
        )


def _check_data_mode(data_mode: int, *, where: str) -> None:
    if isinstance(data_mode, bool) or not isinstance(data_mode, int) or not 0 <= data_mode <= 3:
        raise LocalProtocolError(
            f"{where}: data_mode={data_mode!r} cannot be encoded; allowed 0 (off), 1..3 (D1..D3)"
        )


def _junk(data: bytes, reason: str) -> Garbage:
    """Discarded bytes: a Collision if they hold the jam byte, else Garbage."""
    if _JAM in data:
        return Collision(data, f"jam byte FC (bus collision) in discarded bytes; {reason}")
    return Garbage(data, reason)


def _next_frame(buffer: ByteBuffer) -> bytes | Garbage | None:
    """Remove the next complete frame (FE FE .. FD) from ``buffer``, or discarded junk."""
    while True:
        if len(buffer) == 0:
            return None
        if not buffer.startswith(PREAMBLE):
            dropped = buffer.skip_to(PREAMBLE)
            if dropped:
                return _junk(dropped, "bytes outside a CI-V frame (no FE FE preamble)")
            return None  # only a lone FE, maybe the start of a preamble
        if len(buffer) < 3:
            return None
        if buffer.peek(3)[2] == _PRE:
            # Radios may send more than two preamble bytes; they carry nothing.
            buffer.take(1)
            continue
        end = buffer.find(bytes([_EOM]), 2)
        restart = buffer.find(PREAMBLE, 2)
        if restart >= 0 and (end < 0 or restart < end):
            return _junk(buffer.take(restart), "CI-V frame cut off by a new FE FE before its FD")
        if end < 0:
            if len(buffer) > _MAX_FRAME:
                return _junk(buffer.take(len(buffer)), f"no FD within {_MAX_FRAME} bytes of FE FE")
            return None
        frame = buffer.take(end + 1)
        if _JAM in frame:
            return Collision(frame, "jam byte FC in the frame (bus collision)")
        if len(frame) < 6:
            return Garbage(frame, "CI-V frame too short: need FE FE to from cmd .. FD")
        return frame


def _build_frame(to: int, frm: int, body: bytes) -> bytes:
    return PREAMBLE + bytes([to, frm]) + body + bytes([_EOM])


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Collision(Garbage):
    """Bytes lost to a bus collision (jam byte FC, or an echo that differs from what we sent)."""


@dataclass(frozen=True, slots=True)
class CivFrequency(Event):
    """Host side: a frequency reply (``03``, or ``25 00``/``25 01`` on the IC-9700)."""

    freq_hz: int
    target: CivTarget


@dataclass(frozen=True, slots=True)
class CivMode(Event):
    """Host side: a mode reply (``04 mode [filter]`` or ``26 sub mode data filter``).

    ``filter_no`` / ``data_mode`` are None when the radio did not send them.
    """

    mode: str
    filter_no: int | None
    data_mode: int | None
    target: CivTarget


@dataclass(frozen=True, slots=True)
class SMeter(Event):
    """Host side: ``15 02`` reply, the raw S-meter value 0..255 (120 = S9 on the IC-9700)."""

    raw: int


@dataclass(frozen=True, slots=True)
class SatelliteMode(Event):
    """Host side: satellite mode reply (IC-9700 ``16 5A``, IC-910 ``1A 07``)."""

    on: bool


@dataclass(frozen=True, slots=True)
class SplitState(Event):
    """Host side: ``0F`` reply (00 split off, 01 split on)."""

    on: bool


@dataclass(frozen=True, slots=True)
class CivReply(Event):
    """Host side: any other well-formed reply from the radio to us (command byte and data)."""

    command: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class TransceiveFrequency(Event):
    """Host side: unsolicited ``00`` frequency broadcast (the operator turned the dial)."""

    freq_hz: int


@dataclass(frozen=True, slots=True)
class TransceiveMode(Event):
    """Host side: unsolicited ``01`` mode broadcast."""

    mode: str
    filter_no: int | None


@dataclass(frozen=True, slots=True)
class TransceiveFrame(Event):
    """Host side: any other unsolicited frame from the radio to the broadcast address."""

    command: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class CivCommand(Event):
    """Device side: base of every decoded command; ``frame`` is the request as received."""

    frame: bytes = field(default=b"", kw_only=True, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ReadFrequency(CivCommand):
    """Device side: ``03`` (operating) or ``25 00``/``25 01`` (IC-9700 selected/unselected)."""

    target: CivTarget


@dataclass(frozen=True, slots=True)
class SetFrequency(CivCommand):
    """Device side: ``05``/``25 0x`` set frequency, or ``00`` (transceive form: no answer)."""

    freq_hz: int
    target: CivTarget
    transceive: bool = False


@dataclass(frozen=True, slots=True)
class ReadMode(CivCommand):
    """Device side: ``04`` (operating) or ``26 00``/``26 01`` (IC-9700)."""

    target: CivTarget


@dataclass(frozen=True, slots=True)
class SetMode(CivCommand):
    """Device side: ``06``/``26 0x`` set mode, or ``01`` (transceive form: no answer).

    ``filter_no`` and ``data_mode`` are None when the command did not carry them.
    """

    mode: str
    filter_no: int | None
    data_mode: int | None
    target: CivTarget
    transceive: bool = False


@dataclass(frozen=True, slots=True)
class SelectVfo(CivCommand):
    """Device side: ``07 00/01/D0/D1``."""

    vfo: CivVfo


@dataclass(frozen=True, slots=True)
class ReadSplit(CivCommand):
    """Device side: ``0F`` read split state."""


@dataclass(frozen=True, slots=True)
class SetSplit(CivCommand):
    """Device side: ``0F 00``/``0F 01`` split off/on."""

    on: bool


@dataclass(frozen=True, slots=True)
class ReadSMeter(CivCommand):
    """Device side: ``15 02`` read S-meter."""


@dataclass(frozen=True, slots=True)
class ReadSatelliteMode(CivCommand):
    """Device side: read satellite mode (IC-9700 ``16 5A``, IC-910 ``1A 07``)."""


@dataclass(frozen=True, slots=True)
class SetSatelliteMode(CivCommand):
    """Device side: set satellite mode on/off."""

    on: bool


@dataclass(frozen=True, slots=True)
class InvalidCivCommand(UnknownCommand):
    """Device side: a known command with unusable data (``data`` is the frame); answer NG."""

    reason: str


# --------------------------------------------------------------------------- host side


class CivHost(Decoder):
    """Host side: encode CI-V commands for one radio and decode its answers and broadcasts."""

    def __init__(
        self,
        model: CivModel = IC9700,
        *,
        radio_address: int | None = None,
        controller_address: int = CONTROLLER_ADDRESS,
        echo: bool | None = False,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        """Create a host codec; ``echo`` True/False if known, None to detect it like Hamlib."""
        super().__init__(max_buffer=max_buffer)
        address = model.default_address if radio_address is None else radio_address
        _check_address("radio_address", address)
        if (
            isinstance(controller_address, bool)
            or not isinstance(controller_address, int)
            or not 0x01 <= controller_address <= 0xEF
            or controller_address == address
        ):
            raise LocalProtocolError(
                f"CI-V: controller_address={controller_address!r} is not usable; allowed "
                f"0x01..0xEF other than the radio address 0x{address:02X}"
            )
        self._model = model
        self._radio = address
        self._controller = controller_address
        self._echo = echo
        self._sent: deque[bytes] = deque(maxlen=_MAX_SENT)
        self.ignored_frames = 0
        """Frames dropped because they were for other stations (or our unneeded echoes)."""

    @property
    def model(self) -> CivModel:
        """The radio model this codec speaks to."""
        return self._model

    @property
    def radio_address(self) -> int:
        """The radio's CI-V address."""
        return self._radio

    @property
    def echo(self) -> bool | None:
        """True/False once known; None while auto-detection has not seen a frame yet."""
        return self._echo

    # ---- encoders

    def _frame(self, body: bytes) -> bytes:
        frame = _build_frame(self._radio, self._controller, body)
        if self._echo is not False:
            self._sent.append(frame)
        return frame

    def _require_selected(self, what: str) -> None:
        if not self._model.has_selected_vfo_commands:
            raise LocalProtocolError(
                f"CI-V {self._model.name}: {what} uses command 25/26, which this radio does "
                "not have; use the operating-VFO form (03/04/05/06) instead"
            )

    def encode_command(self, command: int, payload: bytes = b"") -> bytes:
        """Any command byte and data (for commands without a dedicated encoder)."""
        if isinstance(command, bool) or not isinstance(command, int) or not 0 <= command <= 0xF9:
            raise LocalProtocolError(
                f"CI-V: command={command!r} cannot be encoded; allowed 0x00..0xF9"
            )
        bad = sorted({b for b in payload if b in (_PRE, _EOM, _JAM)})
        if bad:
            raise LocalProtocolError(
                f"CI-V: payload {_hex(payload)} holds framing byte(s) "
                f"{_hex(bytes(bad))}; FE/FD/FC cannot appear inside a frame"
            )
        return self._frame(bytes([command]) + payload)

    def encode_read_frequency(self) -> bytes:
        """``03``: read the operating frequency; a CivFrequency(OPERATING) follows."""
        return self._frame(bytes([_CMD_READ_FREQ]))

    def encode_set_frequency(self, freq_hz: int) -> bytes:
        """``05``: set the operating frequency; Ack (FB) or ErrorReply (FA) follows."""
        return self._frame(bytes([_CMD_SET_FREQ]) + encode_bcd_frequency(freq_hz))

    def encode_read_mode(self) -> bytes:
        """``04``: read the operating mode; a CivMode(OPERATING) follows."""
        return self._frame(bytes([_CMD_READ_MODE]))

    def encode_set_mode(self, mode: str, filter_no: int | None = 1) -> bytes:
        """``06 mode [filter]``: set the operating mode (no filter byte when None)."""
        where = f"CI-V {self._model.name} set mode (06)"
        body = bytes([_CMD_SET_MODE, _mode_byte(mode, where=where)])
        if filter_no is not None:
            _check_filter(filter_no, where=where)
            body += bytes([filter_no])
        return self._frame(body)

    def encode_read_selected_frequency(self, target: CivTarget = CivTarget.SELECTED) -> bytes:
        """IC-9700 ``25 00``/``25 01``: read the selected/unselected VFO frequency."""
        self._require_selected("read selected/unselected frequency")
        return self._frame(bytes([_CMD_SEL_FREQ, _target_sub(target)]))

    def encode_set_selected_frequency(
        self, freq_hz: int, target: CivTarget = CivTarget.SELECTED
    ) -> bytes:
        """IC-9700 ``25 0x <bcd>``: set the selected/unselected VFO frequency."""
        self._require_selected("set selected/unselected frequency")
        return self._frame(
            bytes([_CMD_SEL_FREQ, _target_sub(target)]) + encode_bcd_frequency(freq_hz)
        )

    def encode_read_selected_mode(self, target: CivTarget = CivTarget.SELECTED) -> bytes:
        """IC-9700 ``26 00``/``26 01``: read mode, data mode and filter of a VFO."""
        self._require_selected("read selected/unselected mode")
        return self._frame(bytes([_CMD_SEL_MODE, _target_sub(target)]))

    def encode_set_selected_mode(
        self,
        mode: str,
        *,
        data_mode: int = 0,
        filter_no: int = 1,
        target: CivTarget = CivTarget.SELECTED,
    ) -> bytes:
        """IC-9700 ``26 0x mode data filter`` (Hamlib sends ``26 00 05 00 01`` for FM)."""
        self._require_selected("set selected/unselected mode")
        where = f"CI-V {self._model.name} set mode (26)"
        code = _mode_byte(mode, where=where)
        _check_data_mode(data_mode, where=where)
        _check_filter(filter_no, where=where)
        return self._frame(bytes([_CMD_SEL_MODE, _target_sub(target), code, data_mode, filter_no]))

    def encode_select_vfo(self, vfo: CivVfo) -> bytes:
        """``07 00/01/D0/D1``: select VFO A/B or the MAIN/SUB band; Ack follows."""
        return self._frame(bytes([_CMD_VFO, vfo.value]))

    def encode_read_split(self) -> bytes:
        """``0F``: read split; a SplitState follows."""
        return self._frame(bytes([_CMD_SPLIT]))

    def encode_set_split(self, on: bool) -> bytes:
        """``0F 00``/``0F 01``: split off/on; Ack follows."""
        return self._frame(bytes([_CMD_SPLIT, 1 if on else 0]))

    def encode_read_s_meter(self) -> bytes:
        """``15 02``: read the S-meter; an SMeter (0..255) follows."""
        return self._frame(bytes([_CMD_METER, _SUB_S_METER]))

    def encode_read_satellite_mode(self) -> bytes:
        """Read satellite mode (IC-9700 ``16 5A``, IC-910 ``1A 07``); SatelliteMode follows."""
        return self._frame(self._model.satmode_command)

    def encode_set_satellite_mode(self, on: bool) -> bytes:
        """Set satellite mode on/off (data byte 01/00); Ack follows."""
        return self._frame(self._model.satmode_command + bytes([1 if on else 0]))

    # ---- decoder

    def _parse(self) -> Event | None:
        while True:
            frame = _next_frame(self._buffer)
            if frame is None or isinstance(frame, Garbage):
                return frame
            event = self._dispatch(frame)
            if event is not None:
                return event

    def _dispatch(self, frame: bytes) -> Event | None:
        to, frm = frame[2], frame[3]
        if frm == self._controller and to == self._radio:
            return self._own_frame(frame)
        if frm != self._radio or to not in (self._controller, BROADCAST_ADDRESS):
            self.ignored_frames += 1
            return None
        if to == BROADCAST_ADDRESS:
            return self._transceive(frame)
        if self._sent:
            # The answer came before the echo of what we sent: the echo is off (auto-detect),
            # or it was lost; either way it cannot come any more.
            if self._echo is None:
                self._echo = False
            self._sent.clear()
        return self._reply(frame)

    def _own_frame(self, frame: bytes) -> Event | None:
        if not self._sent:
            self.ignored_frames += 1
            return None
        expected = self._sent.popleft()
        if frame == expected:
            if self._echo is None:
                self._echo = True
            return None
        return Collision(
            frame, f"echo differs from the frame we sent ({_hex(expected)}): bus collision"
        )

    def _transceive(self, frame: bytes) -> Event:
        command, payload = frame[4], frame[5:-1]
        try:
            if command == _CMD_TRX_FREQ and len(payload) == 5:
                return TransceiveFrequency(decode_bcd_frequency(payload))
            if command == _CMD_TRX_MODE and len(payload) in (1, 2):
                mode = _mode_name(payload[0])
                return TransceiveMode(mode, payload[1] if len(payload) == 2 else None)
        except ValueError as exc:
            return Garbage(frame, f"CI-V transceive frame {_hex(frame)}: {exc}")
        return TransceiveFrame(command, payload)

    def _reply(self, frame: bytes) -> Event:
        command, payload = frame[4], frame[5:-1]
        try:
            event = self._typed_reply(command, payload)
        except ValueError as exc:
            return Garbage(frame, f"CI-V reply {_hex(frame)} from the radio: {exc}")
        return event if event is not None else CivReply(command, payload)

    def _typed_reply(self, command: int, payload: bytes) -> Event | None:
        satmode = self._model.satmode_command
        if command in (_OK, _NG):
            if payload:
                raise ValueError("OK/NG reply with data")
            if command == _OK:
                return Ack()
            return ErrorReply(code="NG", text="FA: the radio rejected the command (NG)")
        if command == _CMD_READ_FREQ and len(payload) == 5:
            return CivFrequency(decode_bcd_frequency(payload), CivTarget.OPERATING)
        if command == _CMD_READ_MODE and len(payload) in (1, 2):
            filter_no = payload[1] if len(payload) == 2 else None
            return CivMode(_mode_name(payload[0]), filter_no, None, CivTarget.OPERATING)
        if command == _CMD_SEL_FREQ and len(payload) == 6 and payload[0] in _SUB_TARGET:
            return CivFrequency(decode_bcd_frequency(payload[1:]), _SUB_TARGET[payload[0]])
        if command == _CMD_SEL_MODE and len(payload) in (2, 3, 4) and payload[0] in _SUB_TARGET:
            data_mode = payload[2] if len(payload) >= 3 else None
            filter_no = payload[3] if len(payload) == 4 else None
            return CivMode(_mode_name(payload[1]), filter_no, data_mode, _SUB_TARGET[payload[0]])
        if command == _CMD_METER and payload[:1] == bytes([_SUB_S_METER]) and len(payload) == 3:
            raw = _bcd_value(payload[1:])
            if raw > 255:
                raise ValueError(f"S-meter value {raw} outside 0..255")
            return SMeter(raw)
        if bytes([command]) + payload[:1] == satmode and len(payload) == 2 and payload[1] < 2:
            return SatelliteMode(payload[1] == 1)
        if command == _CMD_SPLIT and len(payload) == 1 and payload[0] < 2:
            return SplitState(payload[0] == 1)
        return None


def _target_sub(target: CivTarget) -> int:
    sub = _TARGET_SUB.get(target)
    if sub is None:
        raise LocalProtocolError(
            f"CI-V 25/26: target={target!r} cannot be encoded; allowed "
            "CivTarget.SELECTED or CivTarget.UNSELECTED"
        )
    return sub


def _mode_name(code: int) -> str:
    name = _MODE_NAMES.get(code)
    if name is None:
        raise ValueError(f"unknown mode byte {code:02X}")
    return name


# --------------------------------------------------------------------------- device side


class CivDevice(Decoder):
    """Device side: decode commands sent to one radio address, encode the radio's answers."""

    def __init__(
        self,
        model: CivModel = IC9700,
        *,
        address: int | None = None,
        echo: bool = False,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        """Create a radio-side codec; with ``echo`` every answer starts with the request."""
        super().__init__(max_buffer=max_buffer)
        own = model.default_address if address is None else address
        _check_address("address", own)
        self._model = model
        self._address = own
        self._echo = echo
        self.ignored_frames = 0
        """Frames dropped because they were addressed to another station."""

    @property
    def model(self) -> CivModel:
        """The radio model this codec answers as."""
        return self._model

    @property
    def address(self) -> int:
        """This radio's CI-V address."""
        return self._address

    @property
    def echo(self) -> bool:
        """True if answers are preceded by the echo of the request."""
        return self._echo

    # ---- decoder

    def _parse(self) -> Event | None:
        while True:
            frame = _next_frame(self._buffer)
            if frame is None or isinstance(frame, Garbage):
                return frame
            to, frm = frame[2], frame[3]
            if to not in (self._address, BROADCAST_ADDRESS) or frm == self._address:
                self.ignored_frames += 1
                continue
            return self._command(frame)

    def _command(self, frame: bytes) -> Event:
        command, payload = frame[4], frame[5:-1]
        try:
            event = self._typed_command(command, payload, frame)
        except ValueError as exc:
            return InvalidCivCommand(frame, f"CI-V command {_hex(frame)}: {exc}")
        return event if event is not None else UnknownCommand(frame)

    def _typed_command(self, command: int, payload: bytes, frame: bytes) -> Event | None:
        operating = CivTarget.OPERATING
        sub = payload[0] if payload else None
        if command in (_CMD_READ_FREQ, _CMD_READ_MODE) and payload:
            raise ValueError("read command with data")
        if command == _CMD_READ_FREQ:
            return ReadFrequency(operating, frame=frame)
        if command in (_CMD_SET_FREQ, _CMD_TRX_FREQ):
            freq_hz = _frequency_data(payload)
            return SetFrequency(freq_hz, operating, command == _CMD_TRX_FREQ, frame=frame)
        if command == _CMD_READ_MODE:
            return ReadMode(operating, frame=frame)
        if command in (_CMD_SET_MODE, _CMD_TRX_MODE):
            if len(payload) not in (1, 2):
                raise ValueError(f"mode data must be 1 or 2 bytes, got {len(payload)}")
            filter_no = payload[1] if len(payload) == 2 else None
            if filter_no is not None and not 1 <= filter_no <= 3:
                raise ValueError(f"filter {filter_no:02X} outside 01..03")
            return SetMode(
                _mode_name(payload[0]),
                filter_no,
                None,
                operating,
                command == _CMD_TRX_MODE,
                frame=frame,
            )
        if command == _CMD_VFO and len(payload) == 1:
            try:
                return SelectVfo(CivVfo(payload[0]), frame=frame)
            except ValueError:
                return None
        if command == _CMD_SPLIT:
            if not payload:
                return ReadSplit(frame=frame)
            if len(payload) == 1 and payload[0] < 2:
                return SetSplit(payload[0] == 1, frame=frame)
            # 0F 10/11/12 (simplex/duplex) exist on some radios; not modelled: answer NG.
            return None
        if command == _CMD_METER and payload == bytes([_SUB_S_METER]):
            return ReadSMeter(frame=frame)
        satmode = self._model.satmode_command
        if bytes([command]) + payload[:1] == satmode:
            if len(payload) == 1:
                return ReadSatelliteMode(frame=frame)
            if len(payload) == 2 and payload[1] < 2:
                return SetSatelliteMode(payload[1] == 1, frame=frame)
            raise ValueError("satellite mode data must be 00 or 01")
        if self._model.has_selected_vfo_commands and sub in _SUB_TARGET:
            target = _SUB_TARGET[sub]
            if command == _CMD_SEL_FREQ:
                if len(payload) == 1:
                    return ReadFrequency(target, frame=frame)
                return SetFrequency(_frequency_data(payload[1:]), target, frame=frame)
            if command == _CMD_SEL_MODE:
                if len(payload) == 1:
                    return ReadMode(target, frame=frame)
                return self._selected_mode(payload, target, frame)
        return None

    @staticmethod
    def _selected_mode(payload: bytes, target: CivTarget, frame: bytes) -> SetMode:
        if len(payload) not in (2, 3, 4):
            raise ValueError(f"26 data must be mode [data [filter]], got {len(payload) - 1} bytes")
        data_mode = payload[2] if len(payload) >= 3 else None
        filter_no = payload[3] if len(payload) == 4 else None
        if data_mode is not None and data_mode > 3:
            raise ValueError(f"data mode {data_mode:02X} outside 00..03")
        if filter_no is not None and not 1 <= filter_no <= 3:
            raise ValueError(f"filter {filter_no:02X} outside 01..03")
        return SetMode(_mode_name(payload[1]), filter_no, data_mode, target, frame=frame)

    # ---- encoders

    def _answer(self, command: Event, body: bytes) -> bytes:
        request = _request_frame(command)
        reply = _build_frame(request[3], self._address, body)
        return request + reply if self._echo else reply

    def encode_echo(self, command: Event) -> bytes:
        """The echo of the request alone (b"" without echo): for commands left unanswered."""
        return _request_frame(command) if self._echo else b""

    def encode_ok(self, command: Event) -> bytes:
        """``FB``: the command was accepted."""
        return self._answer(command, bytes([_OK]))

    def encode_ng(self, command: Event) -> bytes:
        """``FA``: the command was rejected (unknown, out of range, not possible now)."""
        return self._answer(command, bytes([_NG]))

    def encode_frequency(self, command: ReadFrequency, freq_hz: int) -> bytes:
        """The answer to ``03`` / ``25 0x``: the command repeated, then 5 BCD bytes."""
        _check_command(command, ReadFrequency, "a frequency")
        if command.target is CivTarget.OPERATING:
            body = bytes([_CMD_READ_FREQ])
        else:
            body = bytes([_CMD_SEL_FREQ, _TARGET_SUB[command.target]])
        return self._answer(command, body + encode_bcd_frequency(freq_hz))

    def encode_mode(
        self, command: ReadMode, mode: str, filter_no: int = 1, data_mode: int = 0
    ) -> bytes:
        """The answer to ``04`` (``04 mode filter``) or ``26 0x`` (``26 0x mode data filter``)."""
        _check_command(command, ReadMode, "a mode")
        where = f"CI-V {self._model.name} mode answer"
        code = _mode_byte(mode, where=where)
        _check_filter(filter_no, where=where)
        if command.target is CivTarget.OPERATING:
            body = bytes([_CMD_READ_MODE, code, filter_no])
        else:
            _check_data_mode(data_mode, where=where)
            body = bytes([_CMD_SEL_MODE, _TARGET_SUB[command.target], code, data_mode, filter_no])
        return self._answer(command, body)

    def encode_s_meter(self, command: ReadSMeter, raw: int) -> bytes:
        """The answer to ``15 02``: two BCD bytes 0000..0255."""
        _check_command(command, ReadSMeter, "an S-meter value")
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 255:
            raise LocalProtocolError(
                f"CI-V S-meter answer: raw={raw!r} cannot be encoded; allowed integers 0..255"
            )
        digits = f"{raw:04d}"
        body = bytes([_CMD_METER, _SUB_S_METER, int(digits[:2], 16), int(digits[2:], 16)])
        return self._answer(command, body)

    def encode_satellite_mode(self, command: ReadSatelliteMode, on: bool) -> bytes:
        """The answer to the satellite mode read (``16 5A 0x`` / ``1A 07 0x``)."""
        _check_command(command, ReadSatelliteMode, "the satellite mode")
        return self._answer(command, self._model.satmode_command + bytes([1 if on else 0]))

    def encode_split(self, command: ReadSplit, on: bool) -> bytes:
        """The answer to ``0F``: ``0F 00`` (off) or ``0F 01`` (on)."""
        _check_command(command, ReadSplit, "the split state")
        return self._answer(command, bytes([_CMD_SPLIT, 1 if on else 0]))

    def encode_transceive_frequency(self, freq_hz: int) -> bytes:
        """Unsolicited ``00`` frequency broadcast to address 00 (dial turned on the radio)."""
        body = bytes([_CMD_TRX_FREQ]) + encode_bcd_frequency(freq_hz)
        return _build_frame(BROADCAST_ADDRESS, self._address, body)

    def encode_transceive_mode(self, mode: str, filter_no: int = 1) -> bytes:
        """Unsolicited ``01`` mode broadcast to address 00."""
        where = f"CI-V {self._model.name} transceive mode"
        code = _mode_byte(mode, where=where)
        _check_filter(filter_no, where=where)
        return _build_frame(
            BROADCAST_ADDRESS, self._address, bytes([_CMD_TRX_MODE, code, filter_no])
        )


def _frequency_data(data: bytes) -> int:
    if len(data) != 5:
        raise ValueError(f"frequency data must be 5 BCD bytes, got {len(data)}")
    return decode_bcd_frequency(data)


def _check_command(command: Event, expected: type[CivCommand], what: str) -> None:
    if not isinstance(command, expected):
        raise LocalProtocolError(
            f"CI-V answer: cannot answer {command!r} with {what}; it answers "
            f"{expected.__name__} commands"
        )


def _request_frame(command: Event) -> bytes:
    """The request frame a command event was decoded from (to answer its sender)."""
    if isinstance(command, CivCommand):
        frame = command.frame
    elif isinstance(command, UnknownCommand):
        frame = command.data
    else:
        frame = b""
    if len(frame) < 6 or not frame.startswith(PREAMBLE):
        raise LocalProtocolError(
            f"CI-V answer: {command!r} carries no request frame; pass the command event "
            "CivDevice.next_event() returned"
        )
    return frame
