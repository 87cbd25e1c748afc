"""Link model: losses, predicted C/N0 and SNR, and a signal model for the simulated radios.

The budget of one downlink, all in dB::

    C/N0 = EIRP - L_fs - L_atm - L_point - L_tune + G/T - k        (k = -228.6 dBW/K/Hz)
    SNR  = C/N0 - 10 log10(B)

* ``L_fs``: free-space path loss, 20 log10(4 pi d f / c).
* ``L_atm``: clear-air loss, the zenith value times the air mass 1/sin(el) (el held at 3 deg
  or more, where the flat-earth air mass is still within a few percent of the real one).
* ``L_point``: antenna pattern loss from the pointing error. The main lobe is the usual
  parabola in dB, 12 (err/HPBW)^2 (3 dB at half the half-power beamwidth), limited by a
  sidelobe floor (``pattern_floor_db``) beyond it.
* ``L_tune``: mistuning loss from the frequency error through the receiver filter, the same
  shape in frequency: 12 (df/B)^2, 3 dB at the filter edge, limited by a stop-band floor.

:class:`LinkSignalModel` is a ``SignalModel`` for the radio twins
(:mod:`firmware_bridge.simulators.radio`): it computes the S-meter from the *true*
geometry, the satellite's real position (the predictor), the rotator twin's real antenna
direction and the radio's real frequency, so a station that points or tunes badly sees its
signal drop in simulation. The receiver noise sits at ``noise_floor_db`` (dB relative to S9)
and the signal adds its SNR on top, so the meter reads ``floor + 10 log10(1 + 10^(SNR/10))``
and :func:`snr_from_meter_db` turns a reading back into a measured SNR.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import numpy as np

from controller.orbit.predictor import PassPredictor, Station
from controller.tracking.config import AntennaLinkConfig, SatelliteLinkConfig
from controller.tracking.doppler import downlink_at_ground_hz
from controller.tracking.sky import FloatArray, SkyTrack, separation_one_deg

__all__ = [
    "BOLTZMANN_DBW_K_HZ",
    "MISTUNING_FLOOR_DB",
    "NOISE_FLOOR_DB",
    "TRUTH_WINDOW_S",
    "Emitter",
    "LinkBudget",
    "LinkSignalModel",
    "SkyTruth",
    "allowed_pointing_error_deg",
    "atmospheric_loss_db",
    "free_space_loss_db",
    "mistuning_loss_db",
    "pattern_loss_db",
    "snr_from_meter_db",
]

BOLTZMANN_DBW_K_HZ: Final = -228.6
"""Boltzmann's constant in dBW/K/Hz."""
MISTUNING_FLOOR_DB: Final = 40.0
"""Largest mistuning loss: a signal far outside the filter is this far down (stop band)."""
NOISE_FLOOR_DB: Final = -50.0
"""Receiver noise on the S-meter, dB relative to S9 (the radio twins' own floor)."""
_C_M_S: Final = 299_792_458.0
_FSPL_CONST_DB: Final = 20 * math.log10(4 * math.pi / _C_M_S)
_MIN_AIRMASS_EL_DEG: Final = 3.0
_MAIN_LOBE_DB: Final = 12.0
_TRUTH_STEP_S: Final = 1.0
TRUTH_WINDOW_S: Final = 1800.0
_GATE_STEP_S: Final = 30.0
_GATE_EL_DEG: Final = -15.0
# Fine samples below this are below -1 deg (the meter's horizon) between them too.
_SKIP_EL_DEG: Final = -1.5
"""A window whose 30 s samples all lie below -15 deg holds no moment above -1 deg (where a
signal counts): a LEO satellite near the horizon climbs well under 1 deg/s, so 14 deg in
the 15 s to the nearest sample is out of reach."""
"""The simulated sky is propagated in windows this long, one at a time per emitter: memory
and the cost of one propagation stay bounded whatever span an emitter is on the air for."""


def free_space_loss_db(range_km: FloatArray | float, freq_hz: float) -> FloatArray:
    """Free-space path loss 20 log10(4 pi d f / c) in dB."""
    d_m = np.asarray(range_km, dtype=np.float64) * 1000.0
    return np.asarray(
        20 * np.log10(np.maximum(d_m, 1.0)) + 20 * math.log10(freq_hz) + _FSPL_CONST_DB,
        dtype=np.float64,
    )


def atmospheric_loss_db(el_deg: FloatArray | float, zenith_loss_db: float) -> FloatArray:
    """Clear-air loss: the zenith loss times the air mass 1/sin(el), el held at >= 3 deg."""
    el = np.maximum(np.asarray(el_deg, dtype=np.float64), _MIN_AIRMASS_EL_DEG)
    return np.asarray(zenith_loss_db / np.sin(np.radians(el)), dtype=np.float64)


def pattern_loss_db(
    error_deg: FloatArray | float, beamwidth_deg: float, floor_db: float
) -> FloatArray:
    """Antenna pattern loss: 12 (err/HPBW)^2 dB, at most ``floor_db`` (the sidelobes)."""
    x = np.asarray(error_deg, dtype=np.float64) / beamwidth_deg
    return np.asarray(np.minimum(_MAIN_LOBE_DB * x * x, floor_db), dtype=np.float64)


def mistuning_loss_db(
    freq_error_hz: FloatArray | float, bandwidth_hz: float, floor_db: float = MISTUNING_FLOOR_DB
) -> FloatArray:
    """Mistuning loss through the filter: 12 (df/B)^2 dB (3 dB at the edge), at most the floor."""
    x = np.asarray(freq_error_hz, dtype=np.float64) / bandwidth_hz
    return np.asarray(np.minimum(_MAIN_LOBE_DB * x * x, floor_db), dtype=np.float64)


def allowed_pointing_error_deg(
    margin_db: FloatArray | float, beamwidth_deg: float, floor_db: float
) -> FloatArray:
    """The pointing error a margin can absorb: the inverse of :func:`pattern_loss_db`.

    Negative margin: -1 (nothing is allowed); at or above the sidelobe floor: 180 (anything).
    """
    m = np.asarray(margin_db, dtype=np.float64)
    err = beamwidth_deg * np.sqrt(np.maximum(m, 0.0) / _MAIN_LOBE_DB)
    err = np.where(m >= floor_db, 180.0, err)
    return np.asarray(np.where(m < 0, -1.0, err), dtype=np.float64)


def snr_from_meter_db(meter_db: float, noise_floor_db: float = NOISE_FLOOR_DB) -> float:
    """The SNR a meter reading implies (signal power above the noise floor), dB."""
    excess = 10 ** ((meter_db - noise_floor_db) / 10) - 1.0
    return 10 * math.log10(excess) if excess > 1e-6 else -60.0


@dataclass(frozen=True, slots=True)
class LinkBudget:
    """The budget of one downlink through one antenna (everything but the geometry)."""

    freq_hz: float
    eirp_dbw: float
    g_over_t_db_k: float
    bandwidth_hz: float
    required_snr_db: float
    beamwidth_deg: float
    zenith_atmospheric_loss_db: float = 0.1
    pattern_floor_db: float = 30.0

    def __post_init__(self) -> None:
        """Refuse a budget that cannot be computed, naming the field."""
        for name in ("freq_hz", "bandwidth_hz", "beamwidth_deg", "pattern_floor_db"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"LinkBudget.{name}={value!r}: must be a finite number > 0")

    @classmethod
    def for_link(
        cls, satellite: SatelliteLinkConfig, antenna: AntennaLinkConfig, beamwidth_deg: float
    ) -> LinkBudget:
        """The budget of ``satellite``'s downlink through an antenna; needs its downlink_hz."""
        if satellite.downlink_hz is None:
            raise ValueError(
                f"satellite {satellite.norad_id}: no downlink_hz configured, so there is no "
                "link budget; set downlink_hz for it"
            )
        return cls(
            freq_hz=satellite.downlink_hz,
            eirp_dbw=satellite.eirp_dbw,
            g_over_t_db_k=antenna.g_over_t_db_k,
            bandwidth_hz=satellite.bandwidth_hz,
            required_snr_db=satellite.required_snr_db,
            beamwidth_deg=beamwidth_deg,
            zenith_atmospheric_loss_db=antenna.zenith_atmospheric_loss_db,
            pattern_floor_db=antenna.pattern_floor_db,
        )

    def cn0_db_hz(
        self,
        range_km: FloatArray | float,
        el_deg: FloatArray | float,
        pointing_error_deg: FloatArray | float = 0.0,
        freq_error_hz: FloatArray | float = 0.0,
    ) -> FloatArray:
        """Carrier to noise density (dB-Hz)."""
        return np.asarray(
            self.eirp_dbw
            - free_space_loss_db(range_km, self.freq_hz)
            - atmospheric_loss_db(el_deg, self.zenith_atmospheric_loss_db)
            - pattern_loss_db(pointing_error_deg, self.beamwidth_deg, self.pattern_floor_db)
            - mistuning_loss_db(freq_error_hz, self.bandwidth_hz)
            + self.g_over_t_db_k
            - BOLTZMANN_DBW_K_HZ,
            dtype=np.float64,
        )

    def snr_db(
        self,
        range_km: FloatArray | float,
        el_deg: FloatArray | float,
        pointing_error_deg: FloatArray | float = 0.0,
        freq_error_hz: FloatArray | float = 0.0,
    ) -> FloatArray:
        """SNR in the filter bandwidth (dB)."""
        cn0 = self.cn0_db_hz(range_km, el_deg, pointing_error_deg, freq_error_hz)
        return np.asarray(cn0 - 10 * math.log10(self.bandwidth_hz), dtype=np.float64)

    def snr_one_db(
        self,
        range_km: float,
        el_deg: float,
        pointing_error_deg: float = 0.0,
        freq_error_hz: float = 0.0,
    ) -> float:
        """:meth:`snr_db` of one sample, in plain floats.

        The same formula term by term: the simulated S-meter and the trackers' telemetry
        evaluate it a few times per reading, where numpy's per-call overhead on scalars
        costs ten times the arithmetic.
        """
        fspl = (
            20 * math.log10(max(range_km * 1000.0, 1.0))
            + 20 * math.log10(self.freq_hz)
            + _FSPL_CONST_DB
        )
        atm = self.zenith_atmospheric_loss_db / math.sin(
            math.radians(max(el_deg, _MIN_AIRMASS_EL_DEG))
        )
        x = pointing_error_deg / self.beamwidth_deg
        point = min(_MAIN_LOBE_DB * x * x, self.pattern_floor_db)
        f = freq_error_hz / self.bandwidth_hz
        tune = min(_MAIN_LOBE_DB * f * f, MISTUNING_FLOOR_DB)
        cn0 = self.eirp_dbw - fspl - atm - point - tune + self.g_over_t_db_k - BOLTZMANN_DBW_K_HZ
        return cn0 - 10 * math.log10(self.bandwidth_hz)

    def margin_db(
        self,
        range_km: FloatArray | float,
        el_deg: FloatArray | float,
        pointing_error_deg: FloatArray | float = 0.0,
        freq_error_hz: FloatArray | float = 0.0,
    ) -> FloatArray:
        """SNR above the required SNR (dB)."""
        snr = self.snr_db(range_km, el_deg, pointing_error_deg, freq_error_hz)
        return np.asarray(snr - self.required_snr_db, dtype=np.float64)

    def allowed_error_deg(
        self, range_km: FloatArray | float, el_deg: FloatArray | float
    ) -> FloatArray:
        """The largest pointing error that keeps the link (perfectly tuned), per sample."""
        margin = self.margin_db(range_km, el_deg)
        return allowed_pointing_error_deg(margin, self.beamwidth_deg, self.pattern_floor_db)


@dataclass(frozen=True, slots=True)
class Emitter:
    """A satellite transmitter the simulated radio can hear, on the air from ``start`` to ``end``.

    ``transmit_hz`` is what the satellite really transmits (nominal plus its real oscillator
    error, which calibration is meant to find).
    """

    norad_id: int
    transmit_hz: float
    budget: LinkBudget
    start: datetime
    end: datetime


@dataclass(frozen=True)
class _WindowBatch:
    """Windows of several satellites at one start, computed ahead (:meth:`SkyTruth.install`)."""

    start: datetime
    gate: dict[int, float]
    windows: dict[int, tuple[SkyTrack | None, float, float]]


class SkyTruth:
    """The true sky of a station's emitters, propagated one window at a time.

    Every simulated radio of a station hears the same satellites, so their signal models
    share one: each window of each satellite is propagated once for all of them.
    """

    def __init__(self, predictor: PassPredictor, station: Station) -> None:
        self.predictor = predictor
        self.station = station
        # Per satellite, the two windows read last: radios reading a few milliseconds apart
        # on either side of a window's end would otherwise propagate both in turn.
        self._windows: dict[int, list[tuple[datetime, tuple[SkyTrack | None, float, float]]]] = {}
        # The coarse look of the last two window starts, for every watched satellite (the
        # emitters' satellites) at once: the emitters of a station share their window
        # starts, and one batch costs about what a single satellite's coarse look did.
        self._gates: list[tuple[datetime, dict[int, float]]] = []
        self._watched: set[int] = set()
        self.propagated = 0
        """Windows propagated by a reading (not computed ahead): each one held it up."""

    def watch(self, norad_ids: Iterable[int]) -> None:
        """Satellites whose windows will be asked for: their coarse look is one batch."""
        self._watched.update(norad_ids)

    def watched(self) -> list[int]:
        """The satellites whose windows will be asked for, in NORAD order."""
        return sorted(self._watched)

    def window(self, norad_id: int, start: datetime) -> tuple[SkyTrack | None, float, float]:
        """The satellite's track over [start, start + TRUTH_WINDOW_S) (None: below the
        horizon all through it) and the span of track time (seconds) outside which it is
        below -1 deg of elevation."""
        for when, value in self._windows.get(norad_id, ()):
            if when == start:
                return value
        value = self._propagate(norad_id, start)
        self._keep(norad_id, start, value)
        return value

    def has_window(self, start: datetime) -> bool:
        """Whether the window at ``start`` is known for every watched satellite."""
        return all(
            any(when == start for when, _ in self._windows.get(n, ())) for n in self._watched
        )

    def compute_windows(self, norad_ids: Sequence[int], start: datetime) -> _WindowBatch:
        """The windows at ``start`` of ``norad_ids`` and their coarse look, computed ahead
        of the readings that need them. Reads only the predictor, so it may run in a worker
        thread; :meth:`install` then keeps the result (in the loop's thread)."""
        gate = self.predictor.max_elevation_deg(
            norad_ids, self.station, start, TRUTH_WINDOW_S, _GATE_STEP_S
        )
        windows = {n: self._sample(n, start, gate[n]) for n in norad_ids}
        return _WindowBatch(start, gate, windows)

    def install(self, batch: _WindowBatch) -> None:
        """Keep the windows of :meth:`compute_windows` (those already known stay as they
        are: the same values, computed by a reading that came first)."""
        gate = self._gate(batch.start)
        for norad_id, peak_deg in batch.gate.items():
            gate.setdefault(norad_id, peak_deg)
        for norad_id, value in batch.windows.items():
            if not any(when == batch.start for when, _ in self._windows.get(norad_id, ())):
                self._keep(norad_id, batch.start, value)

    def _keep(
        self, norad_id: int, start: datetime, value: tuple[SkyTrack | None, float, float]
    ) -> None:
        kept = self._windows.setdefault(norad_id, [])
        kept.append((start, value))
        if len(kept) > 2:
            # The earliest goes: a window computed ahead may have come before a late one.
            kept.remove(min(kept, key=lambda item: item[0]))

    def _gate(self, start: datetime) -> dict[int, float]:
        """The coarse look of the window at ``start`` (filled as satellites are asked)."""
        for when, kept in self._gates:
            if when == start:
                return kept
        gate: dict[int, float] = {}
        self._gates.append((start, gate))
        if len(self._gates) > 2:
            self._gates.remove(min(self._gates, key=lambda item: item[0]))
        return gate

    def _peak_deg(self, norad_id: int, start: datetime) -> float:
        """The satellite's highest elevation on the coarse grid of the window at ``start``;
        the first satellite asked about a window has every watched one looked at with it."""
        gate = self._gate(start)
        if norad_id not in gate:
            ids = sorted((self._watched | {norad_id}) - gate.keys())
            gate.update(
                self.predictor.max_elevation_deg(
                    ids, self.station, start, TRUTH_WINDOW_S, _GATE_STEP_S
                )
            )
        return gate[norad_id]

    def _propagate(self, norad_id: int, start: datetime) -> tuple[SkyTrack | None, float, float]:
        self.propagated += 1
        return self._sample(norad_id, start, self._peak_deg(norad_id, start))

    def _sample(
        self, norad_id: int, start: datetime, peak_deg: float
    ) -> tuple[SkyTrack | None, float, float]:
        # Full-length windows even past an emitter's end: the geometry is real there too,
        # and a short last window could be shorter than one step.
        end = start + timedelta(seconds=TRUTH_WINDOW_S)
        # A constellation puts hundreds of emitters on the air, most of them below the
        # horizon: a coarse look first spares them the fine sampling.
        if peak_deg < _GATE_EL_DEG:
            return None, math.nan, math.nan
        track = SkyTrack.sample(
            self.predictor, self.station, norad_id, start, end, step_s=_TRUTH_STEP_S
        )
        # Most of a window is below the horizon: reading the meter then skips the
        # interpolation. Between two 1 s samples below -1.5 deg the interpolated point is
        # below -1 deg (a LEO satellite moves well under 0.5 deg of sky in 1 s).
        up = np.flatnonzero(track.el_deg >= _SKIP_EL_DEG)
        if not up.size:
            return None, math.nan, math.nan
        first_s = float(track.t_s[max(0, int(up[0]) - 1)])
        last_s = float(track.t_s[min(len(track.t_s) - 1, int(up[-1]) + 1)])
        return track, first_s, last_s


class LinkSignalModel:
    """S-meter of a simulated radio from the true geometry; see the module docstring."""

    def __init__(
        self,
        predictor: PassPredictor,
        station: Station,
        antenna_direction: Callable[[], tuple[float, float]],
        emitters: Sequence[Emitter] = (),
        *,
        noise_floor_db: float = NOISE_FLOOR_DB,
        truth: SkyTruth | None = None,
    ) -> None:
        """``antenna_direction()`` returns where the antenna really points (rotator frame).

        ``truth``: the station's shared :class:`SkyTruth` (the radios of one station see the
        same sky; each propagates it once); by default a private one.
        """
        if truth is None:
            truth = SkyTruth(predictor, station)
        elif truth.predictor is not predictor or truth.station != station:
            raise ValueError("LinkSignalModel: the shared SkyTruth is of another sky")
        self._truth = truth
        self._direction = antenna_direction
        self._emitters = sorted(emitters, key=lambda e: e.start)
        truth.watch(e.norad_id for e in self._emitters)
        # One window per emitter (the one last read): time moves forward, so the previous
        # window is not needed again, and an emitter off the air holds none.
        # With the track-time span in which the emitter can be above -1 deg of elevation.
        self._windows: dict[Emitter, tuple[int, SkyTrack | None, float, float]] = {}
        # Which emitters a reading looks at. Most emitters of a constellation are below the
        # horizon at any moment, and each knows from its window until when it stays below
        # -1 deg: it sleeps in a heap until then, so a reading costs the emitters that may
        # be heard, not all of them (a loop over 330 emitters took 0.25 ms per reading).
        # Emitters not yet on the air wait in ``_pending`` (by start), those that may be
        # heard are ``_awake``. Built on the first reading, and again if time goes back.
        self._pending: list[Emitter] = []
        self._awake: list[Emitter] = []
        self._asleep: list[tuple[datetime, int, Emitter]] = []
        self._seq = 0
        self._last_now: datetime | None = None
        self.noise_floor_db = noise_floor_db

    def add(self, emitter: Emitter) -> None:
        """Put another transmitter on the air."""
        self._emitters.append(emitter)
        self._emitters.sort(key=lambda e: e.start)
        self._truth.watch((emitter.norad_id,))
        self._last_now = None  # sort it in on the next reading

    def _track(self, emitter: Emitter, now: datetime) -> tuple[SkyTrack | None, float, float]:
        """The emitter's true track over the window holding ``now``, propagated once (None:
        below the horizon all through the window), and the span of track time (seconds)
        outside which it is below -1 deg of elevation.

        Why not one propagation per reading: a single-time call costs a millisecond, and the
        meter is read every second; 1 s samples interpolated on the unit sphere are within
        1e-4 deg of the satellite for LEO. Why windows, not the whole time on the air: an
        emitter on the air for months would need gigabytes of samples up front.
        """
        index = math.floor((now - emitter.start).total_seconds() / TRUTH_WINDOW_S)
        cached = self._windows.get(emitter)
        if cached is not None and cached[0] == index:
            return cached[1], cached[2], cached[3]
        window_start = emitter.start + timedelta(seconds=index * TRUTH_WINDOW_S)
        track, first_s, last_s = self._truth.window(emitter.norad_id, window_start)
        self._windows[emitter] = (index, track, first_s, last_s)
        return track, first_s, last_s

    def _due(self, now: datetime) -> list[Emitter]:
        """The emitters to look at ``now``: on the air and not known to be below -1 deg."""
        if self._last_now is None or now < self._last_now:
            # First reading, a new emitter or time going back (a wall-clock step): start
            # over from the whole list; the windows stay valid.
            self._pending = [e for e in reversed(self._emitters) if e.start > now]
            self._awake = [e for e in self._emitters if e.start <= now]
            self._asleep = []
        self._last_now = now
        pending, awake, asleep = self._pending, self._awake, self._asleep
        while pending and pending[-1].start <= now:
            awake.append(pending.pop())
        while asleep and asleep[0][0] <= now:
            awake.append(heapq.heappop(asleep)[2])
        return awake

    def _sleep(self, emitter: Emitter, until: datetime) -> None:
        self._seq += 1
        heapq.heappush(self._asleep, (until, self._seq, emitter))

    def snr_db(self, now: datetime, rx_freq_hz: float) -> float | None:
        """The SNR of the strongest emitter on the air at ``now`` (None: nothing on the air)."""
        best: float | None = None
        awake = self._due(now)
        still: list[Emitter] = []
        for emitter in awake:
            if now > emitter.end:
                # Off the air for good (time moves forward): its window is not needed again.
                self._windows.pop(emitter, None)
                continue
            track, first_s, last_s = self._track(emitter, now)
            if track is None:
                self._sleep(emitter, self._window_end(emitter, now))
                continue
            t = track.at_time(now)
            if t < first_s:
                self._sleep(emitter, now + timedelta(seconds=first_s - t))
                continue
            if t > last_s:
                self._sleep(emitter, self._window_end(emitter, now))
                continue
            still.append(emitter)
            point = track.point(t)
            if point.el_deg < -1.0:
                continue
            az_a, el_a = self._direction()
            error = separation_one_deg(az_a, el_a, point.az_deg, point.el_deg)
            heard = downlink_at_ground_hz(emitter.transmit_hz, point.range_rate_km_s)
            snr = emitter.budget.snr_one_db(
                point.range_km, point.el_deg, error, float(rx_freq_hz) - heard
            )
            best = snr if best is None else max(best, snr)
        # The strongest emitter does not depend on the order: the awake ones stay in the
        # order they woke up.
        self._awake = still
        return best

    @staticmethod
    def _window_end(emitter: Emitter, now: datetime) -> datetime:
        """The end of ``emitter``'s truth window holding ``now``."""
        index = math.floor((now - emitter.start).total_seconds() / TRUTH_WINDOW_S)
        return emitter.start + timedelta(seconds=(index + 1) * TRUTH_WINDOW_S)

    def signal_db(self, now: datetime, rx_freq_hz: int) -> float:
        """The S-meter level (dB relative to S9): noise plus the strongest emitter's signal."""
        snr = self.snr_db(now, rx_freq_hz)
        if snr is None:
            return self.noise_floor_db
        return self.noise_floor_db + 10 * math.log10(1.0 + 10 ** (snr / 10))
