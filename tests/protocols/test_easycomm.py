"""EasyComm I/II/III codec: framing under every split, resync, round trips, Hamlib captures."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import LocalProtocolError
from firmware_bridge.protocols.base import (
    Axis,
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
)
from firmware_bridge.protocols.easycomm import (
    Alarm,
    EasycommDevice,
    EasycommHost,
    EasycommVariant,
    Elevation,
    ErrorRegister,
    GetAzimuth,
    GetElevation,
    GetErrorRegister,
    GetStatus,
    GetVersion,
    Reset,
    SetElevation,
    Status,
    Velocity,
    Version,
)
from tests.protocols.codec_helpers import (
    assert_every_feeding,
    drain,
    read_capture,
    split_garbage,
)

ONE, TWO, THREE = EasycommVariant.I, EasycommVariant.II, EasycommVariant.III


def tenth(value: float) -> float:
    """Independent oracle for C's %.1f: the float's exact value rounded half-even to 0.1."""
    return float(Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN))


# --- host side -----------------------------------------------------------------------------


def host_awaiting_position() -> EasycommHost:
    """A level-II host that has just sent ``AZ EL``."""
    codec = EasycommHost(TWO)
    codec.encode_get_position()
    return codec


HOST_CASES = [
    (b"AZ180.3 EL45.0\n", [Position(180.3, 45.0)]),
    (b"AZ5 EL-2.5\r\n", [Position(5.0, -2.5)]),
    (b"AZ359.9EL90.0\n", [Position(359.9, 90.0)]),
    (b"AZ12.5\n", [Position(12.5, None)]),
    (b"EL7.0\n", [Elevation(7.0)]),
    (b"VE2.1 beta\n", [Version("2.1 beta")]),
    (b"GS2\n", [Status(2)]),
    (b"GE6\n", [ErrorRegister(6)]),
    (b"ALJAM AZ\n", [Alarm("JAM AZ")]),
    (b"\n\r\n", []),
]


@pytest.mark.parametrize(("data", "expected"), HOST_CASES)
def test_host_reply_every_split(data: bytes, expected: list[Event]) -> None:
    """Each controller line decodes the same whole, split anywhere, and byte by byte."""
    assert_every_feeding(host_awaiting_position, data, expected)


@pytest.mark.parametrize("garbage", [b"\x00\xff", b"\x13\x11", b"#!", b"AZ", b"\x02xEL"])
def test_host_resyncs_after_noise(garbage: bytes) -> None:
    """Noise before a reply on its line is Garbage; the reply decodes at every split."""
    data = garbage + b"AZ180.3 EL45.0\n"
    for cut in range(len(data) + 1):
        codec = host_awaiting_position()
        codec.receive_data(data[:cut])
        events = drain(codec)
        codec.receive_data(data[cut:])
        lost, others = split_garbage(events + drain(codec))
        assert lost == garbage
        assert others == [Position(180.3, 45.0)]
        assert not codec.awaiting_reply


def test_host_noise_line_keeps_waiting() -> None:
    """A line that is no reply is Garbage and the query stays outstanding."""
    codec = host_awaiting_position()
    codec.receive_data(b"hello\n")
    (event,) = drain(codec)
    assert isinstance(event, Garbage)
    assert event.data == b"hello"
    assert codec.awaiting_reply


def test_host_alarm_does_not_answer_the_query() -> None:
    """An unsolicited alarm arrives as an event but the position is still awaited."""
    codec = host_awaiting_position()
    codec.receive_data(b"ALSENSOR\nAZ1.0 EL2.0\n")
    assert drain(codec) == [Alarm("SENSOR"), Position(1.0, 2.0)]
    assert not codec.awaiting_reply


def test_host_overlong_noise_is_dropped_and_capped() -> None:
    """Noise without a line end is discarded; the buffer stays bounded."""
    codec = EasycommHost(TWO, max_buffer=300)
    noise = b"\x01" * 1000
    codec.receive_data(noise)
    lost, others = split_garbage(drain(codec))
    assert lost == noise
    assert others == []
    assert codec.buffered <= 300


@given(st.binary(max_size=300))
def test_host_never_raises_on_noise(data: bytes) -> None:
    """Arbitrary bytes never make the host decoder raise."""
    codec = host_awaiting_position()
    codec.receive_data(data)
    drain(codec)
    assert codec.buffered <= 128


def test_host_encodes_every_command() -> None:
    """Every command has the bytes of the spec / Hamlib."""
    two, three = EasycommHost(TWO), EasycommHost(THREE)
    assert two.encode_set_position(5, 0) == b"AZ5.0 EL0.0\n"
    assert two.encode_set_position(999.9, -90) == b"AZ999.9 EL-90.0\n"
    assert two.encode_get_position() == b"AZ EL \n"
    assert two.encode_get_azimuth() == b"AZ\n"
    assert two.encode_get_elevation() == b"EL\n"
    assert two.encode_stop() == b"SA SE \n"
    assert two.encode_stop_axis(Axis.AZ) == b"SA\n"
    assert two.encode_stop_axis(Axis.EL) == b"SE\n"
    assert [two.encode_move(d) for d in Direction] == [b"ML\n", b"MR\n", b"MU\n", b"MD\n"]
    assert three.encode_velocity(Direction.DOWN, 12) == b"VD0012\n"
    assert three.encode_velocity(Direction.LEFT, 123456) == b"VL123456\n"
    assert two.encode_park() == b"PARK\n"
    assert two.encode_reset() == b"RESET\n"
    assert two.encode_get_version() == b"VE\n"
    assert three.encode_get_status() == b"GS\n"
    assert three.encode_get_error_register() == b"GE\n"


def test_set_position_never_prints_minus_zero() -> None:
    """A value that rounds to zero from below is sent as 0.0, not -0.0."""
    assert EasycommHost(TWO).encode_set_position(0.0, -0.04) == b"AZ0.0 EL0.0\n"


@pytest.mark.parametrize(
    ("variant", "call", "needle"),
    [
        (TWO, lambda c: c.encode_set_position(-0.1, 0), "az_deg=-0.1"),
        (TWO, lambda c: c.encode_set_position(1000, 0), "az_deg=1000"),
        (TWO, lambda c: c.encode_set_position(1, 180.5), "el_deg=180.5"),
        (TWO, lambda c: c.encode_set_position(1, -91), "el_deg=-91"),
        (TWO, lambda c: c.encode_set_position(float("inf"), 1), "az_deg=inf"),
        (ONE, lambda c: c.encode_get_position(), "EasyComm I has no position query"),
        (ONE, lambda c: c.encode_move(Direction.UP), "EasyComm I has no move command"),
        (ONE, lambda c: c.encode_park(), "EasyComm I has no park"),
        (TWO, lambda c: c.encode_velocity(Direction.UP, 5), "EasyComm II has no velocity"),
        (THREE, lambda c: c.encode_velocity(Direction.UP, -5), "mdeg_per_s=-5"),
        (TWO, lambda c: c.encode_get_status(), "EasyComm II has no status register"),
    ],
)
def test_host_refuses_what_the_protocol_cannot_carry(
    variant: EasycommVariant, call: Callable[[EasycommHost], bytes], needle: str
) -> None:
    """Out-of-format values and commands missing at this level raise with a precise message."""
    with pytest.raises(LocalProtocolError, match=re.escape(needle)):
        call(EasycommHost(variant))


# --- device side ---------------------------------------------------------------------------

DEVICE_CASES = [
    (b"AZ180.3 EL45.0\n", [SetPosition(180.3, 45.0)]),
    (b"EL10 AZ20.5\r", [SetPosition(20.5, 10.0)]),
    (b"AZ7\n", [SetPosition(7.0, None)]),
    (b"EL-3.5\n", [SetElevation(-3.5)]),
    (b"AZ EL \n", [GetPosition()]),
    (b"AZ\nEL\n", [GetAzimuth(), GetElevation()]),
    (b"SA SE \n", [Stop()]),
    (b"SE\n", [StopAxis(Axis.EL)]),
    (b"ML MR MU MD\n", [Move(d) for d in Direction]),
    (b"VR4900\nVU0\n", [Velocity(Direction.RIGHT, 4900), Velocity(Direction.UP, 0)]),
    (b"VE\nGS\n;GE\n", [GetVersion(), GetStatus(), GetErrorRegister()]),
    (b"PARK\nRESET\n", [Park(), Reset()]),
    (b"AZx\n", [UnknownCommand(b"AZx")]),
    (b"ST24:01:01:00:00:00\n", [UnknownCommand(b"ST24:01:01:00:00:00")]),
    (b" ; \n\r\n", []),
]


@pytest.mark.parametrize(("data", "expected"), DEVICE_CASES)
def test_device_command_every_split(data: bytes, expected: list[Event]) -> None:
    """Each command line decodes the same whole, split anywhere, and byte by byte."""
    assert_every_feeding(EasycommDevice, data, expected)


@pytest.mark.parametrize("garbage", [b"\x00", b"\xff\xfe\x80", b"\x1b[0m\x07"])
def test_device_resyncs_after_binary_noise(garbage: bytes) -> None:
    """Binary noise before a command is Garbage; the command after it decodes, any split."""
    data = garbage + b"AZ10.0 EL20.0\n"
    for cut in range(len(data) + 1):
        codec = EasycommDevice()
        codec.receive_data(data[:cut])
        events = drain(codec)
        codec.receive_data(data[cut:])
        lost, others = split_garbage(events + drain(codec))
        assert lost == garbage
        assert others == [SetPosition(10.0, 20.0)]


@given(st.binary(max_size=300))
def test_device_never_raises_on_noise(data: bytes) -> None:
    """Arbitrary bytes never make the device decoder raise."""
    codec = EasycommDevice()
    codec.receive_data(data)
    drain(codec)
    assert codec.buffered <= 128


def test_device_many_empty_lines_do_not_recurse() -> None:
    """Thousands of command-free lines are skipped without exhausting the stack."""
    codec = EasycommDevice()
    codec.receive_data(b";\n" * 2000 + b"AZ EL\n")
    assert drain(codec) == [GetPosition()]


def test_device_reply_formats() -> None:
    """Replies follow the spec: mnemonic echo plus value, LF ended."""
    device = EasycommDevice()
    assert device.encode_position(5, 0) == b"AZ5.0 EL0.0\n"
    assert device.encode_position(-0.01, 89.96) == b"AZ0.0 EL90.0\n"
    assert device.encode_azimuth(271.25) == b"AZ271.2\n"
    assert device.encode_elevation(-4) == b"EL-4.0\n"
    assert device.encode_version("1.0") == b"VE1.0\n"
    assert device.encode_status(2) == b"GS2\n"
    assert device.encode_error_register(0) == b"GE0\n"
    assert device.encode_alarm("JAM") == b"ALJAM\n"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda d: d.encode_position(1000.0, 0), "az_deg=1000.0"),
        (lambda d: d.encode_position(0, float("nan")), "el_deg=nan"),
        (lambda d: d.encode_version("a\nb"), "text='a\\nb'"),
        (lambda d: d.encode_status(-1), "flags=-1"),
    ],
)
def test_device_refuses_unencodable_replies(
    call: Callable[[EasycommDevice], bytes], needle: str
) -> None:
    """Replies the format cannot carry raise LocalProtocolError naming the value."""
    with pytest.raises(LocalProtocolError, match=re.escape(needle)):
        call(EasycommDevice())


# --- host <-> device round trips -----------------------------------------------------------


@given(st.floats(0, 999.9), st.floats(-90, 180), st.sampled_from([TWO, THREE]))
def test_round_trip_set_then_read(az_deg: float, el_deg: float, variant: EasycommVariant) -> None:
    """host AZ/EL set -> device SetPosition (%.1f) -> device reply -> host Position."""
    host_codec, device = EasycommHost(variant), EasycommDevice()
    device.receive_data(host_codec.encode_set_position(az_deg, el_deg))
    (command,) = drain(device)
    assert command == SetPosition(tenth(az_deg), tenth(el_deg) + 0.0)
    assert isinstance(command, SetPosition)
    assert command.el_deg is not None
    device.receive_data(host_codec.encode_get_position())
    assert drain(device) == [GetPosition()]
    host_codec.receive_data(device.encode_position(command.az_deg, command.el_deg))
    assert drain(host_codec) == [Position(command.az_deg, command.el_deg)]
    assert not host_codec.awaiting_reply


@given(st.sampled_from(list(Direction)), st.integers(0, 10**6))
def test_round_trip_velocity(direction: Direction, mdeg_per_s: int) -> None:
    """EasyComm III velocity commands keep direction and speed."""
    device = EasycommDevice()
    device.receive_data(EasycommHost(THREE).encode_velocity(direction, mdeg_per_s))
    assert drain(device) == [Velocity(direction, mdeg_per_s)]


def test_round_trip_registers_and_version() -> None:
    """VE, GS, GE queries and their replies pair up."""
    host_codec, device = EasycommHost(THREE), EasycommDevice()
    device.receive_data(host_codec.encode_get_version())
    assert drain(device) == [GetVersion()]
    host_codec.receive_data(device.encode_version("groundlink 0.1"))
    assert drain(host_codec) == [Version("groundlink 0.1")]
    device.receive_data(host_codec.encode_get_status())
    assert drain(device) == [GetStatus()]
    host_codec.receive_data(device.encode_status(4))
    assert drain(host_codec) == [Status(4)]
    device.receive_data(host_codec.encode_get_error_register())
    assert drain(device) == [GetErrorRegister()]
    host_codec.receive_data(device.encode_error_register(2))
    assert drain(host_codec) == [ErrorRegister(2)]
    assert not host_codec.awaiting_reply


# --- conformance with the Hamlib 4.5.4 captures ---------------------------------------------


CAPTURE_COMMANDS = {
    "easycomm_201.log": [
        SetPosition(180.3, 45.0),
        UnknownCommand(b"UP000"),
        UnknownCommand(b"XXX"),
        UnknownCommand(b"DN000"),
        UnknownCommand(b"XXX"),
        Stop(),
    ],
    "easycomm_202.log": [
        SetPosition(180.3, 45.0),
        GetPosition(),
        Stop(),
        Move(Direction.RIGHT),
        Park(),
        Reset(),
    ],
    "easycomm_204.log": [
        SetPosition(180.3, 45.0),
        GetPosition(),
        Stop(),
        Velocity(Direction.RIGHT, 4900),
        Park(),
        Reset(),
    ],
}


@pytest.mark.parametrize(("name", "commands"), list(CAPTURE_COMMANDS.items()))
def test_device_side_replays_hamlib_capture(name: str, commands: list[Event]) -> None:
    """Hamlib's bytes decode to the documented commands; our replies match the capture."""
    device = EasycommDevice()
    az, el = 0.0, 0.0
    decoded: list[Event] = []
    pending: list[bytes] = []
    for direction, data in read_capture(name):
        if direction == "RX":
            device.receive_data(data)
            for event in drain(device):
                decoded.append(event)
                # The capture responder jumped to every commanded position.
                if isinstance(event, SetPosition) and event.el_deg is not None:
                    az, el = event.az_deg, event.el_deg
                elif isinstance(event, GetPosition):
                    pending.append(device.encode_position(az, el))
        else:
            assert pending.pop(0) == data
    assert pending == []
    assert decoded == commands


@pytest.mark.parametrize(
    ("name", "variant", "script"),
    [
        ("easycomm_201.log", ONE, [("set", (180.26, 45.04)), ("stop", ())]),
        (
            "easycomm_202.log",
            TWO,
            [
                ("set", (180.26, 45.04)),
                ("get", ()),
                ("stop", ()),
                ("move", (Direction.RIGHT,)),
                ("park", ()),
                ("reset", ()),
            ],
        ),
        (
            "easycomm_204.log",
            THREE,
            [
                ("set", (180.26, 45.04)),
                ("get", ()),
                ("stop", ()),
                # rotctl "M 16 50": speed 50 -> (50 - 1) * 100 mdeg/s
                ("velocity", (Direction.RIGHT, 4900)),
                ("park", ()),
                ("reset", ()),
            ],
        ),
    ],
)
def test_host_side_sends_the_bytes_hamlib_sends(
    name: str, variant: EasycommVariant, script: list[tuple[str, tuple[object, ...]]]
) -> None:
    """The host encoder reproduces every command byte Hamlib sent in the capture."""
    codec = EasycommHost(variant)
    calls: dict[str, Callable[..., bytes]] = {
        "set": codec.encode_set_position,
        "get": codec.encode_get_position,
        "stop": codec.encode_stop,
        "move": codec.encode_move,
        "velocity": codec.encode_velocity,
        "park": codec.encode_park,
        "reset": codec.encode_reset,
    }
    ours = [calls[verb](*args) for verb, args in script]
    assert ours == [data for direction, data in read_capture(name) if direction == "RX"]


@pytest.mark.parametrize("name", ["easycomm_202.log", "easycomm_204.log"])
def test_host_side_decodes_recorded_reply(name: str) -> None:
    """The recorded reply decodes to what rotctl printed (180.30 / 45.00)."""
    codec = host_awaiting_position()
    for direction, data in read_capture(name):
        if direction == "TX":
            codec.receive_data(data)
    assert drain(codec) == [Position(180.3, 45.0)]
