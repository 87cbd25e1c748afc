"""Shared helpers of the codec tests: capture replay and every-way feeding."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

from firmware_bridge.protocols.base import NEED_DATA, Decoder, Event, Garbage

CAPTURES = Path(__file__).resolve().parents[2] / "seeds" / "transcripts"
_RECORD = re.compile(r"^\s*(\d+\.\d+) (RX|TX|--) ((?:[0-9a-f]{2} )+)\s*(b['\"].*)$")


def read_capture(name: str) -> list[tuple[str, bytes]]:
    """Parse a capture log into (direction, bytes); RX = Hamlib to responder."""
    records = []
    for number, line in enumerate((CAPTURES / name).read_text().splitlines(), 1):
        match = _RECORD.match(line)
        assert match, f"{name}:{number}: unparsable capture line {line!r}"
        data = bytes.fromhex(match[3])
        # The log carries the bytes twice (hex and repr); they must agree.
        assert ast.literal_eval(match[4]) == data, f"{name}:{number}: hex and repr differ"
        records.append((match[2], data))
    return records


def drain(decoder: Decoder) -> list[Event]:
    """Every event available now, via next_event() until NEED_DATA."""
    out = []
    while (event := decoder.next_event()) is not NEED_DATA:
        assert isinstance(event, Event)
        out.append(event)
    return out


def split_garbage(events: list[Event]) -> tuple[bytes, list[Event]]:
    """All garbage bytes concatenated, and the other events in order."""
    garbage = b"".join(e.data for e in events if isinstance(e, Garbage))
    return garbage, [e for e in events if not isinstance(e, Garbage)]


def assert_every_feeding(make: Callable[[], Decoder], data: bytes, expected: list[Event]) -> None:
    """Fed whole, in two parts at every split, and byte by byte, ``data`` gives ``expected``."""
    decoder = make()
    decoder.receive_data(data)
    assert drain(decoder) == expected
    for cut in range(1, len(data)):
        decoder = make()
        decoder.receive_data(data[:cut])
        first = drain(decoder)
        decoder.receive_data(data[cut:])
        assert first + drain(decoder) == expected, f"split at {cut}"
    decoder = make()
    events: list[Event] = []
    for byte in data:
        decoder.receive_data(bytes([byte]))
        events += drain(decoder)
    assert events == expected
    assert decoder.buffered == 0
