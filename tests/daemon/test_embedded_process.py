"""The embedded broker of ``mqtt.embedded = true`` runs in a child process of the daemon."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from controller.config import load_config
from controller.daemon import Daemon
from firmware_bridge.clock import SystemClock, VirtualClock
from tests.daemon.conftest import (
    Subscriber,
    drive,
    fast_settings,
    free_port,
    station_config_text,
)

PREFIX = "groundlink/demo/"
START_LIMIT_S = 60.0


def _broker_children() -> list[int]:
    """Pids of this process's children running ``python -m controller.telemetry.broker``."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and b"controller.telemetry.broker" in cmdline:
            found.append(int(entry.name))
    return found


async def test_embedded_broker_runs_in_a_child_process_and_exits_with_the_daemon(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """embedded = true (default embedded_process): the daemon publishes through a broker in
    its own child process, and that process is gone once the daemon has stopped."""
    port = free_port()
    text = station_config_text(horizon_h=1.0).replace("embedded = false", "embedded = true")
    text = text.replace('broker = "mqtt://127.0.0.1:1883"', f'broker = "mqtt://127.0.0.1:{port}"')
    text = text.replace("embedded_ws_port = 9001", "embedded_ws_port = 0")
    path = tmp_path / "station.toml"
    path.write_text(text)
    config = load_config(path)
    assert config.mqtt.embedded
    assert config.mqtt.embedded_process
    before = _broker_children()
    daemon = Daemon(config, clock=clock, config_path=path, settings=fast_settings(tmp_path / "r"))
    task = asyncio.create_task(daemon.run())
    # The child starts in real time (it imports amqtt): wait for it without moving the
    # virtual clock, else the daemon's start-up limit would run out in virtual time.
    real = SystemClock()
    deadline = real.monotonic() + START_LIMIT_S
    while daemon.publisher is None and not task.done():
        assert real.monotonic() < deadline, "the embedded broker did not start"
        await real.sleep(0.02)
    children = [pid for pid in _broker_children() if pid not in before]
    assert len(children) == 1, children
    async with Subscriber(port, [PREFIX + "status"]) as sub:
        await drive(clock, task, condition=lambda: daemon.state == "ready", step_s=0.05)
        await sub.wait_for(lambda ms: any(b'"ready"' in m.payload for m in ms))
        daemon.request_stop("test stop")
        # Step virtual time through the stow until the final state has come through the
        # child's broker; the rest (flush, disconnect, stopping the child) is real I/O.
        await drive(
            clock,
            task,
            condition=lambda: any(b'"offline"' in m.payload for m in sub.messages),
            step_s=0.5,
            limit_s=600,
        )
    assert await asyncio.wait_for(task, START_LIMIT_S) == 0
    assert children[0] not in _broker_children()
    # Reaped, not a zombie: the pid names no process any more.
    with pytest.raises(ProcessLookupError):
        os.kill(children[0], 0)
