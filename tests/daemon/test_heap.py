"""A daemon that owns its process keeps its long-lived heap out of the collector's passes."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from controller.config import GroundlinkConfig
from controller.daemon import Daemon
from firmware_bridge.clock import VirtualClock
from tests.daemon.conftest import fast_settings, start_daemon, stop_daemon
from tests.telemetry.conftest import free_port


class _Cycle:
    """An object that refers to itself: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


async def test_frozen_at_ready_and_let_go_of_on_reload(
    tmp_path: Path, config: GroundlinkConfig, config_path: Path, clock: VirtualClock
) -> None:
    """With freeze_heap the daemon freezes its heap once ready (a cycle dropped afterwards
    survives a collection), and a reload unfreezes, collects that cycle and freezes again."""
    assert gc.get_freeze_count() == 0  # no daemon of another test left its heap frozen
    held = [_Cycle()]
    gone = weakref.ref(held[0])
    daemon = Daemon(
        config,
        clock=clock,
        config_path=config_path,
        settings=fast_settings(tmp_path / "run"),
        broker_url=f"mqtt://127.0.0.1:{free_port()}",  # nobody listens: telemetry queues
        freeze_heap=True,
    )
    try:
        task = await start_daemon(daemon, clock)
        assert gc.get_freeze_count() > 10_000
        held.clear()
        gc.collect()
        assert gone() is not None  # frozen: collections pass it by
        await daemon.reload_now("tle")
        assert gone() is None  # unfrozen and collected by the reload
        assert gc.get_freeze_count() > 10_000
        assert await stop_daemon(daemon, clock, task) == 0
    finally:
        gc.unfreeze()
