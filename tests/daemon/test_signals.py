"""Signals on a real process: `groundlink demo` (the daemon on an accelerated clock)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.daemon.conftest import ROOT, station_config_text
from tests.telemetry.conftest import MosquittoFactory, Subscriber

PREFIX = "groundlink/demo/"
CHILD = """
import sys
from pathlib import Path
from controller.demo import run_demo
from controller.logs import configure_logging
configure_logging("warning", json_lines=True)
sys.exit(run_demo(Path(sys.argv[1]), 60.0, 0.0, sys.argv[2], True, live=False))
"""


async def test_sigterm_mid_pass_stows_publishes_offline_and_exits_0(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """SIGTERM while a pass is tracked: exit 0, retained offline, both antennas stowed."""
    broker = await mosquitto_factory()
    config = tmp_path / "station.toml"
    config.write_text(station_config_text(horizon_h=2.0))
    env = dict(os.environ, GROUNDLINK_RUN_DIR=str(tmp_path / "run"), PYTHONPATH=str(ROOT))
    async with Subscriber(broker.port, [PREFIX + "#"]) as sub:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            str(config),
            broker.url,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await sub.wait_for(
                lambda ms: any(
                    m.topic == PREFIX + "pass/event" and m.json()["event"] == "aos" for m in ms
                ),
                timeout_s=60,
            )
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()[-2000:]
        assert b"daemon stopping" in out or b"tracks aborted" in out
    # A new subscriber sees the retained final state.
    async with Subscriber(broker.port, [PREFIX + "status", PREFIX + "antenna/+/state"]) as late:
        await late.wait_for(
            lambda ms: len({m.topic for m in ms}) >= 3 and all(m.retain for m in ms)
        )
        status = [m.json() for m in late.on(PREFIX + "status")]
        assert status[-1]["state"] == "offline"
        modes = {m.topic: m.json()["mode"] for m in late.messages if "antenna/" in m.topic}
        assert modes == {
            PREFIX + "antenna/ant1/state": "stowed",
            PREFIX + "antenna/ant2/state": "stowed",
        }
    errors = [
        line
        for line in err.decode().splitlines()
        if line.startswith("{") and json.loads(line).get("level") == "error"
    ]
    assert errors == []
