"""Benchmark: the station daemon (two simulated antennas, full telemetry, embedded broker).

1. Simulated-time speed: ``--hours`` of the simulated station on a stepped virtual clock
   (as fast as the CPU allows; every wake-up in deadline order), default tracking settings
   (control tick 0.1..1 s, 4 Hz pointing/link telemetry), telemetry to the embedded broker.
   Also the same on the free-running clock at ``--speed`` (what ``groundlink demo`` does),
   with the pointing error it achieved (a loop that cannot keep up shows as error).
2. Real time: ``--real-s`` seconds during passes on a clock running at real speed: CPU use
   of the process (getrusage) and the lateness of every control-loop wake-up (p50/p99/max).
3. Resident memory (max RSS of the process).

    .venv/bin/python bench/daemon.py [--hours 24] [--speed 1000] [--real-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.config import load_config  # noqa: E402
from controller.daemon import Daemon  # noqa: E402
from controller.daemon_config import DaemonConfig  # noqa: E402
from controller.logs import configure_logging  # noqa: E402
from controller.telemetry.broker import EmbeddedBroker  # noqa: E402
from controller.telemetry.commands import TrackCommand  # noqa: E402
from firmware_bridge.clock import Clock, SystemClock, VirtualClock  # noqa: E402

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def _config(tmp: Path, horizon_h: float) -> Path:
    text = (ROOT / "configs" / "simulated.toml").read_text()
    text = text.replace('"../seeds/', f'"{ROOT}/seeds/')
    text = re.sub(r'policy = "\w+"', 'policy = "greedy"', text)
    text = re.sub(r"horizon_h = [0-9.]+", f"horizon_h = {min(24.0, horizon_h + 1)}", text)
    text = text.replace("embedded = true", "embedded = false")
    path = tmp / "station.toml"
    path.write_text(text)
    return path


class _LatenessClock:
    """A clock that records how late each short sleep woke (real seconds at speed 1)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.lateness_s: list[float] = []

    def now(self) -> datetime:
        return self._clock.now()

    def monotonic(self) -> float:
        return self._clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        due = self._clock.monotonic() + max(0.0, seconds)
        await self._clock.sleep(seconds)
        if 0 < seconds <= 2.0:
            self.lateness_s.append(self._clock.monotonic() - due)

    async def sleep_until(self, when: datetime) -> None:
        await self._clock.sleep_until(when)


async def _run(
    path: Path, run_dir: Path, clock: VirtualClock, seconds: float, *, stepped: bool
) -> tuple[Daemon, float]:
    real = SystemClock()
    async with EmbeddedBroker(port=0, ws_port=None) as broker:
        daemon = Daemon(
            load_config(path),
            clock=clock,
            config_path=path,
            settings=DaemonConfig(run_dir=run_dir),
            broker_url=broker.url,
        )
        task = asyncio.create_task(daemon.run())
        while daemon.state != "ready" and not task.done():
            await (clock.advance(0.05) if stepped else real.sleep(0.01))
        t0 = real.monotonic()
        end = clock.now() + timedelta(seconds=seconds)
        while clock.now() < end and not task.done():
            await (clock.advance(10.0) if stepped else real.sleep(0.05))
        elapsed = real.monotonic() - t0
        daemon.request_stop("bench")
        while not task.done():
            await (clock.advance(1.0) if stepped else real.sleep(0.05))
        task.result()
    return daemon, elapsed


def _describe(daemon: Daemon) -> str:
    done = sum(o.status == "executed" for o in daemon.outcomes)
    rms = daemon.stats.pointing_rms_deg
    msgs = sum(daemon.stats.messages.values())
    return (
        f"tracks {done}, messages {msgs}, pointing RMS "
        f"{'-' if rms is None else f'{rms:.2f}'} deg max {daemon.stats.pointing_max_deg:.1f} deg"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--speed", type=float, default=1000.0)
    parser.add_argument("--real-s", type=float, default=60.0)
    parser.add_argument("--skip-stepped", action="store_true", help="no stepped-clock run")
    args = parser.parse_args()
    configure_logging("error")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = _config(tmp, args.hours)
        sim_s = args.hours * 3600
        if not args.skip_stepped:
            clock = VirtualClock(T0)
            daemon, real_s = await _run(path, tmp / "r1", clock, sim_s, stepped=True)
            speed = sim_s / real_s
            took = f"{args.hours:g} h in {real_s:.1f} s = {speed:.0f}x"
            print(f"stepped     : {took}; {_describe(daemon)}")
        clock = VirtualClock(T0)
        clock.start_free_running(1.0)
        daemon, real_s = await _run_free(path, tmp / "r2", clock, sim_s, args.speed)
        took = f"{args.hours:g} h at {args.speed:g}x took {real_s:.1f} s"
        print(f"free-running: {took}; {_describe(daemon)}")
        # Real time, during passes: start where both antennas track (else where one does).
        first = _busiest_moment(daemon)
        base = VirtualClock(first)
        base.start_free_running(1.0)
        measured = _LatenessClock(base)
        before = resource.getrusage(resource.RUSAGE_SELF)
        real = SystemClock()
        async with EmbeddedBroker(port=0, ws_port=None) as broker:
            live = Daemon(
                load_config(path),
                clock=measured,
                config_path=path,
                settings=DaemonConfig(run_dir=tmp / "r3"),
                broker_url=broker.url,
            )
            task = asyncio.create_task(live.run())
            while live.state != "ready":
                await real.sleep(0.05)
            # The plan starts after the trackers' lead time: put both antennas on the passes
            # in progress with the operator's track command instead of waiting minutes.
            for o in daemon.outcomes:
                if o.status == "executed" and o.start <= first < o.end:
                    cmd = TrackCommand(
                        request_id=f"bench-{o.antenna}",
                        ts=first,
                        norad_id=o.norad_id,
                        antenna=o.antenna,
                    )
                    await live.track(cmd)
            await real.sleep(5.0)  # let the late pre-position settle before measuring
            before = resource.getrusage(resource.RUSAGE_SELF)
            measured.lateness_s.clear()
            t0 = real.monotonic()
            await real.sleep(args.real_s)
            wall = real.monotonic() - t0
            after = resource.getrusage(resource.RUSAGE_SELF)
            live.request_stop("bench")
            await task
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        late = sorted(measured.lateness_s)
        tracking = sum(
            o.reason is not None and "daemon stopping" in o.reason for o in live.outcomes
        )

        def pct(q: float) -> float:
            return 1000 * late[min(len(late) - 1, int(q * len(late)))] if late else float("nan")

        print(
            f"real time   : {wall:.0f} s, CPU {100 * cpu / wall:.1f} % of one core, "
            f"{len(late)} wake-ups, lateness p50 {pct(0.5):.2f} ms p99 {pct(0.99):.2f} ms "
            f"max {1000 * (late[-1] if late else 0):.2f} ms; tracks under way {tracking}"
        )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"memory      : max RSS {rss_mb:.0f} MB (whole benchmark process)")


def _busiest_moment(daemon: Daemon) -> datetime:
    """The first time, 60 s into a track, when the most antennas are tracking."""
    spans = [(o.start, o.end) for o in daemon.outcomes if o.status == "executed"]
    best, best_count = T0, -1
    for start, _ in sorted(spans):
        t = start + timedelta(seconds=60)
        count = sum(1 for a, b in spans if a <= t and t + timedelta(seconds=90) <= b)
        if count > best_count:
            best, best_count = t, count
    return best


async def _run_free(
    path: Path, run_dir: Path, clock: VirtualClock, seconds: float, speed: float
) -> tuple[Daemon, float]:
    real = SystemClock()
    async with EmbeddedBroker(port=0, ws_port=None) as broker:
        daemon = Daemon(
            load_config(path),
            clock=clock,
            config_path=path,
            settings=DaemonConfig(run_dir=run_dir),
            broker_url=broker.url,
            on_ready=lambda: clock.start_free_running(speed),
        )
        task = asyncio.create_task(daemon.run())
        while daemon.state != "ready":
            await real.sleep(0.01)
        t0 = real.monotonic()
        await clock.sleep(seconds)
        elapsed = real.monotonic() - t0
        daemon.request_stop("bench")
        await task
    return daemon, elapsed


if __name__ == "__main__":
    asyncio.run(main())
