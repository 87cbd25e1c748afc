"""Benchmark: the station daemon (two simulated antennas, full telemetry, embedded broker).

1. Simulated-time speed: ``--hours`` of the simulated station on a stepped virtual clock
   (as fast as the CPU allows; every wake-up in deadline order), default tracking settings
   (control tick 0.1..1 s, 4 Hz pointing/link telemetry), telemetry to the embedded broker.
   The embedded broker runs in a child process, as ``mqtt.embedded_process`` (the default)
   has the daemon do (``--broker-in-process``: in this process, as before).
   Reported on wall time and on CPU time (this process's plus the broker process's; other
   processes on a shared machine slow the wall figure down), and per phase (this process's
   CPU time only): 10 s steps with no antenna, one antenna or
   both antennas tracking (counted from the pointing samples of the step).
   Also the same on the free-running clock at ``--speed``, with the pointing error it
   achieved (a loop that cannot keep up shows as error), and paced: stepped at up to
   ``--speed`` (what ``groundlink demo`` does), with the speed achieved (a machine that
   cannot keep up runs slower, with exact figures).
2. Real time: ``--real-s`` seconds during passes on a clock running at real speed: CPU use
   of the process (getrusage) and the lateness of every short sleep (p50/p99/max), for the
   antennas' control loops (the tracker tasks) and for every task.
3. Resident memory (max RSS of the process).

    .venv/bin/python bench/daemon.py [--hours 24] [--speed 1000] [--real-s 60]
        [--broker-in-process] [--broker-engine native|amqtt]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar, get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.config import load_config  # noqa: E402
from controller.daemon import Daemon  # noqa: E402
from controller.daemon_config import DaemonConfig  # noqa: E402
from controller.logs import configure_logging  # noqa: E402
from controller.telemetry.broker import BrokerEngine, EmbeddedBroker  # noqa: E402
from controller.telemetry.commands import TrackCommand  # noqa: E402
from firmware_bridge.clock import LATE_S, Clock, Pace, SystemClock, VirtualClock  # noqa: E402

_T = TypeVar("_T")

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
# The embedded broker in a child process, as the daemon runs it by default
# (mqtt.embedded_process); --broker-in-process puts it in this process.
_ISOLATED = [True]
# The broker engine: groundlink's own (the default) or amqtt (--broker-engine amqtt).
_ENGINE: list[BrokerEngine] = ["native"]


def _broker() -> EmbeddedBroker:
    """The embedded broker as the options ask (child process or not, which engine)."""
    return EmbeddedBroker(port=0, ws_port=None, isolated=_ISOLATED[0], engine=_ENGINE[0])


def _child_cpu_s(broker: EmbeddedBroker) -> float:
    """CPU seconds used so far by an isolated broker's process (0 in-process)."""
    if broker.pid is None:
        return 0.0
    fields = Path(f"/proc/{broker.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _config(tmp: Path, horizon_h: float) -> Path:
    text = (ROOT / "configs" / "simulated.toml").read_text()
    text = text.replace('"../seeds/', f'"{ROOT}/seeds/')
    text = re.sub(r'^policy = "\w+"', 'policy = "greedy"', text, flags=re.MULTILINE)
    text = re.sub(r"horizon_h = [0-9.]+", f"horizon_h = {min(24.0, horizon_h + 1)}", text)
    text = text.replace("embedded = true", "embedded = false")
    path = tmp / "station.toml"
    path.write_text(text)
    return path


class _LatenessClock:
    """A clock that records how late each short sleep woke (real seconds at speed 1)."""

    def __init__(self, clock: Clock, loop_prefixes: tuple[str, ...]) -> None:
        self._clock = clock
        self._loop_prefixes = loop_prefixes
        self.lateness_s: list[float] = []
        self.loop_lateness_s: list[float] = []
        """Only the wake-ups of the control loops (tasks named ``<antenna>-...``)."""

    def now(self) -> datetime:
        return self._clock.now()

    def monotonic(self) -> float:
        return self._clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        due = self._clock.monotonic() + max(0.0, seconds)
        await self._clock.sleep(seconds)
        if 0 < seconds <= 2.0:
            late_s = self._clock.monotonic() - due
            self.lateness_s.append(late_s)
            task = asyncio.current_task()
            if task is not None and task.get_name().startswith(self._loop_prefixes):
                self.loop_lateness_s.append(late_s)

    async def sleep_until(self, when: datetime) -> None:
        await self._clock.sleep_until(when)

    def timer(self, seconds: float) -> asyncio.Future[None]:
        return self._clock.timer(seconds)

    async def compute(self, fn: Callable[..., _T], /, *args: object) -> _T:
        return await self._clock.compute(fn, *args)


class _Phases:
    """CPU seconds per 10 s step of simulated time, by how many antennas tracked in it."""

    STEP_S = 10.0

    def __init__(self) -> None:
        self.sim_s: dict[str, float] = {}
        self.cpu_s: dict[str, float] = {}
        self.broker_cpu_s = 0.0
        """CPU seconds of an isolated broker's process over the measured span."""

    def add(self, pointing_samples: int, antennas: int, cpu_s: float) -> None:
        # A tracking antenna sends a pointing sample every telemetry period (4 Hz by
        # default): more than half a step's worth from one antenna means two were tracking.
        per_antenna = 4 * self.STEP_S
        busy = 0 if pointing_samples == 0 else 1 if pointing_samples <= per_antenna else 2
        name = "idle" if busy == 0 else f"{min(busy, antennas)} tracking"
        self.sim_s[name] = self.sim_s.get(name, 0.0) + self.STEP_S
        self.cpu_s[name] = self.cpu_s.get(name, 0.0) + cpu_s

    def describe(self) -> str:
        parts = []
        for name in sorted(self.sim_s):
            sim, cpu = self.sim_s[name], self.cpu_s[name]
            speed = f"{sim / cpu:.0f}x" if cpu > 0 else "-"
            parts.append(f"{name} {sim / 3600:.1f} h at {speed}")
        return "; ".join(parts)


async def _run(
    path: Path,
    run_dir: Path,
    clock: VirtualClock,
    seconds: float,
    *,
    stepped: bool,
    phases: _Phases | None = None,
) -> tuple[Daemon, float]:
    real = SystemClock()
    async with _broker() as broker:
        daemon = Daemon(
            load_config(path),
            clock=clock,
            config_path=path,
            settings=DaemonConfig(run_dir=run_dir),
            broker_url=broker.url,
            freeze_heap=True,  # as groundlink run and demo do
        )
        task = asyncio.create_task(daemon.run())
        while daemon.state != "ready" and not task.done():
            await (clock.advance(0.05) if stepped else real.sleep(0.01))
        t0 = real.monotonic()
        end = clock.now() + timedelta(seconds=seconds)
        antennas = len(daemon.config.antennas)
        broker_cpu0 = _child_cpu_s(broker)
        while clock.now() < end and not task.done():
            if not stepped:
                await real.sleep(0.05)
                continue
            samples, cpu0 = daemon.stats.messages["pointing"], time.process_time()
            await clock.advance(_Phases.STEP_S)
            if phases is not None:
                cpu = time.process_time() - cpu0
                phases.add(daemon.stats.messages["pointing"] - samples, antennas, cpu)
        if phases is not None:
            phases.broker_cpu_s = _child_cpu_s(broker) - broker_cpu0
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
    parser.add_argument(
        "--broker-in-process",
        action="store_true",
        help="run the embedded broker in this process (embedded_process = false)",
    )
    parser.add_argument(
        "--broker-engine",
        choices=get_args(BrokerEngine),
        default="native",
        help="the embedded broker: groundlink's own (default) or amqtt, for comparison",
    )
    args = parser.parse_args()
    _ISOLATED[0] = not args.broker_in_process
    _ENGINE[0] = args.broker_engine
    configure_logging("error")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = _config(tmp, args.hours)
        sim_s = args.hours * 3600
        if not args.skip_stepped:
            clock = VirtualClock(T0)
            phases = _Phases()
            cpu0 = time.process_time()
            daemon, real_s = await _run(path, tmp / "r1", clock, sim_s, stepped=True, phases=phases)
            cpu_s = time.process_time() - cpu0 + phases.broker_cpu_s
            took = f"{args.hours:g} h in {real_s:.1f} s = {sim_s / real_s:.0f}x"
            print(f"stepped     : {took} ({sim_s / cpu_s:.0f}x on CPU time); {_describe(daemon)}")
            print(f"  per phase (CPU time of this process): {phases.describe()}")
            if _ISOLATED[0]:
                print(f"  broker process CPU {phases.broker_cpu_s:.1f} s (counted above)")
            # The peak so far is this one daemon's (its plans and re-plans included); the
            # later runs' daemons come on top of what the process already holds.
            del daemon
            hwm_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"  max RSS after the stepped run (one daemon): {hwm_mb:.0f} MB")
        clock = VirtualClock(T0)
        clock.start_free_running(1.0)
        daemon, real_s = await _run_free(path, tmp / "r2", clock, sim_s, args.speed)
        took = f"{args.hours:g} h at {args.speed:g}x took {real_s:.1f} s"
        print(f"free-running: {took}; {_describe(daemon)}")
        lag = clock.lag
        print(
            f"  clock lag: {lag.wakeups} wake-ups, {100 * lag.late_fraction:.1f} % more than "
            f"{LATE_S:g} s late (virtual), latest {lag.late_max_s:.1f} s"
        )
        clock = VirtualClock(T0)
        clock.start_free_running(1.0)
        pace = Pace(args.speed)
        daemon, real_s = await _run_free(path, tmp / "r2p", clock, sim_s, args.speed, pace)
        took = f"{args.hours:g} h at up to {args.speed:g}x took {real_s:.1f} s"
        print(f"paced       : {took} ({pace.achieved:.0f}x); {_describe(daemon)}")
        print(
            f"  behind the pace {pace.behind} times, {pace.behind_s:.0f} s of virtual time "
            "forgiven; every wake-up at its deadline"
        )
        # Real time, during passes: start where both antennas track (else where one does).
        first = _busiest_moment(daemon)
        base = VirtualClock(first)
        base.start_free_running(1.0)
        config = load_config(path)
        measured = _LatenessClock(base, tuple(f"{a.id}-" for a in config.antennas))
        before = resource.getrusage(resource.RUSAGE_SELF)
        real = SystemClock()
        async with _broker() as broker:
            live = Daemon(
                config,
                clock=measured,
                config_path=path,
                settings=DaemonConfig(run_dir=tmp / "r3"),
                broker_url=broker.url,
                freeze_heap=True,
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
            child_before = _child_cpu_s(broker)
            measured.lateness_s.clear()
            measured.loop_lateness_s.clear()
            t0 = real.monotonic()
            await real.sleep(args.real_s)
            wall = real.monotonic() - t0
            after = resource.getrusage(resource.RUSAGE_SELF)
            child_cpu = _child_cpu_s(broker) - child_before
            child_rss_mb = _child_rss_mb(broker)
            live.request_stop("bench")
            await task
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        tracking = sum(
            o.reason is not None and "daemon stopping" in o.reason for o in live.outcomes
        )
        broker_cpu = f" + broker process {100 * child_cpu / wall:.1f} %" if _ISOLATED[0] else ""
        print(
            f"real time   : {wall:.0f} s, CPU {100 * cpu / wall:.1f} %{broker_cpu} of one core; "
            f"tracks under way {tracking}; load average {_load()}"
        )
        print(f"  control loops: {_lateness(measured.loop_lateness_s)}")
        print(f"  every task   : {_lateness(measured.lateness_s)}")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        extra = f" + broker process {child_rss_mb:.0f} MB" if _ISOLATED[0] else ""
        print(f"memory      : max RSS {rss_mb:.0f} MB (whole benchmark process){extra}")


def _child_rss_mb(broker: EmbeddedBroker) -> float:
    """Peak resident memory of an isolated broker's process (0 in-process)."""
    if broker.pid is None:
        return 0.0
    for line in Path(f"/proc/{broker.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _lateness(samples: list[float]) -> str:
    late = sorted(samples)
    if not late:
        return "no wake-ups"

    def pct(q: float) -> float:
        return 1000 * late[min(len(late) - 1, int(q * len(late)))]

    return (
        f"{len(late)} wake-ups, lateness p50 {pct(0.5):.2f} ms p99 {pct(0.99):.2f} ms "
        f"max {1000 * late[-1]:.2f} ms"
    )


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


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
    path: Path,
    run_dir: Path,
    clock: VirtualClock,
    seconds: float,
    speed: float,
    pace: Pace | None = None,
) -> tuple[Daemon, float]:
    """Free-running at ``speed`` once ready, or (with ``pace``) stepped at up to ``speed``
    as ``groundlink demo`` does."""
    real = SystemClock()
    pacer: list[asyncio.Task[None]] = []

    def on_ready() -> None:
        if pace is None:
            clock.start_free_running(speed)
            return
        clock.stop_free_running()
        pacer.append(asyncio.create_task(clock.run_paced(speed, pace=pace)))

    async with _broker() as broker:
        daemon = Daemon(
            load_config(path),
            clock=clock,
            config_path=path,
            settings=DaemonConfig(run_dir=run_dir),
            broker_url=broker.url,
            freeze_heap=True,  # as groundlink run and demo do
            on_ready=on_ready,
        )
        task = asyncio.create_task(daemon.run())
        while daemon.state != "ready":
            await real.sleep(0.01)
        t0 = real.monotonic()
        await clock.sleep(seconds)
        elapsed = real.monotonic() - t0
        daemon.request_stop("bench")
        await task
        for t in pacer:
            t.cancel()
    return daemon, elapsed


if __name__ == "__main__":
    asyncio.run(main())
