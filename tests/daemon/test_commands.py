"""Operator commands over a real Mosquitto, answered by the daemon."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from controller.config import GroundlinkConfig
from controller.daemon import Daemon
from firmware_bridge.clock import VirtualClock
from tests.daemon.conftest import drive, fast_settings, start_daemon, stop_daemon
from tests.telemetry.conftest import MosquittoFactory, Subscriber

PREFIX = "groundlink/demo/"


async def test_commands_stow_resume_point_priority_and_errors(
    tmp_path: Path,
    config: GroundlinkConfig,
    config_path: Path,
    clock: VirtualClock,
    mosquitto_factory: MosquittoFactory,
) -> None:
    """stow holds both antennas (scheduled tracks reported aborted), resume releases them,
    point out of limits is rejected naming the limits, priority re-plans, ping answers."""
    broker = await mosquitto_factory()
    daemon = Daemon(
        config,
        clock=clock,
        config_path=config_path,
        settings=fast_settings(tmp_path / "run"),
        broker_url=broker.url,
    )
    task = await start_daemon(daemon, clock)
    publisher = daemon.publisher
    assert publisher is not None
    await drive(clock, task, condition=lambda: publisher.stats.connects > 0, step_s=0.1)
    async with (
        Subscriber(broker.port, [PREFIX + "reply/#"]) as replies,
        aiomqtt.Client("127.0.0.1", broker.port) as operator,
    ):
        counter = 0

        async def command(verb: str, **fields: Any) -> dict[str, Any]:
            nonlocal counter
            counter += 1
            rid = f"t{counter}"
            body = {"request_id": rid, "ts": clock.now().isoformat(), **fields}
            await operator.publish(PREFIX + f"cmd/{verb}", json.dumps(body), qos=1)

            def answered(ms: list[Any]) -> bool:
                return any(m.json().get("request_id") == rid for m in ms)

            # Commands run on the daemon's loop: keep its clock stepping while waiting.
            await drive(clock, task, condition=lambda: answered(replies.messages), step_s=0.2)
            await replies.wait_for(answered)
            return next(m.json() for m in replies.messages if m.json()["request_id"] == rid)

        reply = await command("ping", echo="hello")
        assert reply["ok"]
        reply = await command("stow")
        assert reply["ok"]
        assert sorted(reply["result"]["stowed"]) == ["ant1", "ant2"]
        await drive(clock, task, until=clock.now() + timedelta(minutes=30))
        held = [o for o in daemon.outcomes if o.reason == "antenna stowed"]
        assert held, "no scheduled track came due while stowed"
        assert not [o for o in daemon.outcomes if o.status == "executed"]
        reply = await command("point", antenna="ant2", az_deg=100.0, el_deg=95.0)
        assert not reply["ok"]
        assert reply["error"]["code"] == "rejected"
        assert "el_deg" in reply["error"]["message"]
        reply = await command("point", antenna="nope", az_deg=100.0, el_deg=45.0)
        assert reply["error"]["field"] == "antenna"
        plans = daemon.plans
        reply = await command("priority", norad_id=80001, weight=50.0)
        assert reply["ok"]
        await drive(clock, task, condition=lambda: daemon.plans > plans, step_s=1.0)
        reply = await command("resume")
        assert reply["ok"]
        await drive(
            clock,
            task,
            condition=lambda: any(o.status == "executed" for o in daemon.outcomes),
            step_s=5.0,
            limit_s=3 * 3600,
        )
    assert await stop_daemon(daemon, clock, task) == 0
