"""Baseline tracking policies that behave like the anchors (our own code, their documented rules).

They run on the same drivers, simulators and passes as :class:`~controller.tracking.tracker.
AntennaTracker`, so the benchmark compares policies and nothing else. What each does is
described in /work/shared/anchors.md; the rules reproduced:

:class:`GpredictLike` (gpredict ``gtk-rot-ctrl.c`` / ``gtk-rig-ctrl.c``)
    * a 1 s cycle; per cycle at most one ``set`` then, 0.1 s later, one ``get`` of the position;
    * deadband 5 deg on az or el against the read-back position, az folded into 0..360;
    * aim-ahead: when the deadband is exceeded during the pass, command the satellite's
      position at the latest time (bisected, up to LOS) at which it is still within the
      deadband of where it is now;
    * before AOS the setpoint is (AOS az, el 0), which is its only pre-positioning;
    * azimuth 0..360 only (no overlap mode), clamped to the rotator's limits;
    * flip (az +- 180, el' = 180 - el) for the whole pass only if the pass crosses the stop and
      the elevation axis reaches 180;
    * Doppler every 1 s, downlink ``f (1 - v/c)``, uplink ``f (1 + v/c)``, sent when it differs
      from the last set value by at least 1 Hz; the frequency is read back every cycle.

:class:`SatnogsLike` (SatNOGS client ``observer/worker.py``)
    * no pre-positioning: the rotator is first commanded at the observation start (AOS);
    * a 0.25 s loop: read the position, send a target when az (mod 360) or el differ by more
      than 4 deg;
    * azimuth always 0..360, no limit awareness (a target the rotator refuses is an error and
      the loop goes on);
    * flip when max elevation >= 75 deg: after culmination, positions are mirrored about it
      (az' = 2 az_mid - az, alt' = 2 alt_mid - alt); enabled only on rotators whose elevation
      reaches 180 deg (the setting a user would choose);
    * Doppler downlink only, ``f (1 - v/c)``, once a second (the retune rate of the flowgraph's
      rigctl endpoint is a setting; 1 per second assumed);
    * no park after the pass.

Faults: as in the anchors, an error is counted and the loop goes on (no safe position).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final

import numpy as np
import structlog

from controller.orbit.predictor import PassPredictor, Station
from controller.tracking.doppler import SPEED_OF_LIGHT_KM_S
from controller.tracking.sky import SkyTrack
from controller.tracking.tracker import Counters, TrackJob, TrackReport
from firmware_bridge.clock import Clock
from firmware_bridge.drivers.radio import RadioDriver, Vfo
from firmware_bridge.drivers.rotator import Position, RotatorDriver
from firmware_bridge.errors import BridgeError

__all__ = ["GpredictLike", "SatnogsLike", "is_flipped_pass"]

_log = structlog.get_logger("controller.tracking.baselines")

_GPREDICT_CYCLE_S: Final = 1.0
_GPREDICT_THRESHOLD_DEG: Final = 5.0
_GPREDICT_READ_DELAY_S: Final = 0.1
_GPREDICT_RIG_STEP_HZ: Final = 1.0
_GPREDICT_IDLE_SKIP_S: Final = 120.0
_SATNOGS_LOOP_S: Final = 0.25
_SATNOGS_THRESHOLD_DEG: Final = 4.0
_SATNOGS_FLIP_ANGLE_DEG: Final = 75.0
_SATNOGS_DOPPLER_PERIOD_S: Final = 1.0


def is_flipped_pass(az_deg: Sequence[float] | np.ndarray, stop_deg: float) -> bool:
    """gpredict's test: azimuths shifted into [stop, stop + 360) jump by more than 180 deg."""
    shifted = [((a - stop_deg) % 360.0) for a in az_deg]
    return any(abs(b - a) > 180.0 for a, b in itertools.pairwise(shifted))


class _Baseline:
    """What both baselines share: drivers, clock, counters, the sky track of a job."""

    name = "baseline"

    def __init__(
        self,
        *,
        rotator: RotatorDriver,
        clock: Clock,
        predictor: PassPredictor,
        station: Station,
        radio: RadioDriver | None = None,
    ) -> None:
        """A policy driving ``rotator`` (and ``radio``) on ``clock``."""
        self.rotator = rotator
        self.radio = radio
        self.clock = clock
        self.predictor = predictor
        self.station = station
        self.counters = Counters()
        self.reports: list[TrackReport] = []
        self._log = _log.bind(policy=self.name)

    def _sky(self, job: TrackJob) -> SkyTrack:
        return SkyTrack.from_pass(self.predictor, self.station, job.pass_, step_s=1.0)

    async def _set(self, az_deg: float, el_deg: float) -> bool:
        try:
            await self.rotator.set_position(az_deg, el_deg)
        except BridgeError as exc:
            self.counters.rotator_errors += 1
            self._log.debug("set_position failed", error=str(exc))
            return False
        self.counters.rotator_commands += 1
        return True

    async def _get(self) -> Position | None:
        try:
            return await self.rotator.get_position()
        except BridgeError as exc:
            self.counters.rotator_errors += 1
            self._log.debug("get_position failed", error=str(exc))
            return None

    async def _radio_setup(self, uplink: bool) -> tuple[Vfo, Vfo | None] | None:
        radio = self.radio
        if radio is None:
            return None
        try:
            if radio.capabilities.satellite_mode:
                if radio.satellite_mode is not True:
                    await radio.set_satellite_mode(True)
                return Vfo.DOWNLINK, (Vfo.UPLINK if uplink else None)
            vfos = radio.capabilities.vfos
            return vfos[0], (vfos[1] if uplink and len(vfos) > 1 else None)
        except BridgeError as exc:
            self.counters.radio_errors += 1
            self._log.debug("radio set-up failed", error=str(exc))
            return None

    async def _set_freq(self, hz: float, vfo: Vfo) -> int | None:
        assert self.radio is not None
        try:
            sent = await self.radio.set_frequency(hz, vfo)
        except BridgeError as exc:
            self.counters.radio_errors += 1
            self._log.debug("set_frequency failed", error=str(exc))
            return None
        self.counters.frequency_commands += 1
        return sent

    def _fit_az(self, az_deg: float) -> float:
        """gpredict: an azimuth in 0..360 clamped to the configured limits."""
        caps = self.rotator.capabilities
        return min(max(az_deg % 360.0, caps.az_min_deg), caps.az_max_deg)


class GpredictLike(_Baseline):
    """gpredict's rotator and rig control; see the module docstring."""

    name = "gpredict-like"

    async def run_schedule(self, jobs: Sequence[TrackJob]) -> list[TrackReport]:
        """Track ``jobs`` in order (gpredict aimed at each next satellite from the last LOS)."""
        out: list[TrackReport] = []
        for job in sorted(jobs, key=lambda j: j.aos):
            if job.los <= self.clock.now():
                continue
            out.append(await self._track(job))
        return out

    async def _track(self, job: TrackJob) -> TrackReport:
        caps = self.rotator.capabilities
        report = TrackReport(job.pass_.norad_id, job.aos, job.los, variant="gpredict")
        self.reports.append(report)
        sky = self._sky(job)
        stop = caps.az_min_deg % 360.0
        flipped = is_flipped_pass(sky.az_deg, stop) and caps.el_max_deg >= 180.0
        report.variant = "gpredict-flip" if flipped else "gpredict"
        sat = job.satellite
        vfos = await self._radio_setup(uplink=sat.uplink_hz is not None)
        last_down: int | None = None
        last_up: int | None = None
        setpoint: tuple[float, float] | None = None
        # gpredict points at (AOS az, el 0) as soon as it targets the pass and then only
        # repeats that setpoint each cycle until the pass is near: the simulation sends it
        # once and skips the idle cycles (nothing observable happens in them).
        if sky.at_time(self.clock.now()) < sky.aos_s - _GPREDICT_IDLE_SKIP_S:
            first = self._setpoint(sky.az_deg[0], 0.0, flipped)
            if await self._set(*first):
                setpoint = first
            await self.clock.sleep_until(sky.time_at(sky.aos_s - _GPREDICT_IDLE_SKIP_S))
        actual = await self._get()
        next_rig = 0.0
        while True:
            now_s = sky.at_time(self.clock.now())
            if now_s >= sky.los_s:
                break
            # -- rotator cycle
            if now_s < sky.aos_s:
                target = self._setpoint(sky.az_deg[0], 0.0, flipped)
            else:
                here = sky.point(now_s)
                target = self._setpoint(here.az_deg, here.el_deg, flipped)
                if actual is None or self._exceeded(target, actual):
                    target = self._aim_ahead(sky, now_s, target, flipped)
            # A new target goes out only if it moved more than the threshold from the last one.
            if setpoint is None or self._apart(target, setpoint):
                if await self._set(*target):
                    setpoint = target
                await self.clock.sleep(_GPREDICT_READ_DELAY_S)
            actual = await self._get()
            # -- rig cycle (1 s as well)
            if vfos is not None and now_s >= next_rig:
                next_rig = now_s + _GPREDICT_CYCLE_S
                rr = sky.point(max(now_s, sky.aos_s)).range_rate_km_s
                down_vfo, up_vfo = vfos
                if sat.downlink_hz is not None:
                    want = sat.downlink_hz * (1 - rr / SPEED_OF_LIGHT_KM_S)
                    if last_down is None or abs(want - last_down) >= _GPREDICT_RIG_STEP_HZ:
                        last_down = await self._set_freq(want, down_vfo) or last_down
                    last_down = await self._read_back(down_vfo, last_down)
                if sat.uplink_hz is not None and up_vfo is not None:
                    want = sat.uplink_hz * (1 + rr / SPEED_OF_LIGHT_KM_S)
                    if last_up is None or abs(want - last_up) >= _GPREDICT_RIG_STEP_HZ:
                        last_up = await self._set_freq(want, up_vfo) or last_up
            now2 = sky.at_time(self.clock.now())
            await self.clock.sleep(max(0.0, _GPREDICT_CYCLE_S - (now2 - now_s)))
        return report

    async def _read_back(self, vfo: Vfo, last: int | None) -> int | None:
        """gpredict reads the rig back each cycle (the dial check); we keep what it reads."""
        assert self.radio is not None
        try:
            read = await self.radio.get_frequency(vfo)
        except BridgeError:
            self.counters.radio_errors += 1
            return last
        if last is not None and abs(read - last) >= _GPREDICT_RIG_STEP_HZ:
            self.counters.dial_turns += 1
        return read

    @staticmethod
    def _exceeded(setpoint: tuple[float, float], actual: Position) -> bool:
        """|set - read| above the threshold on az (read folded into 0..360) or el."""
        return (
            abs(setpoint[0] - actual.az_deg % 360.0) > _GPREDICT_THRESHOLD_DEG
            or abs(setpoint[1] - actual.el_deg) > _GPREDICT_THRESHOLD_DEG
        )

    @staticmethod
    def _apart(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return abs(a[0] - b[0]) > _GPREDICT_THRESHOLD_DEG or abs(a[1] - b[1]) > (
            _GPREDICT_THRESHOLD_DEG
        )

    def _aim_ahead(
        self, sky: SkyTrack, now_s: float, now_set: tuple[float, float], flipped: bool
    ) -> tuple[float, float]:
        """Bisect up to LOS for the latest time the satellite's setpoint is still within the
        threshold of ``now_set`` on both axes; that future setpoint is commanded."""
        delta = sky.los_s - now_s
        step = max(delta / 2.0, _GPREDICT_CYCLE_S)
        found = now_set
        while step > _GPREDICT_CYCLE_S / 4.0:
            p = sky.point(now_s + delta)
            cand = self._setpoint(p.az_deg, p.el_deg, flipped)
            if p.el_deg < 0.0 or not (
                abs(now_set[0] - cand[0]) <= _GPREDICT_THRESHOLD_DEG
                and abs(now_set[1] - cand[1]) <= _GPREDICT_THRESHOLD_DEG
            ):
                delta -= step
            else:
                delta += step
                found = cand
            step /= 2.0
        p = sky.point(min(now_s + max(delta, 0.0), sky.los_s))
        last = self._setpoint(p.az_deg, p.el_deg, flipped)
        return last if not self._apart(last, now_set) else found

    def _setpoint(self, az: float, el: float, flipped: bool) -> tuple[float, float]:
        caps = self.rotator.capabilities
        if flipped:
            az, el = az + 180.0, 180.0 - el
        el = min(max(el, caps.el_min_deg), caps.el_max_deg)
        return round(self._fit_az(az), 2), round(el, 2)


class SatnogsLike(_Baseline):
    """The SatNOGS client's rotator and Doppler workers; see the module docstring."""

    name = "satnogs-like"

    async def run_schedule(self, jobs: Sequence[TrackJob]) -> list[TrackReport]:
        """Observe ``jobs`` in order, each from its AOS (the observation start) to LOS."""
        out: list[TrackReport] = []
        for job in sorted(jobs, key=lambda j: j.aos):
            if job.los <= self.clock.now():
                continue
            await self.clock.sleep_until(job.aos)
            out.append(await self._track(job))
        return out

    async def _track(self, job: TrackJob) -> TrackReport:
        caps = self.rotator.capabilities
        report = TrackReport(job.pass_.norad_id, job.aos, job.los, variant="satnogs")
        self.reports.append(report)
        sky = self._sky(job)
        flip = caps.el_max_deg >= 180.0 and sky.max_el_deg >= _SATNOGS_FLIP_ANGLE_DEG
        report.variant = "satnogs-flip" if flip else "satnogs"
        mid = sky.point(sky.tca_s)
        sat = job.satellite
        vfos = await self._radio_setup(uplink=False)
        next_doppler = 0.0
        while True:
            now_s = sky.at_time(self.clock.now())
            if now_s >= sky.los_s:
                break
            here = sky.point(now_s)
            az, alt = here.az_deg, here.el_deg
            if flip and now_s > sky.tca_s:
                d = (az - mid.az_deg + 180.0) % 360.0 - 180.0
                az = (mid.az_deg - d) % 360.0
                alt = 2 * mid.el_deg - alt
            current = await self._get()
            if current is not None:
                d_az = abs(az - current.az_deg % 360.0)
                if d_az > _SATNOGS_THRESHOLD_DEG or abs(alt - current.el_deg) > (
                    _SATNOGS_THRESHOLD_DEG
                ):
                    await self._set(round(az, 2), round(alt, 2))
            if vfos is not None and sat.downlink_hz is not None and now_s >= next_doppler:
                next_doppler = now_s + _SATNOGS_DOPPLER_PERIOD_S
                want = sat.downlink_hz * (1 - here.range_rate_km_s / SPEED_OF_LIGHT_KM_S)
                await self._set_freq(want, vfos[0])
            now2 = sky.at_time(self.clock.now())
            await self.clock.sleep(max(0.0, _SATNOGS_LOOP_S - (now2 - now_s)))
        return report
