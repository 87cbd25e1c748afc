"""Driver state listeners: called at the moment a driver's state (or its reason) changes.

The daemon raises and clears device alarms from these callbacks instead of polling, so
they must fire on every fault, recovery, device fault and close, with the driver already
showing the new state, and a failing listener must not disturb the driver.
"""

from __future__ import annotations

import contextlib

from firmware_bridge.clock import VirtualClock
from firmware_bridge.drivers import DriverState, Position, RotatorStalled
from firmware_bridge.drivers.base import Driver
from firmware_bridge.protocols.base import Axis
from tests.hal.conftest import drive, inside_target, rotator_rig


class Recorder:
    """Remembers the state, device fault and link error each call saw, with the time."""

    def __init__(self, clock: VirtualClock) -> None:
        """Start with no calls."""
        self.clock = clock
        self.seen: list[tuple[DriverState, str | None, str | None, float]] = []

    def __call__(self, driver: Driver) -> None:
        """Record what the driver shows right now."""
        health = driver.health()
        error = health.link.last_error if health.link is not None else None
        self.seen.append((driver.state, health.device_fault, error, self.clock.monotonic()))

    def last_state(self) -> DriverState:
        """The state the latest call saw."""
        return self.seen[-1][0]

    def states(self) -> list[DriverState]:
        """The states seen, in order, without repeats."""
        out: list[DriverState] = []
        for state, *_ in self.seen:
            if not out or out[-1] is not state:
                out.append(state)
        return out


async def test_fault_and_recovery_are_announced_when_they_happen(clock: VirtualClock) -> None:
    """A silent device: the call comes as the link faults (reason set), then on recovery."""
    async with rotator_rig("easycomm2", "loop", clock) as rig:
        recorder = Recorder(clock)
        rig.driver.add_state_listener(recorder)
        await rig.silence()
        faulted = [s for s in recorder.seen if s[0] is DriverState.FAULTED]
        assert faulted, recorder.seen
        _, _, error, at = faulted[0]
        assert error is not None
        assert "consecutive failed requests" in error
        # Announced within the clock step in which the last request failed (drive() steps
        # 0.05 s), not on a later poll.
        assert clock.monotonic() - 0.05 <= at <= clock.monotonic()
        rig.twin.faults.clear()
        await drive(clock, rig.driver.wait_ready())
        assert recorder.last_state() is DriverState.OK
        assert recorder.states()[-2:] == [DriverState.FAULTED, DriverState.OK]
        assert await rig.call(rig.driver.get_position()) == Position(0.0, 0.0)
        calls = len(recorder.seen)
        await rig.driver.close()
        assert recorder.last_state() is DriverState.DISCONNECTED
        assert len(recorder.seen) == calls + 1


async def test_a_device_fault_is_announced_and_cleared(clock: VirtualClock) -> None:
    """A stalled axis (a device fault over a healthy link) is announced, so is its end."""
    async with rotator_rig("gs232b", "loop", clock) as rig:
        driver = rig.driver
        recorder = Recorder(clock)
        driver.add_state_listener(recorder)
        target = inside_target(driver.capabilities)
        rig.twin.stall(Axis.AZ)
        await rig.command(driver.set_position(target.az_deg, target.el_deg))
        while not any(s[1] for s in recorder.seen):
            assert clock.monotonic() < 4 * driver.stall_timeout_s, recorder.seen
            await clock.advance(0.5)
            # The stall report itself raises; the listener is what is tested here.
            with contextlib.suppress(RotatorStalled):
                await drive(clock, driver.get_position())
        state, fault, _, _ = next(s for s in recorder.seen if s[1])
        assert state is DriverState.FAULTED
        assert fault is not None
        assert "az axis stalled" in fault
        rig.twin.release(Axis.AZ)
        await clock.advance(1.0)
        await rig.call(driver.get_position())
        assert recorder.seen[-1][1] is None
        assert recorder.last_state() is not DriverState.FAULTED


async def test_removed_and_failing_listeners(clock: VirtualClock) -> None:
    """A removed listener is not called; one that raises is logged and the others still run."""
    async with rotator_rig("easycomm2", "loop", clock) as rig:
        removed = Recorder(clock)
        kept = Recorder(clock)

        def broken(_driver: Driver) -> None:
            raise RuntimeError("a bug in a listener")

        rig.driver.add_state_listener(removed)
        rig.driver.add_state_listener(broken)
        rig.driver.add_state_listener(kept)
        rig.driver.remove_state_listener(removed)
        rig.driver.remove_state_listener(removed)  # twice: ignored
        await rig.driver.close()
        assert removed.seen == []
        assert [s[0] for s in kept.seen] == [DriverState.DISCONNECTED]
        assert rig.driver.state is DriverState.DISCONNECTED
