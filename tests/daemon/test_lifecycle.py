"""Lifecycle: reload with a bad config, broker down at start, device locks, systemd notify."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from controller.config import GroundlinkConfig, load_config
from controller.daemon import (
    EXIT_LOCKED,
    Daemon,
    DaemonError,
    DeviceLocks,
    device_lock_keys,
)
from controller.telemetry.sink import InMemorySink
from firmware_bridge.clock import VirtualClock
from tests.daemon.conftest import (
    ROOT,
    drive,
    fast_settings,
    start_daemon,
    station_config_text,
    stop_daemon,
)
from tests.telemetry.conftest import MosquittoFactory, Subscriber, free_port

PREFIX = "groundlink/demo/"


def _read(path: Path) -> str:
    """Read a (small) config file."""
    return path.read_text()


def _write(path: Path, text: str) -> None:
    """Replace a (small) config file."""
    path.write_text(text)


async def test_sighup_with_a_bad_config_keeps_the_old_one_and_raises_an_alarm(
    tmp_path: Path, config: GroundlinkConfig, config_path: Path, clock: VirtualClock
) -> None:
    """A reload of a broken file is rejected with an alarm naming the key; tracking goes on;
    fixing the file and reloading again clears the alarm."""
    sink = InMemorySink(clock, "demo")
    daemon = Daemon(
        config,
        clock=clock,
        config_path=config_path,
        settings=fast_settings(tmp_path / "run"),
        broker_url=f"mqtt://127.0.0.1:{free_port()}",  # nobody listens: telemetry queues
        extra_sinks=[sink],
    )
    task = await start_daemon(daemon, clock)
    good = _read(config_path)
    _write(config_path, good.replace("horizon_h = 3.0", "horizon_h = -5"))
    daemon.request_reload()
    await drive(clock, task, condition=lambda: "config-rejected" in daemon.alarms.active)
    alarm = daemon.alarms.active["config-rejected"]
    assert "scheduler.horizon_h" in alarm.message
    assert "-5" in alarm.message
    assert daemon.config is config  # the old config object still runs
    published = [m for m in sink.on_topic(PREFIX + "alarms") if b"config-rejected" in m.payload]
    assert published
    # Still tracking after the rejected reload.
    await drive(clock, task, until=clock.now() + timedelta(minutes=40))
    assert daemon.state in ("ready", "degraded")
    assert any(o.status == "executed" for o in daemon.outcomes)
    # A good file again: applied, alarm gone.
    _write(config_path, good.replace("min_contact_s = 120.0", "min_contact_s = 100.0"))
    daemon.request_reload()
    await drive(clock, task, condition=lambda: "config-rejected" not in daemon.alarms.active)
    assert daemon.config is not config
    assert await stop_daemon(daemon, clock, task) == 0


async def test_broker_down_at_start_tracks_anyway_and_publishes_once_it_is_up(
    tmp_path: Path,
    config: GroundlinkConfig,
    config_path: Path,
    clock: VirtualClock,
    mosquitto_factory: MosquittoFactory,
) -> None:
    """With no broker the station still tracks; once Mosquitto starts on that port the
    retained state and the pass events of the outage arrive."""
    port = free_port()
    daemon = Daemon(
        config,
        clock=clock,
        config_path=config_path,
        settings=fast_settings(tmp_path / "run"),
        broker_url=f"mqtt://127.0.0.1:{port}",
    )
    task = await start_daemon(daemon, clock)
    await drive(clock, task, until=clock.now() + timedelta(minutes=30))
    executed_offline = [o for o in daemon.outcomes if o.status == "executed"]
    assert executed_offline, "no track finished while the broker was down"
    assert daemon.publisher is not None
    assert daemon.publisher.stats.connects == 0
    broker = await mosquitto_factory(port=port)
    async with Subscriber(broker.port, [PREFIX + "#"]) as sub:
        # The publisher retries on the virtual clock: keep stepping until it is through.
        await drive(
            clock,
            task,
            condition=lambda: daemon.publisher is not None and daemon.publisher.stats.connects > 0,
            step_s=1.0,
            limit_s=600,
        )
        await asyncio.wait_for(daemon.publisher.flush(), 20)
        await sub.wait_for(
            lambda ms: (
                {PREFIX + t for t in ("status", "info", "schedule", "catalog")}
                <= {m.topic for m in ms}
            )
        )
        los = [m for m in sub.on(PREFIX + "pass/event") if m.json()["event"] == "los"]
        assert len(los) >= len(executed_offline)
    assert await stop_daemon(daemon, clock, task) == 0


async def test_a_second_instance_on_the_same_devices_fails_fast(
    tmp_path: Path, config: GroundlinkConfig, clock: VirtualClock
) -> None:
    """The devices are locked by another holder: run() fails at once naming the device."""
    run_dir = tmp_path / "run"
    holder = DeviceLocks(run_dir)
    holder.acquire(device_lock_keys(config))
    try:
        daemon = Daemon(config, clock=clock, settings=fast_settings(run_dir))
        with pytest.raises(DaemonError) as caught:
            await asyncio.wait_for(daemon.run(), 5)
        assert caught.value.exit_code == EXIT_LOCKED
        assert "antenna ant1 rotator" in caught.value.message
        assert str(run_dir) in caught.value.message
        assert daemon.publisher is None  # nothing was started
    finally:
        holder.release()
    # Once released, a new holder gets them.
    again = DeviceLocks(run_dir)
    again.acquire(device_lock_keys(config))
    again.release()


async def test_ready_and_stopping_are_notified_to_systemd(
    tmp_path: Path, config: GroundlinkConfig, clock: VirtualClock
) -> None:
    """READY=1 once ready (and the watchdog only while healthy), STOPPING=1 on stop."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.setblocking(False)
        daemon = Daemon(
            config,
            clock=clock,
            settings=fast_settings(tmp_path / "run", health_period_s=5.0),
            broker_url=f"mqtt://127.0.0.1:{free_port()}",
            notify_socket=str(path),
        )
        task = await start_daemon(daemon, clock)
        await drive(clock, task, until=clock.now() + timedelta(seconds=30))
        assert await stop_daemon(daemon, clock, task) == 0
        received = []
        while True:
            try:
                received.append(server.recv(4096).decode())
            except BlockingIOError:
                break
    assert received[0].startswith("READY=1")
    assert "WATCHDOG=1" in received
    assert received[-1] == "STOPPING=1"


async def test_changed_element_files_are_reloaded_and_replanned(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """Shrinking an element file is noticed on the next refresh: the catalog is published
    again with fewer satellites and the plan ahead no longer holds the removed ones."""
    tle_dir = tmp_path / "tle"
    tle_dir.mkdir()
    for name in ("eu_constellation.tle", "jp_groups.tle"):
        _write(tle_dir / name, _read(ROOT / "seeds" / "tle" / name))
    text = station_config_text().replace(f"{ROOT}/seeds/tle/", f"{tle_dir}/")
    path = tmp_path / "station.toml"
    _write(path, text)
    sink = InMemorySink(clock, "demo")
    daemon = Daemon(
        load_config(path),
        clock=clock,
        config_path=path,
        settings=fast_settings(tmp_path / "run", tle_refresh_s=120.0),
        broker_url=f"mqtt://127.0.0.1:{free_port()}",
        extra_sinks=[sink],
    )
    task = await start_daemon(daemon, clock)
    assert daemon.catalog is not None
    before = len(daemon.catalog.entries)
    plans = daemon.plans
    lines = _read(tle_dir / "eu_constellation.tle").splitlines()
    kept = lines[:30]  # the first ten 3-line element sets
    _write(tle_dir / "eu_constellation.tle", "\n".join(kept) + "\n")
    await drive(clock, task, condition=lambda: daemon.plans > plans, step_s=10.0, limit_s=600)
    assert "plan-failed" not in daemon.alarms.active
    assert len(daemon.catalog.entries) < before
    known = {e.norad_id for e in daemon.catalog.entries}
    catalogs = sink.on_topic(PREFIX + "catalog")
    assert len(json.loads(catalogs[-1].payload)["satellites"]) == len(known)
    lead = clock.now() + timedelta(minutes=10)
    ahead = [j for a in daemon.antennas.values() for j in a.jobs if j.aos > lead]
    assert ahead
    assert {j.pass_.norad_id for j in ahead} <= known
    assert await stop_daemon(daemon, clock, task) == 0
