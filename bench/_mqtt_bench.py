"""Shared by the MQTT benchmarks (bench/broker.py, bench/mqtt.py): the sample payloads they
publish, and starting a benchmark script's own subscriber mode in a child process (its work
then runs on the other core)."""

from __future__ import annotations

import asyncio
import sys

from controller.telemetry.payloads import PassEvent, Payload, Pointing


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


def sample_pointing() -> Payload:
    """A pointing sample, as a tracker sends several times a second."""
    return Pointing(
        antenna="a1",
        mode="tracking",
        norad_id=25544,
        target_az_deg=123.4,
        target_el_deg=45.6,
        commanded_az_deg=123.3,
        commanded_el_deg=45.5,
        actual_az_deg=123.2,
        actual_el_deg=45.5,
        error_deg=0.2,
        period_s=0.1,
    )


def sample_event() -> Payload:
    """A pass event (QoS 1)."""
    return PassEvent(antenna="a1", norad_id=25544, event="tca", el_deg=45.6)
