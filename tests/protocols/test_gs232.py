"""GS-232A/B codec: framing under every split, resync, host/device round trips, Hamlib captures."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import LocalProtocolError
from firmware_bridge.protocols.base import (
    Axis,
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
)
from firmware_bridge.protocols.gs232 import (
    Elevation,
    GetAzimuth,
    GetElevation,
    Gs232Device,
    Gs232Host,
    Gs232Variant,
    SetSpeed,
)
from tests.protocols.codec_helpers import (
    assert_every_feeding,
    drain,
    read_capture,
    split_garbage,
)

A, B = Gs232Variant.A, Gs232Variant.B


def host(variant: Gs232Variant, query: str = "position") -> Gs232Host:
    """A host codec that has just encoded the given query."""
    codec = Gs232Host(variant)
    {
        "position": codec.encode_get_position,
        "azimuth": codec.encode_get_azimuth,
        "elevation": codec.encode_get_elevation,
        "none": codec.encode_stop,
    }[query]()
    return codec


def half_even(value: float) -> int:
    """Independent oracle for rint(): exact decimal value of the float, half to even."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


# --- host side: decoding replies ---------------------------------------------------------

HOST_CASES = [
    (B, "position", b"AZ=123  EL=045\r\n", [Position(123.0, 45.0)]),
    (B, "position", b"AZ=5 EL=7\r\n", [Position(5.0, 7.0)]),
    (B, "position", b"AZ=359EL=090\r\n", [Position(359.0, 90.0)]),
    (B, "azimuth", b"AZ=450\r\n", [Position(450.0, None)]),
    (B, "position", b"AZ=271\r\n", [Position(271.0, None)]),
    (B, "elevation", b"EL=180\r\n", [Elevation(180.0)]),
    (A, "position", b"+0123+0045\r\n", [Position(123.0, 45.0)]),
    (A, "position", b"+0000+0180\n", [Position(0.0, 180.0)]),
    (A, "azimuth", b"+0271\r\n", [Position(271.0, None)]),
    (A, "elevation", b"+0033\r\n", [Elevation(33.0)]),
    (B, "position", b"?>\r\n", [ErrorReply("?>", "?>")]),
    (A, "none", b"?>\r\n", [ErrorReply("?>", "?>")]),
    (B, "none", b"\r\n", []),
]


@pytest.mark.parametrize(("variant", "query", "data", "expected"), HOST_CASES)
def test_host_reply_every_split(
    variant: Gs232Variant, query: str, data: bytes, expected: list[Event]
) -> None:
    """Each reply decodes the same whole, split anywhere, and byte by byte."""
    assert_every_feeding(lambda: host(variant, query), data, expected)


@pytest.mark.parametrize("garbage", [b"\x00\xff\x13", b"#\x7f!", b"AZ=1", b"+01"])
@pytest.mark.parametrize(
    ("variant", "reply", "position"),
    [
        (B, b"AZ=123  EL=045\r\n", Position(123.0, 45.0)),
        (A, b"+0123+0045\r\n", Position(123.0, 45.0)),
    ],
)
def test_host_resyncs_after_noise_on_the_line(
    garbage: bytes, variant: Gs232Variant, reply: bytes, position: Position
) -> None:
    """Noise in front of a reply is reported as Garbage and the reply still decodes, any split."""
    data = garbage + reply
    for cut in range(len(data) + 1):
        codec = host(variant)
        codec.receive_data(data[:cut])
        events = drain(codec)
        codec.receive_data(data[cut:])
        lost, others = split_garbage(events + drain(codec))
        assert lost == garbage
        assert others == [position]


def test_host_garbage_line_then_reply() -> None:
    """A whole line of noise is one Garbage event; the expectation survives it."""
    codec = host(B)
    codec.receive_data(b"\x01junk\x02\r\nAZ=010  EL=020\r\n")
    events = drain(codec)
    assert isinstance(events[0], Garbage)
    assert events[0].data == b"\x01junk\x02"
    assert events[1:] == [Position(10.0, 20.0)]
    assert not codec.awaiting_reply


def test_host_wrong_dialect_is_garbage_and_keeps_waiting() -> None:
    """A GS-232A reply on a GS-232B host is garbage; the right reply is still accepted."""
    codec = host(B)
    codec.receive_data(b"+0123+0045\r\n")
    (event,) = drain(codec)
    assert isinstance(event, Garbage)
    assert "GS-232B" in event.reason
    assert codec.awaiting_reply
    codec.receive_data(b"AZ=123  EL=045\r\n")
    assert drain(codec) == [Position(123.0, 45.0)]


def test_host_unsolicited_reply_is_garbage() -> None:
    """Without an outstanding read command a position line is not trusted."""
    codec = Gs232Host(B)
    codec.receive_data(b"AZ=123  EL=045\r\n")
    (event,) = drain(codec)
    assert isinstance(event, Garbage)
    assert "unsolicited" in event.reason


def test_host_error_reply_clears_expectation() -> None:
    """``?>`` answers the outstanding query: nothing is awaited afterwards."""
    codec = host(A)
    assert codec.awaiting_reply
    codec.receive_data(b"?>\r\n")
    assert drain(codec) == [ErrorReply("?>", "?>")]
    assert not codec.awaiting_reply


def test_host_overlong_noise_is_dropped_and_capped() -> None:
    """Noise without line ends is discarded as Garbage; the buffer stays bounded."""
    codec = Gs232Host(B, max_buffer=256)
    codec.encode_get_position()
    noise = bytes(range(14, 32)) * 100
    codec.receive_data(noise)
    lost, others = split_garbage(drain(codec))
    assert lost == noise
    assert others == []
    assert codec.buffered <= 256
    codec.receive_data(b"AZ=001  EL=002\r\n")
    assert drain(codec) == [Position(1.0, 2.0)]


@given(st.binary(max_size=300), st.sampled_from([A, B]))
def test_host_never_raises_on_noise(data: bytes, variant: Gs232Variant) -> None:
    """Arbitrary bytes never make receive_data/next_event raise; output is garbage or events."""
    codec = host(variant)
    codec.receive_data(data)
    for event in drain(codec):
        assert isinstance(event, Garbage | Position | Elevation | ErrorReply)
    assert codec.buffered <= 64


# --- host side: encoding -------------------------------------------------------------------


def test_host_encodes_every_command() -> None:
    """Each command has its documented bytes."""
    codec = Gs232Host(B)
    assert codec.encode_get_position() == b"C2\r"
    assert codec.encode_get_azimuth() == b"C\r"
    assert codec.encode_get_elevation() == b"B\r"
    assert codec.encode_set_position(0, 0) == b"W000 000\r"
    assert codec.encode_set_position(450, 180) == b"W450 180\r"
    assert codec.encode_set_azimuth(7.2) == b"M007\r"
    assert codec.encode_stop() == b"S\r"
    assert codec.encode_stop_axis(Axis.AZ) == b"A\r"
    assert codec.encode_stop_axis(Axis.EL) == b"E\r"
    assert [codec.encode_move(d) for d in Direction] == [b"L\r", b"R\r", b"U\r", b"D\r"]
    assert [codec.encode_speed(n) for n in (1, 2, 3, 4)] == [b"X1\r", b"X2\r", b"X3\r", b"X4\r"]


@pytest.mark.parametrize(
    ("call", "field", "text"),
    [
        (lambda c: c.encode_set_position(-0.1, 10), "az_deg=-0.1", "0..450"),
        (lambda c: c.encode_set_position(450.01, 10), "az_deg=450.01", "0..450"),
        (lambda c: c.encode_set_position(10, 180.5), "el_deg=180.5", "0..180"),
        (lambda c: c.encode_set_position(10, -1), "el_deg=-1", "0..180"),
        (lambda c: c.encode_set_position(float("nan"), 1), "az_deg=nan", "finite"),
        (lambda c: c.encode_set_azimuth(-10), "az_deg=-10", "0..450"),
        (lambda c: c.encode_speed(0), "level=0", "1..4"),
        (lambda c: c.encode_speed(5), "level=5", "1..4"),
        (lambda c: c.encode_speed(True), "level=True", "1..4"),
    ],
)
def test_host_refuses_what_the_wire_cannot_carry(
    call: Callable[[Gs232Host], bytes], field: str, text: str
) -> None:
    """Out-of-format values raise LocalProtocolError naming the field, the value and the range."""
    with pytest.raises(LocalProtocolError) as info:
        call(Gs232Host(B))
    assert field in str(info.value)
    assert text in str(info.value)


def test_rounding_is_half_even_like_hamlib() -> None:
    """180.5 -> 180 and 45.5 -> 46 (rint), as in the Hamlib notes."""
    assert Gs232Host(A).encode_set_position(180.5, 45.5) == b"W180 046\r"


# --- device side ---------------------------------------------------------------------------

DEVICE_CASES = [
    (b"C2\r", [GetPosition()]),
    (b"C\r", [GetAzimuth()]),
    (b"B\r", [GetElevation()]),
    (b"W180 046\r\r", [SetPosition(180.0, 46.0)]),
    (b"W450 180\n", [SetPosition(450.0, 180.0)]),
    (b"M090\r", [SetPosition(90.0, None)]),
    (b"S\r\n", [Stop()]),
    (b"A\rE\r", [StopAxis(Axis.AZ), StopAxis(Axis.EL)]),
    (b"L\rR\rU\rD\r", [Move(Direction(d)) for d in ("left", "right", "up", "down")]),
    (b"X1\rX4\r", [SetSpeed(1), SetSpeed(4)]),
    (b"\r\r\n\n", []),
    (b"Z\r", [UnknownCommand(b"Z")]),
    (b"W460 000\r", [UnknownCommand(b"W460 000")]),
    (b"W180 181\r", [UnknownCommand(b"W180 181")]),
    (b"W18 46\r", [UnknownCommand(b"W18 46")]),
    (b"X5\r", [UnknownCommand(b"X5")]),
    (b"c2\r", [UnknownCommand(b"c2")]),
]


@pytest.mark.parametrize(("data", "expected"), DEVICE_CASES)
def test_device_command_every_split(data: bytes, expected: list[Event]) -> None:
    """Each command line decodes the same whole, split anywhere, and byte by byte."""
    assert_every_feeding(lambda: Gs232Device(B), data, expected)


@pytest.mark.parametrize("garbage", [b"\x00", b"\xff\xfe\x80", b"\x1b[0m\x07"])
def test_device_resyncs_after_binary_noise(garbage: bytes) -> None:
    """Binary noise before a command is Garbage; the command after it decodes, any split."""
    data = garbage + b"W010 020\r"
    for cut in range(len(data) + 1):
        codec = Gs232Device(A)
        codec.receive_data(data[:cut])
        events = drain(codec)
        codec.receive_data(data[cut:])
        lost, others = split_garbage(events + drain(codec))
        assert lost == garbage
        assert others == [SetPosition(10.0, 20.0)]


@given(st.binary(max_size=300))
def test_device_never_raises_on_noise(data: bytes) -> None:
    """Arbitrary bytes never make the device decoder raise."""
    codec = Gs232Device(B)
    codec.receive_data(data)
    drain(codec)
    assert codec.buffered <= 64


def test_device_reply_formats() -> None:
    """Replies use the exact dialect formats of the notes (B: AZ=aaa  EL=eee; A: +0aaa+0eee)."""
    b, a = Gs232Device(B), Gs232Device(A)
    assert b.encode_position(5, 0) == b"AZ=005  EL=000\r\n"
    assert a.encode_position(5, 0) == b"+0005+0000\r\n"
    assert b.encode_azimuth(359.6) == b"AZ=360\r\n"
    assert a.encode_azimuth(12) == b"+0012\r\n"
    assert b.encode_elevation(90) == b"EL=090\r\n"
    assert a.encode_elevation(90) == b"+0090\r\n"
    assert b.encode_error() == b"?>\r\n"
    assert b.encode_ack() == b"\r\n"


def test_device_refuses_negative_reports() -> None:
    """A negative position cannot be carried by the reply format: it raises, it is not clamped."""
    with pytest.raises(LocalProtocolError, match="az_deg=-2"):
        Gs232Device(B).encode_position(-2.0, 10)


# --- host <-> device round trips -----------------------------------------------------------


@given(
    st.floats(0, 450, allow_nan=False),
    st.floats(0, 180, allow_nan=False),
    st.sampled_from([A, B]),
)
def test_round_trip_set_then_read(az_deg: float, el_deg: float, variant: Gs232Variant) -> None:
    """host W -> device SetPosition (rint) -> device C2 reply -> host Position."""
    host_codec, device = Gs232Host(variant), Gs232Device(variant)
    device.receive_data(host_codec.encode_set_position(az_deg, el_deg))
    (command,) = drain(device)
    assert command == SetPosition(float(half_even(az_deg)), float(half_even(el_deg)))
    assert isinstance(command, SetPosition)
    assert command.el_deg is not None
    device.receive_data(host_codec.encode_get_position())
    assert drain(device) == [GetPosition()]
    host_codec.receive_data(device.encode_position(command.az_deg, command.el_deg))
    assert drain(host_codec) == [Position(command.az_deg, command.el_deg)]


@given(st.integers(0, 999), st.sampled_from([A, B]))
def test_round_trip_single_axis_reads(value: int, variant: Gs232Variant) -> None:
    """C and B queries round-trip through the device's C and B replies."""
    host_codec, device = Gs232Host(variant), Gs232Device(variant)
    device.receive_data(host_codec.encode_get_azimuth())
    assert drain(device) == [GetAzimuth()]
    host_codec.receive_data(device.encode_azimuth(value))
    assert drain(host_codec) == [Position(float(value), None)]
    device.receive_data(host_codec.encode_get_elevation())
    assert drain(device) == [GetElevation()]
    host_codec.receive_data(device.encode_elevation(value))
    assert drain(host_codec) == [Elevation(float(value))]


def test_round_trip_every_write_only_command() -> None:
    """Each write-only host command decodes to its device event."""
    host_codec, device = Gs232Host(B), Gs232Device(B)
    sent = [
        host_codec.encode_stop(),
        host_codec.encode_stop_axis(Axis.EL),
        host_codec.encode_move(Direction.DOWN),
        host_codec.encode_speed(3),
        host_codec.encode_set_azimuth(270.4),
    ]
    device.receive_data(b"".join(sent))
    assert drain(device) == [
        Stop(),
        StopAxis(Axis.EL),
        Move(Direction.DOWN),
        SetSpeed(3),
        SetPosition(270.0, None),
    ]
    assert not host_codec.awaiting_reply


# --- conformance with the Hamlib 4.5.4 captures ---------------------------------------------


class Responder:
    """The capture responder's behaviour: jumps to set positions, answers reads, maybe acks."""

    def __init__(self, variant: Gs232Variant, az: float, el: float, ack_writes: bool) -> None:
        """Start at (az, el); ``ack_writes`` answers W and S with a bare line end."""
        self.device = Gs232Device(variant)
        self.az, self.el = az, el
        self.ack_writes = ack_writes
        self.commands: list[Event] = []

    def feed(self, data: bytes) -> list[bytes]:
        """Decode Hamlib's bytes and return the replies, in order."""
        self.device.receive_data(data)
        replies = []
        for event in drain(self.device):
            self.commands.append(event)
            if isinstance(event, GetPosition):
                replies.append(self.device.encode_position(self.az, self.el))
            elif isinstance(event, SetPosition):
                self.az, self.el = event.az_deg, event.el_deg or 0.0
                if self.ack_writes:
                    replies.append(self.device.encode_ack())
            elif isinstance(event, Stop) and self.ack_writes:
                replies.append(self.device.encode_ack())
        return replies


CAPTURE_CASES = [
    (
        "gs232a_basic.log",
        A,
        False,
        [
            GetPosition(),
            SetPosition(180.0, 46.0),
            GetPosition(),
            Stop(),
            SetSpeed(2),
            Move(Direction.RIGHT),
            SetSpeed(4),
            Move(Direction.UP),
            SetSpeed(1),
        ],
    ),
    (
        "gs232b_basic.log",
        B,
        False,
        [
            GetPosition(),
            SetPosition(180.0, 46.0),
            GetPosition(),
            Stop(),
            SetPosition(350.0, 0.0),
            GetPosition(),
        ],
    ),
    (
        "gs232b_move.log",
        B,
        False,
        [
            SetSpeed(2),
            Move(Direction.LEFT),
            SetSpeed(1),
            Move(Direction.DOWN),
            SetSpeed(4),
        ],
    ),
    ("gs232b_mute.log", B, False, [GetPosition()] * 4),
    (
        "gs232b_wreply.log",
        B,
        True,
        [SetPosition(10.0, 20.0), GetPosition(), Stop(), GetPosition()],
    ),
]


@pytest.mark.parametrize(("name", "variant", "ack_writes", "commands"), CAPTURE_CASES)
def test_device_side_replays_hamlib_capture(
    name: str, variant: Gs232Variant, ack_writes: bool, commands: list[Event]
) -> None:
    """Hamlib's bytes decode to the documented commands; our replies match the capture exactly."""
    # The responder started at 123/45 in every capture (notes: rotctl printed 123.00 / 45.00).
    responder = Responder(variant, 123.0, 45.0, ack_writes)
    pending: list[bytes] = []
    for direction, data in read_capture(name):
        if direction == "RX":
            pending += responder.feed(data)
        else:  # TX: sent by the responder; "--": what it would have sent while muted
            assert pending, f"{name}: capture has a reply {data!r} we did not produce"
            assert pending.pop(0) == data
    assert pending == []
    assert responder.commands == commands


@pytest.mark.parametrize(
    ("name", "variant", "script"),
    [
        (
            "gs232a_basic.log",
            A,
            [
                ("get", ()),
                ("set", (180.5, 45.5)),
                ("get", ()),
                ("stop", ()),
                ("speed", (2,)),
                ("move", (Direction.RIGHT,)),
                ("speed", (4,)),
                ("move", (Direction.UP,)),
                ("speed", (1,)),
            ],
        ),
        (
            "gs232b_basic.log",
            B,
            # rotctl "P -10 0" becomes W350: wrap normalisation is the driver's job, not ours.
            [
                ("get", ()),
                ("set", (180.4, 45.6)),
                ("get", ()),
                ("stop", ()),
                ("set", (350, 0)),
                ("get", ()),
            ],
        ),
        (
            "gs232b_move.log",
            B,
            [
                ("speed", (2,)),
                ("move", (Direction.LEFT,)),
                ("speed", (1,)),
                ("move", (Direction.DOWN,)),
                ("speed", (4,)),
            ],
        ),
    ],
)
def test_host_side_sends_the_bytes_hamlib_sends(
    name: str, variant: Gs232Variant, script: list[tuple[str, tuple[object, ...]]]
) -> None:
    """The host encoder produces Hamlib's command bytes (minus GS-232B's extra bare CR)."""
    codec = Gs232Host(variant)
    calls: dict[str, Callable[..., bytes]] = {
        "get": codec.encode_get_position,
        "set": codec.encode_set_position,
        "stop": codec.encode_stop,
        "speed": codec.encode_speed,
        "move": codec.encode_move,
    }
    ours = [calls[verb](*args) for verb, args in script]
    hamlib = [data for direction, data in read_capture(name) if direction == "RX" and data != b"\r"]
    assert ours == hamlib


@pytest.mark.parametrize(
    ("name", "variant", "positions"),
    [
        ("gs232a_basic.log", A, [Position(123.0, 45.0), Position(180.0, 46.0)]),
        (
            "gs232b_basic.log",
            B,
            [Position(123.0, 45.0), Position(180.0, 46.0), Position(350.0, 0.0)],
        ),
        ("gs232b_wreply.log", B, [Position(10.0, 20.0), Position(10.0, 20.0)]),
    ],
)
def test_host_side_decodes_recorded_replies(
    name: str, variant: Gs232Variant, positions: list[Position]
) -> None:
    """Replaying the capture into a host codec gives the positions rotctl printed."""
    codec = Gs232Host(variant)
    decoded: list[Event] = []
    for direction, data in read_capture(name):
        if direction == "RX" and data == b"C2\r":
            codec.encode_get_position()
        elif direction == "RX" and data.strip():
            codec.encode_stop()  # any write-only command: no reply awaited
        elif direction == "TX":
            codec.receive_data(data)
            decoded += drain(codec)
    assert decoded == positions
