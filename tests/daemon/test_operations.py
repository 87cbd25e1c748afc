"""Operations: element sets fetched from URLs into the cache, Prometheus metrics on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.config import load_config
from controller.daemon import Daemon
from controller.daemon_config import MetricsConfig
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
from tests.telemetry.conftest import free_port

SEED_TLE = (ROOT / "seeds" / "tle" / "eu_constellation.tle").read_bytes() + (
    ROOT / "seeds" / "tle" / "jp_groups.tle"
).read_bytes()
SEED_SATELLITES = 330


class _Served:
    """What the loopback server answers, and how often it was asked."""

    def __init__(self) -> None:
        self.body = SEED_TLE
        self.requests = 0
        self.port = 0


@contextlib.contextmanager
def _tle_server() -> Iterator[_Served]:
    served = _Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test's output stays readable

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    served.port = int(httpd.server_address[1])
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10.0)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10.0) as reply:
        return bytes(reply.read()).decode()


def _value(text: str, name: str) -> float:
    """The value of an unlabelled sample (or the first sample) of a metric."""
    match = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in the scrape"
    return float(match.group(1))


@pytest.fixture
def served() -> Iterator[_Served]:
    """A loopback HTTP server serving the seed element sets."""
    with _tle_server() as state:
        yield state


async def test_catalog_from_a_url_only_and_metrics_scraped(
    tmp_path: Path, served: _Served, clock: VirtualClock
) -> None:
    """A station whose only element source is a URL fetches it into the cache, plans and
    tracks from it; a later garbage answer raises a source alarm and keeps the last good
    copy; /metrics on loopback reports the catalog, the fetch failure and the alarm."""
    text = station_config_text()
    url = f"http://127.0.0.1:{served.port}/gp.tle"
    text, count = re.subn(
        r"^tle_files = .*$",
        f'tle_files = []\nurls = ["{url}"]\ncache_dir = "{tmp_path / "cache"}"',
        text,
        flags=re.MULTILINE,
    )
    assert count == 1
    path = tmp_path / "station.toml"
    path.write_text(text)
    config = load_config(path)
    settings = fast_settings(tmp_path / "run", metrics=MetricsConfig(enabled=True, port=0))
    daemon = Daemon(
        config,
        clock=clock,
        config_path=path,
        settings=settings,
        broker_url=f"mqtt://127.0.0.1:{free_port()}",  # nobody listens: telemetry queues
        extra_sinks=[InMemorySink(clock, "demo")],
    )
    task = asyncio.create_task(daemon.run())
    await drive(
        clock,
        task,
        condition=lambda: daemon.state == "ready",
        step_s=0.05,
        limit_s=120,
        before_step=daemon.refresher.fetched,
    )
    try:
        assert served.requests == 1
        assert daemon.catalog is not None
        assert len(daemon.catalog.entries) == SEED_SATELLITES
        assert daemon.schedule is not None
        assert daemon.schedule.tracks
        cached = list((tmp_path / "cache").glob("*.tle"))
        assert len(cached) == 1
        assert cached[0].read_bytes() == SEED_TLE
        await drive(clock, task, until=clock.now() + timedelta(seconds=60))
        server = daemon.metrics_server
        assert server is not None
        assert server.host == "127.0.0.1"
        assert server.port > 0
        scrape = await asyncio.to_thread(_scrape, server.port)
        assert _value(scrape, "groundlink_catalog_satellites") == SEED_SATELLITES

        served.body = b"<html>503 upstream busy</html>\n"
        result = await daemon.reload_now("tle")
        assert served.requests == 2
        assert result["satellites"] == SEED_SATELLITES  # the last good copy
        source_alarms = [a for a in daemon.alarms.active if a.startswith("tle-source-")]
        assert len(source_alarms) == 1
        # One failed fetch with a fresh good copy is information; it turns into a
        # warning only once no fetch succeeded for fetch_stale_after_h.
        assert daemon.alarms.active[source_alarms[0]].severity == "info"
        assert url in daemon.alarms.active[source_alarms[0]].message
        assert cached[0].read_bytes() == SEED_TLE
        await drive(clock, task, until=clock.now() + timedelta(seconds=60))
        scrape = await asyncio.to_thread(_scrape, server.port)
        assert _value(scrape, "groundlink_tle_fetch_failures_total") == 1.0
        assert _value(scrape, "groundlink_catalog_satellites") == SEED_SATELLITES
        infos = re.search(
            r'^groundlink_alarms_active\{[^}]*severity="info"[^}]*\} (\S+)$',
            scrape,
            re.MULTILINE,
        )
        assert infos is not None
        assert float(infos.group(1)) >= 1.0
    finally:
        assert await stop_daemon(daemon, clock, task) == 0
    assert daemon.metrics_server is not None
    with pytest.raises(OSError, match="refused"):
        await asyncio.to_thread(_scrape, daemon.metrics_server.port)


async def test_a_taken_metrics_port_is_an_alarm_not_a_dead_station(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """Metrics on a port another process holds: a warning alarm naming the address; the
    station still tracks."""
    path = tmp_path / "station.toml"
    path.write_text(station_config_text())
    with contextlib.closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        settings = fast_settings(tmp_path / "run", metrics=MetricsConfig(enabled=True, port=port))
        daemon = Daemon(
            load_config(path),
            clock=clock,
            config_path=path,
            settings=settings,
            broker_url=f"mqtt://127.0.0.1:{free_port()}",
        )
        task = await start_daemon(daemon, clock)
        try:
            alarm = daemon.alarms.active.get("metrics")
            assert alarm is not None
            assert f"127.0.0.1:{port}" in alarm.message
            assert daemon.state in ("ready", "degraded")
        finally:
            assert await stop_daemon(daemon, clock, task) == 0
