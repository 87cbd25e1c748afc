"""Fixtures of the daemon tests: a fast test config, a stepped virtual clock, Mosquitto.

The real Mosquitto and the subscriber come from the telemetry tests' fixtures. The daemon
runs in-process on a manual :class:`VirtualClock` that the test steps (``drive``): the
simulator twins answer on that clock, MQTT does real socket I/O meanwhile.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
import structlog

from controller.config import GroundlinkConfig, load_config
from controller.daemon import Daemon
from controller.daemon_config import DaemonConfig
from controller.logs import configure_logging
from controller.tracking.config import PointingSettings, TrackingConfig
from firmware_bridge.clock import VirtualClock
from tests.telemetry.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    MosquittoBroker,
    MosquittoFactory,
    Received,
    Subscriber,
    free_port,
    mosquitto,
    mosquitto_factory,
)

ROOT: Final = Path(__file__).resolve().parents[2]
SIMULATED: Final = ROOT / "configs" / "simulated.toml"
T0: Final = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
HANG_GUARD_S: Final = 60.0


def station_config_text(*, horizon_h: float = 3.0, policy: str = "greedy") -> str:
    """configs/simulated.toml with absolute seed paths, a short horizon and no embedded broker."""
    text = SIMULATED.read_text()
    text = text.replace('"../seeds/', f'"{ROOT}/seeds/')
    text = re.sub(r'(?m)^policy = "\w+"', f'policy = "{policy}"', text)
    text = re.sub(r"horizon_h = [0-9.]+", f"horizon_h = {horizon_h}", text)
    text = text.replace("embedded = true", "embedded = false")
    return text


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A writable copy of the test config."""
    path = tmp_path / "station.toml"
    path.write_text(station_config_text())
    return path


@pytest.fixture
def config(config_path: Path) -> GroundlinkConfig:
    """The test config, loaded."""
    return load_config(config_path)


def fast_settings(run_dir: Path, **overrides: Any) -> DaemonConfig:
    """Daemon settings for tests: own run dir, 1 Hz track telemetry (less CPU per pass)."""
    values: dict[str, Any] = {
        "run_dir": run_dir,
        "health_period_s": 30.0,
        "tracking": TrackingConfig(pointing=PointingSettings(telemetry_period_s=1.0)),
    }
    values.update(overrides)
    return DaemonConfig(**values)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Capture structlog output (JSON lines, warning and up) for the 'no error logged' checks."""
    buffer = io.StringIO()
    configure_logging("warning", json_lines=True, stream=buffer)
    yield buffer
    structlog.reset_defaults()


def errors_logged(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The error-level records in a captured log."""
    out = []
    for line in buffer.getvalue().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") in ("error", "critical"):
            out.append(record)
    return out


async def drive(
    clock: VirtualClock,
    task: asyncio.Task[int],
    *,
    until: datetime | None = None,
    condition: Callable[[], bool] | None = None,
    step_s: float = 5.0,
    limit_s: float = 86400.0,
    before_step: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Step the clock until ``until``, ``condition()`` or the end of ``task``
    (``before_step`` runs before each step)."""
    end = clock.now() + timedelta(seconds=limit_s)
    while not task.done():
        if until is not None and clock.now() >= until:
            return
        if condition is not None and condition():
            return
        if clock.now() >= end:
            raise AssertionError(f"nothing happened within {limit_s} virtual seconds")
        if before_step is not None:
            await before_step()
        await clock.advance(step_s)
    task.result()


@pytest.fixture
async def clock() -> VirtualClock:
    """A manual virtual clock at the test start time."""
    return VirtualClock(T0)


async def start_daemon(daemon: Daemon, clock: VirtualClock) -> asyncio.Task[int]:
    """Run the daemon and step until it is ready."""
    task = asyncio.create_task(daemon.run())
    await drive(clock, task, condition=lambda: daemon.state == "ready", step_s=0.05, limit_s=120)
    return task


async def stop_daemon(daemon: Daemon, clock: VirtualClock, task: asyncio.Task[int]) -> int:
    """Request the stop and step until the daemon has exited; its exit code."""
    daemon.request_stop("test stop")
    await drive(clock, task, step_s=0.5, limit_s=600)
    return task.result()


@pytest.fixture
async def subscriber_factory() -> AsyncIterator[Callable[[int], Subscriber]]:
    """Subscribers on groundlink/demo/# (closed at teardown)."""
    made: list[Subscriber] = []

    def make(port: int) -> Subscriber:
        sub = Subscriber(port, ["groundlink/demo/#"])
        made.append(sub)
        return sub

    yield make
    for sub in made:
        await sub.__aexit__(None, None, None)
