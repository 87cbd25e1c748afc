"""Fixtures of the fault-injection suite: the daemon tests' fixtures, plus a rotator on a pty.

The daemon runs in-process on the stepped :class:`VirtualClock` of ``tests/daemon`` (``drive``)
with a real Mosquitto from ``tests/telemetry``. Devices are the simulator twins the daemon
serves itself over ``loop://`` (deterministic: replies arrive on the virtual clock), except
where the serial path matters: there the test serves a twin on a real pseudo-terminal and
the station config names it as a real device (``simulated = false``, ``url = serial://...``),
so the daemon opens it through the serial transport like a USB adapter.

Real I/O cannot be waited for on a stepped clock (the link's timeouts run on it), so
:func:`drive_wire` only moves the clock while no request is waiting for the pty's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pytest

from controller.config import load_config
from controller.daemon import Daemon
from controller.telemetry.sink import TelemetrySink
from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers.rotator import Position, RotatorCapabilities, get_rotator_driver
from firmware_bridge.simulators import PtySimServer, create_simulator
from firmware_bridge.simulators.radio import IcomTwin
from firmware_bridge.simulators.rotator import Gs232bTwin
from tests.daemon.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    ROOT,
    T0,
    config,
    config_path,
    drive,
    fast_settings,
    log_lines,
    start_daemon,
    station_config_text,
    stop_daemon,
    subscriber_factory,
)
from tests.daemon.conftest import clock as clock  # the fixture, re-exported
from tests.telemetry.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    MosquittoBroker,
    MosquittoFactory,
    Subscriber,
    free_port,
    mosquitto,
    mosquitto_factory,
)

__all__ = [
    "PREFIX",
    "ROOT",
    "MosquittoBroker",
    "MosquittoFactory",
    "SensorTwin",
    "Subscriber",
    "drive",
    "drive_wire",
    "fast_settings",
    "faults_config_text",
    "free_port",
    "make_daemon",
    "pty_radio",
    "pty_rotator",
    "radio_wired_config_text",
    "start_daemon",
    "start_wired",
    "stop_daemon",
    "stop_wired",
    "tracking",
    "wired_config_text",
    "write_config",
]

PREFIX: Final = "groundlink/demo/"
WIRE_SPINS: Final = 20000
"""Event-loop rounds a step waits for a pty reply before it moves the clock anyway (a
dropped reply must time out on the clock); a hang guard, not a delay."""

_ANT1_SIM: Final = 'driver = "gs232b"\nsimulated = true'


class SensorTwin(Gs232bTwin):
    """A GS-232B controller whose position sensor can be offset (a slipped encoder)."""

    def __init__(self, **options: object) -> None:
        """The twin of :class:`Gs232bTwin`; ``sensor_offset`` starts at zero."""
        super().__init__(**options)  # type: ignore[arg-type]
        self.sensor_offset = Position(0.0, 0.0)

    def reported_position(self) -> Position:
        """What the controller reports: the sensor reading plus the injected offset."""
        here = super().reported_position()
        return Position(
            here.az_deg + self.sensor_offset.az_deg, here.el_deg + self.sensor_offset.el_deg
        )


def faults_config_text(*, horizon_h: float = 3.0, policy: str = "greedy") -> str:
    """The daemon tests' config text (simulated.toml, absolute seeds, no embedded broker)."""
    return station_config_text(horizon_h=horizon_h, policy=policy)


def write_config(tmp_path: Path, text: str | None = None) -> Path:
    """Write ``text`` (default: :func:`faults_config_text`) as the test's station config."""
    path = tmp_path / "station.toml"
    path.write_text(faults_config_text() if text is None else text)
    return path


def wired_config_text(url: str, **limits: float) -> str:
    """The test config with ant1's GS-232B rotator a real serial device at ``url``."""
    text = faults_config_text()
    assert _ANT1_SIM in text
    text = text.replace(_ANT1_SIM, f'driver = "gs232b"\nsimulated = false\nurl = "{url}"', 1)
    for key, value in limits.items():
        # ant1's section comes first: replace its value only.
        head, sep, tail = text.partition('[antennas.rotator]\ndriver = "gs232b"')
        start = tail.index(f"\n{key} = ")
        end = tail.index("\n", start + 1)
        tail = f"{tail[:start]}\n{key} = {value}{tail[end:]}"
        text = head + sep + tail
    return text


def radio_wired_config_text(url: str) -> str:
    """The test config with ant1's IC-9700 (rig1) a real serial device at ``url``."""
    sim = 'driver = "ic9700"\nsimulated = true'
    text = faults_config_text()
    assert sim in text
    return text.replace(sim, f'driver = "ic9700"\nsimulated = false\nurl = "{url}"', 1)


@contextlib.asynccontextmanager
async def pty_radio(
    clock: VirtualClock, link: Path
) -> AsyncIterator[tuple[IcomTwin, PtySimServer]]:
    """An IC-9700 twin on a pty behind the stable symlink ``link`` (closed on exit)."""
    made = create_simulator("radio", "ic9700", clock=clock)
    assert isinstance(made, IcomTwin)
    server = await made.serve_pty(link_path=link)
    try:
        yield made, server
    finally:
        await server.close()
    assert made.errors == []


def ant1_capabilities(**limits: float) -> RotatorCapabilities:
    """ant1's capabilities as the daemon builds them (config limits over driver defaults)."""
    base = get_rotator_driver("gs232b").default_capabilities.replace(
        az_min_deg=0.0,
        az_max_deg=450.0,
        el_min_deg=0.0,
        el_max_deg=180.0,
        az_rate_deg_s=6.0,
        el_rate_deg_s=6.0,
        az_accel_deg_s2=6.0,
        el_accel_deg_s2=6.0,
        park_az_deg=0.0,
        park_el_deg=90.0,
    )
    return base.replace(**limits)


@contextlib.asynccontextmanager
async def pty_rotator(
    clock: VirtualClock, link: Path, *, sensor: bool = False, **limits: float
) -> AsyncIterator[tuple[Gs232bTwin, PtySimServer]]:
    """A GS-232B twin on a pty behind the stable symlink ``link`` (closed on exit)."""
    caps = ant1_capabilities(**limits)
    twin: Gs232bTwin
    if sensor:
        twin = SensorTwin(clock=clock, capabilities=caps, start=caps.park)
    else:
        made = create_simulator(
            "rotator", "gs232b", clock=clock, capabilities=caps, start=caps.park
        )
        assert isinstance(made, Gs232bTwin)
        twin = made
    server = await twin.serve_pty(link_path=link)
    try:
        yield twin, server
    finally:
        await server.close()
    assert twin.errors == []


def _waiting_on_wire(daemon: Daemon, antenna: str) -> bool:
    """True while a link of the antenna's devices on a real wire (not ``loop://``) holds a
    request (its reply may be in the pty).

    Why the private lock: the link exposes no 'request in flight' flag, and this is the one
    moment the stepped clock must not move (the reply is real I/O). A simulated device's
    request waits for the clock itself: waiting for it here would only spin (the radio runs
    beside the rotator's loop, so one of its requests is nearly always in flight).
    """
    ant = daemon.antennas.get(antenna)
    if ant is None:
        return False
    drivers = [ant.rotator] if ant.radio is None else [ant.rotator, ant.radio]
    return any(
        d.link is not None and not d.url.startswith("loop://") and d.link._lock.locked()
        for d in drivers
    )


async def drive_wire(
    clock: VirtualClock,
    task: asyncio.Task[int],
    daemon: Daemon,
    *,
    antenna: str = "ant1",
    until: datetime | None = None,
    condition: Callable[[], bool] | None = None,
    step_s: float = 0.1,
    limit_s: float = 3600.0,
) -> None:
    """Like ``drive``, but each step first lets a pending pty reply arrive."""

    async def let_the_wire_answer() -> None:
        for _ in range(WIRE_SPINS):
            if not _waiting_on_wire(daemon, antenna):
                break
            await clock.settle(max_rounds=1)

    await drive(
        clock,
        task,
        until=until,
        condition=condition,
        step_s=step_s,
        limit_s=limit_s,
        before_step=let_the_wire_answer,
    )


async def start_wired(daemon: Daemon, clock: VirtualClock) -> asyncio.Task[int]:
    """Run a daemon with a pty device and step until it is ready."""
    task = asyncio.create_task(daemon.run())
    # Opening a serial device of ant1 (opened first) is real I/O, and its probe's timeout
    # runs on the clock: the clock creeps (a loop twin next to it answers on the clock).
    for spin in range(WIRE_SPINS):
        if "ant1" in daemon.antennas or task.done():
            break
        await clock.settle(max_rounds=1)
        if spin % 100 == 99:
            await clock.advance(0.005)
    await drive_wire(
        clock, task, daemon, condition=lambda: daemon.state == "ready", step_s=0.05, limit_s=120
    )
    return task


async def stop_wired(daemon: Daemon, clock: VirtualClock, task: asyncio.Task[int]) -> int:
    """Request the stop and step (pty-aware) until the daemon has exited; its exit code."""
    daemon.request_stop("test stop")
    await drive_wire(clock, task, daemon, step_s=0.5, limit_s=600)
    return task.result()


@pytest.fixture
def wire_link(tmp_path: Path) -> Path:
    """Where the pty rotator's stable symlink goes (per test: parallel-safe)."""
    return tmp_path / "ant1-rotator"


def make_daemon(
    path: Path,
    clock: VirtualClock,
    tmp_path: Path,
    broker_url: str,
    *,
    extra_sinks: Sequence[TelemetrySink] = (),
    **settings: Any,
) -> Daemon:
    """The daemon of ``path`` on the test clock, with its own run dir and broker."""
    return Daemon(
        load_config(path),
        clock=clock,
        config_path=path,
        settings=fast_settings(tmp_path / "run", **settings),
        broker_url=broker_url,
        extra_sinks=extra_sinks,
    )


def tracking(daemon: Daemon, *antennas: str) -> Callable[[], bool]:
    """A condition: every antenna named is tracking a pass."""

    def check() -> bool:
        return all(daemon.antennas[a].require_tracker().mode == "tracking" for a in antennas)

    return check
