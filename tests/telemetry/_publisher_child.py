"""A station publisher in its own process, for the last-will test (the test SIGKILLs it).

    python -m tests.telemetry._publisher_child mqtt://127.0.0.1:PORT STATION_ID

Prints ``ready`` once ``status`` = ready is acknowledged by the broker, then runs until
killed.
"""

from __future__ import annotations

import asyncio
import sys

from controller.telemetry.config import MqttConfig
from controller.telemetry.mqtt import MqttPublisher
from controller.telemetry.payloads import Status
from firmware_bridge.clock import SystemClock


async def _main(url: str, station_id: str) -> None:
    publisher = MqttPublisher(MqttConfig(broker=url), station_id, SystemClock())
    runner = asyncio.create_task(publisher.run())
    await publisher.wait_connected()
    publisher.send(Status(state="ready"))
    await publisher.flush()
    print("ready", flush=True)
    await runner


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
