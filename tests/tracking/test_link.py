"""Link model: losses against hand-computed values, the budget, and the simulated S-meter."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from controller.tracking.config import AntennaLinkConfig, SatelliteLinkConfig
from controller.tracking.doppler import downlink_at_ground_hz
from controller.tracking.link import (
    NOISE_FLOOR_DB,
    TRUTH_WINDOW_S,
    Emitter,
    LinkBudget,
    LinkSignalModel,
    SkyTruth,
    allowed_pointing_error_deg,
    atmospheric_loss_db,
    free_space_loss_db,
    mistuning_loss_db,
    pattern_loss_db,
    snr_from_meter_db,
)
from controller.tracking.sky import SkyTrack
from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers.rotator import Position
from firmware_bridge.simulators import create_simulator
from firmware_bridge.simulators.radio import RigctldTwin
from firmware_bridge.simulators.rotator import RotatorTwin
from tests.tracking.conftest import Seed, caps


def test_free_space_loss_hand_computed() -> None:
    """1000 km at 437 MHz: 32.448 + 20 log10(1000) + 20 log10(437) = 145.257 dB."""
    assert float(free_space_loss_db(1000.0, 437e6)) == pytest.approx(145.257, abs=0.005)


def test_free_space_loss_grows_6_db_per_doubling() -> None:
    """Twice the range, 6.02 dB more loss."""
    a, b = free_space_loss_db(np.array([800.0, 1600.0]), 2.2e9)
    assert b - a == pytest.approx(20 * math.log10(2), abs=1e-9)


def test_atmospheric_loss_by_elevation() -> None:
    """The zenith value at 90 deg, twice it at 30 deg (air mass 2), held below 3 deg."""
    z = 0.4
    assert float(atmospheric_loss_db(90.0, z)) == pytest.approx(0.4)
    assert float(atmospheric_loss_db(30.0, z)) == pytest.approx(0.8)
    assert float(atmospheric_loss_db(-2.0, z)) == pytest.approx(float(atmospheric_loss_db(3.0, z)))


def test_pattern_loss_is_3_db_at_half_the_beamwidth() -> None:
    """The half-power beamwidth: 3 dB down at half of it off axis, 0 on axis, floor beyond."""
    assert float(pattern_loss_db(1.0, 2.0, 30.0)) == pytest.approx(3.0)
    assert float(pattern_loss_db(0.0, 2.0, 30.0)) == 0.0
    assert float(pattern_loss_db(40.0, 2.0, 30.0)) == 30.0


def test_mistuning_loss_is_3_db_at_the_filter_edge() -> None:
    """Half the bandwidth off: 3 dB; far outside: the stop-band floor."""
    assert float(mistuning_loss_db(7500.0, 15000.0)) == pytest.approx(3.0)
    assert float(mistuning_loss_db(-7500.0, 15000.0)) == pytest.approx(3.0)
    assert float(mistuning_loss_db(1e6, 15000.0)) == pytest.approx(40.0)


@pytest.mark.parametrize("margin", [0.1, 3.0, 9.5, 29.0])
def test_allowed_error_inverts_the_pattern(margin: float) -> None:
    """The allowed error is exactly where the pattern loss eats the margin."""
    err = float(allowed_pointing_error_deg(margin, 2.0, 30.0))
    assert float(pattern_loss_db(err, 2.0, 30.0)) == pytest.approx(margin)


def test_allowed_error_edges() -> None:
    """No margin: nothing allowed (-1); a margin beyond the sidelobe floor: anything (180)."""
    out = allowed_pointing_error_deg(np.array([-1.0, 31.0]), 2.0, 30.0)
    assert list(out) == [-1.0, 180.0]


def test_budget_relations() -> None:
    """C/N0 - SNR is 10 log10(B); the margin is SNR minus the required SNR."""
    budget = LinkBudget(437e6, 5.0, -10.0, 12_500.0, 8.0, 10.0)
    cn0 = float(budget.cn0_db_hz(1500.0, 40.0))
    snr = float(budget.snr_db(1500.0, 40.0))
    assert cn0 - snr == pytest.approx(10 * math.log10(12_500.0))
    assert float(budget.margin_db(1500.0, 40.0)) == pytest.approx(snr - 8.0)
    # C/N0 by hand: EIRP - FSPL - atmosphere + G/T + 228.6.
    by_hand = (
        5.0
        - float(free_space_loss_db(1500.0, 437e6))
        - 0.1 / math.sin(math.radians(40.0))
        - 10.0
        + 228.6
    )
    assert cn0 == pytest.approx(by_hand)


def test_scalar_snr_equals_the_vectorised_one() -> None:
    """snr_one_db gives snr_db's value on random samples, across the loss floors and the
    3 deg air-mass limit (ranges from 0.1 m, errors beyond the sidelobes and the filter)."""
    rng = np.random.default_rng(7)
    budget = LinkBudget(437e6, 3.0, -12.0, 25_000.0, 8.0, 12.0, 0.2, 25.0)
    n = 2000
    range_km = 10 ** rng.uniform(-4.0, 4.5, n)
    el_deg = rng.uniform(-5.0, 90.0, n)
    error_deg = rng.uniform(0.0, 60.0, n)
    freq_error_hz = rng.uniform(-80_000.0, 80_000.0, n)
    want = budget.snr_db(range_km, el_deg, error_deg, freq_error_hz)
    got = [
        budget.snr_one_db(float(r), float(e), float(p), float(f))
        for r, e, p, f in zip(range_km, el_deg, error_deg, freq_error_hz, strict=True)
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_budget_needs_a_downlink() -> None:
    """A satellite without downlink_hz has no budget, and the error says what to set."""
    with pytest.raises(ValueError, match="downlink_hz"):
        LinkBudget.for_link(SatelliteLinkConfig(norad_id=7), AntennaLinkConfig(), 10.0)


def test_budget_refuses_a_zero_bandwidth() -> None:
    """A budget that cannot be computed names the field."""
    with pytest.raises(ValueError, match="bandwidth_hz"):
        LinkBudget(437e6, 0.0, 0.0, 0.0, 10.0, 10.0)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 12.0, 40.0])
def test_meter_reading_gives_the_snr_back(snr: float) -> None:
    """floor + 10 log10(1 + 10^(snr/10)) read on the meter turns back into the same SNR."""
    meter = NOISE_FLOOR_DB + 10 * math.log10(1 + 10 ** (snr / 10))
    assert snr_from_meter_db(meter) == pytest.approx(snr, abs=1e-9)


async def test_simulated_s_meter_follows_the_true_pointing_and_tuning(seed_data: Seed) -> None:
    """The radio twin's S-meter, from the rotator twin's true direction and its own frequency:
    on target it shows the budget's SNR, mistuned by half the filter 3 dB less, slewed 6 deg
    away the SNR of the true error (over 2 dB less), and after LOS only noise."""
    p = next(p for p in seed_data.passes if 40 < p.max_el_deg < 70 and p.duration_s > 600)
    track = SkyTrack.from_pass(seed_data.predictor, seed_data.station, p)
    at = track.point(track.tca_s)
    clock = VirtualClock(p.tca)
    rotator = create_simulator(
        "rotator",
        "rotctld",
        clock=clock,
        capabilities=caps(),
        start=Position(at.az_deg, at.el_deg),
    )
    assert isinstance(rotator, RotatorTwin)
    budget = LinkBudget(437e6, 0.0, -15.0, 15_000.0, 10.0, 12.0)
    model = LinkSignalModel(
        seed_data.predictor,
        seed_data.station,
        lambda: (rotator.true_position().az_deg, rotator.true_position().el_deg),
        [Emitter(p.norad_id, 437e6, budget, p.aos, p.los)],
    )
    radio = create_simulator("radio", "rigctld", clock=clock, signal=model)
    assert isinstance(radio, RigctldTwin)
    tuned = round(downlink_at_ground_hz(437e6, at.range_rate_km_s))
    expected = float(budget.snr_db(at.range_km, at.el_deg))
    assert snr_from_meter_db(radio.level_db(tuned)) == pytest.approx(expected, abs=0.05)
    assert snr_from_meter_db(radio.level_db(tuned + 7500)) == pytest.approx(expected - 3, abs=0.05)
    # Slew the real twin 6 deg off in elevation (the physics takes its time on the clock).
    rotator.model.command(at.az_deg, at.el_deg - 6.0)
    await clock.advance(10.0)
    moved = track.point(track.tca_s + 10.0)
    # The spherical law of cosines, written out here (independent of the code under test).
    e1, e2 = math.radians(at.el_deg - 6.0), math.radians(moved.el_deg)
    cos_err = math.sin(e1) * math.sin(e2) + math.cos(e1) * math.cos(e2) * math.cos(
        math.radians(at.az_deg - moved.az_deg)
    )
    model_err = math.degrees(math.acos(min(1.0, cos_err)))
    tuned_now = round(downlink_at_ground_hz(437e6, moved.range_rate_km_s))
    snr_now = float(budget.snr_db(moved.range_km, moved.el_deg, model_err))
    assert snr_from_meter_db(radio.level_db(tuned_now)) == pytest.approx(snr_now, abs=0.05)
    assert snr_now < float(budget.snr_db(moved.range_km, moved.el_deg)) - 2.0
    # After LOS nothing is on the air: the meter shows the noise floor.
    await clock.advance((p.los - p.tca).total_seconds() + 120.0)
    assert radio.level_db(tuned) == pytest.approx(NOISE_FLOOR_DB)


def test_an_emitter_on_the_air_for_400_days_is_propagated_one_window_at_a_time(
    seed_data: Seed,
) -> None:
    """A 400-day emitter is sampled only over the window being read (not 35 million samples),
    and the SNR read in a later window, at a window edge, matches a direct propagation."""
    p = next(p for p in seed_data.passes if 40 < p.max_el_deg < 70 and p.duration_s > 600)
    budget = LinkBudget(437e6, 0.0, -15.0, 15_000.0, 12.0, 12.0)
    emitter = Emitter(
        p.norad_id, 437e6, budget, p.tca - timedelta(days=200), p.tca + timedelta(days=200)
    )
    pointing = {"az_el": (0.0, 90.0)}
    model = LinkSignalModel(
        seed_data.predictor, seed_data.station, lambda: pointing["az_el"], [emitter]
    )
    windows = model._windows  # the cache whose size is the point of the test
    # Read 100 days earlier (satellite wherever it is), then at the pass: the earlier window
    # is replaced, not kept.
    model.snr_db(p.tca - timedelta(days=100), 437e6)
    assert [index for index, *_ in windows.values()] == [4800]
    # TCA minus half a second, the end of window 9599: interpolation must reach its last sample.
    edge = emitter.start + timedelta(seconds=TRUTH_WINDOW_S * 9600 - 0.5)
    look = seed_data.predictor.look_angles(p.norad_id, seed_data.station, [edge])
    az, el = float(look.az_deg[0]) % 360.0, float(look.el_deg[0])
    pointing["az_el"] = (az, el)
    heard = downlink_at_ground_hz(437e6, float(look.range_rate_km_s[0]))
    snr = model.snr_db(edge, heard)
    assert [index for index, *_ in windows.values()] == [9599]
    track = windows[emitter][1]
    assert track is not None
    assert len(track.t_s) <= TRUTH_WINDOW_S + 1
    assert snr == pytest.approx(float(budget.snr_db(float(look.range_km[0]), el)), abs=0.01)
    # Past its end the emitter is off the air and holds no samples.
    assert model.snr_db(emitter.end + timedelta(seconds=1), 437e6) is None
    assert windows == {}


def test_meter_with_many_emitters_matches_a_direct_propagation_around_rise_and_set(
    seed_data: Seed,
) -> None:
    """Four emitters on the air for a day: at times around their rises and sets (where the
    model skips the below-horizon part of its windows) the SNR read is the strongest of a
    direct propagation of each emitter at that instant, and None when none is above -1 deg."""
    # A filter far wider than any Doppler shift: the reading is the geometry's alone.
    budget = LinkBudget(437e6, 0.0, -15.0, 1e9, 12.0, 30.0)
    day0 = min(p.aos for p in seed_data.passes) + timedelta(minutes=5)
    day1 = day0 + timedelta(hours=8)
    sats = sorted({p.norad_id for p in seed_data.passes if day0 <= p.aos < day1})[:4]
    emitters = [Emitter(n, 437e6, budget, day0, day1) for n in sats]
    model = LinkSignalModel(seed_data.predictor, seed_data.station, lambda: (180.0, 45.0), emitters)
    moments = sorted(
        edge + timedelta(seconds=dt)
        for p in seed_data.passes
        if p.norad_id in sats and day0 + timedelta(minutes=1) <= p.aos and p.los < day1
        for edge in (p.aos, p.los)
        for dt in (-40.0, -12.5, -3.0, -0.5, 0.0, 0.7, 4.0, 30.0)
    )
    assert len(moments) > 100
    nothing = 0
    for when in moments:
        best: float | None = None
        for n in sats:
            look = seed_data.predictor.look_angles(n, seed_data.station, [when])
            el = float(look.el_deg[0])
            if el < -1.0:
                continue
            e1, e2 = math.radians(45.0), math.radians(el)
            cos_err = math.sin(e1) * math.sin(e2) + math.cos(e1) * math.cos(e2) * math.cos(
                math.radians(180.0 - float(look.az_deg[0]))
            )
            err = math.degrees(math.acos(max(-1.0, min(1.0, cos_err))))
            snr = float(budget.snr_db(float(look.range_km[0]), el, err))
            best = snr if best is None else max(best, snr)
        got = model.snr_db(when, 437e6)
        if best is None:
            nothing += 1
            assert got is None, when
        else:
            assert got == pytest.approx(best, abs=0.01), when
    assert 0 < nothing < len(moments)


def test_one_emitter_read_every_half_second_through_rise_and_set(seed_data: Seed) -> None:
    """One emitter read every 0.5 s through two rises and sets: the meter hears it exactly
    when a direct propagation puts it above -1 deg (the spans in which the model knows it
    is below and skips it must neither start late nor end late)."""
    budget = LinkBudget(437e6, 0.0, -15.0, 1e9, 12.0, 30.0)
    first = min(seed_data.passes, key=lambda p: p.aos)
    norad_id = first.norad_id
    start = first.aos - timedelta(minutes=20)
    emitter = Emitter(norad_id, 437e6, budget, start, start + timedelta(hours=6))
    model = LinkSignalModel(seed_data.predictor, seed_data.station, lambda: (0.0, 90.0), [emitter])
    # Where the satellite crosses -1 deg (1 s scan), then readings 60 s either side.
    scan = [start + timedelta(seconds=k) for k in range(5 * 3600)]
    el = seed_data.predictor.look_angles(norad_id, seed_data.station, scan).el_deg
    crossings = np.flatnonzero(np.diff(np.sign(el + 1.0)) != 0)[:4]
    assert len(crossings) == 4
    moments = [
        scan[int(c)] + timedelta(seconds=0.5 * k - 60.0) for c in crossings for k in range(241)
    ]
    look = seed_data.predictor.look_angles(norad_id, seed_data.station, moments).el_deg
    heard = 0
    for when, el_deg in zip(moments, look, strict=True):
        got = model.snr_db(when, 437e6)
        if el_deg < -1.0 - 1e-3:
            assert got is None, (when, float(el_deg))
        elif el_deg > -1.0 + 1e-3:
            assert got is not None, (when, float(el_deg))
            heard += 1
    assert 0 < heard < len(moments)


def test_meter_readings_after_time_goes_back_or_an_emitter_is_added_match_a_fresh_model(
    seed_data: Seed,
) -> None:
    """Readings going back in time (a wall-clock step) and after add() read what a model built
    afresh reads: the emitters asleep until their rise are woken again, none is lost."""
    budget = LinkBudget(437e6, 0.0, -15.0, 1e9, 12.0, 30.0)
    day0 = min(p.aos for p in seed_data.passes) + timedelta(minutes=5)
    day1 = day0 + timedelta(hours=6)
    sats = sorted({p.norad_id for p in seed_data.passes if day0 <= p.aos < day1})[:6]
    emitters = [Emitter(n, 437e6, budget, day0, day1) for n in sats]

    def fresh(when: datetime, group: list[Emitter]) -> float | None:
        model = LinkSignalModel(
            seed_data.predictor, seed_data.station, lambda: (180.0, 45.0), group
        )
        return model.snr_db(when, 437e6)

    model = LinkSignalModel(
        seed_data.predictor, seed_data.station, lambda: (180.0, 45.0), emitters[:4]
    )
    passes = sorted(
        (p for p in seed_data.passes if p.norad_id in sats[:4] and day0 < p.aos and p.los < day1),
        key=lambda p: p.aos,
    )
    assert len(passes) >= 4
    # Forward through a few passes (each emitter falls asleep until its rise, and after its
    # set until its window ends), then back to the first pass's culmination, then forward
    # again with two more emitters added.
    forward = [
        when for p in passes[:4] for when in (p.aos - timedelta(seconds=30), p.tca, p.los)
    ] + [passes[3].los + timedelta(seconds=60)]
    heard = 0
    for when in forward:
        got = model.snr_db(when, 437e6)
        assert got == fresh(when, emitters[:4]), when
        heard += got is not None
    assert 0 < heard < len(forward)
    back = passes[0].tca
    got = model.snr_db(back, 437e6)
    assert got is not None
    assert got == fresh(back, emitters[:4])
    for emitter in emitters[4:]:
        model.add(emitter)
    added = [
        p.tca for p in seed_data.passes if p.norad_id in sats[4:] and back < p.aos and p.los < day1
    ]
    assert added
    later = sorted([when for when in forward if when > back] + added)
    for when in later:
        assert model.snr_db(when, 437e6) == fresh(when, emitters), when


def test_radios_of_one_station_share_one_propagation_of_the_sky(seed_data: Seed) -> None:
    """Two antennas' meters on one shared SkyTruth read exactly what they read on private
    ones, with half the propagations; a SkyTruth of another station is refused."""
    budget = LinkBudget(437e6, 0.0, -15.0, 1e9, 12.0, 30.0)
    day0 = min(p.aos for p in seed_data.passes)
    sats = sorted(
        {p.norad_id for p in seed_data.passes if day0 <= p.aos < day0 + timedelta(hours=3)}
    )
    emitters = [Emitter(n, 437e6, budget, day0, day0 + timedelta(hours=4)) for n in sats[:6]]
    directions = [lambda: (90.0, 30.0), lambda: (250.0, 60.0)]
    shared = SkyTruth(seed_data.predictor, seed_data.station)
    privates = [SkyTruth(seed_data.predictor, seed_data.station) for _ in directions]
    on_shared = [
        LinkSignalModel(seed_data.predictor, seed_data.station, d, emitters, truth=shared)
        for d in directions
    ]
    on_private = [
        LinkSignalModel(seed_data.predictor, seed_data.station, d, emitters, truth=t)
        for d, t in zip(directions, privates, strict=True)
    ]
    heard = 0
    for k in range(0, 3 * 3600, 7):
        when = day0 + timedelta(seconds=k)
        for a, b in zip(on_shared, on_private, strict=True):
            got = a.snr_db(when, 437e6)
            assert got == b.snr_db(when, 437e6), when
            heard += got is not None
    assert heard > 100
    assert shared.propagated == privates[0].propagated == privates[1].propagated
    assert shared.propagated >= len(emitters) * 6
    elsewhere = replace(seed_data.station, lat_deg=seed_data.station.lat_deg + 1.0)
    with pytest.raises(ValueError, match="another sky"):
        LinkSignalModel(seed_data.predictor, elsewhere, directions[0], emitters, truth=shared)


def test_the_coarse_look_of_every_watched_satellite_is_one_batch_per_window(
    seed_data: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emitters' satellites are looked at coarsely in one batch per truth window (not one
    call per satellite), and the readings equal those of a truth asked one satellite at a time."""
    budget = LinkBudget(437e6, 0.0, -15.0, 1e9, 12.0, 30.0)
    day0 = min(p.aos for p in seed_data.passes)
    sats = sorted(
        {p.norad_id for p in seed_data.passes if day0 <= p.aos < day0 + timedelta(hours=2)}
    )
    emitters = [Emitter(n, 437e6, budget, day0, day0 + timedelta(hours=3)) for n in sats[:8]]
    predictor = seed_data.predictor
    batches: list[int] = []
    real = predictor.max_elevation_deg

    def counting(ids: Sequence[int], *args: Any) -> dict[int, float]:
        batches.append(len(ids))
        return real(ids, *args)

    model = LinkSignalModel(predictor, seed_data.station, lambda: (180.0, 45.0), emitters)
    monkeypatch.setattr(predictor, "max_elevation_deg", counting)
    readings = [
        model.snr_db(day0 + timedelta(seconds=k), 437e6) for k in range(0, 2 * 3600 + 1, 11)
    ]
    monkeypatch.undo()
    windows = math.ceil(2 * 3600 / TRUTH_WINDOW_S) + 1
    assert batches == [len(emitters)] * len(batches)
    assert 1 <= len(batches) <= windows
    # One satellite at a time: a truth of its own per emitter.
    alone = [
        LinkSignalModel(predictor, seed_data.station, lambda: (180.0, 45.0), [e]) for e in emitters
    ]
    for k, got in zip(range(0, 2 * 3600 + 1, 11), readings, strict=True):
        when = day0 + timedelta(seconds=k)
        each = [m.snr_db(when, 437e6) for m in alone]
        heard = [x for x in each if x is not None]
        assert got == (max(heard) if heard else None), when
    assert any(r is not None for r in readings)


def test_windows_computed_ahead_read_as_the_lazy_ones_and_spare_the_readings(
    seed_data: Seed,
) -> None:
    """A truth whose windows are computed ahead (compute_windows, then install) gives the
    meter exactly the readings of a truth that propagates on demand, and no reading of it
    propagates anything; has_window says which windows are ready."""
    budget = LinkBudget(437e6, 0.0, -15.0, 1e9, 12.0, 30.0)
    day0 = min(p.aos for p in seed_data.passes)
    sats = sorted(
        {p.norad_id for p in seed_data.passes if day0 <= p.aos < day0 + timedelta(hours=2)}
    )
    emitters = [Emitter(n, 437e6, budget, day0, day0 + timedelta(hours=3)) for n in sats[:8]]
    ahead = SkyTruth(seed_data.predictor, seed_data.station)
    lazy = SkyTruth(seed_data.predictor, seed_data.station)
    models = [
        LinkSignalModel(
            seed_data.predictor, seed_data.station, lambda: (180.0, 45.0), emitters, truth=t
        )
        for t in (ahead, lazy)
    ]
    assert ahead.watched() == sorted({e.norad_id for e in emitters})
    heard = 0
    window = -1
    for k in range(0, 2 * 3600, 13):
        when = day0 + timedelta(seconds=k)
        index = math.floor(k / TRUTH_WINDOW_S)
        if index != window:  # the next window, as the daemon's sky task computes it
            window = index
            start = day0 + timedelta(seconds=(index + 1) * TRUTH_WINDOW_S)
            if index == 0:
                assert not ahead.has_window(day0)
                ahead.install(ahead.compute_windows(ahead.watched(), day0))
                assert ahead.has_window(day0)
            assert not ahead.has_window(start)
            ahead.install(ahead.compute_windows(ahead.watched(), start))
            assert ahead.has_window(start)
        got = models[0].snr_db(when, 437e6)
        assert got == models[1].snr_db(when, 437e6), when
        heard += got is not None
    assert heard > 20
    assert ahead.propagated == 0
    assert lazy.propagated >= len(emitters) * 4
    # A window a reading propagated first stays as it was when the same one is installed.
    first = lazy.window(sats[0], day0 + timedelta(seconds=3 * TRUTH_WINDOW_S))
    lazy.install(lazy.compute_windows(lazy.watched(), day0 + timedelta(seconds=3 * TRUTH_WINDOW_S)))
    assert lazy.window(sats[0], day0 + timedelta(seconds=3 * TRUTH_WINDOW_S)) is first
