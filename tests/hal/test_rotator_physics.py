"""The twins' rotator physics: trapezoidal slews in closed form, limits, backlash, stall.

Expected values come from the textbook trapezoid (accelerate at a to v, cruise, brake at a):
a long move of D takes D/v + v/a, a short one 2*sqrt(D/a); they are computed here, not
taken from the code under test.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers import Position, RotatorCapabilities
from firmware_bridge.protocols.base import Axis, Direction
from firmware_bridge.simulators.rotator import AxisMotion, RotatorModel
from tests.hal.conftest import T0

RATE = 6.0
ACCEL = 3.0


def axis(**kwargs: float) -> AxisMotion:
    """An axis 0..450 at rest at 0, rate 6 deg/s, acceleration 3 deg/s^2."""
    options = {"min_deg": 0.0, "max_deg": 450.0, "rate_deg_s": RATE, "accel_deg_s2": ACCEL}
    options.update(kwargs)
    return AxisMotion(**options)


def test_long_move_is_a_trapezoid() -> None:
    """100 deg: 2 s of acceleration to 6 deg/s, cruise, 2 s braking; 100/6 + 2 s in all."""
    motion = axis()
    motion.command(0.0, 100.0)
    ramp_s = RATE / ACCEL
    total_s = 100.0 / RATE + ramp_s
    assert math.isclose(motion.position(ramp_s), 0.5 * ACCEL * ramp_s**2)
    assert math.isclose(motion.state(ramp_s + 1.0)[1], RATE)
    assert math.isclose(motion.position(total_s - ramp_s), 100.0 - 0.5 * ACCEL * ramp_s**2)
    assert motion.moving(total_s - 1e-6)
    assert not motion.moving(total_s + 1e-6)
    assert motion.position(total_s + 5.0) == 100.0
    assert motion.state(total_s + 5.0)[1] == 0.0


def test_short_move_is_a_triangle() -> None:
    """6 deg < v^2/a: never reaches the slew rate; takes 2*sqrt(D/a); peak sqrt(a*D)."""
    motion = axis()
    motion.command(10.0, 6.0)
    half_s = math.sqrt(6.0 / ACCEL)
    assert math.isclose(motion.state(10.0 + half_s)[1], math.sqrt(ACCEL * 6.0))
    assert math.isclose(motion.position(10.0 + half_s), 3.0)
    assert math.isclose(motion.position(10.0 + 2 * half_s), 6.0)
    assert not motion.moving(10.0 + 2 * half_s + 1e-6)


def test_reversal_brakes_first_and_is_continuous() -> None:
    """A new target behind a moving axis: same position and speed at the switch, brake, return."""
    motion = axis()
    motion.command(0.0, 200.0)
    before = motion.state(10.0)
    motion.command(10.0, 20.0)
    after = motion.state(10.0)
    assert math.isclose(before[0], after[0])
    assert math.isclose(before[1], after[1])
    brake_s = before[1] / ACCEL
    peak = before[0] + before[1] ** 2 / (2 * ACCEL)
    assert math.isclose(motion.position(10.0 + brake_s), peak)
    assert math.isclose(motion.state(10.0 + brake_s)[1], 0.0, abs_tol=1e-9)
    assert motion.position(100.0) == 20.0


def test_targets_beyond_the_range_stop_at_the_end() -> None:
    """The limit switch: a target of 500 on a 0..450 axis ends at 450; moves end there too."""
    motion = axis()
    motion.command(0.0, 500.0)
    assert motion.target_deg == 450.0
    assert motion.position(200.0) == 450.0
    motion.move(200.0, positive=False)
    assert motion.position(400.0) == 0.0


def test_stop_brakes_at_full_deceleration() -> None:
    """stop() at cruise speed comes to rest v^2/(2a) further on."""
    motion = axis()
    motion.command(0.0, 300.0)
    p, v = motion.state(20.0)
    motion.stop(20.0)
    assert math.isclose(motion.position(60.0), p + v * v / (2 * ACCEL))
    assert not motion.moving(20.0 + v / ACCEL + 1e-6)


def test_backlash_lags_on_reversal() -> None:
    """With 2 deg of play the antenna trails the motor by 1 deg, on the side it came from."""
    motion = axis(backlash_deg=2.0)
    motion.command(0.0, 10.0)
    assert motion.position(60.0) == 10.0
    assert math.isclose(motion.antenna(60.0), 9.0)
    motion.command(60.0, 5.0)
    # Reversing: the motor takes up 2 deg of play before the antenna moves.
    t_play = 60.0 + math.sqrt(2 * 2.0 / ACCEL)  # 2 deg from rest
    assert math.isclose(motion.antenna(t_play - 0.01), 9.0)
    assert math.isclose(motion.antenna(200.0), 6.0)


def test_stall_freezes_and_release_resumes() -> None:
    """A stalled axis stays put whatever it is told; released, it goes to its last target."""
    motion = axis()
    motion.command(0.0, 100.0)
    frozen = motion.position(5.0)
    motion.stall(5.0)
    motion.command(6.0, 150.0)
    assert motion.position(50.0) == frozen
    assert motion.stalled
    motion.release(50.0)
    assert not motion.stalled
    assert motion.position(200.0) == 150.0


def test_rate_change_mid_move_slows_down() -> None:
    """Lowering the rate while cruising brakes to the new rate and keeps it."""
    motion = axis()
    motion.command(0.0, 400.0)
    motion.set_rate(20.0, 2.0)
    assert math.isclose(motion.state(20.0)[1], RATE)
    assert math.isclose(motion.state(20.0 + (RATE - 2.0) / ACCEL + 1.0)[1], 2.0)
    assert motion.position(1000.0) == 400.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 30.0), st.floats(-50.0, 500.0)),
        min_size=1,
        max_size=8,
    )
)
def test_random_command_sequences_stay_physical(commands: list[tuple[float, float]]) -> None:
    """Any command sequence: continuous state, speed within the rate, inside the range, ends
    at rest on the last (range-limited) target."""
    motion = axis()
    t = 0.0
    for gap_s, target in commands:
        t += gap_s
        before = motion.state(t)
        motion.command(t, target)
        after = motion.state(t)
        assert math.isclose(before[0], after[0], abs_tol=1e-6)
        assert math.isclose(before[1], after[1], abs_tol=1e-6)
        for k in range(40):
            p, v = motion.state(t + k * 0.25)
            assert abs(v) <= RATE + 1e-6
            assert -1e-6 <= p <= 450.0 + 1e-6
    final = min(max(commands[-1][1], 0.0), 450.0)
    assert math.isclose(motion.position(t + 1000.0), final)


async def test_model_is_a_function_of_clock_time() -> None:
    """RotatorModel on a VirtualClock: no tasks, exact positions whenever the clock is read."""
    clock = VirtualClock(T0)
    caps = RotatorCapabilities(
        az_max_deg=450.0,
        el_max_deg=180.0,
        az_rate_deg_s=RATE,
        el_rate_deg_s=2.0,
        az_accel_deg_s2=ACCEL,
        el_accel_deg_s2=ACCEL,
    )
    model = RotatorModel(caps, clock)
    model.command(100.0, 30.0)
    assert clock.pending == 0
    await clock.advance(100.0 / RATE + RATE / ACCEL)
    assert model.position() == Position(100.0, 30.0)
    assert model.true_position() == Position(100.0, 30.0)
    model.move(Direction.DOWN)
    await clock.advance(60.0)
    assert model.position().el_deg == 0.0
    model.stall(Axis.AZ)
    model.command(200.0, None)
    await clock.advance(100.0)
    assert model.position().az_deg == 100.0


def test_target_a_hair_behind_brakes_without_a_speed_jump() -> None:
    """Re-targeting just behind a barely moving axis keeps the speed continuous."""
    motion = axis()
    motion.command(0.0, 1.0)
    t = 1e-5  # moving forward at 3e-5 deg/s, 1.5e-10 deg past the new target
    before = motion.state(t)
    motion.command(t, 0.0)
    after = motion.state(t)
    assert before[1] > 0
    assert math.isclose(after[1], before[1], abs_tol=1e-9)
    assert motion.position(t + 10.0) == 0.0
