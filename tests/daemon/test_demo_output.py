"""`groundlink demo` output: a stdout that cannot take the text does not fail the run."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from rich.console import Console

from controller.demo import say
from tests.daemon.conftest import ROOT, station_config_text
from tests.telemetry.conftest import MosquittoFactory

CHILD = """
import sys
from pathlib import Path
from controller.demo import run_demo
from controller.logs import configure_logging
configure_logging("warning", json_lines=True)
sys.exit(run_demo(Path(sys.argv[1]), 600.0, 120.0, sys.argv[2], False, live=False))
"""


class _FullWriter:
    """A text file whose every write fails as a full disk does (ENOSPC)."""

    def __init__(self) -> None:
        self.attempts = 0

    def write(self, text: str) -> int:
        self.attempts += 1
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")


def test_say_on_a_full_output_is_ignored() -> None:
    """say() on a console whose file raises ENOSPC returns quietly, after really trying."""
    writer = _FullWriter()
    console = Console(file=writer, width=80)  # type: ignore[arg-type]
    say(console, "summary")
    say(console, "[red]error:[/] again", highlight=False)
    assert writer.attempts >= 2


async def _demo_child(tmp_path: Path, broker_url: str, stdout: int) -> tuple[int, bytes, bytes]:
    """Run CHILD (a 120 s demo at 600x) on a one-hour-horizon station: exit code, out, err."""
    config = tmp_path / "station.toml"
    config.write_text(station_config_text(horizon_h=1.0))
    env = dict(os.environ, GROUNDLINK_RUN_DIR=str(tmp_path / "run"), PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(config),
        broker_url,
        env=env,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out or b"", err


async def test_demo_with_stdout_on_dev_full_exits_0(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """A short demo run with stdout on /dev/full (every write ENOSPC) still exits 0."""
    broker = await mosquitto_factory()
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        code, _, err = await _demo_child(tmp_path, broker.url, full)
    finally:
        os.close(full)
    assert code == 0, err.decode()[-2000:]
    assert b"Traceback" not in err, err.decode()[-2000:]


async def test_demo_summary_says_the_clock_was_stepped_at_most_at_the_speed(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """The demo steps its clock at up to --speed: the summary's clock row names the speed
    asked for and an achieved speed after start-up no higher than it."""
    broker = await mosquitto_factory()
    code, out, err = await _demo_child(tmp_path, broker.url, asyncio.subprocess.PIPE)
    assert code == 0, err.decode()[-2000:]
    text = " ".join(out.decode().split())
    found = re.search(r"stepped at up to 600x: (\d+)x after start-up", text)
    assert found is not None, text[-1500:]
    assert 0 < int(found.group(1)) <= 606
