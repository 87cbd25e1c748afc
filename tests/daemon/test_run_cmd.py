"""`groundlink run` as real processes: a second instance on the same devices fails fast."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from controller.daemon import EXIT_LOCKED
from controller.run_cmd import run_daemon
from firmware_bridge.clock import SystemClock
from tests.daemon.conftest import ROOT, station_config_text
from tests.telemetry.conftest import free_port

CHILD = """
import sys
from pathlib import Path
from controller.logs import configure_logging
from controller.run_cmd import run_daemon
configure_logging("warning", json_lines=True)
sys.exit(run_daemon(Path(sys.argv[1]), sys.argv[2]))
"""


async def _spawn(config: Path, broker: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(config),
        broker,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_second_instance_exits_75_naming_the_device_then_sigterm_exits_0(
    tmp_path: Path,
) -> None:
    """The first daemon holds the device locks; the second exits 75 at once and says which
    device and which lock file; SIGTERM ends the first with 0."""
    config = tmp_path / "station.toml"
    config.write_text(station_config_text())
    run_dir = tmp_path / "run"
    env = dict(os.environ, GROUNDLINK_RUN_DIR=str(run_dir), PYTHONPATH=str(ROOT))
    broker = f"mqtt://127.0.0.1:{free_port()}"  # no broker: the daemon runs anyway
    first = await _spawn(config, broker, env)
    try:
        # Ready once the health task has touched its heartbeat file.
        real = SystemClock()

        async def heartbeat() -> None:
            # Another process's file: nothing to await but the file itself.
            while not (run_dir / "healthy").exists():
                await real.sleep(0.05)

        await asyncio.wait_for(heartbeat(), 60)
        second = await _spawn(config, broker, env)
        _, err = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == EXIT_LOCKED
        text = err.decode()
        assert "is in use by another groundlink" in text
        assert str(run_dir) in text
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.communicate(), 60)
        assert first.returncode == 0
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()


def test_run_with_a_bad_config_exits_78(tmp_path: Path) -> None:
    """A config that does not validate: 78 before anything starts."""
    config = tmp_path / "bad.toml"
    config.write_text(station_config_text().replace("lat_deg = 47.88", "lat_deg = 147.88"))
    assert run_daemon(config, None) == 78
