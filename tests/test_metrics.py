"""Prometheus metrics: updated from telemetry and direct calls, scraped over real HTTP."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from controller.daemon_config import MetricsConfig
from controller.metrics import MetricsServer, StationMetrics
from controller.telemetry.payloads import (
    Alarm,
    Alarms,
    ComponentHealth,
    Health,
    Link,
    PassEvent,
    Pointing,
    Status,
)

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def _scrape(server: MetricsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and index every sample by name and labels."""
    url = f"http://{server.host}:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=10.0) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def metrics() -> StationMetrics:
    """Metrics of a station called ``demo``."""
    return StationMetrics("demo")


@pytest.fixture
def server(metrics: StationMetrics) -> Iterator[MetricsServer]:
    """The endpoint on a free loopback port."""
    served = metrics.serve(MetricsConfig(enabled=True, host="127.0.0.1", port=0))
    try:
        yield served
    finally:
        served.close()


def test_scrape_shows_telemetry_and_direct_updates(
    metrics: StationMetrics, server: MetricsServer
) -> None:
    """Each kind of update appears with its value in a real HTTP scrape."""
    sink = metrics.sink()
    sink.send(Status(state="ready"))
    sink.send(
        Pointing(
            antenna="ant1",
            mode="tracking",
            norad_id=80001,
            target_az_deg=10.0,
            target_el_deg=20.0,
            commanded_az_deg=10.0,
            commanded_el_deg=20.0,
            actual_az_deg=10.5,
            actual_el_deg=20.0,
            error_deg=0.47,
            period_s=1.0,
        )
    )
    sink.send(
        Link(
            antenna="ant1",
            norad_id=80001,
            range_km=900.0,
            range_rate_km_s=-3.0,
            doppler_down_hz=4000.0,
            doppler_up_hz=None,
            downlink_hz=437.5e6,
            uplink_hz=None,
            snr_predicted_db=14.0,
            snr_measured_db=12.5,
            margin_db=2.5,
            locked=True,
            period_s=1.0,
        )
    )
    sink.send(
        Alarms(
            alarms=[
                Alarm(id="a", severity="warning", since=T0, message="x"),
                Alarm(id="b", severity="warning", since=T0, message="y"),
                Alarm(id="c", severity="critical", since=T0, message="z"),
            ]
        )
    )
    sink.send(PassEvent(antenna="ant1", norad_id=80001, event="aborted", reason="stall"))
    sink.send(
        Health(
            components=[
                ComponentHealth(name="ant1-rotator", kind="device", state="fault"),
                ComponentHealth(name="rig1", kind="device", state="ok"),
                ComponentHealth(name="mqtt", kind="link", state="ok"),
            ]
        )
    )
    metrics.track_finished("ant1", "executed")
    metrics.track_finished("ant1", "executed")
    metrics.track_finished("ant2", "aborted")
    metrics.observe_device_totals("ant1-rotator", commands=40, errors=1)
    metrics.set_mqtt("connected", queue_depth=7, dropped=2)
    metrics.observe_lateness("antenna-ant1", 0.003)
    metrics.set_catalog(31, 86400.0)
    metrics.set_tle_source("https://example.invalid/tle", None, failed=True)

    got = _scrape(server)
    assert got[("groundlink_info", (("station", "demo"), ("version", "0.1.0")))] == 1.0
    assert got[("groundlink_station_state", (("groundlink_station_state", "ready"),))] == 1.0
    assert got[("groundlink_station_state", (("groundlink_station_state", "offline"),))] == 0.0
    assert got[("groundlink_pointing_error_degrees", (("antenna", "ant1"),))] == 0.47
    assert got[("groundlink_link_locked", (("antenna", "ant1"),))] == 1.0
    assert got[("groundlink_link_snr_db", (("antenna", "ant1"),))] == 12.5
    assert got[("groundlink_alarms_active", (("severity", "warning"),))] == 2.0
    assert got[("groundlink_alarms_active", (("severity", "critical"),))] == 1.0
    assert got[("groundlink_alarms_active", (("severity", "info"),))] == 0.0
    assert got[("groundlink_pass_events_total", (("antenna", "ant1"), ("event", "aborted")))] == 1
    assert got[("groundlink_device_up", (("device", "ant1-rotator"),))] == 0.0
    assert got[("groundlink_device_up", (("device", "rig1"),))] == 1.0
    assert got[("groundlink_device_faults_total", (("device", "ant1-rotator"),))] == 1.0
    assert got[("groundlink_tracks_total", (("antenna", "ant1"), ("outcome", "executed")))] == 2
    assert got[("groundlink_tracks_total", (("antenna", "ant2"), ("outcome", "aborted")))] == 1
    assert got[("groundlink_device_commands_total", (("device", "ant1-rotator"),))] == 40.0
    assert got[("groundlink_device_errors_total", (("device", "ant1-rotator"),))] == 1.0
    assert got[("groundlink_mqtt_link_state", (("groundlink_mqtt_link_state", "connected"),))] == 1
    assert got[("groundlink_mqtt_queue_depth", ())] == 7.0
    assert got[("groundlink_loop_lateness_seconds_count", (("task", "antenna-ant1"),))] == 1.0
    assert (
        got[
            ("groundlink_loop_lateness_seconds_bucket", (("le", "0.005"), ("task", "antenna-ant1")))
        ]
        == 1.0
    )
    assert (
        got[
            ("groundlink_loop_lateness_seconds_bucket", (("le", "0.002"), ("task", "antenna-ant1")))
        ]
        == 0.0
    )
    assert got[("groundlink_catalog_satellites", ())] == 31.0
    assert got[("groundlink_catalog_newest_epoch_age_seconds", ())] == 86400.0
    source = (("source", "https://example.invalid/tle"),)
    assert got[("groundlink_tle_fetch_age_seconds", source)] == -1.0
    assert got[("groundlink_tle_fetch_failures_total", source)] == 1.0


def test_a_fault_is_counted_once_until_the_device_recovers(metrics: StationMetrics) -> None:
    """Repeated health reports of one fault count one fault; a new fault after recovery
    counts again."""
    for state in ("fault", "fault", "ok", "fault"):
        metrics.sink().send(
            Health(components=[ComponentHealth(name="rig1", kind="device", state=state)])
        )
    assert metrics.device_faults.labels(device="rig1")._value.get() == 2.0


def test_running_totals_grow_by_their_delta(metrics: StationMetrics) -> None:
    """Totals fed twice count the difference; a total that restarted counts from zero."""
    metrics.observe_device_totals("rig1", commands=10)
    metrics.observe_device_totals("rig1", commands=15)
    metrics.observe_device_totals("rig1", commands=3)  # the tracker was rebuilt
    assert metrics.commands.labels(device="rig1")._value.get() == 18.0


def test_each_station_has_its_own_registry() -> None:
    """Two daemons in one process (tests, reload) do not collide on metric names."""
    a, b = StationMetrics("a"), StationMetrics("b")
    a.track_finished("ant1", "executed")
    assert b"groundlink_tracks_total{" not in b.render()
    assert b'groundlink_tracks_total{antenna="ant1",outcome="executed"} 1.0' in a.render()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::", "metrics.example.org"])
def test_metrics_host_must_be_loopback(host: str) -> None:
    """A non-loopback listen address is refused unless explicitly allowed."""
    with pytest.raises(ValidationError, match="not a loopback address"):
        MetricsConfig(enabled=True, host=host)
    assert MetricsConfig(enabled=True, host=host, allow_non_loopback=True).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    """127.0.0.1, ::1 and localhost need no opt-in."""
    assert MetricsConfig(host=host).host == host


def test_port_in_use_is_a_clear_error(metrics: StationMetrics) -> None:
    """A taken port raises OSError naming the key and the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(OSError, match=rf"daemon.metrics: cannot listen on 127.0.0.1:{port}"):
            metrics.serve(MetricsConfig(enabled=True, port=port))
