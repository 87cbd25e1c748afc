"""One tracker per antenna: pre-position, track, LOS, park when idle, safe position on fault.

An :class:`AntennaTracker` owns one rotator (and optionally the radio on that antenna) and runs
on the injected clock. Its activities:

* :meth:`AntennaTracker.run_schedule` -- tracks one after the other. Between tracks the antenna
  parks once it has been idle for ``park_after_idle_s`` (and only if the next track leaves it
  time to); each track is planned shortly before its pre-position time, from where the rotator
  really is then (so unwinding happens in the pre-position move, between passes).
* :meth:`AntennaTracker.track` -- one pass: plan (:mod:`controller.tracking.pointing`), wait,
  pre-position, then a control loop until LOS. In the loop, on their own periods: the rotator
  command (plan, lead = measured command latency, deadband, aim-ahead), the rotator
  read-back and the telemetry; beside it, on a task of its own so that the radio's
  exchanges never hold up the pointing, the Doppler (:mod:`controller.tracking.doppler`,
  with the dial check) and the S-meter. The telemetry: ``Pointing`` and ``Link`` records
  several times a second, ``PassEvent`` at AOS/TCA/LOS, ``AntennaState`` on mode changes.
* Operator commands, each replacing whatever runs: :meth:`point` (manual az/el),
  :meth:`track_now` (the pass of a satellite in progress, or its next one), :meth:`stop`.

A rotator that stalls, refuses a target or stops answering ends the track (``PassEvent``
``aborted`` with the reason) and the antenna goes to its safe position (configured, else
park). Radio errors never end a track: pointing matters more; they are counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import structlog

from controller.orbit.predictor import Pass, PassPredictor, Station
from controller.telemetry.payloads import (
    AntennaMode,
    AntennaState,
    Link,
    PassEvent,
    Payload,
    Pointing,
    RadioState,
)
from controller.telemetry.sink import TelemetrySink
from controller.tracking.config import AntennaLinkConfig, SatelliteLinkConfig, TrackingConfig
from controller.tracking.doppler import Channel, DopplerController, DopplerTargets
from controller.tracking.link import LinkBudget, snr_from_meter_db
from controller.tracking.pointing import PointingPlan, PointingPlanner, travel_time_s
from controller.tracking.sky import SkyPoint, SkyTrack, separation_one_deg
from firmware_bridge.clock import Clock
from firmware_bridge.drivers.radio import RadioDriver, Vfo
from firmware_bridge.drivers.rotator import Position, RotatorDriver, RotatorStalled
from firmware_bridge.errors import BridgeError, DeviceFault, LimitError

__all__ = [
    "REPORTS_KEPT",
    "AntennaTracker",
    "Counters",
    "NullSink",
    "TrackJob",
    "TrackReport",
    "TrackerError",
]

_log = structlog.get_logger("controller.tracking.tracker")

_ROTATOR_FAILURES_TO_ABORT: Final = 3
"""Consecutive failed rotator calls (after the link's own retries) that end a track."""
_PLAN_AHEAD_EXTRA_S: Final = 30.0
_SKY_STEP_S: Final = 1.0
REPORTS_KEPT: Final = 8
"""Recent track reports a tracker keeps (each holds its plan, ~0.4 MB measured): a station that
runs for months must not keep every pass it ever tracked."""

_PassEventKind = Literal["aos", "tca", "los", "aborted"]
_TIME_SLACK_S: Final = 1e-6


class TrackerError(RuntimeError):
    """An operator request the tracker cannot carry out (the message says why)."""


class NullSink:
    """A telemetry sink that drops everything (a tracker without telemetry)."""

    def send(self, payload: Payload) -> None:
        """Drop ``payload``."""


@dataclass
class Counters:
    """What a tracker (or a baseline policy) has sent and suffered."""

    rotator_commands: int = 0
    frequency_commands: int = 0
    rotator_errors: int = 0
    radio_errors: int = 0
    dial_turns: int = 0


@dataclass(frozen=True)
class TrackJob:
    """One pass to track and what to know about its satellite."""

    pass_: Pass
    satellite: SatelliteLinkConfig
    side_az_deg: float | None = None
    """The schedule's rotator azimuth at AOS: its wrap side and flip, which the plan keeps
    when that loses nothing (the schedule timed the slew to the next track from there)."""

    @property
    def aos(self) -> datetime:
        """AOS of the pass."""
        return self.pass_.aos

    @property
    def los(self) -> datetime:
        """LOS of the pass."""
        return self.pass_.los


@dataclass
class TrackReport:
    """How one track went."""

    norad_id: int
    aos: datetime
    los: datetime
    variant: str | None = None
    reason: str | None = None
    aborted: str | None = None
    rotator_commands: int = 0
    frequency_commands: int = 0
    dial_turns: int = 0
    plan: PointingPlan | None = field(default=None, repr=False)


@dataclass
class _Radio:
    """The radio channels of one track."""

    doppler: DopplerController
    vfos: dict[Channel, Vfo]
    budget: LinkBudget | None
    snr_measured_db: float | None = None
    last_targets: DopplerTargets | None = None


class AntennaTracker:
    """Tracks passes on one antenna; see the module docstring."""

    def __init__(
        self,
        *,
        antenna_id: str,
        rotator: RotatorDriver,
        clock: Clock,
        predictor: PassPredictor,
        station: Station,
        beamwidth_deg: float,
        radio: RadioDriver | None = None,
        radio_id: str | None = None,
        sink: TelemetrySink | None = None,
        config: TrackingConfig | None = None,
        reports_kept: int | None = REPORTS_KEPT,
    ) -> None:
        """A tracker for ``rotator`` (and ``radio``) of antenna ``antenna_id``.

        ``reports_kept``: how many finished tracks' reports to keep (None: all, for a
        bounded evaluation such as the closed loop; a daemon must keep a bound).
        """
        self.antenna_id = antenna_id
        self.rotator = rotator
        self.radio = radio
        self.radio_id = radio_id or f"{antenna_id}-radio"
        self.clock = clock
        self.predictor = predictor
        self.station = station
        self.beamwidth_deg = beamwidth_deg
        self.sink: TelemetrySink = sink if sink is not None else NullSink()
        self.config = config if config is not None else TrackingConfig()
        self.settings = self.config.pointing
        self.link_config: AntennaLinkConfig = self.config.antenna(antenna_id)
        self.planner = PointingPlanner(rotator.capabilities, beamwidth_deg, self.settings)
        self.counters = Counters()
        self.latency_s = self.settings.latency_initial_s
        self.mode: AntennaMode = "idle"
        self.reports: deque[TrackReport] = deque(maxlen=reports_kept)
        self._last_cmd: Position | None = None
        self._last_aim_s: float | None = None
        self._last_read: Position | None = None
        self._activity: asyncio.Task[Any] | None = None
        self._failures = 0
        self._log = _log.bind(antenna=antenna_id)

    # -- operator commands ------------------------------------------------------------------
    async def point(self, az_deg: float, el_deg: float) -> None:
        """Manual: point at az/el (rotator frame); LimitError names the limits if outside."""
        target = self.rotator.validate(az_deg, el_deg)
        await self._cancel_activity()
        await self._command(target)
        self._set_mode("manual")

    async def stop(self) -> None:
        """Manual: stop whatever runs and stop the rotator where it is."""
        await self._cancel_activity()
        await self.rotator.stop()
        self._last_cmd = None
        self._set_mode("idle")

    async def track_now(
        self, norad_id: int, satellite: SatelliteLinkConfig | None = None
    ) -> asyncio.Task[TrackReport]:
        """Manual: track ``norad_id``'s pass in progress, else its next one (within a day)."""
        now = self.clock.now()
        found = self.predictor.passes(
            self.station, now - timedelta(hours=1), now + timedelta(days=1)
        )
        candidates = [p for p in found.passes if p.norad_id == norad_id and p.los > now]
        if not candidates:
            raise TrackerError(
                f"antenna {self.antenna_id}: satellite {norad_id} has no pass over station "
                f"{self.station.station_id} in the next 24 h; nothing to track"
            )
        job = TrackJob(candidates[0], satellite or self.config.satellite(norad_id))
        return await self._replace_activity(self.track(job), f"{self.antenna_id}-track-now")

    def start_schedule(self, jobs: Sequence[TrackJob]) -> asyncio.Task[list[TrackReport]]:
        """Run :meth:`run_schedule` as the current activity (replaces none: call first)."""
        if self._activity is not None and not self._activity.done():
            raise TrackerError(f"antenna {self.antenna_id}: an activity is already running")
        task = asyncio.get_running_loop().create_task(
            self.run_schedule(jobs), name=f"{self.antenna_id}-schedule"
        )
        self._activity = task
        return task

    # -- schedule -------------------------------------------------------------------------------
    async def run_schedule(self, jobs: Sequence[TrackJob]) -> list[TrackReport]:
        """Track ``jobs`` in AOS order; park when idle long enough; return their reports."""
        ordered = sorted(jobs, key=lambda j: j.aos)
        reports: list[TrackReport] = []
        for job in ordered:
            if job.los <= self.clock.now():
                continue
            await self._idle_until(job)
            reports.append(await self.track(job))
        await self._idle_until(None)
        return reports

    async def _idle_until(self, job: TrackJob | None) -> None:
        """Wait for ``job`` (None: no more work), parking after ``park_after_idle_s`` if it fits."""
        now = self.clock.now()
        horizon_s = self._plan_horizon_s()
        if job is None:
            await self.clock.sleep(self.settings.park_after_idle_s)
            await self._park()
            return
        plan_at = job.aos - timedelta(seconds=horizon_s)
        idle_s = (plan_at - now).total_seconds()
        if self.park_fits(idle_s) and self.mode not in ("parked", "stowed"):
            await self.clock.sleep(self.settings.park_after_idle_s)
            await self._park()
        if plan_at > self.clock.now():
            await self.clock.sleep_until(plan_at)

    def park_fits(self, idle_s: float) -> bool:
        """Whether parking after ``park_after_idle_s`` fits in ``idle_s`` before the next plan.

        Only a park that is over before the next plan is made is worth starting: the plan
        reads where the rotator is, and a rotator still on its way to park would be farther
        from the next pass than that reading says (the pre-position would start too late).
        So the wait must outlast the idle time plus a trip to park and back.
        """
        return idle_s > self.settings.park_after_idle_s + 2 * self._worst_travel_s()

    def _worst_travel_s(self) -> float:
        """The longest move this rotator can make (corner to corner)."""
        caps = self.rotator.capabilities
        return travel_time_s(
            caps,
            Position(caps.az_min_deg, caps.el_min_deg),
            Position(caps.az_max_deg, caps.el_max_deg),
        )

    def _plan_horizon_s(self) -> float:
        """How long before AOS a plan is made: the longest pre-position move plus margins."""
        return self._worst_travel_s() + self.settings.preposition_margin_s + _PLAN_AHEAD_EXTRA_S

    async def _park(self) -> None:
        try:
            await self.rotator.park()
            self._last_cmd = self.rotator.capabilities.park
            self.counters.rotator_commands += 1
            self._set_mode("parked")
        except BridgeError as exc:
            self.counters.rotator_errors += 1
            self._log.warning("park failed", error=str(exc))

    # -- one track ------------------------------------------------------------------------------
    async def track(self, job: TrackJob) -> TrackReport:
        """Track one pass from planning to LOS; see the module docstring."""
        report = TrackReport(job.pass_.norad_id, job.aos, job.los)
        start_counts = (self.counters.rotator_commands, self.counters.frequency_commands)
        self.reports.append(report)
        try:
            await self._track(job, report)
        except asyncio.CancelledError:
            report.aborted = "cancelled by the operator"
            self._emit_pass_event(job, "aborted", reason=report.aborted)
            raise
        except (BridgeError, TrackerError) as exc:
            report.aborted = f"{type(exc).__name__}: {exc}"
            self._log.error("track aborted", norad_id=job.pass_.norad_id, reason=report.aborted)
            self._emit_pass_event(job, "aborted", reason=report.aborted[:400])
            await self._safe(report.aborted)
        finally:
            report.rotator_commands = self.counters.rotator_commands - start_counts[0]
            report.frequency_commands = self.counters.frequency_commands - start_counts[1]
        return report

    async def _track(self, job: TrackJob, report: TrackReport) -> None:
        sat = job.satellite
        position = await self._position_now()
        # A plan takes milliseconds, a high pass's up to 0.1 s: off the loop while time flows.
        sky, plan, budget = await self.clock.compute(
            self._plan_pass, job, position, self.clock.now()
        )
        plan = self._allow_for_motion(plan, position)
        report.plan = plan
        report.variant = plan.variant
        report.reason = plan.reason
        radio = await self._prepare_radio(sat, budget)
        await self.clock.sleep_until(sky.time_at(plan.preposition_start_s))
        self._set_mode("prepositioning", job.pass_.norad_id)
        await self._command(plan.start_position)
        self._last_aim_s = plan.aos_s
        await self._loop(job, sky, plan, radio)
        self._emit_pass_event(job, "los")
        self._set_mode("idle")

    def _plan_pass(
        self, job: TrackJob, position: Position, now: datetime
    ) -> tuple[SkyTrack, PointingPlan, LinkBudget | None]:
        """The pass's sky track, its pointing plan from ``position`` at ``now``, and its link
        budget (None: no downlink). Pure: it may run in a worker thread."""
        sat = job.satellite
        sky = SkyTrack.from_pass(self.predictor, self.station, job.pass_, step_s=_SKY_STEP_S)
        budget = (
            LinkBudget.for_link(sat, self.link_config, self.beamwidth_deg)
            if sat.downlink_hz is not None
            else None
        )
        allowed = budget.allowed_error_deg(sky.range_km, sky.el_deg) if budget else None
        plan = self.planner.plan(
            sky,
            now_s=sky.at_time(now),
            position=position,
            allowed_error_deg=allowed,
            latency_s=self.latency_s,
            side_az_deg=job.side_az_deg,
        )
        return sky, plan, budget

    async def _loop(
        self, job: TrackJob, sky: SkyTrack, plan: PointingPlan, radio: _Radio | None
    ) -> None:
        settings = self.settings
        norad_id = job.pass_.norad_id
        los_s = sky.los_s
        # Everything is due at once when the loop starts (at the pre-position time).
        due = dict.fromkeys(("tick", "telemetry", "readback"), -math.inf)
        periods = {
            "tick": plan.tick_s,
            "telemetry": settings.telemetry_period_s,
            "readback": settings.readback_period_s,
            "signal": settings.signal_period_s,
            "doppler": self.config.doppler.poll_period_s,
            "dial": self.config.doppler.dial_check_period_s,
        }
        if isinstance(self.sink, NullSink):
            # Nobody listens: do not wake up for telemetry.
            due["telemetry"] = math.inf
        events: dict[_PassEventKind, float] = {"aos": sky.aos_s, "tca": sky.tca_s}
        # Loop time runs on the monotonic clock (a float); now() is rounded to microseconds,
        # and a deadline computed from it could be missed by a rounding step forever.
        base_t = sky.at_time(self.clock.now())
        base_m = self.clock.monotonic()

        def track_time() -> float:
            return base_t + (self.clock.monotonic() - base_m)

        def reached(t: float, when: float) -> bool:
            return t >= when - _TIME_SLACK_S

        # Periodic work falls due on a grid of the clock's monotonic time (the multiples
        # of each period), not a period after it last ran: activities with commensurate
        # periods share wake-ups, every antenna's telemetry falls on the same instants
        # (one write to the broker for all of them), and no period drifts by the time the
        # device exchanges take.
        offset = base_t - base_m

        def next_due(t: float, period: float) -> float:
            return offset + period * (math.floor((t - offset + _TIME_SLACK_S) / period) + 1)

        async def radio_work(radio: _Radio) -> None:
            # The radio on its own task: its exchanges (a CI-V select and a read or set,
            # each a reply delay) neither delay the rotator's commands and read-backs nor
            # wait for them, and a radio that times out (retries included) costs the
            # pointing nothing.
            rdue = {"doppler": -math.inf, "dial": -math.inf, "signal": -math.inf}
            while True:
                t = track_time()
                if reached(t, los_s):
                    return
                if reached(t, rdue["doppler"]):
                    rdue["doppler"] = next_due(t, periods["doppler"])
                    check_dial = reached(t, rdue["dial"])
                    if check_dial:
                        rdue["dial"] = next_due(t, periods["dial"])
                    await self._doppler(sky.point(t), radio, check_dial=check_dial)
                if radio.budget is not None and reached(t, rdue["signal"]):
                    rdue["signal"] = next_due(t, periods["signal"])
                    await self._read_signal(radio)
                wake = min(rdue["doppler"], los_s)
                if radio.budget is not None:
                    wake = min(wake, rdue["signal"])
                await self.clock.sleep(max(_TIME_SLACK_S, wake - track_time()))

        radio_task: asyncio.Task[None] | None = None
        if radio is not None:
            radio_task = asyncio.get_running_loop().create_task(
                radio_work(radio), name=f"{self.antenna_id}-radio"
            )
        try:
            while True:
                if radio_task is not None and radio_task.done():
                    radio_task.result()  # a failure of the radio's loop ends the track here
                t = track_time()
                if reached(t, los_s):
                    return
                for name in [n for n, at in events.items() if reached(t, at)]:
                    del events[name]
                    if name == "aos":
                        self._set_mode("tracking", norad_id)
                    self._emit_pass_event(job, name)
                if reached(t, due["tick"]):
                    due["tick"] = next_due(t, periods["tick"])
                    command = plan.next_command(t, self._last_cmd, self.latency_s, self._last_aim_s)
                    if command is not None:
                        await self._command(command.position)
                        self._last_aim_s = command.aim_s
                if reached(t, due["readback"]):
                    due["readback"] = next_due(t, periods["readback"])
                    await self._read_position()
                if reached(t, due["telemetry"]):
                    due["telemetry"] = next_due(t, periods["telemetry"])
                    self._emit_track_telemetry(norad_id, sky.point(t), plan, t, radio)
                wake = min(
                    [due["tick"], due["readback"], due["telemetry"], los_s, *events.values()]
                )
                await self.clock.sleep(max(_TIME_SLACK_S, wake - track_time()))
        finally:
            if radio_task is not None and not radio_task.done():
                radio_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await radio_task

    # -- rotator ---------------------------------------------------------------------------------
    async def _command(self, target: Position) -> None:
        """Send a target (inside the limits by construction; the driver checks again)."""
        start = self.clock.monotonic()
        try:
            await self.rotator.set_position(target.az_deg, target.el_deg)
        except LimitError:
            raise
        except BridgeError as exc:
            self._rotator_failed(exc)
            return
        elapsed = self.clock.monotonic() - start
        weight = self.settings.latency_smoothing
        self.latency_s = (1 - weight) * self.latency_s + weight * elapsed
        self._failures = 0
        self._last_cmd = target
        self.counters.rotator_commands += 1

    async def _read_position(self) -> Position | None:
        if not self.rotator.capabilities.readback:
            return None
        try:
            position = await self.rotator.get_position()
        except (RotatorStalled, DeviceFault):
            # The rotator does not move, or the device declared itself faulted: end the track.
            raise
        except BridgeError as exc:
            self._rotator_failed(exc)
            return None
        self._failures = 0
        self._last_read = position
        return position

    def _rotator_failed(self, exc: BridgeError) -> None:
        self.counters.rotator_errors += 1
        self._failures += 1
        self._log.warning("rotator call failed", error=str(exc), consecutive=self._failures)
        if self._failures >= _ROTATOR_FAILURES_TO_ABORT:
            raise TrackerError(
                f"rotator failed {self._failures} times in a row; last: {type(exc).__name__}: {exc}"
            ) from exc

    def _allow_for_motion(self, plan: PointingPlan, read: Position) -> PointingPlan:
        """Start the pre-position earlier if the rotator may still be moving to its last
        command (a park, say): the plan only knows the position read at planning time.

        When the pre-position starts, the rotator is somewhere between that reading and its
        last command; each axis's travel from a point between two others is at most the
        longer of the two, so the longer travel is the one to allow for.
        """
        heading = self._last_cmd
        if heading is None:
            return plan
        caps = self.rotator.capabilities
        start = plan.start_position
        extra_s = travel_time_s(caps, heading, start) - travel_time_s(caps, read, start)
        if extra_s <= 0:
            return plan
        earliest_s = plan.track.at_time(self.clock.now())
        moved = max(earliest_s, plan.preposition_start_s - extra_s)
        if moved >= plan.preposition_start_s:
            return plan
        self._log.info(
            "pre-position moved earlier: the rotator is still moving",
            read=str(read),
            heading=str(heading),
            earlier_s=round(plan.preposition_start_s - moved, 1),
        )
        return dataclasses.replace(plan, preposition_start_s=moved)

    async def _position_now(self) -> Position:
        """Where the rotator is (read if it can, else the last command, else park)."""
        read = None
        with contextlib.suppress(BridgeError):
            read = await self._read_position()
        if read is not None:
            return read
        if self._last_cmd is not None:
            return self._last_cmd
        return self.rotator.capabilities.park

    async def _safe(self, reason: str) -> None:
        """After a fault: stop, then go to the safe position (errors logged, never raised)."""
        self._set_mode("fault", fault=reason[:400])
        with contextlib.suppress(BridgeError):
            await self.rotator.stop()
        settings = self.settings
        try:
            if settings.safe_az_deg is not None and settings.safe_el_deg is not None:
                await self.rotator.set_position(settings.safe_az_deg, settings.safe_el_deg)
            else:
                await self.rotator.park()
            self.counters.rotator_commands += 1
        except BridgeError as exc:
            self._log.error("cannot reach the safe position", error=str(exc))
        self._last_cmd = None

    # -- radio -----------------------------------------------------------------------------------
    async def _prepare_radio(
        self, sat: SatelliteLinkConfig, budget: LinkBudget | None
    ) -> _Radio | None:
        radio = self.radio
        if radio is None:
            return None
        doppler = DopplerController(sat, self.config.doppler)
        if not doppler.channels:
            return None
        caps = radio.capabilities
        vfos: dict[Channel, Vfo] = {}
        try:
            if caps.satellite_mode:
                if radio.satellite_mode is not True:
                    await radio.set_satellite_mode(True)
                vfos = {Channel.DOWNLINK: Vfo.DOWNLINK, Channel.UPLINK: Vfo.UPLINK}
            else:
                vfos[Channel.DOWNLINK] = caps.vfos[0]
                if len(caps.vfos) > 1:
                    vfos[Channel.UPLINK] = caps.vfos[1]
        except BridgeError as exc:
            self.counters.radio_errors += 1
            self._log.warning("radio set-up failed; tracking without Doppler", error=str(exc))
            return None
        return _Radio(doppler, vfos, budget)

    async def _doppler(self, point: SkyPoint, radio: _Radio, *, check_dial: bool) -> None:
        assert self.radio is not None
        rr = point.range_rate_km_s
        doppler = radio.doppler
        changed = False
        for channel in doppler.channels:
            vfo = radio.vfos.get(channel)
            if vfo is None:
                continue
            try:
                if check_dial and doppler.last_sent(channel) is not None:
                    read = await self.radio.get_frequency(vfo)
                    turn = doppler.observed(channel, read, rr)
                    if turn is not None:
                        self.counters.dial_turns += 1
                        self._log.info(
                            "dial turned",
                            channel=channel.value,
                            expected_hz=turn.expected_hz,
                            read_hz=turn.read_hz,
                            followed=turn.followed,
                        )
                targets = doppler.targets(rr)
                radio.last_targets = targets
                want = targets.downlink_hz if channel is Channel.DOWNLINK else targets.uplink_hz
                hz = doppler.due(channel, want)
                if hz is not None:
                    sent = await self.radio.set_frequency(hz, vfo)
                    doppler.sent(channel, sent)
                    self.counters.frequency_commands += 1
                    changed = True
            except BridgeError as exc:
                self.counters.radio_errors += 1
                self._log.warning("radio call failed", channel=channel.value, error=str(exc))
        if changed:
            self.sink.send(
                RadioState(
                    radio=self.radio_id,
                    downlink_hz=doppler.last_sent(Channel.DOWNLINK),
                    uplink_hz=doppler.last_sent(Channel.UPLINK),
                    satellite_mode=bool(self.radio.satellite_mode),
                )
            )

    async def _read_signal(self, radio: _Radio) -> None:
        assert self.radio is not None
        vfo = radio.vfos.get(Channel.DOWNLINK)
        try:
            signal = await self.radio.get_signal(vfo)
        except BridgeError as exc:
            self.counters.radio_errors += 1
            self._log.warning("S-meter read failed", error=str(exc))
            return
        radio.snr_measured_db = snr_from_meter_db(signal.db_rel_s9)

    # -- telemetry -------------------------------------------------------------------------------
    def _set_mode(
        self, mode: AntennaMode, norad_id: int | None = None, *, fault: str | None = None
    ) -> None:
        self.mode = mode
        where = self._last_read or self._last_cmd
        self.sink.send(
            AntennaState(
                antenna=self.antenna_id,
                mode=mode,
                az_deg=where.az_deg if where else None,
                el_deg=where.el_deg if where else None,
                norad_id=norad_id,
                fault=fault,
            )
        )

    def _emit_pass_event(
        self, job: TrackJob, event: _PassEventKind, *, reason: str | None = None
    ) -> None:
        where = self._last_read or self._last_cmd
        self.sink.send(
            PassEvent(
                antenna=self.antenna_id,
                norad_id=job.pass_.norad_id,
                event=event,
                reason=reason,
                az_deg=where.az_deg if where else None,
                el_deg=where.el_deg if where else None,
            )
        )

    def _emit_track_telemetry(
        self, norad_id: int, point: SkyPoint, plan: PointingPlan, t: float, radio: _Radio | None
    ) -> None:
        if isinstance(self.sink, NullSink):
            return
        target = plan.target(t)
        actual = self._last_read
        error = (
            separation_one_deg(actual.az_deg, actual.el_deg, point.az_deg, point.el_deg)
            if actual is not None
            else None
        )
        period = self.settings.telemetry_period_s
        cmd = self._last_cmd
        self.sink.send(
            Pointing(
                antenna=self.antenna_id,
                mode=self.mode,
                norad_id=norad_id,
                target_az_deg=target.az_deg,
                target_el_deg=target.el_deg,
                commanded_az_deg=cmd.az_deg if cmd else None,
                commanded_el_deg=cmd.el_deg if cmd else None,
                actual_az_deg=actual.az_deg if actual else None,
                actual_el_deg=actual.el_deg if actual else None,
                error_deg=error,
                period_s=period,
            )
        )
        predicted = measured = margin = None
        down_hz = up_hz = None
        shift_down = shift_up = None
        if radio is not None:
            down_hz = radio.doppler.last_sent(Channel.DOWNLINK)
            up_hz = radio.doppler.last_sent(Channel.UPLINK)
            targets = radio.doppler.targets(point.range_rate_km_s)
            shift_down, shift_up = targets.downlink_shift_hz, targets.uplink_shift_hz
            if radio.budget is not None and point.el_deg > -1.0:
                tune_err = (
                    down_hz - targets.downlink_hz
                    if down_hz is not None and targets.downlink_hz is not None
                    else 0.0
                )
                predicted = radio.budget.snr_one_db(
                    point.range_km, point.el_deg, error or 0.0, tune_err
                )
                measured = radio.snr_measured_db
                basis = measured if measured is not None else predicted
                margin = basis - radio.budget.required_snr_db
        self.sink.send(
            Link(
                antenna=self.antenna_id,
                norad_id=norad_id,
                range_km=max(0.0, point.range_km),
                range_rate_km_s=point.range_rate_km_s,
                doppler_down_hz=shift_down,
                doppler_up_hz=shift_up,
                downlink_hz=down_hz,
                uplink_hz=up_hz,
                snr_predicted_db=_finite(predicted),
                snr_measured_db=_finite(measured),
                margin_db=_finite(margin),
                locked=margin is not None and margin >= 0,
                period_s=period,
            )
        )

    # -- activities --------------------------------------------------------------------------
    async def _cancel_activity(self) -> None:
        task, self._activity = self._activity, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _replace_activity(
        self, coro: Coroutine[Any, Any, TrackReport], name: str
    ) -> asyncio.Task[TrackReport]:
        await self._cancel_activity()
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._activity = task
        return task


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
