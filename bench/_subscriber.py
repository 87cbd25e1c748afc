"""Shared by the MQTT benchmarks: start a benchmark script's own subscriber mode in a child
process (its work then runs on the other core) and wait until it is subscribed."""

from __future__ import annotations

import asyncio
import sys


async def spawn_subscriber(
    script: str, port: int, topic: str, n: int
) -> asyncio.subprocess.Process:
    """Run ``script --subscriber PORT TOPIC N``; return once it printed ``ready``."""
    sub = await asyncio.create_subprocess_exec(
        sys.executable,
        script,
        "--subscriber",
        str(port),
        topic,
        str(n),
        stdout=asyncio.subprocess.PIPE,
    )
    assert sub.stdout is not None
    line = await asyncio.wait_for(sub.stdout.readline(), 15)
    if line.strip() != b"ready":
        raise RuntimeError(f"subscriber did not start: {line!r}")
    return sub
