"""Closed loop: a tracking policy against the simulator twins on a virtual clock, and metrics.

One run (:func:`run_closed_loop`) builds, on a :class:`~firmware_bridge.clock.VirtualClock`:

* a rotator twin (``rotctld``, which carries any range: 0..450, 0..360, el 0..180) with the
  scenario's capabilities and reply latency, and its driver over ``loop://``;
* a radio twin (``rigctld``) whose S-meter is a :class:`~controller.tracking.link.
  LinkSignalModel` of the true geometry (the satellite from the predictor, the rotator twin's
  true antenna direction, the radio twin's real downlink frequency), and its driver;
* the policy (groundlink's :class:`~controller.tracking.tracker.AntennaTracker`, or a baseline
  from :mod:`controller.tracking.baselines`) running the scenario's tracks;
* an observer that samples the truth (antenna direction and downlink frequency in the twins)
  every ``sample_period_s`` from AOS to LOS of every pass, without any I/O.

Nothing ticks while nobody waits: the rotator physics is a closed-form function of time and the
virtual clock jumps from one wake-up to the next, so a day of passes takes seconds.

Metrics per pass (:class:`PassMetrics`), from the observer's samples and the predictor's true
look angles: pointing error RMS and maximum between AOS and LOS (the part above the mask),
link availability (fraction of samples with SNR at or above the required SNR, link model with
the true pointing error and the true frequency error), outage, time lost after AOS (until the
first sample with the link), rotator and frequency commands sent (from the previous pass's
LOS to this LOS, so the pre-position move counts for the pass it prepares).
:func:`hard_passes` finds the hard cases in the seed scenario; :func:`seed_day` builds the day.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal, Protocol

import numpy as np

from controller.config import load_config
from controller.orbit.catalog import Catalog
from controller.orbit.predictor import Pass, PassPredictor, Station
from controller.telemetry.sink import TelemetrySink
from controller.tracking.baselines import GpredictLike, SatnogsLike
from controller.tracking.config import (
    AntennaLinkConfig,
    DopplerSettings,
    PointingSettings,
    SatelliteLinkConfig,
    TrackingConfig,
)
from controller.tracking.doppler import downlink_at_ground_hz
from controller.tracking.link import (
    BOLTZMANN_DBW_K_HZ,
    Emitter,
    LinkBudget,
    LinkSignalModel,
    atmospheric_loss_db,
    free_space_loss_db,
)
from controller.tracking.pointing import outage_lower_bound_s
from controller.tracking.sky import SkyTrack, separation_deg
from controller.tracking.tracker import AntennaTracker, Counters, TrackJob, TrackReport
from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers.radio import RadioDriver, create_radio
from firmware_bridge.drivers.rotator import (
    Position,
    RotatorCapabilities,
    RotatorDriver,
    create_rotator,
)
from firmware_bridge.simulators import create_simulator
from firmware_bridge.simulators.radio import RigctldTwin
from firmware_bridge.simulators.rotator import RotatorTwin
from firmware_bridge.transports import LoopRegistry

__all__ = [
    "POLICIES",
    "PassMetrics",
    "PolicyName",
    "RunMetrics",
    "Scenario",
    "ScenarioPass",
    "eirp_for_margin",
    "g_over_t_for_beam",
    "hard_passes",
    "load_seed",
    "one_antenna",
    "run_closed_loop",
    "seed_day",
    "simulate",
]

PolicyName = Literal["groundlink", "gpredict-like", "satnogs-like"]
POLICIES: Final[tuple[PolicyName, ...]] = ("groundlink", "gpredict-like", "satnogs-like")

_SYSTEM_NOISE_K: Final = 500.0
_APERTURE_CONSTANT: Final = 27_000.0
"""G ~ 27000 / HPBW^2 (deg): a dish or Yagi with typical efficiency."""
_DEFAULT_DOWNLINK_HZ: Final = 437.0e6
_MAX_RUN_OVERSHOOT_S: Final = 3600.0


class _Policy(Protocol):
    counters: Counters

    async def run_schedule(self, jobs: Sequence[TrackJob]) -> list[TrackReport]: ...


# --------------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class ScenarioPass:
    """A pass of the scenario and the category it stands for (``day``, ``overhead``, ...)."""

    job: TrackJob
    category: str


@dataclass(frozen=True)
class Scenario:
    """Everything a closed-loop run needs besides the policy."""

    station: Station
    predictor: PassPredictor
    passes: tuple[ScenarioPass, ...]
    capabilities: RotatorCapabilities
    beamwidth_deg: float
    tracking: TrackingConfig
    start: datetime
    antenna_id: str = "ant1"
    rotator_start: Position | None = None
    rotator_latency_s: float = 0.05
    radio_latency_s: float = 0.0
    sample_period_s: float = 0.5
    true_offsets_hz: dict[int, float] = field(default_factory=dict)
    """The satellites' real oscillator errors (default: what the calibration says)."""

    def with_rotator(
        self, capabilities: RotatorCapabilities, beamwidth_deg: float, tracking: TrackingConfig
    ) -> Scenario:
        """The same passes on another rotator/beam/link configuration."""
        return replace(
            self, capabilities=capabilities, beamwidth_deg=beamwidth_deg, tracking=tracking
        )

    def budget(self, satellite: SatelliteLinkConfig) -> LinkBudget | None:
        """The link budget of a satellite through this scenario's antenna."""
        if satellite.downlink_hz is None:
            return None
        return LinkBudget.for_link(
            satellite, self.tracking.antenna(self.antenna_id), self.beamwidth_deg
        )


def g_over_t_for_beam(beamwidth_deg: float, system_noise_k: float = _SYSTEM_NOISE_K) -> float:
    """G/T (dB/K) of an antenna with this half-power beamwidth: G ~ 27000/HPBW^2, T_sys."""
    gain_dbi = 10 * math.log10(_APERTURE_CONSTANT / (beamwidth_deg * beamwidth_deg))
    return gain_dbi - 10 * math.log10(system_noise_k)


def eirp_for_margin(
    *,
    freq_hz: float,
    g_over_t_db_k: float,
    bandwidth_hz: float,
    required_snr_db: float,
    margin_db: float,
    range_km: float,
    el_deg: float,
    zenith_atmospheric_loss_db: float,
) -> float:
    """The EIRP (dBW) that closes the link with ``margin_db`` at ``range_km`` / ``el_deg``."""
    losses = float(free_space_loss_db(range_km, freq_hz)) + float(
        atmospheric_loss_db(el_deg, zenith_atmospheric_loss_db)
    )
    return (
        required_snr_db
        + margin_db
        + 10 * math.log10(bandwidth_hz)
        + losses
        - g_over_t_db_k
        + BOLTZMANN_DBW_K_HZ
    )


def _max_range_km(station: Station, predictor: PassPredictor, passes: Sequence[Pass]) -> float:
    """The longest range at AOS/LOS among ``passes`` (the worst point of any budget)."""
    worst = 0.0
    for p in passes:
        look = predictor.look_angles(p.norad_id, station, [p.aos, p.los])
        worst = max(worst, float(np.max(look.range_km)))
    return worst


def load_seed(config_path: Path, now: datetime) -> tuple[Station, PassPredictor, list[int]]:
    """The station, a predictor over the config's catalog, and the configured NORAD ids."""
    cfg = load_config(config_path)
    catalog = Catalog.from_files(cfg.catalog.tle_files, now=now)
    predictor = PassPredictor(list(catalog))
    return cfg.station.station(), predictor, [s.norad_id for s in cfg.satellites]


def seed_day(
    config_path: Path,
    day: datetime,
    *,
    capabilities: RotatorCapabilities,
    beamwidth_deg: float,
    margin_db: float = 3.0,
    min_el_deg: float = 0.0,
    hard: bool = False,
    pointing: PointingSettings | None = None,
    doppler: DopplerSettings | None = None,
) -> Scenario:
    """The seed scenario's day: the configured satellites' passes over the configured station.

    Every satellite gets a budget that closes with ``margin_db`` at the longest range of the
    scenario (perfect pointing and tuning), so the beam and the pointing decide the link. With
    ``hard`` the hard passes of the following two days are added (:func:`hard_passes`).
    """
    config = load_config(config_path)
    station, predictor, norad_ids = load_seed(config_path, day)
    end = day + timedelta(days=1)
    found = predictor.passes(station, day, end).passes
    day_passes = [p for p in found if p.norad_id in norad_ids and p.max_el_deg >= min_el_deg]
    chosen: list[tuple[Pass, str]] = [(p, "day") for p in one_antenna(day_passes)]
    if hard:
        chosen += hard_passes(predictor, station, end, end + timedelta(days=2))
    chosen.sort(key=lambda pc: pc[0].aos)
    g_t = g_over_t_for_beam(beamwidth_deg)
    antenna = AntennaLinkConfig(g_over_t_db_k=g_t)
    worst_km = _max_range_km(station, predictor, [p for p, _ in chosen])
    by_id = {s.norad_id: s for s in config.satellites}
    satellites: dict[int, SatelliteLinkConfig] = {}
    for p, _ in chosen:
        if p.norad_id in satellites:
            continue
        base = by_id.get(p.norad_id)
        down = base.downlink_hz if base is not None and base.downlink_hz else _DEFAULT_DOWNLINK_HZ
        up = base.uplink_hz if base is not None else None
        probe = SatelliteLinkConfig(norad_id=p.norad_id, downlink_hz=down, uplink_hz=up)
        eirp = eirp_for_margin(
            freq_hz=down,
            g_over_t_db_k=g_t,
            bandwidth_hz=probe.bandwidth_hz,
            required_snr_db=probe.required_snr_db,
            margin_db=margin_db,
            range_km=worst_km,
            el_deg=0.0,
            zenith_atmospheric_loss_db=antenna.zenith_atmospheric_loss_db,
        )
        satellites[p.norad_id] = probe.model_copy(update={"eirp_dbw": eirp})
    tracking = TrackingConfig(
        pointing=pointing or PointingSettings(),
        doppler=doppler or DopplerSettings(),
        antennas={"ant1": antenna},
        satellites=list(satellites.values()),
    )
    passes = tuple(ScenarioPass(TrackJob(p, satellites[p.norad_id]), cat) for p, cat in chosen)
    return Scenario(
        station=station,
        predictor=predictor,
        passes=passes,
        capabilities=capabilities,
        beamwidth_deg=beamwidth_deg,
        tracking=tracking,
        start=chosen[0][0].aos - timedelta(minutes=10) if chosen else day,
    )


def one_antenna(passes: Sequence[Pass], gap_s: float = 60.0) -> list[Pass]:
    """The passes one antenna can take: by AOS, a pass overlapping a kept one (or closer than
    ``gap_s``) is dropped unless it is higher, in which case it replaces it."""
    kept: list[Pass] = []
    for p in sorted(passes, key=lambda p: p.aos):
        if kept and p.aos < kept[-1].los + timedelta(seconds=gap_s):
            if p.max_el_deg > kept[-1].max_el_deg:
                kept[-1] = p
            continue
        kept.append(p)
    return kept


def _crosses_north(predictor: PassPredictor, station: Station, p: Pass) -> bool:
    n = max(8, int(p.duration_s / 10))
    times = [p.aos + timedelta(seconds=p.duration_s * k / (n - 1)) for k in range(n)]
    az = predictor.look_angles(p.norad_id, station, times).az_deg
    return bool(np.any(np.abs(np.diff(az)) > 180.0))


def hard_passes(
    predictor: PassPredictor, station: Station, start: datetime, end: datetime
) -> list[tuple[Pass, str]]:
    """The hard cases among all passes between ``start`` and ``end``, none overlapping another:

    * ``overhead``: the two highest passes, both within 1 deg of the zenith;
    * ``north``: two passes that cross north (az through 0), one at 40..70 deg, one lower;
    * ``wrap-stop``: a pass starting within 2 deg of north (at a 0..360 rotator's stop),
      heading across it;
    * ``back-to-back``: two passes, the second rising within 2 min of the first's LOS on the
      other side of the sky (AOS az at least 150 deg from the LOS az).
    """
    found = sorted(predictor.passes(station, start, end).passes, key=lambda p: p.aos)
    chosen: list[tuple[Pass, str]] = []

    def free(p: Pass, gap_s: float = 300.0) -> bool:
        pad = timedelta(seconds=gap_s)
        return all(p.los + pad <= q.aos or q.los + pad <= p.aos for q, _ in chosen)

    # Whole passes only (not cut by the window), long enough to matter.
    long_enough = [p for p in found if p.duration_s >= 300.0 and not p.flags]
    for p in sorted(long_enough, key=lambda p: -p.max_el_deg):
        if p.max_el_deg < 89.0 or sum(1 for _, c in chosen if c == "overhead") >= 2:
            break
        if free(p):
            chosen.append((p, "overhead"))
    bands = [(40.0, 70.0), (5.0, 40.0)]
    for lo, hi in bands:
        for p in long_enough:
            if lo <= p.max_el_deg <= hi and free(p) and _crosses_north(predictor, station, p):
                chosen.append((p, "north"))
                break
    for p in long_enough:
        az0 = p.aos_az_deg % 360.0
        near_stop = min(az0, 360.0 - az0) <= 2.0 and p.max_el_deg >= 20.0
        if near_stop and free(p) and _crosses_north(predictor, station, p):
            chosen.append((p, "wrap-stop"))
            break
    for i, a in enumerate(long_enough):
        if a.max_el_deg < 20.0 or not free(a, 600.0):
            continue
        for b in long_enough[i + 1 :]:
            gap = (b.aos - a.los).total_seconds()
            if gap > 120.0:
                break
            apart = abs((b.aos_az_deg - a.los_az_deg + 180.0) % 360.0 - 180.0)
            if gap > 0.0 and apart >= 150.0 and b.max_el_deg >= 20.0 and free(b, 600.0):
                chosen.append((a, "back-to-back"))
                chosen.append((b, "back-to-back"))
                break
        if sum(1 for _, c in chosen if c == "back-to-back") >= 2:
            break
    return chosen


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class PassMetrics:
    """How one pass went (truth, not telemetry)."""

    norad_id: int
    category: str
    aos: datetime
    duration_s: float
    samples: int
    rms_error_deg: float
    max_error_deg: float
    availability: float
    outage_s: float
    lost_after_aos_s: float
    rotator_commands: int
    frequency_commands: int
    variant: str | None = None
    lower_bound_s: float | None = None


@dataclass(frozen=True)
class RunMetrics:
    """A whole run: every pass, and totals."""

    policy: str
    passes: tuple[PassMetrics, ...]
    counters: Counters
    sample_period_s: float

    def select(self, categories: Sequence[str] | None = None) -> list[PassMetrics]:
        """The passes of some categories (None: all)."""
        return [p for p in self.passes if categories is None or p.category in categories]

    def availability(self, categories: Sequence[str] | None = None) -> float:
        """Time-weighted link availability over the selected passes."""
        chosen = self.select(categories)
        total = sum(p.samples for p in chosen)
        ok = sum(p.samples * p.availability for p in chosen)
        return ok / total if total else 1.0

    def outage_s(self, categories: Sequence[str] | None = None) -> float:
        """Total outage over the selected passes."""
        return sum(p.outage_s for p in self.select(categories))

    def rms_error_deg(self, categories: Sequence[str] | None = None) -> float:
        """RMS pointing error over every sample of the selected passes."""
        chosen = self.select(categories)
        total = sum(p.samples for p in chosen)
        sq = sum(p.samples * p.rms_error_deg**2 for p in chosen)
        return math.sqrt(sq / total) if total else 0.0

    def max_error_deg(self, categories: Sequence[str] | None = None) -> float:
        """Largest pointing error over the selected passes."""
        return max((p.max_error_deg for p in self.select(categories)), default=0.0)

    def lost_after_aos_s(self, categories: Sequence[str] | None = None) -> float:
        """Total time lost after AOS over the selected passes."""
        return sum(p.lost_after_aos_s for p in self.select(categories))

    def rotator_commands(self, categories: Sequence[str] | None = None) -> int:
        """Rotator commands sent for the selected passes."""
        return sum(p.rotator_commands for p in self.select(categories))

    def frequency_commands(self, categories: Sequence[str] | None = None) -> int:
        """Frequency commands sent for the selected passes."""
        return sum(p.frequency_commands for p in self.select(categories))

    def lower_bound_s(self, categories: Sequence[str] | None = None) -> float | None:
        """Total outage lower bound over the selected passes (None if not computed)."""
        bounds = [p.lower_bound_s for p in self.select(categories)]
        if any(b is None for b in bounds):
            return None
        return float(sum(b for b in bounds if b is not None))


@dataclass
class _Samples:
    times: list[datetime] = field(default_factory=list)
    az_deg: list[float] = field(default_factory=list)
    el_deg: list[float] = field(default_factory=list)
    rx_hz: list[float] = field(default_factory=list)
    counts_before: tuple[int, int] = (0, 0)
    counts_after: tuple[int, int] = (0, 0)


# --------------------------------------------------------------------------- the run


def _make_policy(
    name: PolicyName,
    scenario: Scenario,
    rotator: RotatorDriver,
    radio: RadioDriver,
    clock: VirtualClock,
    sink: TelemetrySink | None,
) -> _Policy:
    if name == "groundlink":
        return AntennaTracker(
            antenna_id=scenario.antenna_id,
            rotator=rotator,
            radio=radio,
            clock=clock,
            predictor=scenario.predictor,
            station=scenario.station,
            beamwidth_deg=scenario.beamwidth_deg,
            sink=sink,
            config=scenario.tracking,
            reports_kept=None,  # every pass of the scenario is scored from its report
        )
    cls = GpredictLike if name == "gpredict-like" else SatnogsLike
    return cls(
        rotator=rotator,
        radio=radio,
        clock=clock,
        predictor=scenario.predictor,
        station=scenario.station,
    )


async def run_closed_loop(
    scenario: Scenario,
    policy: PolicyName,
    *,
    sink: TelemetrySink | None = None,
    lower_bound: bool = False,
) -> RunMetrics:
    """Run ``policy`` over the scenario's passes on a fresh virtual clock; see the module doc.

    With ``lower_bound`` every pass that lost the link also gets the outage lower bound the
    rotator's slew rates allow (:func:`~controller.tracking.pointing.outage_lower_bound_s`).
    """
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r} is not one of {', '.join(POLICIES)}")
    clock = VirtualClock(scenario.start)
    registry = LoopRegistry(clock)
    caps = scenario.capabilities
    rot_twin = create_simulator(
        "rotator",
        "rotctld",
        clock=clock,
        capabilities=caps,
        latency_s=scenario.rotator_latency_s,
        start=scenario.rotator_start,
    )
    assert isinstance(rot_twin, RotatorTwin)

    def antenna_direction() -> tuple[float, float]:
        where = rot_twin.true_position()
        return where.az_deg, where.el_deg

    emitters = []
    for sp in scenario.passes:
        sat = sp.job.satellite
        budget = scenario.budget(sat)
        if budget is None or sat.downlink_hz is None:
            continue
        offset = scenario.true_offsets_hz.get(sat.norad_id, sat.downlink_offset_hz)
        emitters.append(
            Emitter(
                norad_id=sat.norad_id,
                transmit_hz=sat.downlink_hz + offset,
                budget=budget,
                start=sp.job.aos - timedelta(minutes=1),
                end=sp.job.los + timedelta(minutes=1),
            )
        )
    signal = LinkSignalModel(scenario.predictor, scenario.station, antenna_direction, emitters)
    radio_twin = create_simulator(
        "radio", "rigctld", clock=clock, signal=signal, latency_s=scenario.radio_latency_s
    )
    assert isinstance(radio_twin, RigctldTwin)
    rot_server = await rot_twin.serve_loop(registry, "rotator")
    radio_server = await radio_twin.serve_loop(registry, "radio")
    rotator = create_rotator(
        "rotctld", rot_server.url, clock=clock, loop_registry=registry, capabilities=caps
    )
    radio = create_radio("rigctld", radio_server.url, clock=clock, loop_registry=registry)
    samples = [_Samples() for _ in scenario.passes]
    try:
        opening = asyncio.ensure_future(asyncio.gather(rotator.open(), radio.open()))
        while not opening.done():
            await clock.advance(0.05)
        opening.result()
        agent = _make_policy(policy, scenario, rotator, radio, clock, sink)

        async def observe() -> None:
            period = scenario.sample_period_s
            for sp, rec in zip(scenario.passes, samples, strict=True):
                c = agent.counters
                rec.counts_before = (c.rotator_commands, c.frequency_commands)
                await clock.sleep_until(sp.job.aos)
                k = 0
                while True:
                    when = sp.job.aos + timedelta(seconds=k * period)
                    if when > sp.job.los:
                        break
                    await clock.sleep_until(when)
                    where = rot_twin.true_position()
                    rec.times.append(clock.now())
                    rec.az_deg.append(where.az_deg)
                    rec.el_deg.append(where.el_deg)
                    rec.rx_hz.append(float(radio_twin.vfos["A"].freq_hz))
                    k += 1
                c = agent.counters
                rec.counts_after = (c.rotator_commands, c.frequency_commands)

        jobs = [sp.job for sp in scenario.passes]
        work = asyncio.ensure_future(agent.run_schedule(jobs))
        watcher = asyncio.ensure_future(observe())
        last_los = max((j.los for j in jobs), default=scenario.start)
        await clock.run_until(max(last_los, clock.now()))
        deadline = clock.now() + timedelta(seconds=_MAX_RUN_OVERSHOOT_S)
        while not (work.done() and watcher.done()) and clock.now() < deadline:
            await clock.advance(10.0)
        if not work.done():
            work.cancel()
            raise RuntimeError(f"policy {policy} did not finish within an hour after the last LOS")
        work.result()
        watcher.result()
        counters = agent.counters
    finally:
        await rotator.close()
        await radio.close()
        await rot_server.close()
        await radio_server.close()
    reports = {(r.norad_id, r.aos): r for r in getattr(agent, "reports", [])}
    metrics = [
        _pass_metrics(scenario, sp, rec, reports.get((sp.job.pass_.norad_id, sp.job.aos)))
        for sp, rec in zip(scenario.passes, samples, strict=True)
    ]
    if lower_bound:
        metrics = [
            _with_bound(scenario, sp, m) for sp, m in zip(scenario.passes, metrics, strict=True)
        ]
    return RunMetrics(policy, tuple(metrics), counters, scenario.sample_period_s)


def _pass_metrics(
    scenario: Scenario, sp: ScenarioPass, rec: _Samples, report: TrackReport | None
) -> PassMetrics:
    job = sp.job
    period = scenario.sample_period_s
    rotator_cmds = rec.counts_after[0] - rec.counts_before[0]
    freq_cmds = rec.counts_after[1] - rec.counts_before[1]
    if not rec.times:
        return PassMetrics(
            job.pass_.norad_id, sp.category, job.aos, job.pass_.duration_s, 0,
            0.0, 0.0, 1.0, 0.0, 0.0, rotator_cmds, freq_cmds,
            report.variant if report else None,
        )  # fmt: skip
    look = scenario.predictor.look_angles(job.pass_.norad_id, scenario.station, rec.times)
    error = separation_deg(np.array(rec.az_deg), np.array(rec.el_deg), look.az_deg, look.el_deg)
    budget = scenario.budget(job.satellite)
    sat = job.satellite
    if budget is not None and sat.downlink_hz is not None:
        transmit = sat.downlink_hz + scenario.true_offsets_hz.get(
            sat.norad_id, sat.downlink_offset_hz
        )
        heard = np.array(
            [downlink_at_ground_hz(transmit, float(rr)) for rr in look.range_rate_km_s]
        )
        snr = budget.snr_db(look.range_km, look.el_deg, error, np.array(rec.rx_hz) - heard)
        ok = snr >= budget.required_snr_db
    else:
        ok = error <= scenario.beamwidth_deg / 2
    first = np.flatnonzero(ok)
    lost = float(first[0]) * period if len(first) else job.pass_.duration_s
    return PassMetrics(
        norad_id=job.pass_.norad_id,
        category=sp.category,
        aos=job.aos,
        duration_s=job.pass_.duration_s,
        samples=len(rec.times),
        rms_error_deg=float(np.sqrt(np.mean(error * error))),
        max_error_deg=float(np.max(error)),
        availability=float(np.mean(ok)),
        outage_s=float(np.count_nonzero(~ok)) * period,
        lost_after_aos_s=lost,
        rotator_commands=rotator_cmds,
        frequency_commands=freq_cmds,
        variant=report.variant if report else None,
    )


def _with_bound(scenario: Scenario, sp: ScenarioPass, m: PassMetrics) -> PassMetrics:
    if m.outage_s <= 0:
        return replace(m, lower_bound_s=0.0)
    sky = SkyTrack.from_pass(scenario.predictor, scenario.station, sp.job.pass_, step_s=1.0)
    budget = scenario.budget(sp.job.satellite)
    allowed = budget.allowed_error_deg(sky.range_km, sky.el_deg) if budget else None
    bound = outage_lower_bound_s(
        sky,
        scenario.capabilities,
        beamwidth_deg=scenario.beamwidth_deg,
        allowed_error_deg=allowed,
        step_s=scenario.sample_period_s,
    )
    return replace(m, lower_bound_s=bound)


def simulate(scenario: Scenario, policy: PolicyName, *, lower_bound: bool = False) -> RunMetrics:
    """:func:`run_closed_loop` in its own event loop (for scripts and the benchmark)."""
    return asyncio.run(run_closed_loop(scenario, policy, lower_bound=lower_bound))
