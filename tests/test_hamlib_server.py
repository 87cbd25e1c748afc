"""rotctld/rigctld bridges in front of groundlink drivers, driven by Hamlib's own clients.

* ``rotctl -m 2`` / ``rigctl -m 2`` (Hamlib 4.5.4's network clients) talk to a bridge whose
  driver talks to a simulator twin over ``loop://``. The rotator twin's physics run on a
  VirtualClock free-running at SPEED x real time (a slew takes a fraction of a second); the
  drivers run on the SystemClock. Reads after a slew poll under a real deadline.
* A raw line client (asyncio streams) checks what Hamlib's clients refuse on their own side
  (out-of-range targets are checked by ``rotctl`` against our ``\\dump_state``).
* ``hamlib_serve`` runs as a subprocess: the JSON line first, SIGTERM ends it with 0.

Expected values are the requests themselves (targets on the device's resolution grid), the
Hamlib codes of hamlib-net.md, Hamlib model numbers from ``rotctl -l``/``rigctl -l``, and
points of Hamlib's IC9700_STR_CAL table; never values computed by the code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest

from controller.hamlib_cmd import hamlib_serve
from firmware_bridge.clock import SystemClock, VirtualClock
from firmware_bridge.drivers import Position, RotatorCapabilities, RotatorDriver, create_rotator
from firmware_bridge.drivers.radio import RadioDriver, Vfo, VfoError, create_radio
from firmware_bridge.drivers.rotator import RotatorStalled
from firmware_bridge.errors import (
    DeviceFault,
    DeviceRejected,
    LimitError,
    LocalProtocolError,
    RemoteProtocolError,
    TransportClosed,
    TransportTimeout,
)
from firmware_bridge.hamlib_server import (
    HamlibBridge,
    RigctldBridge,
    RotctldBridge,
    hamlib_error_code,
    serve_hamlib,
)
from firmware_bridge.link import LinkPolicy
from firmware_bridge.protocols.base import SetPosition, Stop
from firmware_bridge.simulators import SimServer, create_simulator
from firmware_bridge.simulators.radio import Ic9700Twin, NoiseFloor
from firmware_bridge.simulators.rotator import RotatorTwin
from firmware_bridge.transports import LoopRegistry, TcpServer

T0: Final = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SPEED: Final = 20.0
"""Virtual seconds per real second of the rotator twin's physics."""
DEADLINE_S: Final = 15.0
"""Real-time limit of one client run or poll loop (a hang guard; normal runs take ~0.1 s)."""
FAST_ROTATOR: Final = RotatorCapabilities(
    az_min_deg=0.0,
    az_max_deg=450.0,
    el_min_deg=0.0,
    el_max_deg=90.0,
    az_rate_deg_s=30.0,
    el_rate_deg_s=30.0,
    az_accel_deg_s2=60.0,
    el_accel_deg_s2=60.0,
    az_resolution_deg=0.1,
    el_resolution_deg=0.1,
    park_az_deg=180.0,
    park_el_deg=90.0,
)
"""An EasyComm rotator (tenths of a degree) with an overlap range and a distinctive park."""
S9_MINUS_24_DB: Final = -24.0
"""A point of Hamlib's IC9700_STR_CAL (raw 60 <-> -24 dB): no interpolation or rounding."""


# --------------------------------------------------------------------------- helpers


async def run(*argv: str, cwd: Path, rc: int = 0) -> tuple[str, str]:
    """Run a program; return (stdout, stderr), failing the test unless it exits with ``rc``."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), DEADLINE_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == rc, f"{argv} -> rc {process.returncode}: {err.decode()[-800:]}"
    return out.decode(), err.decode()


def numbers(text: str) -> list[float]:
    """Every line of ``text`` that is a number, as floats."""
    found = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            found.append(float(line))
    return found


async def poll_position(address: str, expected: Position, cwd: Path) -> Position:
    """Run ``rotctl -m 2 p`` until it reports ``expected`` (to 0.001 deg); fail at the deadline."""
    last: Position | None = None
    try:
        async with asyncio.timeout(DEADLINE_S):
            while True:
                out, _ = await run("rotctl", "-m", "2", "-r", address, "p", cwd=cwd)
                az, el = numbers(out)[-2:]
                last = Position(az, el)
                if abs(az - expected.az_deg) < 1e-3 and abs(el - expected.el_deg) < 1e-3:
                    return last
    except TimeoutError:
        raise AssertionError(f"rotctl never reported {expected}; last {last}") from None


class LineClient:
    """A raw rotctld/rigctld client: one command line out, a known number of lines back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an open connection."""
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, address: str) -> LineClient:
        """Connect to ``host:port``."""
        host, port = address.rsplit(":", 1)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port)), DEADLINE_S
        )
        return cls(reader, writer)

    async def ask(self, line: bytes | str, count: int = 1) -> list[str]:
        """Send one line; return the next ``count`` reply lines."""
        data = line.encode("latin-1") if isinstance(line, str) else line
        self._writer.write(data + b"\n")
        await self._writer.drain()
        return [await self.line() for _ in range(count)]

    async def line(self) -> str:
        """The next reply line (without LF)."""
        raw = await asyncio.wait_for(self._reader.readline(), DEADLINE_S)
        assert raw.endswith(b"\n"), f"connection ended: {raw!r}"
        return raw[:-1].decode("latin-1")

    async def until(self, last: str) -> list[str]:
        """Reply lines up to and including ``last``."""
        lines = [await self.line()]
        while lines[-1] != last:
            lines.append(await self.line())
        return lines

    async def close(self) -> None:
        """Hang up."""
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


@dataclass
class Bridged:
    """A bridge on a free TCP port, its driver, and the twin behind the driver."""

    bridge: HamlibBridge
    server: TcpServer
    twin: Any
    address: str


@contextlib.asynccontextmanager
async def bridged_rotator(
    name: str = "easycomm2",
    *,
    capabilities: RotatorCapabilities = FAST_ROTATOR,
    policy: LinkPolicy | None = None,
) -> AsyncIterator[Bridged]:
    """A rotator twin (fast virtual physics) behind its driver (SystemClock) behind rotctld."""
    twin_clock = VirtualClock(T0)
    twin_clock.start_free_running(SPEED)
    clock = SystemClock()
    registry = LoopRegistry(clock)
    twin = create_simulator("rotator", name, clock=twin_clock, capabilities=capabilities)
    assert isinstance(twin, RotatorTwin)
    sim: SimServer = await twin.serve_loop(registry, "rot")
    options: dict[str, Any] = {"capabilities": capabilities}
    if policy is not None:
        options["policy"] = policy
    driver = create_rotator(name, sim.url, clock=clock, loop_registry=registry, **options)
    await asyncio.wait_for(driver.open(), DEADLINE_S)
    bridge = RotctldBridge(driver)
    server = await bridge.listen("127.0.0.1", 0)
    try:
        yield Bridged(bridge, server, twin, f"127.0.0.1:{server.port}")
    finally:
        await server.close()
        await driver.close()
        await sim.close()
        twin_clock.stop_free_running()
    assert twin.errors == []
    assert bridge.internal_errors == []


@contextlib.asynccontextmanager
async def bridged_radio(name: str = "ic9700", **twin_options: Any) -> AsyncIterator[Bridged]:
    """A radio twin behind its driver behind rigctld, all on the SystemClock."""
    clock = SystemClock()
    registry = LoopRegistry(clock)
    twin = create_simulator("radio", name, clock=clock, **twin_options)
    sim = await twin.serve_loop(registry, "rig")
    driver = create_radio(name, sim.url, clock=clock, loop_registry=registry)
    await asyncio.wait_for(driver.open(), DEADLINE_S)
    bridge = RigctldBridge(driver)
    server = await bridge.listen("127.0.0.1", 0)
    try:
        yield Bridged(bridge, server, twin, f"127.0.0.1:{server.port}")
    finally:
        await server.close()
        await driver.close()
        await sim.close()
    assert twin.errors == []
    assert bridge.internal_errors == []


# --------------------------------------------------------------------------- rotctld


async def test_rotctl_sets_position_and_reads_it_back_after_the_slew(tmp_path: Path) -> None:
    """rotctl -m 2 P then p: the driver commands the twin, and p reports the target on arrival."""
    async with bridged_rotator() as rig:
        await run("rotctl", "-m", "2", "-r", rig.address, "P", "100.5", "20.2", cwd=tmp_path)
        assert SetPosition(az_deg=100.5, el_deg=20.2) in rig.twin.commands
        assert rig.twin.model.target() == Position(100.5, 20.2)
        assert await poll_position(rig.address, Position(100.5, 20.2), tmp_path) == Position(
            100.5, 20.2
        )
        assert not rig.twin.model.moving()


async def test_rotctl_stop_and_park_reach_the_rotator(tmp_path: Path) -> None:
    """S stops the twin short of a far target; K sends it to the configured park position."""
    async with bridged_rotator() as rig:
        rotctl = ["rotctl", "-m", "2", "-r", rig.address]
        await run(*rotctl, "P", "440", "0", "S", cwd=tmp_path)
        assert isinstance(rig.twin.commands[-1], Stop)
        assert rig.twin.model.target().az_deg < 440.0
        await run(*rotctl, "K", cwd=tmp_path)
        assert rig.twin.model.target() == Position(FAST_ROTATOR.park_az_deg, 90.0)
        await poll_position(rig.address, Position(FAST_ROTATOR.park_az_deg, 90.0), tmp_path)


async def test_dump_state_carries_the_driver_limits_and_rotctl_enforces_them(
    tmp_path: Path,
) -> None:
    """\\dump_state has the driver's limits and EasyComm II's Hamlib model (202); rotctl refuses
    a target beyond them with Hamlib's "Invalid parameter" before sending anything."""
    async with bridged_rotator() as rig:
        client = await LineClient.connect(rig.address)
        client_dump = await client.ask("\\dump_state", 9)
        assert client_dump == [
            "1",
            "202",
            "min_az=0.000000",
            "max_az=450.000000",
            "min_el=0.000000",
            "max_el=90.000000",
            "south_zero=0",
            "rot_type=AzEl",
            "done",
        ]
        await client.close()
        out, err = await run(
            "rotctl", "-m", "2", "-r", rig.address, "P", "451", "10", cwd=tmp_path, rc=2
        )
        assert "Invalid parameter" in out + err
        assert not any(isinstance(c, SetPosition) for c in rig.twin.commands)


async def test_limits_come_back_as_rprt_errors(tmp_path: Path) -> None:
    """Targets outside the driver's limits are RPRT -1 (plain and extended), never clamped;
    nothing reaches the rotator."""
    async with bridged_rotator() as rig:
        client = await LineClient.connect(rig.address)
        assert await client.ask("P 450.1 10") == ["RPRT -1"]
        assert await client.ask("P 10 90.5") == ["RPRT -1"]
        assert await client.ask("P -0.1 10") == ["RPRT -1"]
        assert await client.ask("+P 999 0", 2) == ["set_pos: 999 0", "RPRT -1"]
        assert not any(isinstance(c, SetPosition) for c in rig.twin.commands)
        assert await client.ask("P 450 90") == ["RPRT 0"]
        assert rig.twin.model.target() == Position(450.0, 90.0)
        await client.close()


async def test_second_client_at_the_same_time(tmp_path: Path) -> None:
    """While one client stays connected, rotctl works through a second connection, and two
    clients pipelining reads concurrently each get every reply, in order."""
    async with bridged_rotator() as rig:
        first = await LineClient.connect(rig.address)
        assert len(numbers("\n".join(await first.ask("p", 2)))) == 2
        await run("rotctl", "-m", "2", "-r", rig.address, "P", "12.3", "45.6", cwd=tmp_path)
        await poll_position(rig.address, Position(12.3, 45.6), tmp_path)
        second = await LineClient.connect(rig.address)
        assert await first.ask("+p", 4) == [
            "get_pos:",
            "Azimuth: 12.30",
            "Elevation: 45.60",
            "RPRT 0",
        ]
        assert rig.bridge.connections == 2
        replies = await asyncio.gather(
            first.ask("\n".join(["p"] * 20), 40), second.ask("\n".join(["p"] * 20), 40)
        )
        for lines in replies:
            assert lines == ["12.30", "45.60"] * 20
        await first.close()
        await second.close()


async def test_garbage_line_gets_an_error_and_the_connection_stays_usable() -> None:
    """Unknown commands, bad arguments and binary noise are each answered RPRT -1; the same
    connection then still works."""
    async with bridged_rotator() as rig:
        client = await LineClient.connect(rig.address)
        assert await client.ask(b"\xff\x00#?!garbage") == ["RPRT -1"]
        assert await client.ask("P abc 10") == ["RPRT -1"]
        assert await client.ask("P 10") == ["RPRT -1"]
        assert await client.ask("\\no_such_command") == ["RPRT -1"]
        assert await client.ask("P 33.3 22.2") == ["RPRT 0"]
        assert rig.twin.model.target() == Position(33.3, 22.2)
        assert len(numbers("\n".join(await client.ask("p", 2)))) == 2
        assert rig.bridge.errors == 4
        await client.close()


async def test_driver_errors_become_hamlib_codes_and_the_bridge_recovers() -> None:
    """A rotator that stops answering: p gets RPRT -5 (ETIMEOUT) until the link is declared
    faulted, then RPRT -6 (EIO); once the rotator answers again, so does the bridge."""
    policy = LinkPolicy(
        timeout_s=0.2,
        retries=0,
        fault_after=2,
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
        seed=1,
    )
    async with bridged_rotator(policy=policy) as rig:
        client = await LineClient.connect(rig.address)
        rig.twin.faults.drop_replies()
        assert await client.ask("p") == ["RPRT -5"]
        assert await client.ask("p") == ["RPRT -5"]
        assert await client.ask("p") == ["RPRT -6"]
        rig.twin.faults.clear()
        await asyncio.wait_for(rig.bridge.driver.wait_ready(), DEADLINE_S)
        assert len(numbers("\n".join(await client.ask("p", 2)))) == 2
        await client.close()


async def test_rotator_without_readback_answers_enavail() -> None:
    """EasyComm I cannot report a position: p is RPRT -11 (ENAVAIL); P still moves it."""
    caps = FAST_ROTATOR.replace(readback=False)
    async with bridged_rotator("easycomm1", capabilities=caps) as rig:
        client = await LineClient.connect(rig.address)
        assert await client.ask("p") == ["RPRT -11"]
        assert await client.ask("P 10.5 20.5") == ["RPRT 0"]
        await asyncio.wait_for(rig.twin.wait_for_commands(1), DEADLINE_S)
        assert rig.twin.model.target() == Position(10.5, 20.5)
        assert await client.ask("M 8 50") == ["RPRT -11"]
        await client.close()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(LimitError("az 999"), -1, id="limit-EINVAL"),
        pytest.param(VfoError("no VFO C"), -16, id="vfo-EVFO"),
        pytest.param(LocalProtocolError("cannot encode"), -1, id="local-EINVAL"),
        pytest.param(TransportTimeout("quiet"), -5, id="timeout-ETIMEOUT"),
        pytest.param(TransportClosed("gone"), -6, id="closed-EIO"),
        pytest.param(RemoteProtocolError("noise", b"\xff"), -8, id="remote-EPROTO"),
        pytest.param(DeviceRejected("rotctld said no", -11), -11, id="rejected-passes-code"),
        pytest.param(DeviceRejected("CI-V NG", "FA"), -9, id="rejected-ERJCTED"),
        pytest.param(DeviceFault("faulted"), -6, id="fault-EIO"),
        pytest.param(RotatorStalled("stuck", (), Position(1.0, 2.0)), -6, id="stall-EIO"),
        pytest.param(RuntimeError("bug"), -7, id="bug-EINTERNAL"),
    ],
)
def test_hamlib_error_code_follows_the_hamlib_table(error: BaseException, code: int) -> None:
    """Each driver error maps to the Hamlib 4.5.4 code of hamlib-net.md's table."""
    assert hamlib_error_code(error) == code


# --------------------------------------------------------------------------- rigctld


async def test_rigctl_sets_and_reads_frequency_mode_and_strength(tmp_path: Path) -> None:
    """rigctl -m 2 against an IC-9700 (CI-V driver and twin) through the bridge: frequency,
    mode, S-meter, VFO selection and satellite mode all reach the radio and read back."""
    async with bridged_radio(signal=NoiseFloor(S9_MINUS_24_DB)) as rig:
        twin = rig.twin
        assert isinstance(twin, Ic9700Twin)
        out, _ = await run(
            "rigctl", "-m", "2", "-r", rig.address,
            "F", "145912345", "f", "M", "USB", "0", "m", "l", "STRENGTH",
            "U", "SATMODE", "1", "u", "SATMODE", "V", "Sub", "F", "435123456", "f", "v",
            cwd=tmp_path,
        )  # fmt: skip
        # m prints the mode and the passband (0: the HAL has no passband control).
        assert out.split() == ["145912345", "USB", "0", "-24", "1", "435123456", "Sub"]
        assert twin.vfo(Vfo.MAIN).freq_hz == 145_912_345
        assert twin.vfo(Vfo.MAIN).mode == "USB"
        assert twin.vfo(Vfo.SUB).freq_hz == 435_123_456
        assert twin.satellite_mode is True


async def test_radio_limits_come_back_as_rprt_errors(tmp_path: Path) -> None:
    """A frequency outside the IC-9700's ranges, a mode it lacks, a VFO it lacks, the uplink
    VFO while satellite mode is off, and levels the HAL does not offer: each its Hamlib code;
    the radio keeps its settings."""
    async with bridged_radio() as rig:
        twin = rig.twin
        assert isinstance(twin, Ic9700Twin)
        before = twin.vfo(Vfo.MAIN).freq_hz
        # rigctl 4.5.4 reports a failed command but still exits 0.
        out, err = await run("rigctl", "-m", "2", "-r", rig.address, "F", "1000000", cwd=tmp_path)
        assert "Invalid parameter" in out + err
        client = await LineClient.connect(rig.address)
        assert await client.ask("F 148000001") == ["RPRT -1"]
        assert await client.ask("M WFM 0") == ["RPRT -1"]
        assert await client.ask("V VFOC") == ["RPRT -16"]
        assert await client.ask("V TX") == ["RPRT 0"]
        assert await client.ask("f") == ["RPRT -16"]
        assert await client.ask("V Main") == ["RPRT 0"]
        assert await client.ask("l AF") == ["RPRT -11"]
        assert await client.ask("T 1") == ["RPRT -11"]
        assert await client.ask(b"F \x00\xff") == ["RPRT -1"]
        assert await client.ask("f") == [str(before)]
        assert twin.vfo(Vfo.MAIN).freq_hz == before
        assert twin.vfo(Vfo.MAIN).mode == "FM"
        await client.close()


async def test_our_rigctld_driver_reads_the_bridged_radio_ranges_and_tunes_it(
    tmp_path: Path,
) -> None:
    """Our own rigctld driver, pointed at the bridge, adopts the IC-9700's ranges from
    \\dump_state (rig model 3081) and tunes the real radio's SUB band through two protocols."""
    async with bridged_radio(signal=NoiseFloor(S9_MINUS_24_DB)) as rig:
        twin = rig.twin
        assert isinstance(twin, Ic9700Twin)
        outer = create_radio("rigctld", f"tcp://{rig.address}", clock=SystemClock())
        await asyncio.wait_for(outer.open(), DEADLINE_S)
        try:
            assert isinstance(outer, RadioDriver)
            inner = rig.bridge.driver
            assert isinstance(inner, RadioDriver)
            assert outer.capabilities.rx_ranges == inner.capabilities.rx_ranges
            assert outer.capabilities.tx_ranges == inner.capabilities.tx_ranges
            assert "3081" in outer.capabilities.model
            await asyncio.wait_for(outer.set_frequency(435_500_000, Vfo.SUB), DEADLINE_S)
            assert twin.vfo(Vfo.SUB).freq_hz == 435_500_000
            signal_ = await asyncio.wait_for(outer.get_signal(Vfo.MAIN), DEADLINE_S)
            assert signal_.db_rel_s9 == S9_MINUS_24_DB
        finally:
            await outer.close()


async def test_chk_vfo_of_one_client_adds_the_dump_state_block_for_all() -> None:
    """Like rigctld: \\dump_state ends with the key=value block and ``done`` once any client
    has sent \\chk_vfo (answered 0: no VFO argument mode); the block names the rig model."""
    async with bridged_radio() as rig:
        first = await LineClient.connect(rig.address)
        assert await first.ask("\\chk_vfo") == ["0"]
        second = await LineClient.connect(rig.address)
        await second.ask("\\dump_state", 0)
        lines = await second.until("done")
        assert lines[:2] == ["1", "3081"]
        assert "rig_model=3081" in lines
        assert "144000000.000000 148000000.000000" in "\n".join(lines)
        assert await second.ask("v") == ["Main"]
        await first.close()
        await second.close()


# --------------------------------------------------------------------------- serve_hamlib


async def test_serve_hamlib_names_both_endpoints_and_refuses_a_busy_port() -> None:
    """serve_hamlib reports host:port per protocol; a port in use raises TransportClosed
    naming it, after closing what it had started."""
    async with bridged_rotator() as rot, bridged_radio() as rig:
        rotator, radio = rot.bridge.driver, rig.bridge.driver
        assert isinstance(rotator, RotatorDriver)
        assert isinstance(radio, RadioDriver)
        async with await serve_hamlib(
            rotator=rotator, radio=radio, rot_port=0, rig_port=0
        ) as served:
            assert set(served.endpoints) == {"rotctld", "rigctld"}
            client = await LineClient.connect(served.endpoints["rigctld"])
            assert await client.ask("\\chk_vfo") == ["0"]
            await client.close()
            busy = int(served.endpoints["rotctld"].rsplit(":", 1)[1])
            with pytest.raises(TransportClosed, match=str(busy)):
                await serve_hamlib(radio=radio, rig_port=busy)


# --------------------------------------------------------------------------- the command

SERVE_SCRIPT: Final = """
import json, sys
from pathlib import Path
from controller.logs import configure_logging
from controller.hamlib_cmd import hamlib_serve
configure_logging("warning")  # what the CLI does before any command
a = json.loads(sys.argv[1])
sys.exit(hamlib_serve(
    Path(a["config"]) if a.get("config") else None, a.get("rotator"), a.get("rotator_url"),
    a.get("radio"), a.get("radio_url"), "127.0.0.1", 0, 0, a.get("simulated", False)))
"""


@contextlib.asynccontextmanager
async def serving(args: dict[str, Any], cwd: Path) -> AsyncIterator[dict[str, str]]:
    """``hamlib_serve`` in a subprocess; yields the endpoints of its first stdout line, then
    sends SIGTERM and checks it exits 0 without a traceback."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE_SCRIPT, json.dumps(args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), DEADLINE_S)
        assert first, (await process.stderr.read()).decode()[-1500:]
        endpoints = json.loads(first)
        yield endpoints
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), DEADLINE_S)
        assert process.returncode == 0, err.decode()[-1500:]
        assert b"Traceback" not in err
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_hamlib_serve_simulated_flags_prints_endpoints_and_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    """--rotator/--radio --simulated: the JSON line names both servers, rotctl and rigctl
    are answered, SIGTERM ends the command with 0."""
    args = {"rotator": "easycomm2", "radio": "ic9700", "simulated": True}
    async with serving(args, tmp_path) as endpoints:
        assert set(endpoints) == {"rotctld", "rigctld"}
        assert all(e.startswith("127.0.0.1:") for e in endpoints.values())
        out, _ = await run("rotctl", "-m", "2", "-r", endpoints["rotctld"], "p", cwd=tmp_path)
        assert len(numbers(out)) == 2
        out, _ = await run(
            "rigctl", "-m", "2", "-r", endpoints["rigctld"], "F", "145950000", "f", cwd=tmp_path
        )
        assert out.split() == ["145950000"]


CONFIG: Final = """
[station]
id = "bridge"
[station.site]
lat_deg = 47.88
lon_deg = 11.08

[[antennas]]
id = "ant1"
[antennas.rotator]
driver = "gs232b"
simulated = true
az_min_deg = 0.0
az_max_deg = 450.0
el_min_deg = 0.0
el_max_deg = 180.0
slew_az_deg_s = 90.0
slew_el_deg_s = 90.0
accel_az_deg_s2 = 360.0
accel_el_deg_s2 = 360.0
park_az_deg = 0.0
park_el_deg = 90.0

[[antennas]]
id = "ant2"
[antennas.rotator]
driver = "rot2prog"
url = "serial:///dev/nonexistent-groundlink-test"

[[radios]]
id = "rig2"
driver = "ic9700"
url = "serial:///dev/nonexistent-groundlink-test"
antenna = "ant2"

[[radios]]
id = "rig1"
driver = "ic910"
simulated = true
antenna = "ant1"
"""


async def test_hamlib_serve_config_serves_the_first_antenna_and_its_radio(
    tmp_path: Path,
) -> None:
    """--config: the first antenna's rotator with the config's limits (GS-232B, Hamlib model
    603, flips to 180 deg elevation) and the radio on that antenna (IC-910, rig model 3044)."""
    config = tmp_path / "station.toml"
    config.write_text(CONFIG)
    async with serving({"config": str(config)}, tmp_path) as endpoints:
        client = await LineClient.connect(endpoints["rotctld"])
        dump = await client.ask("\\dump_state", 9)
        assert dump[:2] == ["1", "603"]
        assert "max_az=450.000000" in dump
        assert "max_el=180.000000" in dump
        await client.close()
        rotctl = ["rotctl", "-m", "2", "-r", endpoints["rotctld"]]
        await run(*rotctl, "P", "30", "120", cwd=tmp_path)
        await poll_position(endpoints["rotctld"], Position(30.0, 120.0), tmp_path)
        radio = await LineClient.connect(endpoints["rigctld"])
        assert (await radio.ask("\\dump_state", 2)) == ["1", "3044"]
        await radio.close()
        out, _ = await run(
            "rigctl", "-m", "2", "-r", endpoints["rigctld"], "F", "145950000", "f", cwd=tmp_path
        )
        assert out.split() == ["145950000"]


def _free_port_in_use() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


BAD_CONFIG_DRIVER: Final = CONFIG.replace('driver = "gs232b"', 'driver = "gs9999"')
BAD_CONFIG_URL: Final = CONFIG.replace(
    'driver = "gs232b"\nsimulated = true', 'driver = "gs232b"\nsimulated = false'
)
# EasyComm reports 0..999.9 deg: its twin cannot be a -180..180 rotator.
UNCARRIED_LIMITS: Final = CONFIG.replace('driver = "gs232b"', 'driver = "easycomm2"').replace(
    "az_min_deg = 0.0\naz_max_deg = 450.0", "az_min_deg = -180.0\naz_max_deg = 180.0"
)
NO_ANTENNAS: Final = '[station]\nid = "x"\n[station.site]\nlat_deg = 1.0\nlon_deg = 2.0\n'


@pytest.mark.parametrize(
    ("args", "config_text", "code", "message"),
    [
        pytest.param(
            {"rotator": "gs9999", "simulated": True}, None, 2, "gs232b", id="unknown-driver"
        ),
        pytest.param({"rotator": "gs232b"}, None, 2, "--rotator-url", id="no-url"),
        pytest.param(
            {"rotator": "gs232b", "rotator_url": "serial://dev/ttyUSB0"},
            None,
            2,
            "three slashes",
            id="malformed-url",
        ),
        pytest.param(
            {"rotator": "gs232b", "rotator_url": "tcp://127.0.0.1:4533", "simulated": True},
            None,
            2,
            "exclude each other",
            id="url-and-simulated",
        ),
        pytest.param({"radio_url": "tcp://127.0.0.1:4532"}, None, 2, "--radio", id="url-only"),
        pytest.param({}, None, 2, "nothing to serve", id="nothing"),
        pytest.param({"rot_port": 70000, "rotator": "gs232b"}, None, 2, "70000", id="bad-port"),
        pytest.param(
            {
                "rotator": "gs232b",
                "radio": "ic910",
                "simulated": True,
                "rot_port": 4600,
                "rig_port": 4600,
            },
            None,
            2,
            "own ports",
            id="same-ports",
        ),
        pytest.param({"radio": "ic910"}, CONFIG, 2, "--config and --radio", id="config-and-flag"),
        pytest.param({}, BAD_CONFIG_DRIVER, 78, "antennas[0].rotator.driver", id="cfg-driver"),
        pytest.param({}, BAD_CONFIG_URL, 78, "antennas[0].rotator.url", id="cfg-no-url"),
        pytest.param({}, NO_ANTENNAS, 78, "no [[antennas]]", id="cfg-no-antennas"),
        pytest.param({}, UNCARRIED_LIMITS, 78, "antennas[0].rotator: ", id="cfg-limits"),
        pytest.param({"config": "missing.toml"}, None, 78, "file not found", id="cfg-missing"),
    ],
)
def test_hamlib_serve_bad_input_is_a_precise_error(
    args: dict[str, Any],
    config_text: str | None,
    code: int,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad flags exit 2 and a bad config exits 78, with a message naming the input; nothing
    is served (no JSON line)."""
    config: Path | None = None
    if config_text is not None:
        config = tmp_path / "station.toml"
        config.write_text(config_text)
    elif "config" in args:
        config = tmp_path / args["config"]
    result = hamlib_serve(
        config,
        args.get("rotator"),
        args.get("rotator_url"),
        args.get("radio"),
        args.get("radio_url"),
        "127.0.0.1",
        args.get("rot_port", 0),
        args.get("rig_port", 0),
        args.get("simulated", False),
    )
    captured = capsys.readouterr()
    assert result == code
    assert message in captured.err
    assert captured.out == ""


def test_hamlib_serve_port_in_use_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A rotctld port someone else listens on: exit 2 naming the port, nothing printed."""
    with _free_port_in_use() as listener:
        port = listener.getsockname()[1]
        result = hamlib_serve(None, "easycomm2", None, None, None, "127.0.0.1", port, 0, True)
    captured = capsys.readouterr()
    assert result == 2
    assert f"--rot-port {port}" in captured.err
    # The driver may log to stdout here (logging is the CLI's to configure); no JSON line.
    assert not any(line.startswith('{"rotctld"') for line in captured.out.splitlines())
