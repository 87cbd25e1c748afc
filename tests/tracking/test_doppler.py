"""Doppler control: hand-computed shifts, sign conventions, transponders, steps and the dial."""

from __future__ import annotations

import pytest

from controller.tracking.config import DopplerSettings, SatelliteLinkConfig, TransponderConfig
from controller.tracking.doppler import (
    Channel,
    DopplerController,
    Transponder,
    downlink_at_ground_hz,
    satellite_frame_downlink_hz,
    satellite_frame_uplink_hz,
    uplink_at_ground_hz,
)

RECEDING_KM_S = 5.0
APPROACHING_KM_S = -6.0

NON_INVERTING = TransponderConfig(
    kind="non_inverting",
    uplink_low_hz=145_900_000,
    uplink_high_hz=146_000_000,
    downlink_low_hz=435_800_000,
    downlink_high_hz=435_900_000,
)
INVERTING = NON_INVERTING.model_copy(update={"kind": "inverting"})


def test_downlink_shift_hand_computed() -> None:
    """437.5 MHz receding at 5 km/s is heard 7296.71 Hz low (437.5e6 * 5 / 299792.458)."""
    assert downlink_at_ground_hz(437.5e6, RECEDING_KM_S) == pytest.approx(437_492_703.285, abs=0.01)


def test_uplink_shift_hand_computed() -> None:
    """145.9 MHz to a receding satellite at 5 km/s is sent 2433.39 Hz high."""
    assert uplink_at_ground_hz(145.9e6, RECEDING_KM_S) - 145.9e6 == pytest.approx(2433.39, abs=0.01)


@pytest.mark.parametrize(("rr", "down_sign", "up_sign"), [(5.0, -1, 1), (-6.0, 1, -1), (0.0, 0, 0)])
def test_sign_conventions(rr: float, down_sign: int, up_sign: int) -> None:
    """Receding: downlink lower, uplink higher; approaching: the reverse; at TCA: no shift."""
    f = 437.0e6

    def sign(x: float) -> int:
        return (x > 0) - (x < 0)

    assert sign(downlink_at_ground_hz(f, rr) - f) == down_sign
    assert sign(uplink_at_ground_hz(f, rr) - f) == up_sign


@pytest.mark.parametrize("rr", [-7.0, -1.5, 0.0, 2.5, 7.0])
def test_uplink_arrives_exactly_on_the_satellite_frequency(rr: float) -> None:
    """What is sent on the ground arrives at the satellite on the frequency asked for."""
    f = 145.95e6
    assert satellite_frame_uplink_hz(uplink_at_ground_hz(f, rr), rr) == pytest.approx(f, abs=1e-6)
    assert satellite_frame_downlink_hz(downlink_at_ground_hz(f, rr), rr) == pytest.approx(
        f, abs=1e-6
    )


def test_transponder_mappings_hand_computed() -> None:
    """Non-inverting: 145.910 up comes down at 435.810; inverting: at 435.890 (mirror)."""
    assert Transponder(NON_INVERTING).downlink_for_uplink(145_910_000) == 435_810_000
    assert Transponder(INVERTING).downlink_for_uplink(145_910_000) == 435_890_000
    assert Transponder(NON_INVERTING).uplink_for_downlink(435_810_000) == 145_910_000
    assert Transponder(INVERTING).uplink_for_downlink(435_890_000) == 145_910_000


@pytest.mark.parametrize(
    "transponder", [NON_INVERTING, INVERTING], ids=["non-inverting", "inverting"]
)
def test_transponder_keeps_the_passband_frequency_constant_at_the_satellite(
    transponder: TransponderConfig,
) -> None:
    """Through the pass, our uplink maps (at the satellite) onto the downlink we listen to."""
    sat = SatelliteLinkConfig(norad_id=1, downlink_hz=435_830_000, transponder=transponder)
    ctl = DopplerController(sat, DopplerSettings())
    mapping = Transponder(transponder)
    heard_at_sat = []
    for rr in (-7.0, -3.0, 0.0, 3.0, 7.0):
        targets = ctl.targets(rr)
        assert targets.uplink_hz is not None
        assert targets.downlink_hz is not None
        up_sat = satellite_frame_uplink_hz(targets.uplink_hz, rr)
        down_sat = satellite_frame_downlink_hz(targets.downlink_hz, rr)
        assert mapping.downlink_for_uplink(up_sat) == pytest.approx(down_sat, abs=1e-3)
        heard_at_sat.append(down_sat)
    assert max(heard_at_sat) - min(heard_at_sat) < 1e-3
    # The ground frequencies themselves move (otherwise nothing was corrected).
    assert ctl.targets(-7.0).downlink_hz != pytest.approx(ctl.targets(7.0).downlink_hz, abs=1000)


def test_inverting_transponder_uplink_moves_the_other_way() -> None:
    """Inverting: working 10 kHz higher in the downlink needs a 10 kHz lower uplink."""
    low = DopplerController(
        SatelliteLinkConfig(norad_id=1, downlink_hz=435_840_000, transponder=INVERTING),
        DopplerSettings(),
    )
    high = DopplerController(
        SatelliteLinkConfig(norad_id=1, downlink_hz=435_850_000, transponder=INVERTING),
        DopplerSettings(),
    )
    assert low.uplink_sat_hz() is not None
    assert high.uplink_sat_hz() is not None
    assert high.uplink_sat_hz() - low.uplink_sat_hz() == pytest.approx(-10_000)  # type: ignore[operator]


def test_calibration_offsets_are_applied_in_the_satellite_frame() -> None:
    """A satellite measured 1.2 kHz high is listened to 1.2 kHz (plus Doppler) high."""
    plain = SatelliteLinkConfig(norad_id=1, downlink_hz=437e6, uplink_hz=145.9e6)
    calibrated = plain.model_copy(update={"downlink_offset_hz": 1200.0, "uplink_offset_hz": -300.0})
    a = DopplerController(plain, DopplerSettings()).targets(0.0)
    b = DopplerController(calibrated, DopplerSettings()).targets(0.0)
    assert b.downlink_hz is not None
    assert a.downlink_hz is not None
    assert b.downlink_hz - a.downlink_hz == pytest.approx(1200.0)
    assert b.uplink_hz is not None
    assert a.uplink_hz is not None
    assert b.uplink_hz - a.uplink_hz == pytest.approx(-300.0)


def test_new_frequency_only_beyond_the_step() -> None:
    """Nothing is sent while the target stays within the step of what the radio acknowledged."""
    ctl = DopplerController(
        SatelliteLinkConfig(norad_id=1, downlink_hz=437e6), DopplerSettings(downlink_step_hz=50.0)
    )
    first = ctl.due(Channel.DOWNLINK, 437_001_000.4)
    assert first == 437_001_000
    ctl.sent(Channel.DOWNLINK, first)
    assert ctl.due(Channel.DOWNLINK, 437_001_049.0) is None
    assert ctl.due(Channel.DOWNLINK, 437_000_951.0) is None
    assert ctl.due(Channel.DOWNLINK, 437_001_051.0) == 437_001_051


def test_default_step_comes_from_the_bandwidth() -> None:
    """Without a configured step, a 2.4 kHz filter gets a 48 Hz step (bandwidth / 50)."""
    ctl = DopplerController(
        SatelliteLinkConfig(norad_id=1, downlink_hz=437e6, bandwidth_hz=2400.0), DopplerSettings()
    )
    assert ctl.steps_hz[Channel.DOWNLINK] == pytest.approx(48.0)


def test_reading_what_we_set_is_not_a_dial_turn() -> None:
    """A read-back equal to the acknowledged value (or within tolerance) changes nothing."""
    ctl = DopplerController(SatelliteLinkConfig(norad_id=1, downlink_hz=437e6), DopplerSettings())
    ctl.sent(Channel.DOWNLINK, 437_000_000)
    assert ctl.observed(Channel.DOWNLINK, 437_000_000, 3.0) is None
    assert ctl.observed(Channel.DOWNLINK, 437_000_004, 3.0) is None
    assert ctl.downlink_shift_hz == 0.0


def test_dial_followed_becomes_the_new_passband_offset() -> None:
    """Follow: the dial's 2 kHz (ground) move is kept, and the transponder uplink follows it."""
    sat = SatelliteLinkConfig(norad_id=1, downlink_hz=435_850_000, transponder=NON_INVERTING)
    ctl = DopplerController(sat, DopplerSettings(dial_policy="follow"))
    rr = 4.0
    before = ctl.targets(rr)
    assert before.downlink_hz is not None
    assert before.uplink_hz is not None
    ctl.sent(Channel.DOWNLINK, round(before.downlink_hz))
    turn = ctl.observed(Channel.DOWNLINK, round(before.downlink_hz) + 2000, rr)
    assert turn is not None
    assert turn.followed
    after = ctl.targets(rr)
    assert after.downlink_hz == pytest.approx(round(before.downlink_hz) + 2000, abs=1.0)
    # Non-inverting: the uplink moves the same way by the same satellite-frame amount.
    moved_sat = 2000.0 / (1 - rr / 299_792.458)
    assert after.uplink_hz is not None
    assert satellite_frame_uplink_hz(after.uplink_hz, rr) - satellite_frame_uplink_hz(
        before.uplink_hz, rr
    ) == pytest.approx(moved_sat, abs=2.0)
    # Nothing more to send: the radio is where the new offset wants it.
    assert ctl.due(Channel.DOWNLINK, after.downlink_hz) is None


def test_dial_ignored_is_undone_by_the_next_send() -> None:
    """Ignore: the turn is reported, the offset stays, and the Doppler frequency goes out again."""
    ctl = DopplerController(
        SatelliteLinkConfig(norad_id=1, downlink_hz=437e6), DopplerSettings(dial_policy="ignore")
    )
    target = ctl.targets(2.0).downlink_hz
    assert target is not None
    ctl.sent(Channel.DOWNLINK, round(target))
    turn = ctl.observed(Channel.DOWNLINK, round(target) - 3000, 2.0)
    assert turn is not None
    assert not turn.followed
    assert ctl.downlink_shift_hz == 0.0
    assert ctl.due(Channel.DOWNLINK, target) == round(target)


def test_uplink_dial_on_an_fm_satellite_moves_only_the_uplink() -> None:
    """Without a transponder, turning the uplink dial leaves the downlink alone."""
    ctl = DopplerController(
        SatelliteLinkConfig(norad_id=1, downlink_hz=437e6, uplink_hz=145.9e6),
        DopplerSettings(dial_policy="follow"),
    )
    before = ctl.targets(0.0)
    assert before.uplink_hz is not None
    ctl.sent(Channel.UPLINK, round(before.uplink_hz))
    ctl.observed(Channel.UPLINK, round(before.uplink_hz) + 500, 0.0)
    after = ctl.targets(0.0)
    assert after.downlink_hz == before.downlink_hz
    assert after.uplink_hz == pytest.approx(before.uplink_hz + 500, abs=1.0)


def test_transponder_needs_a_working_frequency() -> None:
    """A transponder without downlink_hz is refused with a message naming what to set."""
    with pytest.raises(ValueError, match="downlink_hz"):
        DopplerController(
            SatelliteLinkConfig(norad_id=5, transponder=NON_INVERTING), DopplerSettings()
        )
