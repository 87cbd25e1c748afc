"""The station daemon: the composition root of groundlink.

:class:`Daemon` takes a validated :class:`~controller.config.GroundlinkConfig` and a
:class:`~firmware_bridge.clock.Clock` and builds everything from them (no globals, nothing at
import time): device locks, the MQTT publisher (and the embedded broker), the drivers (or the
simulator twins of ``simulated = true`` devices, served over ``loop://``), the catalog, the
predictor, the scheduler and one :class:`~controller.tracking.tracker.AntennaTracker` per
antenna. It runs one :class:`asyncio.TaskGroup` of named tasks::

    mqtt            the publisher (telemetry out, commands in; reconnects on its own)
    antenna-<id>    one supervisor per antenna: runs its scheduled tracks; a fault there is an
                    alarm, a safe position and a restart with backoff, never the daemon's end
    catalog         re-reads the element files every tle_refresh_s; staleness alarms; re-plan
    planner         re-plans on change (catalog, priority, reload) and every replan_period_s
    reload          SIGHUP / reload command: a new config is applied or rejected with an alarm
    health          health, alarms and status on MQTT; systemd watchdog; clock health
    sky             computes the simulated radios' sky ahead of their meter readings

Lifecycle: lock the devices (a second instance on the same devices fails fast) -> ``starting``
-> open devices -> load the catalog -> plan -> ``ready`` -> track. :meth:`Daemon.request_stop`
(SIGTERM/SIGINT) aborts the tracks, stows every antenna, publishes the retained ``offline``
and disconnects within ``grace_period_s``.

Every scheduled track ends in :attr:`Daemon.outcomes` as ``executed`` or ``aborted`` with a
reason (also a ``pass/event`` ``aborted`` and an ``event``), so nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import gc
import math
import os
import re
import socket
import tempfile
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TextIO
from urllib.parse import urlsplit

import structlog

from controller import __version__
from controller.config import (
    AntennaConfig,
    ConfigError,
    GroundlinkConfig,
    RotatorConfig,
    SatelliteConfig,
    load_config,
)
from controller.daemon_config import DaemonConfig, daemon_config_of
from controller.metrics import MetricsServer, StationMetrics
from controller.orbit.catalog import Catalog as OrbitCatalog
from controller.orbit.predictor import Pass, PassPredictor
from controller.orbit.refresh import TleRefresher
from controller.scheduler import (
    Problem,
    Reservation,
    SatellitePointing,
    Schedule,
    ScheduleInfeasible,
    SchedulerInputError,
    Settings,
    Track,
    antennas_from_config,
    build_problem,
    make_schedule,
    replan,
    reservations_from_config,
    satellites_from_config,
)
from controller.telemetry.broker import EmbeddedBroker
from controller.telemetry.commands import (
    AbortCommand,
    CommandRejected,
    CommandResult,
    PauseCommand,
    PointCommand,
    PriorityCommand,
    ReloadCommand,
    ResumeCommand,
    StowCommand,
    TrackCommand,
)
from controller.telemetry.mqtt import LinkState, MqttPublisher
from controller.telemetry.payloads import (
    Alarm,
    Alarms,
    AntennaInfo,
    AntennaState,
    Catalog,
    CatalogEntry,
    ComponentHealth,
    CurrentTrack,
    Event,
    Health,
    Info,
    Link,
    PassCurrent,
    PassEvent,
    Payload,
    Pointing,
    RadioInfo,
    ScheduledTrack,
    Severity,
    Site,
    StationState,
    Status,
)
from controller.telemetry.payloads import Schedule as SchedulePayload
from controller.telemetry.sink import TelemetrySink
from controller.tracking.config import SatelliteLinkConfig, TrackingConfig
from controller.tracking.link import (
    TRUTH_WINDOW_S,
    Emitter,
    LinkBudget,
    LinkSignalModel,
    SkyTruth,
)
from controller.tracking.pointing import travel_time_s
from controller.tracking.tracker import AntennaTracker, TrackJob, TrackReport
from firmware_bridge.clock import Clock, SystemClock
from firmware_bridge.drivers.base import Driver, DriverState
from firmware_bridge.drivers.radio import RadioDriver, create_radio, get_radio_driver
from firmware_bridge.drivers.rotator import (
    Position,
    RotatorCapabilities,
    RotatorDriver,
    create_rotator,
    get_rotator_driver,
)
from firmware_bridge.errors import BridgeError, LimitError
from firmware_bridge.link import LinkState as DeviceLinkState
from firmware_bridge.simulators import create_simulator
from firmware_bridge.simulators.base import SimServer
from firmware_bridge.simulators.rotator import RotatorTwin
from firmware_bridge.transports import LoopRegistry, parse_serial_url, parse_tcp_url

__all__ = [
    "EXIT_CONFIG",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_SOFTWARE",
    "AlarmBook",
    "Daemon",
    "DaemonError",
    "DeviceLocks",
    "StationStats",
    "TrackOutcome",
    "default_run_dir",
    "device_lock_keys",
    "read_clock_offset_s",
    "rotator_capabilities",
    "sd_notify",
]

EXIT_OK: Final = 0
EXIT_SOFTWARE: Final = 70
EXIT_LOCKED: Final = 75  # EX_TEMPFAIL: try again once the other instance is gone
EXIT_CONFIG: Final = 78

_log = structlog.get_logger("controller.daemon")

_PLAN_AHEAD_EXTRA_S: Final = 30.0
"""The tracker plans this long plus the longest slew plus its margin before a track."""
_STOW_POLL_S: Final = 1.0
_WALL_STEP_S: Final = 1.0
"""A wall-clock step at least this large (between two health reports) is an alarm."""
_WALL_STEP_HOLD_S: Final = 600.0
"""The clock-jump alarm stays this long after the last step."""
_FAULT_POLL_S: Final = 0.25
"""How often a track in progress checks its devices (a faulted link is an alarm at once)."""
_DRAIN_REAL_S: Final = 5.0
_EMITTER_SPAN: Final = timedelta(hours=12)
_SKY_AHEAD_S: Final = 300.0
"""How long before a simulated sky's next window it is computed: at 1000x, 0.3 s of real
time for about 0.1 s of work in a worker thread."""
OUTCOMES_KEPT: Final = 20_000
"""Track outcomes kept in memory: ~4 months of a busy two-antenna station (~150/day)."""
ALARMS_KEPT: Final = 2_000
"""Alarms kept in the in-memory history (the log and MQTT carry every one)."""
"""How far ahead the simulated skies are put on the air; they are rebuilt before the span
runs out (see :meth:`Daemon._replan`). The link model samples truth in bounded windows, so
the span costs no memory (a 400-day span once took 24 GB, found by bench/soak.py)."""
_HISTORY: Final = timedelta(hours=6)
"""Finished tracks are kept this long in the job lists (the schedule shows what is ahead)."""


class DaemonError(Exception):
    """The daemon cannot start (or run); ``exit_code`` is what the process should return."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# --------------------------------------------------------------------------- device locks


def default_run_dir(env: Mapping[str, str]) -> Path:
    """Where lock files go: $RUNTIME_DIRECTORY (systemd), $XDG_RUNTIME_DIR/groundlink, /tmp."""
    if env.get("RUNTIME_DIRECTORY"):
        return Path(env["RUNTIME_DIRECTORY"].split(":")[0])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "groundlink"
    return Path(tempfile.gettempdir()) / f"groundlink-{os.getuid()}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "device"


def device_lock_keys(config: GroundlinkConfig) -> dict[str, str]:
    """Lock file name -> what it protects, for every device of ``config``.

    A real device is keyed by its URL without the query (two configs naming the same serial
    port collide); a simulated one by station and device id (two daemons of one simulated
    station would fight over the same MQTT topics).
    """
    keys: dict[str, str] = {}
    devices: list[tuple[str, str, str, bool]] = [
        (f"antenna {a.id} rotator", a.id + "-rotator", a.rotator.url, a.rotator.simulated)
        for a in config.antennas
    ]
    devices += [(f"radio {r.id}", r.id, r.url, r.simulated) for r in config.radios]
    for what, ident, url, simulated in devices:
        if simulated or not url:
            keys[f"sim-{config.station.id}-{_slug(ident)}.lock"] = f"{what} (simulated)"
        else:
            keys[f"dev-{_slug(url.split('?')[0])}.lock"] = f"{what} at {url}"
    return keys


class DeviceLocks:
    """Exclusive ``fcntl`` locks, one file per device, released when the process ends."""

    def __init__(self, run_dir: Path) -> None:
        """Locks under ``run_dir`` (created if missing)."""
        self.run_dir = run_dir
        self._held: list[TextIO] = []

    def acquire(self, keys: Mapping[str, str]) -> None:
        """Take every lock or none; DaemonError (exit 75) names the device and the holder."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DaemonError(
                f"run directory {self.run_dir}: cannot create it ({exc.strerror}); set "
                "[daemon] run_dir or GROUNDLINK_RUN_DIR to a writable directory",
                EXIT_CONFIG,
            ) from None
        for name, what in keys.items():
            path = self.run_dir / name
            handle = path.open("a+", encoding="utf-8")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                self.release()
                raise DaemonError(
                    f"{what} is in use by another groundlink (pid {holder}; lock file {path}); "
                    "stop that instance first, or give this one other devices",
                    EXIT_LOCKED,
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._held.append(handle)

    def release(self) -> None:
        """Drop every lock held."""
        for handle in self._held:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        self._held.clear()


# --------------------------------------------------------------------------- systemd


def sd_notify(message: str, socket_path: str | None) -> bool:
    """Send ``message`` (e.g. ``READY=1``) to systemd's NOTIFY_SOCKET; False if none/failed.

    Why by hand: the protocol is one datagram on a unix socket (``@`` = abstract namespace),
    not worth a dependency.
    """
    if not socket_path:
        return False
    address = "\0" + socket_path[1:] if socket_path.startswith("@") else socket_path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        _log.warning("sd_notify failed", socket=socket_path, error=str(exc))
        return False
    return True


# --------------------------------------------------------------------------- clock health


async def read_clock_offset_s(timeout_s: float = 5.0) -> tuple[float | None, str]:
    """The system clock's offset from chrony (``chronyc -c tracking``), else whether
    timedatectl says it is synchronised; ``(None, why)`` when neither tells an offset."""

    async def run(*argv: str) -> str | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
        except OSError:
            return None
        try:
            # A real-time bound: these are real processes, whatever clock the daemon runs on.
            out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return None
        return out.decode(errors="replace") if proc.returncode == 0 else None

    text = await run("chronyc", "-c", "tracking")
    if text:
        fields = text.strip().split(",")
        with contextlib.suppress(IndexError, ValueError):
            return float(fields[4]), "chrony"
    text = await run("timedatectl", "show", "-p", "NTPSynchronized", "--value")
    if text is not None:
        synced = text.strip() == "yes"
        return (None, "timedatectl: synchronized" if synced else "timedatectl: NOT synchronized")
    return None, "no chronyc or timedatectl: time sync state unknown"


# --------------------------------------------------------------------------- alarms, stats


class AlarmBook:
    """Active alarms by id; every change calls ``on_change`` (which publishes them)."""

    def __init__(self, clock: Clock, on_change: Callable[[], None]) -> None:
        """An empty book."""
        self._clock = clock
        self._on_change = on_change
        self.active: dict[str, Alarm] = {}
        self.history: deque[Alarm] = deque(maxlen=ALARMS_KEPT)
        """The most recent alarms raised (a daemon runs for months: bounded)."""

    def raise_(
        self, alarm_id: str, severity: Severity, message: str, source: str | None = None
    ) -> None:
        """Raise (or update) an alarm; unchanged alarms are not re-published."""
        old = self.active.get(alarm_id)
        if old is not None and old.severity == severity and old.message == message[:500]:
            return
        alarm = Alarm(
            id=alarm_id,
            severity=severity,
            since=old.since if old is not None else self._clock.now(),
            message=message[:500],
            source=source,
        )
        self.active[alarm_id] = alarm
        if old is None:
            self.history.append(alarm)
            _log.warning("alarm raised", alarm=alarm_id, severity=severity, message=message)
        self._on_change()

    def clear(self, alarm_id: str) -> None:
        """Clear an alarm if active."""
        if self.active.pop(alarm_id, None) is not None:
            _log.info("alarm cleared", alarm=alarm_id)
            self._on_change()

    def clear_prefix(self, prefix: str) -> None:
        """Clear every alarm whose id starts with ``prefix``."""
        for alarm_id in [a for a in self.active if a.startswith(prefix)]:
            self.clear(alarm_id)

    def payload(self) -> Alarms:
        """The ``alarms`` message."""
        return Alarms(alarms=sorted(self.active.values(), key=lambda a: a.id))


@dataclass(frozen=True)
class TrackOutcome:
    """How one scheduled (or commanded) track ended."""

    antenna: str
    norad_id: int
    name: str
    start: datetime
    end: datetime
    status: Literal["executed", "aborted"]
    reason: str | None = None
    rotator_commands: int = 0
    frequency_commands: int = 0


@dataclass
class StationStats:
    """What went out on the telemetry bus, summarised (for the demo summary and tests)."""

    messages: Counter[str] = field(default_factory=Counter)
    pointing_samples: int = 0
    pointing_sq_sum: float = 0.0
    pointing_max_deg: float = 0.0
    link_samples: int = 0
    link_locked: int = 0
    beam_half_deg: dict[str, float] = field(default_factory=dict)
    """Half the beamwidth per antenna: a tracking sample within it counts as in the beam."""
    in_beam: int = 0
    pass_events: Counter[str] = field(default_factory=Counter)

    def send(self, payload: Payload) -> None:
        """Count ``payload`` (a TelemetrySink)."""
        self.messages[payload.TYPE] += 1
        if isinstance(payload, Pointing):
            if payload.mode == "tracking" and payload.error_deg is not None:
                self.pointing_samples += 1
                self.pointing_sq_sum += payload.error_deg**2
                self.pointing_max_deg = max(self.pointing_max_deg, payload.error_deg)
                half = self.beam_half_deg.get(payload.antenna)
                if half is not None and payload.error_deg <= half:
                    self.in_beam += 1
        elif isinstance(payload, Link):
            if payload.snr_predicted_db is not None:
                self.link_samples += 1
                self.link_locked += int(payload.locked)
        elif isinstance(payload, PassEvent):
            self.pass_events[payload.event] += 1

    @property
    def pointing_rms_deg(self) -> float | None:
        """RMS pointing error while tracking (None: no samples)."""
        if not self.pointing_samples:
            return None
        return math.sqrt(self.pointing_sq_sum / self.pointing_samples)

    @property
    def beam_availability(self) -> float | None:
        """Fraction of tracking samples with the satellite inside the half-power beam."""
        return self.in_beam / self.pointing_samples if self.pointing_samples else None

    @property
    def link_availability(self) -> float | None:
        """Fraction of link samples (with a budget) that were locked."""
        return self.link_locked / self.link_samples if self.link_samples else None


class _Tee:
    """One sink feeding several."""

    def __init__(self, sinks: Iterable[TelemetrySink]) -> None:
        self._sinks = list(sinks)

    def send(self, payload: Payload) -> None:
        for sink in self._sinks:
            sink.send(payload)


class _SimulatedSky:
    """The S-meter signal of a simulated radio: the catalog's satellites through the
    rotator twin's true direction (rebuilt when the catalog changes)."""

    def __init__(self) -> None:
        self.model: LinkSignalModel | None = None
        self.noise_db = -54.0  # S0 on the usual 6 dB/S-unit scale: nothing on the air

    def signal_db(self, now: datetime, rx_freq_hz: int) -> float:
        if self.model is None:
            return self.noise_db
        return self.model.signal_db(now, rx_freq_hz)


# --------------------------------------------------------------------------- antennas


def _url_problem(url: str, where: str) -> str | None:
    """Why a real device's URL cannot work (None: it can), checked before anything opens."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    try:
        if scheme == "serial":
            parse_serial_url(url)
        elif scheme == "tcp":
            parse_tcp_url(url)
        else:
            shown = f"scheme {scheme!r}" if scheme else "no scheme"
            return (
                f"{where}.url = {url!r}: {shown} is not a device URL; use serial:///dev/... "
                "(e.g. serial:///dev/serial/by-id/...?baud=9600) or tcp://host:port"
            )
    except ValueError as exc:
        return f"{where}.url = {url!r}: {exc}"
    return None


def config_device_problems(config: GroundlinkConfig) -> list[str]:
    """Every reason the devices of ``config`` cannot be driven (drivers, limits, URLs)."""
    problems: list[str] = []
    for index, acfg in enumerate(config.antennas):
        where = f"antennas[{index}].rotator"
        try:
            rotator_capabilities(acfg.rotator, where)
        except DaemonError as exc:
            problems.append(exc.message)
        if not acfg.rotator.simulated:
            if not acfg.rotator.url:
                problems.append(f"{where}.url is empty and simulated is false: give the URL")
            elif (why := _url_problem(acfg.rotator.url, where)) is not None:
                problems.append(why)
    for index, rcfg in enumerate(config.radios):
        where = f"radios[{index}]"
        try:
            get_radio_driver(rcfg.driver)
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"{where}.driver = {rcfg.driver!r}: {exc}")
        if not rcfg.simulated:
            if not rcfg.url:
                problems.append(f"{where}.url is empty and simulated is false: give the URL")
            elif (why := _url_problem(rcfg.url, where)) is not None:
                problems.append(why)
    return problems


def rotator_capabilities(rot: RotatorConfig, where: str) -> RotatorCapabilities:
    """The config's limits, rates and park on top of the driver's (resolution, readback)."""
    try:
        cls = get_rotator_driver(rot.driver)
    except (KeyError, ValueError, TypeError) as exc:
        raise DaemonError(f"{where}.driver = {rot.driver!r}: {exc}", EXIT_CONFIG) from None
    try:
        return cls.default_capabilities.replace(
            az_min_deg=rot.az_min_deg,
            az_max_deg=rot.az_max_deg,
            el_min_deg=rot.el_min_deg,
            el_max_deg=rot.el_max_deg,
            az_rate_deg_s=rot.slew_az_deg_s,
            el_rate_deg_s=rot.slew_el_deg_s,
            az_accel_deg_s2=rot.accel_az_deg_s2,
            el_accel_deg_s2=rot.accel_el_deg_s2,
            park_az_deg=rot.park_az_deg,
            park_el_deg=rot.park_el_deg,
        )
    except ValueError as exc:
        raise DaemonError(f"{where}: {exc}", EXIT_CONFIG) from None


@dataclass
class _Antenna:
    """Everything the daemon keeps about one antenna."""

    config: AntennaConfig
    rotator: RotatorDriver
    radio: RadioDriver | None
    radio_id: str | None
    sky: _SimulatedSky | None
    twin: RotatorTwin | None
    tracker: AntennaTracker | None = None
    jobs: list[TrackJob] = field(default_factory=list)
    done: set[tuple[int, datetime]] = field(default_factory=set)
    hold: str | None = None  # "stowed" / "manual": scheduled tracks are skipped
    manual_job: TrackJob | None = None
    rejoin_job: TrackJob | None = None
    """A track cut short by a lost rotator link: resumed once the link is back, until LOS."""
    current: TrackJob | None = None
    track_task: asyncio.Task[TrackReport] | None = None
    abort_reason: str | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    health: Literal["ok", "degraded", "fault"] = "ok"
    last_error: str | None = None

    @property
    def id(self) -> str:
        return self.config.id

    def require_tracker(self) -> AntennaTracker:
        assert self.tracker is not None, "trackers are built before any task runs"
        return self.tracker


def _job_key(job: TrackJob) -> tuple[int, datetime]:
    return job.pass_.norad_id, job.aos


# --------------------------------------------------------------------------- the daemon


class Daemon:
    """The station; see the module docstring. Implements the MQTT CommandHandler."""

    def __init__(
        self,
        config: GroundlinkConfig,
        *,
        clock: Clock,
        config_path: Path | None = None,
        settings: DaemonConfig | None = None,
        broker_url: str | None = None,
        run_dir: Path | None = None,
        notify_socket: str | None = None,
        on_ready: Callable[[], None] | None = None,
        extra_sinks: Sequence[TelemetrySink] = (),
        freeze_heap: bool = False,
    ) -> None:
        """Build nothing yet: :meth:`run` does it all, in order.

        ``freeze_heap``: the daemon owns its process (``groundlink run`` and ``demo``), so
        it may keep what it builds for good out of the cyclic garbage collector's passes
        (:meth:`_freeze_heap`); a process running several daemons (tests) leaves it off.
        """
        self.config = config
        self.clock = clock
        self.config_path = config_path
        self.settings = settings if settings is not None else daemon_config_of(config)
        self._broker_url = broker_url
        self.run_dir = run_dir or self.settings.run_dir or default_run_dir(os.environ)
        self._notify_socket = notify_socket
        self._on_ready = on_ready
        self._freeze = freeze_heap
        self.stats = StationStats(
            beam_half_deg={a.id: a.beamwidth_deg / 2 for a in config.antennas}
        )
        self._extra_sinks = list(extra_sinks)
        self.sim_servers: dict[str, SimServer] = {}
        """The simulated devices' servers by device name (``<antenna>-rotator``, radio id):
        fault injection (tests, the soak) unplugs and replugs a device through them."""
        self.alarms = AlarmBook(clock, self._alarms_changed)
        self.outcomes: deque[TrackOutcome] = deque(maxlen=OUTCOMES_KEPT)
        """The most recent track outcomes (bounded: the daemon runs for months)."""
        self.state: StationState = "starting"
        self.paused = False
        self.schedule: Schedule | None = None
        self.catalog: OrbitCatalog | None = None
        self.predictor: PassPredictor | None = None
        self.publisher: MqttPublisher | None = None
        self.antennas: dict[str, _Antenna] = {}
        self.commands_applied: Counter[str] = Counter()
        self.plans = 0
        self._priorities: dict[int, float] = {}
        self._sink: TelemetrySink = self.stats
        self._stop = asyncio.Event()
        self._stop_reason = "stop requested"
        self._reload_requested = asyncio.Event()
        self._replan_requested = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._catalog_fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._locks = DeviceLocks(self.run_dir)
        self._clock_note = "not checked"
        self._transmit_allowed = True
        self._finished = asyncio.Event()
        self._wall_offset_s: float | None = None
        self._wall_step_at: float | None = None
        self._skies_until: datetime | None = None
        # The simulated radios' shared true sky and the start of its first window.
        self._truth: SkyTruth | None = None
        self._sky_origin: datetime | None = None
        self._skies_changed = asyncio.Event()
        # The element files plus the cached copies of the [catalog] urls (nothing is
        # fetched before run()).
        self.refresher = TleRefresher(config.catalog, clock=clock)
        self.metrics = StationMetrics(config.station.id) if self.settings.metrics.enabled else None
        self.metrics_server: MetricsServer | None = None

    @property
    def sky_truth(self) -> SkyTruth | None:
        """The simulated radios' shared true sky (None before the trackers are built)."""
        return self._truth

    # -- public control ---------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        """Begin the orderly shutdown (SIGTERM/SIGINT); safe to call from a signal handler."""
        self._stop_reason = reason
        self._stop.set()

    def request_reload(self) -> None:
        """Reload the config and the element files (SIGHUP)."""
        self._reload_requested.set()

    @property
    def finished(self) -> bool:
        """True once :meth:`run` has returned."""
        return self._finished.is_set()

    @property
    def transmit_allowed(self) -> bool:
        """False while a clock alarm forbids transmitting (``refuse_transmit``)."""
        return self._transmit_allowed

    # -- run ----------------------------------------------------------------------------
    async def run(self) -> int:
        """Run until :meth:`request_stop`; DaemonError if it cannot start."""
        try:
            problems = config_device_problems(self.config)
            if problems:
                # Before any lock, device or broker connection: 78 with every reason.
                raise DaemonError("; ".join(problems), EXIT_CONFIG)
            self._locks.acquire(device_lock_keys(self.config))
            try:
                return await self._run()
            finally:
                self._locks.release()
        finally:
            self._finished.set()

    async def _run(self) -> int:
        cfg = self.config
        async with contextlib.AsyncExitStack() as stack:
            mqtt = cfg.mqtt
            if self._broker_url is not None:
                mqtt = mqtt.model_copy(update={"broker": self._broker_url, "embedded": False})
            elif mqtt.embedded:
                broker = EmbeddedBroker.from_config(mqtt)
                await stack.enter_async_context(broker)
                mqtt = mqtt.model_copy(update={"broker": broker.url})
            publisher = MqttPublisher(mqtt, cfg.station.id, self.clock, handler=self)
            self.publisher = publisher
            sinks: list[TelemetrySink] = [self.stats, publisher, *self._extra_sinks]
            if self.metrics is not None:
                sinks.append(self.metrics.sink())
                self._serve_metrics(stack)
            self._sink = _Tee(sinks)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(publisher.run(), name="mqtt")
                self._set_state("starting", "opening devices")
                self._send(self._info())
                await self._open_devices(stack)
                await self._refresh_sources()
                self._load_catalog()
                self._build_trackers()
                await self._replan("start")
                for ant in self.antennas.values():
                    self._spawn(tg, f"antenna-{ant.id}", self._supervise(ant))
                self._spawn(tg, "catalog", self._catalog_task())
                self._spawn(tg, "planner", self._planner_task())
                self._spawn(tg, "reload", self._reload_task())
                self._spawn(tg, "health", self._health_task())
                self._spawn(tg, "sky", self._sky_task())
                self._freeze_heap()
                self._set_state("ready", f"{len(self.antennas)} antennas")
                sd_notify("READY=1\nSTATUS=tracking", self._notify_socket)
                if self._on_ready is not None:
                    self._on_ready()
                await self._stop.wait()
                await self._race(self._shutdown(), self.clock.sleep(self.settings.grace_period_s))
                for task in self._tasks.values():
                    task.cancel()
                if publisher.link_state is not LinkState.CLOSED:
                    await publisher.close(timeout_s=1.0)
        _log.info("daemon stopped", reason=self._stop_reason)
        return EXIT_OK

    def _freeze_heap(self) -> None:
        """Collect, then keep everything alive now out of later collections (if enabled).

        The catalog, the predictor, the config models and the imported modules are about
        160,000 objects that live as long as the daemon. Every full collection walked them
        all: 25-130 ms with the loop stopped, i.e. 3-15 s of virtual time at the demo's
        speed in which no antenna's loop ran, and a late 10 Hz tick at real time
        (measured). Frozen, a full collection walks only what came since (5 ms). Called
        again after a reload replaced the catalog: unfrozen first, so cycles the reload
        let go of are collected, not kept for good.
        """
        if not self._freeze:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _serve_metrics(self, stack: contextlib.AsyncExitStack) -> None:
        """Prometheus on its loopback port; a taken port is an alarm, not a dead station."""
        assert self.metrics is not None
        where = f"{self.settings.metrics.host}:{self.settings.metrics.port}"
        try:
            self.metrics_server = self.metrics.serve(self.settings.metrics)
        except OSError as exc:
            self.alarms.raise_(
                "metrics", "warning", f"daemon.metrics: cannot serve on {where}: {exc}", "metrics"
            )
            return
        stack.callback(self.metrics_server.close)
        _log.info("metrics served", host=self.metrics_server.host, port=self.metrics_server.port)

    def _spawn(self, tg: asyncio.TaskGroup, name: str, coro: Awaitable[None]) -> None:
        self._tasks[name] = tg.create_task(_as_coro(coro), name=name)

    async def _race(self, first: Awaitable[Any], second: Awaitable[Any]) -> bool:
        """Wait for whichever ends first; True if ``first`` did. The other is cancelled."""
        a = asyncio.ensure_future(first)
        b = asyncio.ensure_future(second)
        try:
            await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (a, b):
                if not t.done():
                    t.cancel()
            await asyncio.gather(a, b, return_exceptions=True)
        if not a.done() or a.cancelled():
            return False
        error = a.exception()
        if error is not None:
            raise error
        return True

    # -- telemetry helpers ----------------------------------------------------------------
    def _send(self, payload: Payload) -> None:
        self._sink.send(payload)

    def _set_state(self, state: StationState, detail: str | None = None) -> None:
        if state == self.state and state not in ("starting",):
            return
        self.state = state
        self._send(Status(state=state, detail=detail))

    def _event(self, kind: str, message: str, severity: Severity = "info", **details: Any) -> None:
        clean = {k: v for k, v in details.items() if isinstance(v, str | int | float | bool)}
        self._send(Event(kind=kind, severity=severity, message=message[:500], details=clean))

    def _alarms_changed(self) -> None:
        self._send(self.alarms.payload())

    def _info(self) -> Info:
        cfg = self.config
        return Info(
            version=__version__,
            station_id=cfg.station.id,
            name=cfg.station.name,
            site=Site(
                lat_deg=cfg.station.site.lat_deg,
                lon_deg=cfg.station.site.lon_deg,
                alt_m=cfg.station.site.alt_m,
            ),
            antennas=[
                AntennaInfo(
                    id=a.id,
                    rotator=a.rotator.driver,
                    beamwidth_deg=a.beamwidth_deg,
                    az_min_deg=a.rotator.az_min_deg,
                    az_max_deg=a.rotator.az_max_deg,
                    el_min_deg=a.rotator.el_min_deg,
                    el_max_deg=a.rotator.el_max_deg,
                )
                for a in cfg.antennas
            ],
            radios=[RadioInfo(id=r.id, model=r.driver) for r in cfg.radios],
        )

    # -- devices ----------------------------------------------------------------------
    async def _open_devices(self, stack: contextlib.AsyncExitStack) -> None:
        cfg = self.config
        registry = LoopRegistry(self.clock)
        latency = self.settings.twin_latency_s
        for index, acfg in enumerate(cfg.antennas):
            where = f"antennas[{index}].rotator"
            rot = acfg.rotator
            caps = rotator_capabilities(rot, where)
            cls = get_rotator_driver(rot.driver)
            url = rot.url
            twin: RotatorTwin | None = None
            try:
                if rot.simulated:
                    made = create_simulator(
                        "rotator",
                        cls.twin,
                        clock=self.clock,
                        capabilities=caps,
                        latency_s=latency,
                        start=caps.park,
                    )
                    assert isinstance(made, RotatorTwin)
                    twin = made
                    server = await twin.serve_loop(registry, f"{acfg.id}-rotator")
                    stack.push_async_callback(server.close)
                    self.sim_servers[f"{acfg.id}-rotator"] = server
                    url = server.url
                elif not url:
                    raise DaemonError(
                        f"{where}.url is empty and simulated is false: give the device URL "
                        "(e.g. serial:///dev/serial/by-id/...?baud=9600) or simulated = true",
                        EXIT_CONFIG,
                    )
                rotator = create_rotator(
                    rot.driver,
                    url,
                    clock=self.clock,
                    loop_registry=registry,
                    capabilities=caps,
                    device_name=f"{acfg.id}-rotator",
                )
            except (ValueError, TypeError) as exc:
                raise DaemonError(f"{where}: {exc}", EXIT_CONFIG) from None
            await rotator.open()
            stack.push_async_callback(rotator.close)
            radio, radio_id, sky = await self._open_radio(acfg, twin, registry, stack)
            self.antennas[acfg.id] = _Antenna(acfg, rotator, radio, radio_id, sky, twin)
            if rotator.state is DriverState.FAULTED:
                self._antenna_fault(self.antennas[acfg.id], "rotator not answering at start")

    async def _open_radio(
        self,
        acfg: AntennaConfig,
        twin: RotatorTwin | None,
        registry: LoopRegistry,
        stack: contextlib.AsyncExitStack,
    ) -> tuple[RadioDriver | None, str | None, _SimulatedSky | None]:
        for index, rcfg in enumerate(self.config.radios):
            if rcfg.antenna != acfg.id:
                continue
            where = f"radios[{index}]"
            try:
                cls = get_radio_driver(rcfg.driver)
            except (KeyError, ValueError, TypeError) as exc:
                raise DaemonError(f"{where}.driver = {rcfg.driver!r}: {exc}", EXIT_CONFIG) from None
            url = rcfg.url
            sky: _SimulatedSky | None = None
            try:
                if rcfg.simulated:
                    sky = _SimulatedSky() if twin is not None else None
                    options: dict[str, Any] = {"latency_s": self.settings.twin_latency_s}
                    if sky is not None:
                        options["signal"] = sky
                    rtwin = create_simulator("radio", cls.twin, clock=self.clock, **options)
                    server = await rtwin.serve_loop(registry, f"{rcfg.id}-radio")
                    stack.push_async_callback(server.close)
                    self.sim_servers[rcfg.id] = server
                    url = server.url
                elif not url:
                    raise DaemonError(
                        f"{where}.url is empty and simulated is false: give the device URL "
                        "or simulated = true",
                        EXIT_CONFIG,
                    )
                radio = create_radio(
                    rcfg.driver, url, clock=self.clock, loop_registry=registry, device_name=rcfg.id
                )
            except (ValueError, TypeError) as exc:
                raise DaemonError(f"{where}: {exc}", EXIT_CONFIG) from None
            await radio.open()
            stack.push_async_callback(radio.close)
            return radio, rcfg.id, sky
        return None, None, None

    def _tracking_config(self) -> TrackingConfig:
        base = self.settings.tracking
        known = {s.norad_id for s in base.satellites}
        extra = [
            SatelliteLinkConfig(
                norad_id=s.norad_id, downlink_hz=s.downlink_hz, uplink_hz=s.uplink_hz
            )
            for s in self.config.satellites
            if s.norad_id not in known and (s.downlink_hz or s.uplink_hz)
        ]
        return base.model_copy(update={"satellites": [*base.satellites, *extra]})

    def _build_trackers(self) -> None:
        assert self.predictor is not None
        tracking = self._tracking_config()
        station = self.config.station.station()
        for ant in self.antennas.values():
            ant.tracker = AntennaTracker(
                antenna_id=ant.id,
                rotator=ant.rotator,
                clock=self.clock,
                predictor=self.predictor,
                station=station,
                beamwidth_deg=ant.config.beamwidth_deg,
                radio=ant.radio,
                radio_id=ant.radio_id,
                sink=self._sink,
                config=tracking,
            )
        self._update_skies()

    def _update_skies(self) -> None:
        """Put the configured satellites' downlinks on the air of the simulated radios."""
        if self.predictor is None:
            return
        tracking = self._tracking_config()
        station = self.config.station.station()
        now = self.clock.now()
        # Long enough to reach past the next periodic re-plan, which renews it.
        span = max(_EMITTER_SPAN, 2 * timedelta(seconds=self.settings.replan_period_s))
        self._skies_until = now + span
        origin = now - timedelta(hours=1)
        # One true sky for every simulated radio of the station: propagated once for all.
        truth = SkyTruth(self.predictor, station)
        self._truth, self._sky_origin = truth, origin
        self._skies_changed.set()
        for ant in self.antennas.values():
            if ant.sky is None or ant.twin is None:
                continue
            twin = ant.twin

            def direction(t: RotatorTwin = twin) -> tuple[float, float]:
                where = t.true_position()
                return where.az_deg, where.el_deg

            emitters = []
            link = tracking.antenna(ant.id)
            for sat in tracking.satellites:
                if sat.downlink_hz is None or self.catalog is None:
                    continue
                if sat.norad_id not in {e.norad_id for e in self.catalog.entries}:
                    continue
                budget = LinkBudget.for_link(sat, link, ant.config.beamwidth_deg)
                emitters.append(
                    Emitter(
                        norad_id=sat.norad_id,
                        transmit_hz=sat.downlink_hz + sat.downlink_offset_hz,
                        budget=budget,
                        start=origin,
                        end=now + span,
                    )
                )
            ant.sky.model = LinkSignalModel(
                self.predictor, station, direction, emitters, truth=truth
            )

    async def _sky_task(self) -> None:
        """Compute each window of the simulated sky before the radios read it.

        A radio reading the S-meter at a window's start would otherwise propagate the
        window for every satellite on the air: 50-70 ms in which, at 150x, 10 s of virtual
        time pass with no control loop running. Computed ahead (in a worker thread while
        time flows), the reading finds it ready. The values are the same either way.
        """
        while True:
            truth, origin = self._truth, self._sky_origin
            if truth is None or origin is None:
                await self._skies_changed.wait()
                self._skies_changed.clear()
                continue
            now = self.clock.now()
            index = math.floor((now - origin).total_seconds() / TRUTH_WINDOW_S)
            current = origin + timedelta(seconds=index * TRUTH_WINDOW_S)
            ahead = current + timedelta(seconds=TRUTH_WINDOW_S)
            if not truth.has_window(current):  # a new sky's first window
                truth.install(
                    await self.clock.compute(truth.compute_windows, truth.watched(), current)
                )
            elif not truth.has_window(ahead):
                early = ahead - timedelta(seconds=_SKY_AHEAD_S)
                if now < early:
                    await self.clock.sleep_until(early)
                    continue  # the sky may have changed meanwhile
                truth.install(
                    await self.clock.compute(truth.compute_windows, truth.watched(), ahead)
                )
            else:
                await self.clock.sleep_until(ahead)

    # -- catalog ----------------------------------------------------------------------
    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        for path in self.refresher.catalog_paths():
            try:
                st = Path(path).stat()
                out.append((str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(path), -1, -1))
        return tuple(out)

    def _load_catalog(self) -> None:
        cfg = self.config
        now = self.clock.now()
        paths = self.refresher.catalog_paths()
        catalog = OrbitCatalog.from_files(
            list(paths), now=now, stale_after_days=cfg.catalog.stale_after_days
        )
        self._catalog_fingerprint = self._fingerprint()
        if len(catalog.entries) == 0:
            self.alarms.raise_(
                "catalog-empty",
                "critical",
                "no usable satellites in the element files "
                + (", ".join(str(p) for p in paths) or "(none yet: no url fetched)"),
                "catalog",
            )
            if self.catalog is None:
                raise DaemonError(
                    "catalog: no usable satellites in tle_files or the fetched urls; "
                    "nothing to track",
                    EXIT_CONFIG,
                )
            return  # keep the previous catalog
        self.alarms.clear("catalog-empty")
        if catalog.errors:
            first = catalog.errors[0]
            self.alarms.raise_(
                "catalog-errors",
                "warning",
                f"{len(catalog.errors)} element sets dropped; first: {first.source}"
                f"{f':{first.line}' if first.line else ''}: {first.reason}",
                "catalog",
            )
        else:
            self.alarms.clear("catalog-errors")
        self.catalog = catalog
        self.predictor = PassPredictor(list(catalog.entries))
        for ant in self.antennas.values():
            if ant.tracker is not None:
                ant.tracker.predictor = self.predictor
        self._publish_catalog()
        _log.info("catalog loaded", satellites=len(catalog.entries), problems=len(catalog.problems))

    def _publish_catalog(self) -> None:
        if self.catalog is None:
            return
        now = self.clock.now()
        stale_days = self.config.catalog.stale_after_days
        entries = [
            CatalogEntry(
                norad_id=e.norad_id,
                name=e.name or str(e.norad_id),
                tle_epoch=e.epoch,
                age_days=e.age_days(now),
                stale=e.age_days(now) > stale_days,
            )
            for e in self.catalog.entries
        ]
        stale = [e for e in entries if e.stale]
        if stale:
            oldest = max(stale, key=lambda e: e.age_days)
            self.alarms.raise_(
                "tle-stale",
                "warning",
                f"{len(stale)} of {len(entries)} element sets older than {stale_days:g} days "
                f"(oldest: NORAD {oldest.norad_id}, {oldest.age_days:.1f} days); refresh the "
                "element files",
                "catalog",
            )
        else:
            self.alarms.clear("tle-stale")
        self._send(Catalog(stale_after_days=stale_days, satellites=entries))

    async def _refresh_sources(self) -> None:
        """Fetch the ``[catalog] urls`` into the cache; alarms for failing or stale sources."""
        if not self.config.catalog.urls:
            return
        try:
            results = await self.refresher.refresh()
        except Exception as exc:  # a failed fetch keeps the last good copies
            _log.exception("element set fetch failed")
            self.alarms.raise_("catalog-fetch", "warning", f"fetch failed: {exc}", "catalog")
            return
        self.alarms.clear("catalog-fetch")
        now = self.clock.now()
        for result in results:
            if result.error:
                _log.warning("element set source failed", error=result.error)
        for status in self.refresher.status():
            if self.metrics is not None:
                self.metrics.set_tle_source(
                    status.url, status.fetch_age_s(now), failed=status.last_error is not None
                )
        for alarm_id, alarm in self.refresher.alarms(now).items():
            if alarm is None:
                self.alarms.clear(alarm_id)
            else:
                self.alarms.raise_(alarm_id, alarm.severity, alarm.message, "catalog")

    async def _catalog_task(self) -> None:
        while True:
            await self.clock.sleep(self.settings.tle_refresh_s)
            try:
                await self._refresh_sources()
                if self._fingerprint() != self._catalog_fingerprint:
                    _log.info("element files changed; reloading")
                    self._load_catalog()
                    self._update_skies()
                    self._freeze_heap()
                    self._replan_requested.set()
                else:
                    self._publish_catalog()  # ages move on: staleness alarms
            except Exception as exc:  # a bad refresh must not end the daemon
                _log.exception("catalog refresh failed")
                self.alarms.raise_(
                    "catalog-refresh", "warning", f"refresh failed: {exc}", "catalog"
                )

    # -- planning ----------------------------------------------------------------------
    def _plan_lead_s(self) -> float:
        """How long before a track's start its tracker commits to it (plans and slews)."""
        lead = 0.0
        margin = self.settings.tracking.pointing.preposition_margin_s
        for ant in self.antennas.values():
            caps = ant.rotator.capabilities
            worst = travel_time_s(
                caps,
                Position(caps.az_min_deg, caps.el_min_deg),
                Position(caps.az_max_deg, caps.el_max_deg),
            )
            lead = max(lead, worst + margin + _PLAN_AHEAD_EXTRA_S)
        return lead

    def _catalog_ids(self) -> set[int]:
        return {e.norad_id for e in self.catalog.entries} if self.catalog else set()

    def _satellite_configs(self) -> list[SatelliteConfig]:
        configured = {s.norad_id: s for s in self.config.satellites}
        for norad_id, weight in self._priorities.items():
            base = configured.get(norad_id) or SatelliteConfig(
                norad_id=norad_id, weight=self.config.scheduler.default_weight
            )
            configured[norad_id] = base.model_copy(update={"weight": weight})
        return list(configured.values())

    def _compute_plan(self, now: datetime) -> tuple[Schedule, dict[tuple[int, datetime], Pass]]:
        """Predict and schedule from ``now`` (pure CPU work; may run in a thread)."""
        cfg = self.config
        assert self.catalog is not None
        assert self.predictor is not None
        sched_cfg = cfg.scheduler
        end = now + timedelta(hours=sched_cfg.horizon_h)
        station = cfg.station.station()
        result = self.predictor.passes(station, now, end)
        passes = {(p.norad_id, p.aos): p for p in result.passes}
        source = str(self.config_path or "config")
        antennas = antennas_from_config(cfg.station.id, cfg.antennas, source=source)
        satellites = satellites_from_config(
            self.catalog.entries,
            # A configured satellite whose elements were dropped (bad checksum, decayed) is
            # reported by _replan; it must not stop the plan of all the others.
            [s for s in self._satellite_configs() if s.norad_id in self._catalog_ids()],
            default_weight=sched_cfg.default_weight,
            source=source,
        )
        pointing = SatellitePointing(list(self.catalog.entries), now)
        reserved = reservations_from_config(cfg.station.id, sched_cfg.reservations)

        def build(start: datetime, kept: Sequence[Reservation]) -> Problem:
            return build_problem(
                start=start,
                end=end,
                settings=Settings.from_config(sched_cfg),
                antennas=antennas,
                satellites=satellites,
                stations={cfg.station.id: station},
                passes={cfg.station.id: result.passes},
                pointing=pointing,
                reservations=[*reserved, *kept],
            )

        budget = SystemClock()  # the optimiser's budget is real CPU time, whatever the clock
        stop_at = budget.monotonic() + self.settings.plan_budget_s

        def deadline() -> bool:
            return budget.monotonic() > stop_at

        if self.schedule is None:
            schedule = make_schedule(build(now, []), policy=sched_cfg.policy, deadline=deadline)
        else:
            # A satellite gone from the catalog cannot be kept (the daemon reports its jobs).
            known = {e.norad_id for e in self.catalog.entries}
            previous = dataclasses.replace(
                self.schedule, tracks=tuple(t for t in self.schedule.tracks if t.norad_id in known)
            )
            schedule = replan(previous, now, build, policy=sched_cfg.policy, deadline=deadline)
        return schedule, passes

    async def _replan(self, why: str) -> None:
        if self.catalog is None or self.predictor is None:
            return
        committed = self.clock.now() + timedelta(seconds=self._plan_lead_s())
        try:
            # Off the loop while time flows: the trackers' loops keep running meanwhile.
            schedule, passes = await self.clock.compute(self._compute_plan, committed)
        except (SchedulerInputError, ScheduleInfeasible, ValueError) as exc:
            self.alarms.raise_("plan-failed", "critical", f"planning failed: {exc}", "planner")
            return
        self.alarms.clear("plan-failed")
        ahead = timedelta(seconds=self.settings.replan_period_s) + timedelta(hours=1)
        if self._skies_until is not None and self.clock.now() + ahead >= self._skies_until:
            self._update_skies()  # before the simulated skies run out (periodic re-plans)
        missing = sorted(s.norad_id for s in self.config.satellites) if self.catalog else []
        missing = [n for n in missing if n not in self._catalog_ids()]
        if missing:
            self.alarms.raise_(
                "satellites-missing",
                "warning",
                f"configured satellites not in the catalog, not scheduled: NORAD {missing}; "
                "check their element sets (see catalog-errors)",
                "planner",
            )
        else:
            self.alarms.clear("satellites-missing")
        self.schedule = schedule
        self.plans += 1
        forget = self.clock.now() - _HISTORY
        known = {e.norad_id for e in self.catalog.entries}
        tracking = self._tracking_config()  # a copy of the settings: once, not per track
        for ant in self.antennas.values():
            # Tracks starting before ``committed`` stay as they were: their trackers may be
            # planning or slewing already. The new plan takes over from there. Old finished
            # ones are forgotten so that months of running stay bounded.
            kept = [j for j in ant.jobs if j.aos < committed and j.los > forget]
            for job in [j for j in kept if j.pass_.norad_id not in known]:
                if job is not ant.current and _job_key(job) not in ant.done:
                    self._skip(ant, job, "satellite no longer in the catalog")
                    kept.remove(job)
            ant.done = {k for k in ant.done if k[1] > forget - _HISTORY}
            # Tracks kept by the re-plan are under way: their jobs are in ``kept`` already.
            new = [
                self._job(t, passes, tracking)
                for t in schedule.tracks
                if t.antenna_id == ant.id and t.start >= committed and t.kind != "kept"
            ]
            ant.jobs = sorted([*kept, *(j for j in new if j is not None)], key=lambda j: j.aos)
            ant.wake.set()
        for warning in schedule.warnings:
            _log.warning("schedule warning", warning=warning)
        self._publish_schedule()
        _log.info("planned", why=why, tracks=len(schedule.tracks), policy=schedule.policy)

    def _job(
        self,
        track: Track,
        passes: Mapping[tuple[int, datetime], Pass],
        tracking: TrackingConfig,
    ) -> TrackJob | None:
        found = passes.get((track.norad_id, track.pass_aos))
        if found is None:
            near = [
                p
                for (norad, aos), p in passes.items()
                if norad == track.norad_id and abs((aos - track.pass_aos).total_seconds()) < 2
            ]
            if not near:
                _log.error("scheduled track has no pass", norad_id=track.norad_id)
                return None
            found = near[0]
        aos = max(track.start, found.aos)
        los = min(track.end, found.los)
        tca = min(max(found.tca, aos), los)
        # The tracker tracks its pass from AOS to LOS: give it the scheduled part only, so
        # it never runs into the antenna's next track.
        part = dataclasses.replace(found, aos=aos, los=los, tca=tca)
        # The schedule's wrap side: the gap to this antenna's next track was timed from it.
        return TrackJob(part, tracking.satellite(track.norad_id), side_az_deg=track.start_az_deg)

    def _publish_schedule(self) -> None:
        tracks = []
        names = {e.norad_id: e.name for e in self.catalog.entries} if self.catalog else {}
        now = self.clock.now()
        for ant in self.antennas.values():
            for job in ant.jobs:
                if job.los <= now:
                    continue
                p = job.pass_
                tracks.append(
                    ScheduledTrack(
                        antenna=ant.id,
                        norad_id=p.norad_id,
                        name=names.get(p.norad_id, p.name) or str(p.norad_id),
                        aos=p.aos,
                        tca=p.tca,
                        los=p.los,
                        max_el_deg=p.max_el_deg,
                    )
                )
        tracks.sort(key=lambda t: t.aos)
        self._send(
            SchedulePayload(generated_at=self.clock.now(), paused=self.paused, tracks=tracks)
        )

    async def _planner_task(self) -> None:
        while True:
            await self._race(
                self._replan_requested.wait(), self.clock.sleep(self.settings.replan_period_s)
            )
            why = "requested" if self._replan_requested.is_set() else "periodic"
            self._replan_requested.clear()
            try:
                await self._replan(why)
            except Exception as exc:  # planning trouble is an alarm, not the daemon's end
                _log.exception("re-plan failed")
                self.alarms.raise_("plan-failed", "critical", f"re-plan failed: {exc}", "planner")

    # -- reload ------------------------------------------------------------------------
    async def _reload_task(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            try:
                await self.reload_now("all")
            except CommandRejected:
                pass  # already an alarm
            except Exception as exc:
                _log.exception("reload failed")
                self.alarms.raise_("config-rejected", "warning", f"reload failed: {exc}", "reload")

    async def reload_now(self, what: str) -> dict[str, Any]:
        """Reload the config and/or element files; CommandRejected if the config is bad."""
        result: dict[str, Any] = {}
        if what in ("all", "config"):
            if self.config_path is None:
                raise CommandRejected("this daemon was not started from a config file")
            try:
                new = load_config(self.config_path)
                problems = config_device_problems(new)
                if problems:
                    raise ConfigError(str(self.config_path), problems)
            except ConfigError as exc:
                shown = "; ".join(exc.problems[:3])
                more = f" (+{len(exc.problems) - 3} more)" if len(exc.problems) > 3 else ""
                message = f"{exc.source}: new config rejected, old one kept: {shown}{more}"
                self.alarms.raise_("config-rejected", "warning", message, "reload")
                self._event("config_rejected", message, "warning")
                raise CommandRejected(message) from None
            self.alarms.clear("config-rejected")
            # [daemon] and [tracking] are read when the daemon and its trackers are built.
            fixed = ("station", "antennas", "radios", "mqtt", "daemon", "tracking")
            changed = [k for k in fixed if getattr(new, k) != getattr(self.config, k)]
            if changed:
                self.alarms.raise_(
                    "restart-required",
                    "info",
                    f"changes to {', '.join(changed)} take effect after a restart; the rest "
                    "is applied",
                    "reload",
                )
            new = new.model_copy(update={k: getattr(self.config, k) for k in fixed})
            self.config = new
            result["config"] = "applied"
            self._event("config_reloaded", f"config {self.config_path} applied")
        if what in ("all", "tle", "config"):
            if what != "config":
                await self._refresh_sources()
            self._load_catalog()
            self._update_skies()
            self._freeze_heap()
            result["satellites"] = len(self.catalog.entries) if self.catalog else 0
        await self._replan(f"reload {what}")
        return result

    # -- antennas ----------------------------------------------------------------------
    def _antenna_fault(self, ant: _Antenna, reason: str) -> None:
        ant.health = "fault"
        ant.last_error = reason[:500]
        self.alarms.raise_(f"antenna-{ant.id}", "critical", f"antenna {ant.id}: {reason}", ant.id)

    def _antenna_ok(self, ant: _Antenna) -> None:
        if ant.health != "ok":
            ant.health = "ok"
            self.alarms.clear(f"antenna-{ant.id}")

    async def _supervise(self, ant: _Antenna) -> None:
        """Run the antenna; on an unexpected failure: alarm, safe state, back off, restart."""
        delay = self.settings.reconnect_min_s
        while True:
            try:
                await self._antenna_loop(ant)
            except Exception as exc:
                _log.exception("antenna task failed", antenna=ant.id)
                self._antenna_fault(ant, f"{type(exc).__name__}: {exc}")
                try:
                    await ant.rotator.stop()
                except Exception as stop_exc:  # the recovery must never end the supervisor
                    _log.warning(
                        "stop after the failure failed", antenna=ant.id, error=str(stop_exc)
                    )
                await self.clock.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max_s)

    @staticmethod
    def _link_lost(ant: _Antenna) -> bool:
        """True while the rotator's link (not the device) is down and reconnecting."""
        link = ant.rotator.link
        return link is not None and link.state is DeviceLinkState.FAULTED

    @staticmethod
    def _why(ant: _Antenna) -> str:
        health = ant.rotator.health()
        if health.device_fault:
            return health.device_fault
        if health.link is not None and health.link.last_error:
            return health.link.last_error
        return str(health.state)

    def _next_job(self, ant: _Antenna) -> TrackJob | None:
        if ant.manual_job is not None:
            return ant.manual_job
        if ant.rejoin_job is not None:
            if ant.rejoin_job.los > self.clock.now() and ant.hold is None and not self.paused:
                return ant.rejoin_job
            ant.rejoin_job = None
        for job in ant.jobs:
            if _job_key(job) not in ant.done:
                return job
        return None

    async def _antenna_loop(self, ant: _Antenna) -> None:
        tracker = ant.require_tracker()
        lead = timedelta(seconds=self._plan_lead_s())
        while True:
            ant.wake.clear()
            job = self._next_job(ant)
            now = self.clock.now()
            if job is None:
                await self._idle(ant, None)
                continue
            manual = job is ant.manual_job
            faulted = ant.rotator.state is DriverState.FAULTED
            if job.los <= now:
                why = (
                    f"rotator {ant.rotator.name} not answering"
                    if faulted
                    else "missed: its end passed before the antenna was free"
                )
                self._skip(ant, job, why)
                continue
            if job.aos - lead > now:
                await self._idle(ant, job.aos - lead)
                continue
            if not manual and (self.paused or ant.hold is not None):
                why = "scheduling paused by the operator" if self.paused else f"antenna {ant.hold}"
                self._skip(ant, job, why)
                continue
            if faulted:
                self._antenna_fault(ant, f"rotator not answering; reconnecting: {self._why(ant)}")
                if self._link_lost(ant):
                    # The link reconnects on its own: take the pass up when it is back (or
                    # report it aborted once its end has passed).
                    await self._race(ant.wake.wait(), self.clock.sleep(_FAULT_POLL_S))
                else:
                    self._skip(ant, job, f"rotator {ant.rotator.name} faulted: {self._why(ant)}")
                continue
            if job is ant.rejoin_job:
                ant.rejoin_job = None
                _log.info(
                    "rejoining the track under way", antenna=ant.id, norad_id=job.pass_.norad_id
                )
            await self._run_track(ant, tracker, job)
            if manual:
                ant.manual_job = None

    async def _idle(self, ant: _Antenna, until: datetime | None) -> None:
        """Wait for ``until`` or a change; park once idle long enough (the tracker decides)."""
        tracker = ant.require_tracker()
        waits: list[Awaitable[Any]] = [ant.wake.wait()]
        if until is not None:
            waits.append(self.clock.sleep_until(until))
        if tracker.mode not in ("parked", "stowed", "manual") and ant.hold is None:
            # Only a park that is over before the next track's plan (see park_fits).
            fits = until is None or tracker.park_fits((until - self.clock.now()).total_seconds())
            if fits:
                # run_schedule([]) idles park_after_idle_s, then parks (with its telemetry).
                waits.append(tracker.run_schedule([]))
        tasks = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _skip(self, ant: _Antenna, job: TrackJob, reason: str) -> None:
        ant.done.add(_job_key(job))
        if job is ant.manual_job:
            ant.manual_job = None
        self._record(ant, job, "aborted", reason)
        self._send(
            PassEvent(antenna=ant.id, norad_id=job.pass_.norad_id, event="aborted", reason=reason)
        )

    def _record(
        self,
        ant: _Antenna,
        job: TrackJob,
        status: Literal["executed", "aborted"],
        reason: str | None,
        report: TrackReport | None = None,
    ) -> None:
        p = job.pass_
        outcome = TrackOutcome(
            antenna=ant.id,
            norad_id=p.norad_id,
            name=p.name,
            start=p.aos,
            end=p.los,
            status=status,
            reason=reason,
            rotator_commands=report.rotator_commands if report else 0,
            frequency_commands=report.frequency_commands if report else 0,
        )
        self.outcomes.append(outcome)
        if self.metrics is not None:
            self.metrics.track_finished(outcome.antenna, outcome.status)
        if status == "aborted":
            self._event(
                "track_aborted",
                f"antenna {ant.id}: track of NORAD {p.norad_id} at {p.aos.isoformat()} "
                f"aborted: {reason}",
                "warning",
                antenna=ant.id,
                norad_id=p.norad_id,
            )

    def _publish_current(self) -> None:
        current = []
        for ant in self.antennas.values():
            job = ant.current
            if job is None:
                current.append(CurrentTrack(antenna=ant.id))
            else:
                p = job.pass_
                current.append(
                    CurrentTrack(
                        antenna=ant.id,
                        norad_id=p.norad_id,
                        name=p.name or None,
                        aos=p.aos,
                        tca=p.tca,
                        los=p.los,
                        max_el_deg=p.max_el_deg,
                    )
                )
        self._send(PassCurrent(antennas=current))

    async def _run_track(self, ant: _Antenna, tracker: AntennaTracker, job: TrackJob) -> None:
        p = job.pass_
        track_id = f"{ant.id}-{p.norad_id}-{p.aos:%Y%m%dT%H%M%S}"
        ant.current = job
        ant.abort_reason = None
        self._publish_current()
        with structlog.contextvars.bound_contextvars(
            track_id=track_id, satellite=p.norad_id, antenna=ant.id
        ):
            task = asyncio.get_running_loop().create_task(tracker.track(job), name=track_id)
        ant.track_task = task
        watch = asyncio.ensure_future(self._watch_devices(ant))
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            # The daemon stops (or the supervisor restarts): end the track, report why.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._finish_track(ant, job, None, ant.abort_reason or self._stop_reason)
            raise
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        try:
            report = None if task.cancelled() else task.result()
        except Exception as exc:
            # A bug, not a device fault: report the track, then let the supervisor restart.
            self._finish_track(ant, job, None, f"crashed: {type(exc).__name__}: {exc}")
            raise
        reason = None
        if report is None:
            reason = ant.abort_reason or "cancelled"
        elif report.aborted is not None:
            reason = report.aborted
        self._finish_track(ant, job, report, reason)

    def _finish_track(
        self, ant: _Antenna, job: TrackJob, report: TrackReport | None, reason: str | None
    ) -> None:
        ant.done.add(_job_key(job))
        ant.current = None
        ant.track_task = None
        if reason is None:
            self._record(ant, job, "executed", None, report)
            self._antenna_ok(ant)
        else:
            self._record(ant, job, "aborted", reason, report)
            if report is not None and report.aborted is not None:
                # The tracker hit a device fault and went to its safe position.
                self._antenna_fault(ant, f"track aborted: {reason}")
                if self._link_lost(ant) and job.los > self.clock.now():
                    ant.rejoin_job = job
        self._publish_current()

    async def _watch_devices(self, ant: _Antenna) -> None:
        """While a track runs: a rotator that faults is an alarm at once (the tracker ends
        the track on its next read-back; the alarm must not wait for that). A radio that
        faults is an alarm too (the track goes on without Doppler), cleared once it is back.

        The drivers call back on every state change (no polling: a poll would wake the
        loop several times a second per antenna for nothing)."""

        def changed(_driver: Driver) -> None:
            self._check_devices(ant)

        drivers = [d for d in (ant.rotator, ant.radio) if d is not None]
        for driver in drivers:
            driver.add_state_listener(changed)
        try:
            self._check_devices(ant)
            await asyncio.Event().wait()  # until the track ends and cancels the watch
        finally:
            for driver in drivers:
                driver.remove_state_listener(changed)

    def _check_devices(self, ant: _Antenna) -> None:
        """Raise or clear the device alarms of a tracking antenna from its drivers' state."""
        if ant.rotator.state is DriverState.FAULTED and ant.health != "fault":
            self._antenna_fault(ant, f"rotator {ant.rotator.name} faulted: {self._why(ant)}")
        if ant.radio is not None and ant.radio_id is not None:
            alarm_id = f"radio-{ant.radio_id}"
            if ant.radio.state is DriverState.FAULTED:
                health = ant.radio.health()
                why = health.device_fault or (health.link.last_error if health.link else "")
                self.alarms.raise_(
                    alarm_id,
                    "warning",
                    f"radio {ant.radio_id} not answering, tracking without Doppler; "
                    f"reconnecting: {why}",
                    ant.radio_id,
                )
            elif ant.radio.state in (DriverState.OK, DriverState.DEGRADED):
                self.alarms.clear(alarm_id)

    async def _abort(self, ant: _Antenna, reason: str) -> bool:
        task = ant.track_task
        if task is None or task.done():
            return False
        ant.abort_reason = reason
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def _stow(self, ant: _Antenna, *, wait: bool) -> None:
        tracker = ant.require_tracker()
        caps = ant.rotator.capabilities
        await ant.rotator.park()
        tracker.mode = "stowed"
        if wait:
            tolerance = max(1.0, 2 * caps.az_resolution_deg, 2 * caps.el_resolution_deg)
            where: Position | None = None
            while True:
                try:
                    where = await ant.rotator.get_position()
                except BridgeError:
                    where = None
                if (
                    where is not None
                    and abs(where.az_deg - caps.park_az_deg) <= tolerance
                    and abs(where.el_deg - caps.park_el_deg) <= tolerance
                ):
                    break
                await self.clock.sleep(_STOW_POLL_S)
        self._send(
            AntennaState(
                antenna=ant.id, mode="stowed", az_deg=caps.park_az_deg, el_deg=caps.park_el_deg
            )
        )

    # -- shutdown ----------------------------------------------------------------------
    async def _shutdown(self) -> None:
        self._set_state("stopping", self._stop_reason)
        sd_notify("STOPPING=1", self._notify_socket)
        for name in ("planner", "catalog", "reload", "health", "sky"):
            task = self._tasks.get(name)
            if task is not None:
                task.cancel()
        supervisors = [
            self._tasks[f"antenna-{a}"] for a in self.antennas if f"antenna-{a}" in self._tasks
        ]
        for ant in self.antennas.values():
            ant.abort_reason = f"daemon stopping: {self._stop_reason}"
        for task in supervisors:
            task.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)

        async def stow(ant: _Antenna) -> None:
            try:
                await self._stow(ant, wait=True)
            except BridgeError as exc:
                _log.error("stow failed", antenna=ant.id, error=str(exc))

        stowing = asyncio.gather(*(stow(a) for a in self.antennas.values()))
        if not await self._race(stowing, self.clock.sleep(self.settings.stow_timeout_s)):
            _log.error("stow did not finish in time", timeout_s=self.settings.stow_timeout_s)
        self._publish_current()
        self._send(Status(state="offline", detail=f"stopped ({self._stop_reason}); stowed"))
        publisher = self.publisher
        if publisher is not None:
            if publisher.link_state is LinkState.CONNECTED:
                # Real I/O to the broker: bounded in real time, whatever clock the daemon runs.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(publisher.flush(), _DRAIN_REAL_S)
            await publisher.close(timeout_s=5.0)

    # -- health ------------------------------------------------------------------------
    def _components(self) -> list[ComponentHealth]:
        out: list[ComponentHealth] = []
        for name, task in self._tasks.items():
            state: Literal["ok", "degraded", "fault"] = "ok" if not task.done() else "fault"
            if name.startswith("antenna-"):
                ant = self.antennas[name.removeprefix("antenna-")]
                state = "fault" if task.done() else ant.health
                out.append(
                    ComponentHealth(name=name, kind="task", state=state, last_error=ant.last_error)
                )
            else:
                out.append(ComponentHealth(name=name, kind="task", state=state))
        for ant in self.antennas.values():
            devices: list[tuple[str, RotatorDriver | RadioDriver]] = [
                (f"{ant.id}-rotator", ant.rotator)
            ]
            if ant.radio is not None and ant.radio_id is not None:
                devices.append((ant.radio_id, ant.radio))
            for dname, driver in devices:
                dstate = driver.state
                mapped: Literal["ok", "degraded", "fault"] = (
                    "ok"
                    if dstate is DriverState.OK
                    else "fault"
                    if dstate is DriverState.FAULTED
                    else "degraded"
                )
                out.append(ComponentHealth(name=dname, kind="device", state=mapped))
        if self.publisher is not None:
            stats = self.publisher.outbox_stats
            link_ok = self.publisher.link_state is LinkState.CONNECTED
            out.append(
                ComponentHealth(
                    name="mqtt",
                    kind="link",
                    state="ok" if link_ok else "degraded",
                    counters={"dropped": int(getattr(stats, "dropped", 0))},
                )
            )
        out.append(
            ComponentHealth(
                name="clock",
                kind="service",
                state="degraded" if "clock-offset" in self.alarms.active else "ok",
                last_error=self._clock_note[:500],
            )
        )
        return out

    def tasks_healthy(self) -> bool:
        """True while every task of the group is alive (what the systemd watchdog needs)."""
        return all(not t.done() for t in self._tasks.values())

    async def _health_task(self) -> None:
        period = self.settings.health_period_s
        watchdog_usec = os.environ.get("WATCHDOG_USEC") if self._notify_socket else None
        if watchdog_usec and watchdog_usec.isdigit():
            period = min(period, int(watchdog_usec) / 2e6)
        check_clock = isinstance(self.clock, SystemClock)
        next_clock_check = self.clock.monotonic()
        while True:
            try:
                if check_clock and self.clock.monotonic() >= next_clock_check:
                    next_clock_check = self.clock.monotonic() + self.settings.clock.check_period_s
                    await self._check_clock()
                self._check_wall_step()
                components = self._components()
                self._send(Health(components=components))
                self._update_metrics()
                if self.state in ("ready", "degraded"):
                    bad = [c for c in components if c.state != "ok" and c.kind != "link"]
                    self._set_state("degraded" if bad else "ready", None)
                if self.tasks_healthy():
                    sd_notify("WATCHDOG=1", self._notify_socket)
                    # The container healthcheck looks at this file's age.
                    with contextlib.suppress(OSError):
                        (self.run_dir / "healthy").touch()
            except Exception:  # health reporting must never end the daemon
                _log.exception("health report failed")
            await self.clock.sleep(period)

    def _update_metrics(self) -> None:
        """Feed Prometheus what no payload carries: device totals, MQTT outbox, catalog."""
        if self.metrics is None:
            return
        for ant in self.antennas.values():
            if ant.tracker is None:
                continue
            c = ant.tracker.counters
            self.metrics.observe_device_totals(
                f"{ant.id}-rotator", commands=c.rotator_commands, errors=c.rotator_errors
            )
            if ant.radio_id is not None:
                self.metrics.observe_device_totals(
                    ant.radio_id, commands=c.frequency_commands, errors=c.radio_errors
                )
        if self.publisher is not None:
            st = self.publisher.outbox_stats
            self.metrics.set_mqtt(
                self.publisher.link_state.value,
                queue_depth=st.events_queued + st.state_pending + st.streams_queued,
                dropped=st.events_dropped,
            )
        if self.catalog is not None:
            now = self.clock.now()
            ages = [e.age_days(now) for e in self.catalog.entries]
            self.metrics.set_catalog(len(ages), min(ages) * 86400.0 if ages else None)

    def _check_wall_step(self) -> None:
        """A step of the wall clock against the monotonic one (NTP, an operator's ``date``)
        is an alarm and a re-plan: passes are wall-clock events, timeouts are not."""
        mono = self.clock.monotonic()
        offset_s = self.clock.now().timestamp() - mono
        last, self._wall_offset_s = self._wall_offset_s, offset_s
        if last is None:
            return
        step_s = offset_s - last
        if abs(step_s) >= _WALL_STEP_S:
            self._wall_step_at = mono
            message = (
                f"wall clock stepped by {step_s:+.1f} s (now {self.clock.now().isoformat()}); "
                "schedule recomputed"
            )
            self.alarms.raise_("clock-jump", "warning", message, "clock")
            self._event("clock_jump", message, "warning", step_s=round(step_s, 3))
            self._replan_requested.set()
        elif self._wall_step_at is not None and mono - self._wall_step_at > _WALL_STEP_HOLD_S:
            self._wall_step_at = None
            self.alarms.clear("clock-jump")

    async def _check_clock(self) -> None:
        offset, note = await read_clock_offset_s()
        self._clock_note = note
        limit = self.settings.clock.max_offset_s
        if offset is not None and abs(offset) > limit:
            self.alarms.raise_(
                "clock-offset",
                "critical",
                f"system clock is {offset:+.3f} s off ({note}); limit {limit:g} s",
                "clock",
            )
            self._transmit_allowed = not self.settings.clock.refuse_transmit
        elif offset is None and "NOT synchronized" in note:
            self.alarms.raise_("clock-offset", "warning", note, "clock")
        else:
            self.alarms.clear("clock-offset")
            self._transmit_allowed = True

    # -- commands (CommandHandler) -----------------------------------------------------
    def _antenna(self, antenna_id: str | None) -> _Antenna:
        ant = self.antennas.get(antenna_id or "")
        if ant is None:
            raise CommandRejected(
                f"antenna {antenna_id!r} is not one of {sorted(self.antennas)}", field="antenna"
            )
        return ant

    async def stow(self, command: StowCommand) -> CommandResult:
        """Abort what runs and stow one antenna or all; they stay stowed until ``resume``."""
        chosen = (
            [self._antenna(command.antenna)] if command.antenna else list(self.antennas.values())
        )
        for ant in chosen:
            ant.hold = "stowed"
            ant.manual_job = None
            await self._abort(ant, "stow command")
            await self._stow(ant, wait=False)
            ant.wake.set()
        self.commands_applied["stow"] += 1
        return {"stowed": [a.id for a in chosen]}

    async def abort(self, command: AbortCommand) -> CommandResult:
        """Abort the track under way on an antenna (stops the rotator where it is)."""
        ant = self._antenna(command.antenna)
        job = ant.current
        if job is None:
            raise CommandRejected(f"antenna {ant.id} is not tracking", field="antenna")
        if command.norad_id is not None and command.norad_id != job.pass_.norad_id:
            raise CommandRejected(
                f"antenna {ant.id} tracks NORAD {job.pass_.norad_id}, not {command.norad_id}",
                field="norad_id",
            )
        reason = f"abort command: {command.reason}" if command.reason else "abort command"
        await self._abort(ant, reason)
        with contextlib.suppress(BridgeError):
            await ant.require_tracker().stop()
        self.commands_applied["abort"] += 1
        return {"antenna": ant.id, "norad_id": job.pass_.norad_id}

    async def pause(self, command: PauseCommand) -> CommandResult:
        """Start no new tracks until ``resume`` (tracks under way continue)."""
        self.paused = True
        self._publish_schedule()
        self.commands_applied["pause"] += 1
        return {"paused": True}

    async def resume(self, command: ResumeCommand) -> CommandResult:
        """Schedule again; release stowed or manually pointed antennas."""
        self.paused = False
        for ant in self.antennas.values():
            ant.hold = None
            ant.wake.set()
        self._publish_schedule()
        self.commands_applied["resume"] += 1
        return {"paused": False}

    async def reload(self, command: ReloadCommand) -> CommandResult:
        """Reload the config and/or the element files (a bad config is rejected)."""
        result = await self.reload_now(command.what)
        self.commands_applied["reload"] += 1
        return result

    async def priority(self, command: PriorityCommand) -> CommandResult:
        """Set a satellite's weight and re-plan."""
        if self.catalog is None or command.norad_id not in {
            e.norad_id for e in self.catalog.entries
        }:
            raise CommandRejected(
                f"NORAD {command.norad_id} is not in the catalog", field="norad_id"
            )
        self._priorities[command.norad_id] = command.weight
        self._replan_requested.set()
        self.commands_applied["priority"] += 1
        return {"norad_id": command.norad_id, "weight": command.weight}

    async def point(self, command: PointCommand) -> CommandResult:
        """Point an antenna by hand; it stays there until ``resume``."""
        ant = self._antenna(command.antenna)
        try:
            ant.rotator.validate(command.az_deg, command.el_deg)
        except LimitError as exc:
            raise CommandRejected(str(exc), field="az_deg") from None
        ant.hold = "manual"
        ant.manual_job = None
        await self._abort(ant, "point command")
        await ant.require_tracker().point(command.az_deg, command.el_deg)
        ant.wake.set()
        self.commands_applied["point"] += 1
        return {"antenna": ant.id, "az_deg": command.az_deg, "el_deg": command.el_deg}

    async def track(self, command: TrackCommand) -> CommandResult:
        """Track a satellite's pass in progress (or its next one) now."""
        if self.predictor is None or self.catalog is None:
            raise CommandRejected("no catalog loaded yet")
        if command.norad_id not in {e.norad_id for e in self.catalog.entries}:
            raise CommandRejected(
                f"NORAD {command.norad_id} is not in the catalog", field="norad_id"
            )
        if command.antenna is not None:
            ant = self._antenna(command.antenna)
        else:
            free = [a for a in self.antennas.values() if a.current is None] or list(
                self.antennas.values()
            )
            ant = free[0]
        now = self.clock.now()
        station = self.config.station.station()
        found = self.predictor.passes(station, now, now + timedelta(days=1)).passes
        mine = [p for p in found if p.norad_id == command.norad_id and p.los > now]
        if not mine:
            raise CommandRejected(f"NORAD {command.norad_id} has no pass in the next 24 h")
        p = mine[0]
        job = TrackJob(p, self._tracking_config().satellite(p.norad_id))
        ant.hold = None
        await self._abort(ant, f"track command for NORAD {p.norad_id}")
        ant.manual_job = job
        ant.wake.set()
        self.commands_applied["track"] += 1
        return {"antenna": ant.id, "norad_id": p.norad_id, "aos": p.aos.isoformat()}


async def _as_coro(awaitable: Awaitable[None]) -> None:
    await awaitable
