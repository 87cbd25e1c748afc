"""Real Hamlib 4.5.4 binaries as peers (Debian libhamlib-utils).

* ``rotctl`` drives our twins over a pseudo-terminal (the recipe of hamlib-models.md, with our
  PtyEndpoint in place of socat): models 601 (GS-232A), 603 (GS-232B), 202 (EasyComm II) and
  901 (Rot2Prog). The twins run on a VirtualClock free-running at SPEED x real time, so a slew
  takes a fraction of a second; the test polls ``rotctl p`` (each run takes real time) until
  the position arrives, under a real deadline.
* ``rotctl -m 2`` (Hamlib's own rotctld client) drives our rotctld twin over TCP.
* Our rotctld driver drives Hamlib's ``rotctld -m 1`` (dummy backend) on a free loopback port.

The bytes Hamlib sends (rounding, truncation, extra CRs) are its own: the expected targets
below are the documented Hamlib behaviour (gs232.md: rint; easycomm.md: %.1f; rot2prog.md:
truncation to the controller's 0.5 deg step), not values produced by our code.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from firmware_bridge.clock import SystemClock, VirtualClock
from firmware_bridge.drivers import DriverState, Position, RotatorCapabilities, create_rotator
from firmware_bridge.errors import DeviceRejected, LimitError
from firmware_bridge.link import LinkPolicy
from firmware_bridge.protocols.base import GetPosition, SetPosition, Stop
from firmware_bridge.simulators import PtySimServer, SimServer, create_simulator
from firmware_bridge.simulators.rotator import RotatorTwin
from tests.hal.conftest import T0

SPEED = 100.0
"""Virtual seconds per real second for the twins Hamlib talks to."""
DEADLINE_S = 15.0
"""Real-time limit for one poll loop (a hang guard, far above the normal ~1 s)."""

ROTCTL_CASES = [
    # twin, rotctl model, serial speed, request, target the twin must receive (Hamlib's rounding)
    pytest.param("gs232a", 601, 9600, (180.4, 45.6), (180.0, 46.0), id="601-gs232a"),
    pytest.param("gs232b", 603, 9600, (180.4, 45.6), (180.0, 46.0), id="603-gs232b"),
    pytest.param("easycomm2", 202, 19200, (180.26, 45.04), (180.3, 45.0), id="202-easycomm2"),
    pytest.param("easycomm3", 204, 19200, (180.26, 45.04), (180.3, 45.0), id="204-easycomm3"),
    pytest.param("rot2prog", 901, 600, (123.4, 45.6), (123.0, 45.5), id="901-rot2prog"),
    # Rot1Prog: azimuth only, int(360 + az) on the wire (rot2prog.md), no elevation at all.
    pytest.param("rot1prog", 902, 1200, (123.6, 0.0), (123.0, None), id="902-rot1prog"),
]


async def run(*argv: str, rc: int = 0) -> str:
    """Run a Hamlib program; return its stdout, failing the test (with stderr) unless it exits
    with ``rc``."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), DEADLINE_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == rc, f"{argv} -> rc {process.returncode}: {err.decode()[-800:]}"
    return out.decode()


def parse_position(out: str) -> Position:
    """The last two numeric lines rotctl printed for ``p``."""
    numbers = []
    for line in out.splitlines():
        with contextlib.suppress(ValueError):
            numbers.append(float(line))
    assert len(numbers) >= 2, f"no position in rotctl output {out!r}"
    return Position(numbers[-2], numbers[-1])


async def poll_until(argv: list[str], expected: Position, tolerance_deg: float) -> Position:
    """Run ``argv`` (a rotctl ``p``) until it reports ``expected``; fail at the deadline."""
    last = None
    try:
        async with asyncio.timeout(DEADLINE_S):
            while True:
                last = parse_position(await run(*argv))
                if (
                    abs(last.az_deg - expected.az_deg) <= tolerance_deg
                    and abs(last.el_deg - expected.el_deg) <= tolerance_deg
                ):
                    return last
    except TimeoutError:
        raise AssertionError(f"rotctl never reported {expected}; last {last}") from None


@contextlib.asynccontextmanager
async def fast_twin(
    name: str, *, on_tcp: bool = False
) -> AsyncIterator[tuple[RotatorTwin, SimServer]]:
    """A twin on a free-running virtual clock, served on a pty (or TCP)."""
    clock = VirtualClock(T0)
    clock.start_free_running(SPEED)
    twin = create_simulator("rotator", name, clock=clock)
    assert isinstance(twin, RotatorTwin)
    server: SimServer = await (twin.serve_tcp() if on_tcp else twin.serve_pty())
    try:
        yield twin, server
    finally:
        await server.close()
        clock.stop_free_running()
    assert twin.errors == []


@pytest.mark.parametrize(("name", "model", "baud", "asked", "received"), ROTCTL_CASES)
async def test_rotctl_sets_and_reads_back_our_twin(
    name: str,
    model: int,
    baud: int,
    asked: tuple[float, float],
    received: tuple[float, float | None],
) -> None:
    """rotctl P then p: the twin gets Hamlib's encoding of the target and reports it back."""
    async with fast_twin(name) as (twin, server):
        assert isinstance(server, PtySimServer)
        rotctl = ["rotctl", "-m", str(model), "-r", server.path, "-s", str(baud)]
        await run(*rotctl, "P", str(asked[0]), str(asked[1]))
        sets = [c for c in twin.commands if isinstance(c, SetPosition)]
        assert sets == [SetPosition(az_deg=received[0], el_deg=received[1])]
        resolution = twin.capabilities.az_resolution_deg
        expected = Position(received[0], received[1] if received[1] is not None else 0.0)
        position = await poll_until([*rotctl, "p"], expected, resolution / 2)
        assert position == twin.reported_position()
        assert not twin.model.moving()


async def _last_command_is(twin: RotatorTwin, kind: type) -> None:
    """Wait until the twin's latest decoded command is a ``kind``."""
    while not (twin.commands and isinstance(twin.commands[-1], kind)):
        await twin.wait_for_commands(twin.command_count + 1)


@pytest.mark.parametrize(
    ("name", "model", "baud"),
    [pytest.param(*case.values[:3], id=case.id) for case in ROTCTL_CASES],
)
async def test_rotctl_stops_our_twin_mid_slew(name: str, model: int, baud: int) -> None:
    """rotctl P far, then S: the twin comes to rest short of the target and stays there."""
    async with fast_twin(name) as (twin, server):
        assert isinstance(server, PtySimServer)
        rotctl = ["rotctl", "-m", str(model), "-r", server.path, "-s", str(baud)]
        await run(*rotctl, "P", "300", "0")
        await run(*rotctl, "S")
        # rotctl may exit before our twin has read the pty (EasyComm's P and S have no
        # reply): wait until the stop is read, whatever came before it.
        await asyncio.wait_for(_last_command_is(twin, Stop), DEADLINE_S)
        # A separate run: at least a few virtual seconds later, so braking is over.
        first = parse_position(await run(*rotctl, "p"))
        second = parse_position(await run(*rotctl, "p"))
        assert first == second
        assert 0.0 < first.az_deg < 300.0
        assert not twin.model.moving()
        assert isinstance(twin.commands[-1], GetPosition)


async def test_rotctl_easycomm1_sets_our_twin_without_feedback() -> None:
    """rotctl -m 201: the level-I line (with its radio fields) moves the twin; p is refused."""
    async with fast_twin("easycomm1") as (twin, server):
        assert isinstance(server, PtySimServer)
        rotctl = ["rotctl", "-m", "201", "-r", server.path, "-s", "19200"]
        await run(*rotctl, "P", "180.26", "45.04")
        # rotctl waits for no reply, so it may exit before our twin has read the pty.
        await asyncio.wait_for(twin.wait_for_commands(1), DEADLINE_S)
        assert SetPosition(az_deg=180.3, el_deg=45.0) in twin.commands
        assert twin.model.target() == Position(180.3, 45.0)
        assert "Feature not available" in await run(*rotctl, "p", rc=2)
        assert twin.tx_bytes == 0


async def test_hamlib_net_client_drives_our_rotctld_twin() -> None:
    """rotctl -m 2 (Hamlib's rotctld client: dump_state, P with %f) against our rotctld twin."""
    async with fast_twin("rotctld", on_tcp=True) as (twin, server):
        address = server.url.removeprefix("tcp://")
        rotctl = ["rotctl", "-m", "2", "-r", address]
        await run(*rotctl, "P", "100.5", "20.25")
        assert SetPosition(az_deg=100.5, el_deg=20.25) in twin.commands
        position = await poll_until([*rotctl, "p"], Position(100.5, 20.25), 0.005)
        assert position == Position(100.5, 20.25)


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def hamlib_rotctld() -> AsyncIterator[str]:
    """Hamlib's ``rotctld -m 1`` (dummy) on a free loopback port; yields its tcp:// URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        "rotctld",
        "-m",
        "1",
        "-T",
        "127.0.0.1",
        "-t",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), DEADLINE_S)


# The dummy backend moves by the time between two get_pos calls, counted in whole
# milliseconds: polled back to back it never moves. Poll at this interval (real time).
POLL_S = 0.05

# The daemon may need a moment to listen: retry connecting quickly (real time).
FAST_RECONNECT = LinkPolicy(timeout_s=2.0, retries=1, backoff_initial_s=0.02, backoff_max_s=0.2)


async def test_our_rotctld_driver_against_hamlib_rotctld() -> None:
    """Limits from the daemon's dump_state; a set is reached; stop holds; limits refused."""
    clock = SystemClock()
    async with hamlib_rotctld() as url:
        driver = create_rotator("rotctld", url, clock=clock, policy=FAST_RECONNECT)
        async with driver:
            await asyncio.wait_for(driver.wait_ready(), DEADLINE_S)
            caps = driver.capabilities
            # rotctld -m 1 reports az -180..450, el 0..90 (hamlib-net.md).
            assert (caps.az_min_deg, caps.az_max_deg) == (-180.0, 450.0)
            assert (caps.el_min_deg, caps.el_max_deg) == (0.0, 90.0)
            with pytest.raises(LimitError, match="el_deg=95"):
                await driver.set_position(10.0, 95.0)
            await driver.set_position(4.5, 2.25)
            async with asyncio.timeout(DEADLINE_S):
                while (position := await driver.get_position()) != Position(4.5, 2.25):
                    assert 0.0 <= position.az_deg <= 4.5
                    await clock.sleep(POLL_S)
            assert driver.state is DriverState.OK

            await driver.set_position(60.0, 30.0)
            async with asyncio.timeout(DEADLINE_S):
                while (await driver.get_position()).az_deg < 5.5:
                    await clock.sleep(POLL_S)
            await driver.stop()
            first = await driver.get_position()
            await clock.sleep(POLL_S)
            second = await driver.get_position()
            assert first == second
            assert 5.5 <= first.az_deg < 60.0


async def test_hamlib_rotctld_rejection_is_typed() -> None:
    """With capabilities wider than the daemon's, its RPRT -1 becomes DeviceRejected(code=-1)."""
    wide = RotatorCapabilities(az_min_deg=0.0, az_max_deg=450.0, el_min_deg=0.0, el_max_deg=180.0)
    async with hamlib_rotctld() as url:
        driver = create_rotator(
            "rotctld", url, clock=SystemClock(), policy=FAST_RECONNECT, capabilities=wide
        )
        async with driver:
            await asyncio.wait_for(driver.wait_ready(), DEADLINE_S)
            with pytest.raises(DeviceRejected, match="EINVAL") as caught:
                await driver.set_position(10.0, 120.0)
            assert caught.value.code == -1
            assert driver.state is DriverState.OK
