"""``groundlink monitor``: a live terminal dashboard built from the MQTT topics alone.

It is the first example of a dashboard subscriber: it subscribes to ``<prefix>#``, picks
each payload's model by its ``schema`` field, and never imports anything of the daemon
but the payload models. Shown: station status, alarms, each antenna's mode, pass and
pointing, Doppler and link SNR, radios, the next tracks and the latest events. Stream
samples older than three nominal periods are marked stale; gaps in ``seq`` on stream
and event topics are counted as loss.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiomqtt
from pydantic import BaseModel
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from controller.telemetry.config import parse_broker_url
from controller.telemetry.mqtt import Backoff
from controller.telemetry.payloads import (
    Alarms,
    AntennaState,
    Catalog,
    Event,
    Health,
    Info,
    Link,
    PassCurrent,
    PassEvent,
    Pointing,
    RadioState,
    Reply,
    Schedule,
    Status,
    decode_message,
)
from controller.telemetry.topics import Delivery, TopicTree
from firmware_bridge.clock import Clock

__all__ = ["MonitorState", "run_monitor"]

_log = logging.getLogger(__name__)

_STATE_STYLE = {
    "ready": "bold green",
    "starting": "yellow",
    "degraded": "bold yellow",
    "safe": "bold cyan",
    "stopping": "yellow",
    "offline": "dim",
    "lost": "bold red",
}
_SEVERITY_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}
_STALE_PERIODS = 3.0


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _age_s(now: datetime, then: datetime) -> float:
    return (now - then).total_seconds()


class MonitorState:
    """Everything the dashboard knows, updated message by message (no I/O)."""

    def __init__(self, topics: TopicTree) -> None:
        self.topics = topics
        self.status: Any = None
        self.info: Any = None
        self.health: Any = None
        self.alarms: Any = None
        self.schedule: Any = None
        self.catalog: Any = None
        self.pass_current: Any = None
        self.antennas: dict[str, Any] = {}
        self.pointing: dict[str, Any] = {}
        self.radios: dict[str, Any] = {}
        self.links: dict[str, Any] = {}
        self.events: deque[Any] = deque(maxlen=10)
        self.received = 0
        self.invalid = 0
        self.last_invalid: str | None = None
        self.seq_gaps: Counter[str] = Counter()
        self.schemas: set[str] = set()
        self.connection = "connecting"
        self._last_seq: dict[str, int] = {}

    def ingest(self, topic: str, payload: bytes) -> None:
        """Take one message received on ``topic``; bad payloads are counted, never raised."""
        relative = self.topics.relative(topic)
        if relative is None or relative.startswith("cmd/"):
            return
        self.received += 1
        if relative.startswith("schema/"):
            self.schemas.add(relative[len("schema/") :])
            return
        try:
            msg = decode_message(payload)
        except ValueError as exc:
            self.invalid += 1
            self.last_invalid = f"{relative}: {str(exc).splitlines()[0][:120]}"
            return
        self._track_seq(topic, msg)
        if isinstance(msg, Status):
            self.status = msg
        elif isinstance(msg, Info):
            self.info = msg
        elif isinstance(msg, Health):
            self.health = msg
        elif isinstance(msg, Alarms):
            self.alarms = msg
        elif isinstance(msg, Schedule):
            self.schedule = msg
        elif isinstance(msg, Catalog):
            self.catalog = msg
        elif isinstance(msg, PassCurrent):
            self.pass_current = msg
        elif isinstance(msg, AntennaState):
            self.antennas[msg.antenna] = msg
        elif isinstance(msg, Pointing):
            self.pointing[msg.antenna] = msg
        elif isinstance(msg, RadioState):
            self.radios[msg.radio] = msg
        elif isinstance(msg, Link):
            self.links[msg.antenna] = msg
        elif isinstance(msg, PassEvent | Event | Reply):
            self.events.append(msg)

    def _track_seq(self, topic: str, msg: BaseModel) -> None:
        seq: int = getattr(msg, "seq", 0)
        if seq == 0 or getattr(type(msg), "DELIVERY", None) is Delivery.STATE:
            return  # the will (seq 0) and coalesced state say nothing about loss
        last = self._last_seq.get(topic)
        if last is not None and seq > last + 1:
            self.seq_gaps[topic] += seq - last - 1
        if last is None or seq > last or seq == 1:  # seq 1 again: the publisher restarted
            self._last_seq[topic] = seq

    # -- rendering ---------------------------------------------------------------------
    def render(self, now: datetime) -> RenderableType:
        """The whole dashboard as one rich renderable."""
        return Group(
            self._header(now),
            self._alarms(now),
            self._antennas(now),
            self._links(now),
            self._radios(),
            self._next_tracks(now),
            self._events(),
            self._footer(),
        )

    def _header(self, now: datetime) -> RenderableType:
        text = Text()
        text.append(f"station {self.topics.prefix}  ", style="bold")
        if self.status is None:
            text.append("no status yet", style="dim")
        else:
            state = self.status.state
            text.append(state.upper(), style=_STATE_STYLE.get(state, ""))
            if self.status.detail:
                text.append(f"  {self.status.detail}")
            text.append(f"  (since {_age_s(now, self.status.ts):.0f} s)", style="dim")
        if self.info is not None:
            site = self.info.site
            text.append(
                f"\nv{self.info.version}  {self.info.name or self.info.station_id}  "
                f"{site.lat_deg:.4f}, {site.lon_deg:.4f}, {site.alt_m:.0f} m"
            )
        text.append(f"\nbroker: {self.connection}", style="dim")
        return Panel(text, title="groundlink monitor")

    def _alarms(self, now: datetime) -> RenderableType:
        alarms = self.alarms.alarms if self.alarms is not None else []
        if not alarms:
            return Text("alarms: none", style="green")
        table = Table(title="alarms", expand=True)
        for col in ("severity", "for", "source", "message"):
            table.add_column(col)
        for alarm in alarms:
            table.add_row(
                Text(alarm.severity, style=_SEVERITY_STYLE[alarm.severity]),
                f"{_age_s(now, alarm.since):.0f} s",
                alarm.source or "",
                alarm.message,
            )
        return table

    def _current(self, antenna: str) -> Any:
        if self.pass_current is None:
            return None
        for track in self.pass_current.antennas:
            if track.antenna == antenna:
                return track
        return None

    def _antennas(self, now: datetime) -> RenderableType:
        table = Table(title="antennas", expand=True)
        for col in ("antenna", "mode", "az/el °", "target °", "error °", "satellite", "LOS in"):
            table.add_column(col)
        for antenna in sorted(set(self.antennas) | set(self.pointing)):
            state = self.antennas.get(antenna)
            point = self.pointing.get(antenna)
            stale = point is not None and _age_s(now, point.ts) > _STALE_PERIODS * point.period_s
            mode = (point.mode if point is not None and not stale else None) or (
                state.mode if state is not None else "?"
            )
            az = point.actual_az_deg if point is not None else (state.az_deg if state else None)
            el = point.actual_el_deg if point is not None else (state.el_deg if state else None)
            track = self._current(antenna)
            sat = "—"
            los = "—"
            if track is not None and track.norad_id is not None:
                sat = f"{track.name or ''} {track.norad_id}".strip()
                if track.los is not None:
                    los = f"{_age_s(track.los, now):.0f} s"
            row_style = "dim" if stale else None
            table.add_row(
                antenna,
                mode + (" (stale)" if stale else ""),
                f"{_fmt(az, '.1f')} / {_fmt(el, '.1f')}",
                "—"
                if point is None
                else f"{_fmt(point.target_az_deg, '.1f')} / {_fmt(point.target_el_deg, '.1f')}",
                "—" if point is None else _fmt(point.error_deg, ".2f"),
                sat,
                los,
                style=row_style,
            )
        return table

    def _links(self, now: datetime) -> RenderableType:
        table = Table(title="links", expand=True)
        for col in (
            "antenna",
            "norad",
            "range km",
            "rate km/s",
            "Doppler ↓ Hz",
            "Doppler ↑ Hz",
            "SNR pred/meas dB",
            "margin dB",
            "lock",
        ):
            table.add_column(col)
        for antenna, link in sorted(self.links.items()):
            stale = _age_s(now, link.ts) > _STALE_PERIODS * link.period_s
            table.add_row(
                antenna,
                str(link.norad_id),
                f"{link.range_km:.0f}",
                f"{link.range_rate_km_s:+.3f}",
                _fmt(link.doppler_down_hz, "+.0f"),
                _fmt(link.doppler_up_hz, "+.0f"),
                f"{_fmt(link.snr_predicted_db, '.1f')} / {_fmt(link.snr_measured_db, '.1f')}",
                _fmt(link.margin_db, "+.1f"),
                "yes" if link.locked else "no",
                style="dim" if stale else None,
            )
        return table

    def _radios(self) -> RenderableType:
        if not self.radios:
            return Text("")
        table = Table(title="radios", expand=True)
        for col in ("radio", "downlink Hz", "uplink Hz", "modes", "satellite mode"):
            table.add_column(col)
        for radio_id, radio in sorted(self.radios.items()):
            table.add_row(
                radio_id,
                _fmt(radio.downlink_hz, ",.0f"),
                _fmt(radio.uplink_hz, ",.0f"),
                f"{radio.downlink_mode or '—'} / {radio.uplink_mode or '—'}",
                "on" if radio.satellite_mode else "off",
            )
        return table

    def _next_tracks(self, now: datetime) -> RenderableType:
        table = Table(title="next tracks", expand=True)
        for col in ("antenna", "satellite", "AOS in", "duration", "max el °"):
            table.add_column(col)
        if self.schedule is not None:
            upcoming = sorted(
                (t for t in self.schedule.tracks if t.los > now), key=lambda t: t.aos
            )[:6]
            for track in upcoming:
                aos_in = _age_s(track.aos, now)
                table.add_row(
                    track.antenna,
                    f"{track.name} ({track.norad_id})",
                    "now" if aos_in <= 0 else f"{aos_in / 60:.1f} min",
                    f"{_age_s(track.los, track.aos) / 60:.1f} min",
                    f"{track.max_el_deg:.1f}",
                )
        return table

    def _events(self) -> RenderableType:
        table = Table(title="latest events", expand=True)
        for col in ("time (UTC)", "topic", "what"):
            table.add_column(col)
        for msg in reversed(self.events):
            when = msg.ts.strftime("%H:%M:%S")
            if isinstance(msg, PassEvent):
                what = f"{msg.event.upper()} {msg.norad_id} on {msg.antenna}"
                if msg.reason:
                    what += f": {msg.reason}"
                table.add_row(when, "pass", what)
            elif isinstance(msg, Reply):
                error = msg.error
                outcome = "ok" if error is None else f"{error.code}: {error.message}"
                table.add_row(when, f"reply/{msg.verb}", f"{msg.request_id}: {outcome}")
            else:
                table.add_row(
                    when,
                    f"event/{msg.kind}",
                    Text(msg.message, style=_SEVERITY_STYLE.get(msg.severity, "")),
                )
        return table

    def _footer(self) -> RenderableType:
        gaps = sum(self.seq_gaps.values())
        text = Text(
            f"{self.received} messages, {len(self.schemas)} schemas, "
            f"{gaps} missing (seq gaps), {self.invalid} invalid",
            style="dim" if not gaps and not self.invalid else "yellow",
        )
        if self.last_invalid:
            text.append(f"\nlast invalid: {self.last_invalid}", style="yellow")
        return text


async def run_monitor(
    broker_url: str,
    station_id: str,
    *,
    clock: Clock,
    duration_s: float | None = None,
    prefix: str | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | None = None,
    console: Console | None = None,
    refresh_s: float = 0.5,
    until: Callable[[MonitorState], bool] | None = None,
) -> MonitorState:
    """Show the live dashboard of ``station_id`` until cancelled or ``duration_s`` passes.

    ``until`` (for tests and scripts) ends it early once the state satisfies it. Returns
    the final state. The connection is retried with backoff if the broker goes away.
    """
    address = parse_broker_url(broker_url)
    topics = TopicTree.for_station(station_id, prefix)
    state = MonitorState(topics)
    console = console or Console()
    done = asyncio.Event()
    backoff = Backoff(0.5, 10.0, rng=random.Random())

    async def read() -> None:
        tls = aiomqtt.TLSParameters(ca_certs=ca_file) if address.tls else None
        while True:
            client = aiomqtt.Client(
                address.host,
                address.port,
                identifier=f"groundlink-monitor-{os.getpid()}-{random.getrandbits(24):06x}",
                username=username,
                password=password,
                clean_session=True,
                keepalive=10,
                tls_params=tls,
            )
            try:
                async with client:
                    await client.subscribe(topics.everything, qos=1)
                    state.connection = f"connected to {address.url}"
                    backoff.reset()
                    async for message in client.messages:
                        raw = message.payload
                        payload = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
                        state.ingest(message.topic.value, payload)
                        if until is not None and until(state):
                            done.set()
            except aiomqtt.MqttError as exc:
                delay = backoff.next_delay()
                state.connection = f"{address.url}: {exc}; retrying in {delay:.1f} s"
                await clock.sleep(delay)

    async def refresh(live: Live) -> None:
        while True:
            live.update(state.render(clock.now()), refresh=True)
            await clock.sleep(refresh_s)

    async def deadline() -> None:
        if duration_s is not None:
            await clock.sleep(duration_s)
            done.set()

    with Live(state.render(clock.now()), console=console, auto_refresh=False) as live:
        tasks = [
            asyncio.create_task(read(), name="monitor-read"),
            asyncio.create_task(refresh(live), name="monitor-refresh"),
            asyncio.create_task(deadline(), name="monitor-deadline"),
        ]
        waiter = asyncio.create_task(done.wait())
        try:
            await asyncio.wait([waiter, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*tasks, waiter):
                task.cancel()
            await asyncio.gather(*tasks, waiter, return_exceptions=True)
        if tasks[0].done() and not tasks[0].cancelled() and tasks[0].exception() is not None:
            raise tasks[0].exception()  # type: ignore[misc]
        live.update(state.render(clock.now()), refresh=True)
    return state
