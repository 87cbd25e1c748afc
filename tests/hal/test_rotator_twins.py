"""Rotator twins spoken to with raw bytes (what the firmware answers), and serve_simulators()."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers import Position, create_rotator
from firmware_bridge.errors import TransportClosed
from firmware_bridge.protocols.base import Axis
from firmware_bridge.simulators import create_simulator
from firmware_bridge.simulators.rotator import RotatorTwin
from firmware_bridge.simulators.serve import serve_simulators
from firmware_bridge.transports import ByteTransport, LoopRegistry, open_transport
from tests.hal.conftest import HANG_GUARD_S, drive

STATUS = bytes([0x57] + [0] * 10 + [0x1F, 0x20])
STOP = bytes([0x57] + [0] * 10 + [0x0F, 0x20])


@asynccontextmanager
async def raw(
    name: str, clock: VirtualClock, **options: object
) -> AsyncIterator[tuple[RotatorTwin, ByteTransport]]:
    """A twin on loop://raw and a bare transport to it."""
    twin = create_simulator("rotator", name, clock=clock, **options)
    assert isinstance(twin, RotatorTwin)
    registry = LoopRegistry(clock)
    server = await twin.serve_loop(registry, "raw")
    transport = await registry.connect("raw")
    try:
        yield twin, transport
    finally:
        await transport.close()
        await server.close()
    assert twin.errors == []


async def ask(transport: ByteTransport, data: bytes, size: int) -> bytes:
    """Write ``data`` and read ``size`` bytes of answer."""
    await transport.write(data)
    out = b""
    while len(out) < size:
        out += await asyncio.wait_for(transport.read(), HANG_GUARD_S)
    return out


async def test_gs232b_answers_c2_and_rejects_unknown(clock: VirtualClock) -> None:
    """GS-232B: C2 -> 'AZ=aaa  EL=eee' CR LF; an unknown command -> '?>'; empty lines ignored."""
    async with raw("gs232b", clock, start=Position(123.0, 45.0)) as (twin, transport):
        assert await ask(transport, b"\r\rC2\r", 16) == b"AZ=123  EL=045\r\n"
        assert await ask(transport, b"Q7\r", 4) == b"?>\r\n"
        assert twin.rx_bytes == 8


async def test_gs232a_reply_format_and_speed_levels(clock: VirtualClock) -> None:
    """GS-232A: '+0aaa+0eee'; X1 slows azimuth to a quarter of its rate."""
    async with raw("gs232a", clock) as (twin, transport):
        assert await ask(transport, b"C2\r", 12) == b"+0000+0000\r\n"
        await transport.write(b"X1\r")
        await clock.settle()
        assert twin.model.az.rate_deg_s == twin.capabilities.az_rate_deg_s / 4


async def test_gs232_ack_writes_option(clock: VirtualClock) -> None:
    """ack_writes=True answers a write-only command with a bare CR LF, as some units do."""
    async with raw("gs232b", clock, ack_writes=True) as (_, transport):
        assert await ask(transport, b"W010 010\r", 2) == b"\r\n"


async def test_gs232_readings_are_whole_degrees_of_the_motor(clock: VirtualClock) -> None:
    """Mid-slew the reply is the motor position rounded to whole degrees."""
    async with raw("gs232b", clock) as (twin, transport):
        await transport.write(b"W100 000\r")
        await clock.advance(3.3)
        expected = round(twin.model.position().az_deg)
        assert await ask(transport, b"C2\r", 16) == b"AZ=%03d  EL=000\r\n" % expected


async def test_easycomm2_answers_tenths_and_ignores_unknown_tokens(clock: VirtualClock) -> None:
    """EasyComm II: 'AZ EL ' -> 'AZaaa.a ELeee.e' LF; UP000/XXX tokens are ignored."""
    async with raw("easycomm2", clock, start=Position(180.3, 45.0)) as (twin, transport):
        assert await ask(transport, b"AZ EL \n", 15) == b"AZ180.3 EL45.0\n"
        await transport.write(b"AZ10.0 EL5.0 UP000 XXX\n")
        await clock.advance(200.0)
        assert await ask(transport, b"AZ EL \n", 13) == b"AZ10.0 EL5.0\n"
        assert twin.model.target() == Position(10.0, 5.0)


async def test_easycomm1_never_answers(clock: VirtualClock) -> None:
    """EasyComm I has no feedback: even a query gets no reply, a set still moves."""
    async with raw("easycomm1", clock) as (twin, transport):
        await transport.write(b"AZ EL \nAZ20.0 EL10.0 UP000 XXX DN000 XXX\n")
        await clock.advance(100.0)
        assert twin.tx_bytes == 0
        assert twin.true_position() == Position(20.0, 10.0)


async def test_easycomm3_status_registers_show_a_jam(clock: VirtualClock) -> None:
    """EasyComm III: GS 1 idle / 2 moving / 8 error; GE 2 (jam) while an axis is stalled."""
    async with raw("easycomm3", clock) as (twin, transport):
        assert await ask(transport, b"GS\n", 4) == b"GS1\n"
        await transport.write(b"AZ90.0 EL0.0\n")
        assert await ask(transport, b"GS\n", 4) == b"GS2\n"
        twin.stall(Axis.AZ)
        assert await ask(transport, b"GS\n", 4) == b"GS8\n"
        assert await ask(transport, b"GE\n", 4) == b"GE2\n"


async def test_rot2prog_status_and_stop_frames(clock: VirtualClock) -> None:
    """Rot2Prog: status -> 12 bytes in tenths + 360 with PH/PV; stop answers with the position."""
    async with raw("rot2prog", clock, start=Position(123.0, 45.0)) as (twin, transport):
        expected = bytes([0x57, 4, 8, 3, 0, 2, 4, 0, 5, 0, 2, 0x20])  # rot2prog.md capture
        assert await ask(transport, STATUS, 12) == expected
        assert await ask(transport, STOP, 12) == expected
        await transport.write(b"W0966\x020811\x02\x2f\x20")  # the 901 capture: 123.0 / 45.5
        await clock.advance(10.0)
        assert twin.model.target() == Position(123.0, 45.5)


async def test_rot1prog_reports_whole_degrees(clock: VirtualClock) -> None:
    """Rot1Prog: 5-byte reply, whole degrees + 360, azimuth only."""
    async with raw("rot1prog", clock, start=Position(123.0, 0.0)) as (_, transport):
        assert await ask(transport, STATUS, 5) == bytes([0x57, 4, 8, 3, 0x20])


async def test_rotctld_twin_answers_like_rotctld(clock: VirtualClock) -> None:
    """rotctld twin: dump_state (as rotctld -m 1 prints it), RPRT -1 out of range, q hangs up."""
    async with raw("rotctld", clock) as (_, transport):
        dump = (
            b"1\n1\nmin_az=-180.000000\nmax_az=450.000000\nmin_el=0.000000\n"
            b"max_el=90.000000\nsouth_zero=0\nrot_type=AzEl\ndone\n"
        )
        assert await ask(transport, b"\\dump_state\n", len(dump)) == dump
        assert await ask(transport, b"P 10 100\n", 8) == b"RPRT -1\n"
        assert await ask(transport, b"p\n", 10) == b"0.00\n0.00\n"
        await transport.write(b"q\n")
        with pytest.raises(TransportClosed):
            await asyncio.wait_for(transport.read(), HANG_GUARD_S)


async def test_twin_latency_is_on_the_clock(clock: VirtualClock) -> None:
    """A twin with 0.2 s latency answers exactly 0.2 s (virtual) after the command."""
    async with raw("gs232b", clock, latency_s=0.2) as (_, transport):
        await transport.write(b"C2\r")
        reply = asyncio.ensure_future(transport.read())
        await clock.advance(0.199)
        assert not reply.done()
        await clock.advance(0.001)
        assert await reply == b"AZ=000  EL=000\r\n"


async def test_serve_simulators_on_pty_and_tcp(clock: VirtualClock) -> None:
    """serve_simulators: one twin on a pty and TCP; drivers on both reach the same rotator."""
    served = await serve_simulators(
        "gs232b", None, pty=True, tcp=("127.0.0.1", 0), clock=clock, slew_az_deg_s=12.0
    )
    async with served:
        assert served["rotator"].startswith("/dev/pts/")
        assert served["rotator_tcp"].startswith("tcp://127.0.0.1:")
        twin = served.twins["rotator"]
        assert isinstance(twin, RotatorTwin)
        assert twin.capabilities.az_rate_deg_s == 12.0
        via_tcp = create_rotator("gs232b", served["rotator_tcp"], clock=clock)
        via_pty = create_rotator("gs232b", f"serial://{served['rotator']}", clock=clock)
        async with via_tcp, via_pty:
            await asyncio.wait_for(via_tcp.set_position(90.0, 10.0), HANG_GUARD_S)
            await asyncio.wait_for(twin.wait_for_commands(3), HANG_GUARD_S)
            await clock.advance(20.0)
            position = await asyncio.wait_for(via_pty.get_position(), HANG_GUARD_S)
            assert position == Position(90.0, 10.0)
    assert served.servers == []
    with pytest.raises(TransportClosed):
        await open_transport(f"serial://{served['rotator']}", clock=clock)


async def test_serve_simulators_refuses_what_cannot_work(clock: VirtualClock) -> None:
    """rotctld on a pty only, nothing to serve on, unknown names: precise errors."""
    with pytest.raises(ValueError, match=r"served over tcp \(pass tcp="):
        await serve_simulators("rotctld", None, pty=True, tcp=None, clock=clock)
    with pytest.raises(ValueError, match="nothing to serve on"):
        await serve_simulators("gs232b", None, pty=False, tcp=None, clock=clock)
    with pytest.raises(ValueError, match=r"no rotator simulator called 'nope'; available: "):
        await serve_simulators("nope", None, pty=True, tcp=None, clock=clock)
    with pytest.raises(ValueError, match="az_rate_deg_s=-1"):
        await serve_simulators("gs232b", None, pty=True, tcp=None, clock=clock, slew_az_deg_s=-1)


async def test_rotctld_twin_served_on_tcp_for_the_cli(clock: VirtualClock) -> None:
    """serve_simulators('rotctld', pty=True, tcp=...) serves it on TCP only."""
    async with await serve_simulators(
        "rotctld", None, pty=True, tcp=("127.0.0.1", 0), clock=clock
    ) as served:
        assert set(served) == {"rotator"}
        assert served["rotator"].startswith("tcp://")
        driver = create_rotator("rotctld", served["rotator"], clock=clock)
        async with driver:
            assert await asyncio.wait_for(driver.get_position(), HANG_GUARD_S) == Position(0, 0)


async def test_drive_helper_reaches_loop_twin_with_latency(clock: VirtualClock) -> None:
    """The loop rig's driven clock: a 0.15 s twin is read in 0.15 s of virtual time."""
    twin = create_simulator("rotator", "easycomm2", clock=clock, latency_s=0.15)
    registry = LoopRegistry(clock)
    async with await twin.serve_loop(registry, "ec") as server:
        driver = create_rotator("easycomm2", server.url, clock=clock, loop_registry=registry)
        await drive(clock, driver.open())
        t0 = clock.monotonic()
        assert await drive(clock, driver.get_position(), step_s=0.01) == Position(0.0, 0.0)
        assert 0.15 <= clock.monotonic() - t0 <= 0.17
        await driver.close()
