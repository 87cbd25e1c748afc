"""The publisher's supervisor on a virtual clock: backoff, never blocking, closing."""

from __future__ import annotations

import asyncio
import random

import pytest

from controller.telemetry.config import MqttConfig
from controller.telemetry.mqtt import Backoff, LinkState, MqttPublisher
from controller.telemetry.payloads import PassEvent, Pointing, Status
from controller.telemetry.sink import TelemetrySink
from firmware_bridge.clock import VirtualClock

from ._samples import T0
from .conftest import DEADLINE_S, free_port


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    """Delays lie in [ceiling/2, ceiling], the ceiling doubling from min_s up to max_s."""
    backoff = Backoff(0.5, 4.0, rng=random.Random(1))
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    delays = [backoff.next_delay() for _ in ceilings]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[3:])) == 3  # jittered: equal ceilings, different delays
    backoff.reset()
    assert backoff.ceiling_s == 0.5
    assert backoff.next_delay() <= 0.5


def test_backoff_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same delays (a seeded run repeats exactly)."""
    a = Backoff(1.0, 30.0, rng=random.Random(42))
    b = Backoff(1.0, 30.0, rng=random.Random(42))
    assert [a.next_delay() for _ in range(8)] == [b.next_delay() for _ in range(8)]


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_backoff_refuses_bad_bounds(lo: float, hi: float) -> None:
    """min_s must be positive and not above max_s."""
    with pytest.raises(ValueError, match="min_s"):
        Backoff(lo, hi, rng=random.Random())


def _dead_config(**overrides: object) -> MqttConfig:
    values: dict[str, object] = {
        "broker": f"mqtt://127.0.0.1:{free_port()}",  # nothing listens there
        "reconnect_min_s": 1.0,
        "reconnect_max_s": 4.0,
    }
    values.update(overrides)
    return MqttConfig.model_validate(values)


async def test_supervisor_retries_on_the_injected_clock() -> None:
    """With the broker down, each retry waits its jittered, capped delay of virtual time."""
    clock = VirtualClock(T0)
    publisher = MqttPublisher(_dead_config(), "gs1", clock, rng=random.Random(7))
    runner = asyncio.create_task(publisher.run())
    delays = []
    try:
        for attempt in range(1, 5):

            def failed_and_waiting(p: MqttPublisher, n: int = attempt) -> bool:
                return p.stats.connect_failures >= n and p.link_state is LinkState.BACKOFF

            await asyncio.wait_for(publisher.wait_for(failed_and_waiting), DEADLINE_S)
            delay = publisher.stats.last_backoff_s
            assert delay is not None
            delays.append(delay)
            # The supervisor's only sleeper is the backoff; its deadline is `delay` after
            # the failure (which may land a little before the last advance finished).
            deadline = clock.next_deadline()
            assert deadline is not None
            assert deadline - delay - 1e-9 <= clock.monotonic() <= deadline
            await clock.run_until(deadline - 0.01)
            assert publisher.stats.connect_attempts == attempt  # still waiting
            assert publisher.link_state is LinkState.BACKOFF
            await clock.run_until(deadline)
            assert publisher.stats.connect_attempts == attempt + 1  # retried on time
        for delay, ceiling in zip(delays, [1.0, 2.0, 4.0, 4.0], strict=True):
            assert ceiling / 2 <= delay <= ceiling
        assert publisher.stats.connects == 0
        assert "refused" in (publisher.stats.last_error or "").lower()
    finally:
        await asyncio.wait_for(publisher.close(timeout_s=1.0), DEADLINE_S)
        await asyncio.wait_for(runner, DEADLINE_S)


async def test_send_never_blocks_and_stays_bounded_while_the_broker_is_down() -> None:
    """Producers keep sending during an outage; the outbox keeps within its bounds."""
    clock = VirtualClock(T0)
    config = _dead_config(outbox_events=50, outbox_stream_depth=5)
    publisher = MqttPublisher(config, "gs1", clock)
    runner = asyncio.create_task(publisher.run())
    try:
        await asyncio.wait_for(
            publisher.wait_for(lambda p: p.link_state is LinkState.BACKOFF), DEADLINE_S
        )
        sample = Pointing(
            antenna="a1",
            mode="tracking",
            norad_id=1,
            target_az_deg=1.0,
            target_el_deg=1.0,
            commanded_az_deg=1.0,
            commanded_el_deg=1.0,
            actual_az_deg=1.0,
            actual_el_deg=1.0,
            error_deg=0.0,
            period_s=0.1,
        )
        for n in range(1, 2001):
            publisher.send(sample)
            if n % 10 == 0:
                publisher.send(PassEvent(antenna="a1", norad_id=n, event="tca"))
        stats = publisher.outbox_stats
        assert stats.events_queued == 50
        assert stats.events_dropped == 200 - 50
        assert stats.streams_queued == 5
        assert stats.stream_dropped == {"groundlink/gs1/antenna/a1/pointing": 1995}
    finally:
        await asyncio.wait_for(publisher.close(timeout_s=1.0), DEADLINE_S)
        await asyncio.wait_for(runner, DEADLINE_S)


async def test_close_during_backoff_returns_without_waiting_out_the_delay() -> None:
    """close() ends run() at once when the supervisor is waiting to retry."""
    clock = VirtualClock(T0)
    publisher = MqttPublisher(
        _dead_config(reconnect_min_s=60.0, reconnect_max_s=60.0), "gs1", clock
    )
    runner = asyncio.create_task(publisher.run())
    await asyncio.wait_for(
        publisher.wait_for(lambda p: p.link_state is LinkState.BACKOFF), DEADLINE_S
    )
    await asyncio.wait_for(publisher.close(timeout_s=5.0), DEADLINE_S)
    await asyncio.wait_for(runner, DEADLINE_S)
    assert publisher.link_state is LinkState.CLOSED
    assert clock.monotonic() == 0.0  # no virtual time had to pass
    with pytest.raises(RuntimeError, match="runs once"):
        await publisher.run()


async def test_send_works_before_run_and_status_is_remembered() -> None:
    """A publisher accepts telemetry before it ever connects (the daemon starts first)."""
    publisher = MqttPublisher(_dead_config(), "gs1", VirtualClock(T0))
    assert isinstance(publisher, TelemetrySink)
    publisher.send(Status(state="ready"))
    publisher.send(PassEvent(antenna="a1", norad_id=1, event="aos"))
    assert publisher.pending >= 2
    assert publisher.link_state is LinkState.IDLE
    await publisher.close()
    assert publisher.link_state in (LinkState.CLOSED,)  # `in`: mypy keeps the IDLE narrowing
