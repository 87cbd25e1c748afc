"""Prometheus metrics of the station daemon (``[daemon.metrics]``), served on loopback.

One :class:`StationMetrics` per daemon holds its own registry (no process-global state, so
tests and a reload can build several). The daemon updates it two ways:

* as a telemetry sink (:meth:`StationMetrics.sink`, passed in ``extra_sinks``): pointing
  error, link lock/SNR/margin, active alarms, pass events, device and MQTT-link health and
  the station state follow the payloads the daemon already publishes;
* by direct calls for what is not in a payload: finished tracks, commands and errors per
  device (running totals from the trackers), MQTT outbox depth, loop lateness, catalog and
  TLE-source ages.

:meth:`StationMetrics.serve` starts the HTTP endpoint (``/metrics``) in a thread on the
configured host and port; the host must be a loopback address unless
``allow_non_loopback`` is set (checked by :class:`~controller.daemon_config.MetricsConfig`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Final, Literal, get_args
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    generate_latest,
    start_http_server,
)

from controller import __version__
from controller.daemon_config import MetricsConfig
from controller.telemetry.mqtt import LinkState
from controller.telemetry.payloads import (
    Alarms,
    AntennaState,
    Health,
    Link,
    PassEvent,
    Payload,
    Pointing,
    Severity,
    StationState,
    Status,
)

__all__ = ["MetricsServer", "MetricsSink", "StationMetrics", "TrackOutcomeKind"]

TrackOutcomeKind = Literal["executed", "aborted", "skipped"]

STATION_STATES: Final[tuple[str, ...]] = get_args(StationState)
MQTT_STATES: Final[tuple[str, ...]] = tuple(s.value for s in LinkState)
_SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)
# From a 10 Hz loop's 1 ms jitter goal up to a stalled second.
_LATENESS_BUCKETS_S: Final = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0)


class MetricsServer:
    """The running HTTP endpoint; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        """Wrap what :func:`prometheus_client.start_http_server` returned."""
        self._server = server
        self._thread = thread

    @property
    def host(self) -> str:
        """The address it listens on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port it listens on (the real one when the config said 0)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


class StationMetrics:
    """Gauges and counters of one station daemon, in their own registry."""

    def __init__(self, station_id: str) -> None:
        """Create every metric (labelled series appear when first updated)."""
        self.station_id = station_id
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.info = Info("groundlink", "Station daemon build and identity.", registry=r)
        self.info.info({"version": __version__, "station": station_id})
        self.station_state = Enum(
            "groundlink_station_state",
            "Station state (as published on status).",
            states=list(STATION_STATES),
            registry=r,
        )
        self.tracks = Counter(
            "groundlink_tracks",
            "Scheduled tracks finished, by antenna and outcome (executed/aborted/skipped).",
            ["antenna", "outcome"],
            registry=r,
        )
        self.pass_events = Counter(
            "groundlink_pass_events",
            "Pass events published (aos, tca, los, handover, aborted).",
            ["antenna", "event"],
            registry=r,
        )
        self.pointing_error = Gauge(
            "groundlink_pointing_error_degrees",
            "Latest pointing error (angle between target and actual direction).",
            ["antenna"],
            registry=r,
        )
        self.link_locked = Gauge(
            "groundlink_link_locked",
            "1 while the downlink is locked (SNR above the required value).",
            ["antenna"],
            registry=r,
        )
        self.link_snr = Gauge(
            "groundlink_link_snr_db",
            "Latest measured (else predicted) downlink SNR.",
            ["antenna"],
            registry=r,
        )
        self.link_margin = Gauge(
            "groundlink_link_margin_db",
            "Latest link margin over the required SNR.",
            ["antenna"],
            registry=r,
        )
        self.alarms_active = Gauge(
            "groundlink_alarms_active",
            "Active alarms by severity.",
            ["severity"],
            registry=r,
        )
        self.commands = Counter(
            "groundlink_device_commands",
            "Commands sent to a device (rotator moves, radio frequency changes).",
            ["device"],
            registry=r,
        )
        self.device_errors = Counter(
            "groundlink_device_errors",
            "Commands to a device that failed.",
            ["device"],
            registry=r,
        )
        self.device_faults = Counter(
            "groundlink_device_faults",
            "Times a device went into fault.",
            ["device"],
            registry=r,
        )
        self.device_up = Gauge(
            "groundlink_device_up",
            "1 while a device is healthy, 0 while degraded or faulted.",
            ["device"],
            registry=r,
        )
        self.mqtt_state = Enum(
            "groundlink_mqtt_link_state",
            "State of the connection to the MQTT broker.",
            states=list(MQTT_STATES),
            registry=r,
        )
        self.mqtt_queue = Gauge(
            "groundlink_mqtt_queue_depth",
            "Messages waiting in the MQTT outbox.",
            registry=r,
        )
        self.mqtt_dropped = Gauge(
            "groundlink_mqtt_dropped",
            "Messages the outbox dropped since start (bounded queue during an outage).",
            registry=r,
        )
        self.lateness = Histogram(
            "groundlink_loop_lateness_seconds",
            "How late a control-loop tick ran after its deadline.",
            ["task"],
            buckets=_LATENESS_BUCKETS_S,
            registry=r,
        )
        self.catalog_satellites = Gauge(
            "groundlink_catalog_satellites",
            "Usable satellites in the catalog.",
            registry=r,
        )
        self.catalog_epoch_age = Gauge(
            "groundlink_catalog_newest_epoch_age_seconds",
            "Age of the newest element-set epoch in the catalog.",
            registry=r,
        )
        self.tle_fetch_age = Gauge(
            "groundlink_tle_fetch_age_seconds",
            "Time since the last successful fetch of a TLE source (-1: never).",
            ["source"],
            registry=r,
        )
        self.tle_fetch_failures = Counter(
            "groundlink_tle_fetch_failures",
            "Failed fetches of a TLE source.",
            ["source"],
            registry=r,
        )
        self._device_totals: dict[str, tuple[int, int]] = {}
        self._device_faulted: dict[str, bool] = {}
        self._lock = threading.Lock()

    # -- direct updates -----------------------------------------------------------------
    def track_finished(self, antenna: str, outcome: TrackOutcomeKind) -> None:
        """Count one scheduled track that ended."""
        self.tracks.labels(antenna=antenna, outcome=outcome).inc()

    def observe_device_totals(self, device: str, *, commands: int, errors: int = 0) -> None:
        """Feed running totals (e.g. a tracker's counters); the counters grow by the delta.

        A total below the previous one (a counter that restarted) counts as new from zero.
        """
        with self._lock:
            last_commands, last_errors = self._device_totals.get(device, (0, 0))
            self._device_totals[device] = (commands, errors)
        added = commands - last_commands if commands >= last_commands else commands
        failed = errors - last_errors if errors >= last_errors else errors
        self.commands.labels(device=device).inc(added)
        self.device_errors.labels(device=device).inc(failed)

    def set_device_health(self, device: str, healthy: bool, *, faulted: bool = False) -> None:
        """Device up/down; a change into ``faulted`` counts one fault."""
        self.device_up.labels(device=device).set(1.0 if healthy else 0.0)
        with self._lock:
            was = self._device_faulted.get(device, False)
            self._device_faulted[device] = faulted
        if faulted and not was:
            self.device_faults.labels(device=device).inc()

    def set_mqtt(self, state: str, *, queue_depth: int, dropped: int = 0) -> None:
        """The broker connection state (a ``LinkState`` value) and the outbox."""
        if state in MQTT_STATES:
            self.mqtt_state.state(state)
        self.mqtt_queue.set(queue_depth)
        self.mqtt_dropped.set(dropped)

    def observe_lateness(self, task: str, late_s: float) -> None:
        """One control-loop tick that ran ``late_s`` after its deadline (<0 counts as 0)."""
        self.lateness.labels(task=task).observe(max(0.0, late_s))

    def set_catalog(self, satellites: int, newest_epoch_age_s: float | None) -> None:
        """Catalog size and freshness."""
        self.catalog_satellites.set(satellites)
        self.catalog_epoch_age.set(-1.0 if newest_epoch_age_s is None else newest_epoch_age_s)

    def set_tle_source(self, source: str, fetch_age_s: float | None, *, failed: bool) -> None:
        """After a refresh of one source: its fetch age, and one failure if it failed."""
        self.tle_fetch_age.labels(source=source).set(-1.0 if fetch_age_s is None else fetch_age_s)
        if failed:
            self.tle_fetch_failures.labels(source=source).inc()

    def set_alarms(self, counts: Mapping[str, int]) -> None:
        """Active alarms per severity (missing severities are 0)."""
        for severity in _SEVERITIES:
            self.alarms_active.labels(severity=severity).set(counts.get(severity, 0))

    # -- from telemetry -----------------------------------------------------------------
    def sink(self) -> MetricsSink:
        """A telemetry sink that updates these metrics from published payloads."""
        return MetricsSink(self)

    # -- exposition ---------------------------------------------------------------------
    def render(self) -> bytes:
        """The text exposition format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def serve(self, config: MetricsConfig) -> MetricsServer:
        """Start ``/metrics`` on ``config.host``:``config.port`` in a thread.

        OSError (port taken, address not local) propagates with the address in the message.
        """
        try:
            server, thread = start_http_server(
                config.port, addr=config.host, registry=self.registry
            )
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"daemon.metrics: cannot listen on {config.host}:{config.port}: "
                f"{exc.strerror or exc}",
            ) from exc
        return MetricsServer(server, thread)


class MetricsSink:
    """A :class:`~controller.telemetry.sink.TelemetrySink` feeding :class:`StationMetrics`."""

    def __init__(self, metrics: StationMetrics) -> None:
        """Update ``metrics`` from every payload sent here."""
        self.metrics = metrics

    def send(self, payload: Payload) -> None:
        """Pick the numbers out of one payload; others are ignored. Never raises."""
        m = self.metrics
        if isinstance(payload, Pointing):
            if payload.error_deg is not None:
                m.pointing_error.labels(antenna=payload.antenna).set(payload.error_deg)
        elif isinstance(payload, Link):
            m.link_locked.labels(antenna=payload.antenna).set(1.0 if payload.locked else 0.0)
            snr = (
                payload.snr_measured_db
                if payload.snr_measured_db is not None
                else payload.snr_predicted_db
            )
            if snr is not None:
                m.link_snr.labels(antenna=payload.antenna).set(snr)
            if payload.margin_db is not None:
                m.link_margin.labels(antenna=payload.antenna).set(payload.margin_db)
        elif isinstance(payload, Alarms):
            counts: dict[str, int] = {}
            for alarm in payload.alarms:
                counts[alarm.severity] = counts.get(alarm.severity, 0) + 1
            m.set_alarms(counts)
        elif isinstance(payload, PassEvent):
            m.pass_events.labels(antenna=payload.antenna, event=payload.event).inc()
        elif isinstance(payload, Status):
            if payload.state in STATION_STATES:
                m.station_state.state(payload.state)
        elif isinstance(payload, AntennaState):
            if payload.fault is not None:
                m.set_device_health(f"{payload.antenna}-rotator", False, faulted=True)
        elif isinstance(payload, Health):
            for component in payload.components:
                if component.kind == "device":
                    m.set_device_health(
                        component.name,
                        component.state == "ok",
                        faulted=component.state == "fault",
                    )
