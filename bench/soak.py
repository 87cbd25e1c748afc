"""Soak: N simulated days of the seed scenario with random (seeded) faults, invariants checked.

The daemon runs in-process on a stepped virtual clock (as the tests do) with the station of
``configs/simulated.toml`` (scheduler policy and telemetry rate as given on the command
line), a real Mosquitto on a free loopback port, and an observer that records every QoS 1
event (``pass/event``, ``event``). Every ``--fault-every-h`` hours on average (seeded
exponential gaps) one fault is drawn from the fault-injection suite (tests/faults) and
injected; each has a recovery check a while later.

Invariants, checked at every step and at the end:

* no rotator target beyond the limits (every SetPosition the twins received),
* every scheduled track that came due executed or reported aborted with a reason,
* no QoS 1 event lost: the observer's sequence numbers have no gap, except messages the
  broker had acknowledged but not yet forwarded when it was killed (QoS 1 is hop by hop:
  the documented bound is the publisher's in-flight window per kill),
* memory flat: resident size at the end within ``--rss-bound-mb`` of that at the end of
  day 2 (with at least 3 days),
* the daemon never exits.

    .venv/bin/python bench/soak.py [--days 7] [--seed 1] [--fault-every-h 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiomqtt  # noqa: E402

from controller.config import load_config  # noqa: E402
from controller.daemon import Daemon  # noqa: E402
from controller.daemon_config import DaemonConfig  # noqa: E402
from controller.logs import configure_logging  # noqa: E402
from controller.tracking.config import PointingSettings, TrackingConfig  # noqa: E402
from controller.tracking.tracker import TrackJob, TrackReport  # noqa: E402
from firmware_bridge.clock import VirtualClock  # noqa: E402
from firmware_bridge.drivers.base import DriverState  # noqa: E402
from firmware_bridge.protocols.base import Axis, SetPosition  # noqa: E402

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
PREFIX = "groundlink/demo/"
STEP_S = 5.0
FAULTS = (
    "rotator-garbage",
    "rotator-truncate",
    "rotator-late",
    "rotator-stall",
    "broker-kill",
    "broker-freeze",
    "bad-commands",
    "clock-jump",
    "task-crash",
    "rotator-vanish",
    "radio-vanish",
    "bad-tle-reload",
    "bad-config-reload",
    "log-full",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    """Resident size of this process now (MB)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class Mosquitto:
    """One Mosquitto process on a loopback port that can be killed, restarted and frozen."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
            f"log_type information\nuser {getpass.getuser()}\n"
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = await asyncio.create_subprocess_exec(
            binary, "-c", str(conf), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        while b" running" not in (line := await asyncio.wait_for(self.proc.stderr.readline(), 10)):
            if not line:
                raise RuntimeError("mosquitto did not start")
        asyncio.get_running_loop().create_task(self._drain(self.proc))

    @staticmethod
    async def _drain(proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while await proc.stderr.readline():
            pass

    async def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
            self.proc = None

    def freeze(self, on: bool) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP if on else signal.SIGCONT)


class Observer:
    """Records the sequence numbers of the QoS 1 events (persistent session, reconnects)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seqs: dict[str, set[int]] = {"pass/event": set(), "event": set()}
        self.replies: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.close()
        client = aiomqtt.Client(
            "127.0.0.1", self.port, identifier="soak-observer", clean_session=False
        )
        await asyncio.wait_for(client.__aenter__(), 10)
        for topic in ("pass/event", "event", "reply/#"):
            await client.subscribe(PREFIX + topic, qos=1)
        self._task = asyncio.get_running_loop().create_task(self._read(client))

    async def _read(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                topic = message.topic.value.removeprefix(PREFIX)
                payload = message.payload
                if not isinstance(payload, bytes | bytearray):
                    continue
                body = json.loads(payload)
                if topic in self.seqs:
                    self.seqs[topic].add(int(body["seq"]))
                elif topic.startswith("reply/"):
                    self.replies.append(body)
        except aiomqtt.MqttError:
            pass
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.__aexit__(None, None, None), 5)

    @property
    def connected(self) -> bool:
        return self._task is not None and not self._task.done()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@dataclass
class Fault:
    """One injected fault and whether the station recovered from it."""

    kind: str
    at: datetime
    detail: str
    check_at: datetime
    check: Callable[[], bool]
    recovered: bool | None = None


@dataclass
class Soak:
    """State of one soak run."""

    daemon: Daemon
    clock: VirtualClock
    broker: Mosquitto
    observer: Observer
    rng: random.Random
    faults: list[Fault] = field(default_factory=list)
    pending: list[tuple[datetime, Callable[[], Awaitable[None]]]] = field(default_factory=list)
    limit_violations: list[str] = field(default_factory=list)
    seen_commands: dict[str, int] = field(default_factory=dict)
    due: set[tuple[str, int, datetime]] = field(default_factory=set)
    kills: int = 0
    broker_down: bool = False
    path: Path = Path()
    """The daemon's config file (the bad-config-reload fault rewrites it for a while)."""
    work: Path = Path()
    reloading: bool = False
    """A bad file is in place (one reload fault at a time)."""

    # -- invariants --------------------------------------------------------------------
    def check_commands(self) -> None:
        """Every target the twins got since the last check lies within their limits."""
        for ant in self.daemon.antennas.values():
            twin = ant.twin
            assert twin is not None
            new = twin.command_count - self.seen_commands.get(ant.id, 0)
            self.seen_commands[ant.id] = twin.command_count
            caps = twin.capabilities
            for event in list(twin.commands)[-new:] if new > 0 else []:
                if not isinstance(event, SetPosition):
                    continue
                el_ok = event.el_deg is None or caps.el_min_deg <= event.el_deg <= caps.el_max_deg
                if not (caps.az_min_deg <= event.az_deg <= caps.az_max_deg and el_ok):
                    self.limit_violations.append(f"{ant.id}: {event}")

    def note_due(self) -> None:
        now = self.clock.now()
        for ant in self.daemon.antennas.values():
            for job in ant.jobs:
                if job.aos <= now:
                    self.due.add((ant.id, job.pass_.norad_id, job.aos))

    # -- faults ------------------------------------------------------------------------
    def later(self, delay_s: float, action: Callable[[], Awaitable[None]]) -> None:
        self.pending.append((self.clock.now() + timedelta(seconds=delay_s), action))

    def add(self, kind: str, detail: str, check_in_s: float, check: Callable[[], bool]) -> None:
        now = self.clock.now()
        self.faults.append(Fault(kind, now, detail, now + timedelta(seconds=check_in_s), check))

    async def inject(self, kind: str) -> None:
        d = self.daemon
        ant = d.antennas[self.rng.choice(sorted(d.antennas))]
        twin = ant.twin
        assert twin is not None
        link = ant.rotator.link
        assert link is not None
        if kind in ("rotator-garbage", "rotator-truncate"):
            before = twin.faults.garbled + twin.faults.truncated
            (
                twin.faults.garbage_replies
                if kind == "rotator-garbage"
                else twin.faults.truncate_replies
            )(3)

            def done() -> bool:
                return twin.faults.garbled + twin.faults.truncated >= before + 3 and (
                    ant.rotator.state is not DriverState.FAULTED
                )

            # An idle antenna asks little: the replies may take a while to come due.
            self.add(kind, f"{ant.id}: next 3 replies", 3 * 3600, done)
        elif kind == "rotator-late":
            twin.faults.late_replies(link.policy.timeout_s * 1.5)

            async def clear() -> None:
                twin.faults.clear()

            self.later(3.0, clear)
            answering = (DriverState.OK, DriverState.DEGRADED)
            self.add(kind, f"{ant.id}: late for 3 s", 900, lambda: ant.rotator.state in answering)
        elif kind == "rotator-stall":
            axis = self.rng.choice([Axis.AZ, Axis.EL])
            twin.stall(axis)
            executed = len(
                [o for o in d.outcomes if o.antenna == ant.id and o.status == "executed"]
            )

            async def release() -> None:
                twin.release(axis)

            self.later(120.0, release)
            self.add(kind, f"{ant.id} {axis.value} for 2 min", 4 * 3600, lambda: (
                len([o for o in d.outcomes if o.antenna == ant.id and o.status == "executed"])
                > executed and f"antenna-{ant.id}" not in d.alarms.active
            ))  # fmt: skip
        elif kind == "broker-kill":
            if self.broker_down:
                return
            self.broker_down = True
            self.kills += 1
            await self.observer.close()
            await self.broker.kill()
            assert d.publisher is not None
            publisher = d.publisher
            connects = publisher.stats.connects

            async def restart() -> None:
                await self.broker.start()
                await self.observer.connect()
                self.broker_down = False

            self.later(600.0, restart)
            self.add(kind, "10 min", 1200, lambda: publisher.stats.connects > connects)
        elif kind == "broker-freeze":
            if self.broker_down:
                return
            self.broker_down = True
            self.broker.freeze(True)
            assert d.publisher is not None
            publisher = d.publisher

            async def thaw() -> None:
                self.broker.freeze(False)
                self.broker_down = False

            self.later(120.0, thaw)
            self.add(kind, "SIGSTOP 2 min", 900,
                     lambda: publisher.link_state.value == "connected")  # fmt: skip
        elif kind == "bad-commands":
            if self.broker_down:
                return
            sent_before = len(self.observer.replies)
            now = self.clock.now()
            async with aiomqtt.Client("127.0.0.1", self.broker.port) as operator:
                old = (now - timedelta(hours=2)).isoformat()
                far = {"antenna": ant.id, "az_deg": 1e9, "el_deg": 0}
                bodies: list[tuple[str, str | bytes]] = [
                    ("pause", b'{"request_id": '),
                    ("selfdestruct", json.dumps({"request_id": "x", "ts": now.isoformat()})),
                    ("pause", json.dumps({"request_id": "y", "ts": old})),
                    ("point", json.dumps({"request_id": "z", "ts": now.isoformat(), **far})),
                ]
                for verb, body in bodies:
                    await operator.publish(PREFIX + f"cmd/{verb}", body, qos=1)
            self.add(kind, "malformed, unknown, stale, out of limits", 120, lambda: (
                len(self.observer.replies) >= sent_before + 4
                and not any(r.get("ok") for r in self.observer.replies[sent_before:])
                and not d.paused
            ))  # fmt: skip
        elif kind == "clock-jump":
            step_s = self.rng.choice([-1, 1]) * self.rng.uniform(60, 600)
            plans = d.plans
            self.clock.jump_wall(step_s)
            self.add(kind, f"{step_s:+.0f} s", 120,
                     lambda: d.plans > plans and "clock-jump" in d.alarms.active)  # fmt: skip
        elif kind == "task-crash":
            tracker = ant.require_tracker()
            real = tracker.track
            executed = len(
                [o for o in d.outcomes if o.antenna == ant.id and o.status == "executed"]
            )

            async def crash_once(job: TrackJob) -> TrackReport:
                tracker.track = real  # type: ignore[method-assign]
                raise RuntimeError("soak: injected bug")

            tracker.track = crash_once  # type: ignore[method-assign]
            self.add(kind, f"{ant.id}: next track raises", 6 * 3600, lambda: len(
                [o for o in d.outcomes if o.antenna == ant.id and o.status == "executed"]
            ) > executed + 1)  # fmt: skip
        elif kind in ("rotator-vanish", "radio-vanish"):
            await self._vanish(kind, ant.id)
        elif kind in ("bad-tle-reload", "bad-config-reload"):
            if not self.reloading:
                self._bad_file(kind)
        elif kind == "log-full":
            self._log_full(ant.id)

    def _executed(self, antenna: str) -> int:
        return sum(
            1 for o in self.daemon.outcomes if o.antenna == antenna and o.status == "executed"
        )

    async def _vanish(self, kind: str, antenna: str) -> None:
        """Scenarios 1 and 2: the device goes away for 2 minutes (pass or not), then returns."""
        d = self.daemon
        ant = d.antennas[antenna]
        if kind == "rotator-vanish":
            name, alarm = f"{antenna}-rotator", f"antenna-{antenna}"
            driver: Any = ant.rotator
        else:
            if ant.radio is None or ant.radio_id is None:
                return
            name, alarm, driver = ant.radio_id, f"radio-{ant.radio_id}", ant.radio
        server = d.sim_servers[name]
        if not server.up:
            return
        await server.drop()
        executed = self._executed(antenna)
        self.later(120.0, server.restore)
        # Recovered: reconnected, no alarm left, and the antenna went on to execute a track.
        self.add(kind, f"{name}: gone 2 min", 6 * 3600, lambda: (
            server.up and driver.state in (DriverState.OK, DriverState.DEGRADED)
            and alarm not in d.alarms.active and self._executed(antenna) > executed
        ))  # fmt: skip

    def _bad_file(self, kind: str) -> None:
        """Scenarios 11 and 12 on reload: a bad element file or config for 30 minutes."""
        d = self.daemon
        self.reloading = True
        if kind == "bad-tle-reload":
            target = self.work / "tle" / "jp_groups.tle"
            good = target.read_text()
            lines = good.splitlines()
            l1 = lines[1]
            lines[1] = l1[:68] + str((int(l1[68]) + 1) % 10)  # checksum off by one
            lines[5] = lines[5][:40]  # truncated line 2
            target.write_text("\n".join(lines) + "\n")
            alarm, expect = "catalog-errors", "2 element sets dropped"
        else:
            target = self.path
            good = target.read_text()
            target.write_text(good.replace("az_max_deg = 450.0", "az_max_deg = -10.0", 1))
            alarm, expect = "config-rejected", "az_max_deg"
        config = d.config
        plans = d.plans
        d.alarms.clear(alarm)
        d.request_reload()
        seen = {"reported": False, "kept": True}

        async def restore() -> None:
            target.write_text(good)
            d.request_reload()
            self.reloading = False

        def check() -> bool:
            # Recovered: the bad input was named in the alarm while it was there, a bad
            # config never replaced the running one, bad element sets still left a new
            # plan, and the alarm cleared once the good file was back.
            active = d.alarms.active.get(alarm)
            if active is not None and expect in active.message:
                seen["reported"] = True
            if kind == "bad-config-reload" and self.reloading and d.config is not config:
                seen["kept"] = False
            replanned = kind != "bad-tle-reload" or d.plans > plans
            return (
                seen["reported"]
                and seen["kept"]
                and replanned
                and not self.reloading
                and alarm not in d.alarms.active
            )

        self.later(1800.0, restore)
        self.add(kind, target.name, 3600, check)

    def _log_full(self, antenna: str) -> None:
        """Scenario 16: an hour of info logs to /dev/full; tracking goes on."""
        full = open("/dev/full", "w")  # noqa: SIM115 -- closed by the restore below
        configure_logging("info", json_lines=True, stream=full)
        logging.disable(logging.NOTSET)
        executed = self._executed(antenna)

        async def restore() -> None:
            configure_logging("critical", json_lines=True, stream=sys.stderr)
            logging.disable(logging.CRITICAL)
            with contextlib.suppress(OSError):
                full.close()

        self.later(3600.0, restore)
        self.add("log-full", "info logs to /dev/full for 1 h", 3600,
                 lambda: self._executed(antenna) > executed)  # fmt: skip


def _trace_diff(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int) -> None:
    """Print the ``top`` allocation sites that grew most between two snapshots."""
    keep = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen*")]
    stats = after.filter_traces(keep).compare_to(before.filter_traces(keep), "traceback")
    total_kb = sum(s.size_diff for s in stats) / 1024
    print(f"\ntracemalloc: net growth {total_kb:+.0f} KiB between the snapshots; top sites:")
    for stat in stats[:top]:
        print(f"  {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+8d} blocks")
        # The innermost frames say what allocates, the outer ones who holds on to it.
        for frame in list(stat.traceback)[-6:]:
            print(f"      {frame.filename.removeprefix(str(ROOT) + '/')}:{frame.lineno}")


async def soak(
    days: float,
    seed: int,
    every_h: float,
    policy: str,
    rss_bound_mb: float,
    trace_top: int = 0,
) -> int:
    # Faults log errors by design; the table is the report.
    configure_logging("critical", json_lines=True, stream=sys.stderr)
    logging.disable(logging.CRITICAL)
    work = Path(tempfile.mkdtemp(prefix="groundlink-soak-"))
    text = (ROOT / "configs" / "simulated.toml").read_text()
    # The element files are copies here: the bad-tle-reload fault corrupts one for a while.
    (work / "tle").mkdir()
    for tle in (ROOT / "seeds" / "tle").glob("*.tle"):
        shutil.copy(tle, work / "tle" / tle.name)
    text = text.replace('"../seeds/tle/', f'"{work}/tle/').replace('"../seeds/', f'"{ROOT}/seeds/')
    text = text.replace("embedded = true", "embedded = false")
    text = re.sub(r'(?m)^policy = "\w+"', f'policy = "{policy}"', text)
    path = work / "station.toml"
    path.write_text(text)
    broker = Mosquitto(work)
    await broker.start()
    try:
        return await _soak(broker, path, work, days, seed, every_h, policy, rss_bound_mb, trace_top)
    finally:
        await broker.kill()


async def _soak(
    broker: Mosquitto,
    path: Path,
    work: Path,
    days: float,
    seed: int,
    every_h: float,
    policy: str,
    rss_bound_mb: float,
    trace_top: int = 0,
) -> int:
    observer = Observer(broker.port)
    await observer.connect()
    clock = VirtualClock(T0)
    settings = DaemonConfig(
        run_dir=work / "run",
        health_period_s=30.0,
        tracking=TrackingConfig(pointing=PointingSettings(telemetry_period_s=1.0)),
    )
    daemon = Daemon(load_config(path), clock=clock, config_path=path, settings=settings,
                    broker_url=broker.url)  # fmt: skip
    state = Soak(daemon, clock, broker, observer, random.Random(seed), path=path, work=work)
    task = asyncio.get_running_loop().create_task(daemon.run())
    real0, cpu0 = time.perf_counter(), time.process_time()
    # Run length and days on the monotonic clock: the clock-jump fault moves now().
    end_mono = days * 86400.0
    next_fault = T0 + timedelta(hours=1)
    rss_day2: float | None = None
    exits = 0
    # Diff from a third of the run on: the start-up allocations (caches filled once) are done.
    trace_from_mono = end_mono / 3 if trace_top > 0 else math.inf
    trace_before: tracemalloc.Snapshot | None = None
    print(f"soak: {days:g} simulated days, seed {seed}, a fault every ~{every_h:g} h, {policy}")
    while clock.monotonic() < end_mono and not task.done():
        await clock.advance(STEP_S)
        now = clock.now()
        state.check_commands()
        state.note_due()
        for item in [p for p in state.pending if p[0] <= now]:
            state.pending.remove(item)
            await item[1]()
        for fault in state.faults:
            if fault.recovered is None and fault.check():
                fault.recovered = True
            elif fault.recovered is None and now >= fault.check_at:
                fault.recovered = False
        if now >= next_fault and daemon.state in ("ready", "degraded"):
            await state.inject(state.rng.choice(FAULTS))
            next_fault = now + timedelta(hours=state.rng.expovariate(1 / every_h))
        if rss_day2 is None and clock.monotonic() >= 2 * 86400.0:
            rss_day2 = rss_mb()
        if trace_before is None and clock.monotonic() >= trace_from_mono:
            trace_before = tracemalloc.take_snapshot()
        if clock.monotonic() % 21600 < STEP_S:
            print(f"  {now:%Y-%m-%d %H:%M} faults {len(state.faults)} "
                  f"tracks {len(daemon.outcomes)} rss {rss_mb():.0f} MB", flush=True)  # fmt: skip
    if task.done():
        exits = 1
    for item in list(state.pending):
        await item[1]()
    rss_end = rss_mb()
    if trace_before is not None:
        _trace_diff(trace_before, tracemalloc.take_snapshot(), trace_top)
    # Drain: let the publisher deliver what it holds, the observer receive it.
    publisher = daemon.publisher
    assert publisher is not None
    for _ in range(200):
        if publisher.link_state.value == "connected" and publisher.pending == 0:
            break
        await clock.advance(1.0)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(publisher.flush(), 30)
    for _ in range(100):
        await clock.settle()
    real_s, cpu_s = time.perf_counter() - real0, time.process_time() - cpu0
    daemon.request_stop("soak over")
    while not task.done():
        await clock.advance(1.0)
    code = task.result() if not task.cancelled() and task.exception() is None else -1
    await observer.close()

    # -- report ------------------------------------------------------------------------
    injected = Counter(f.kind for f in state.faults)
    recovered = Counter(f.kind for f in state.faults if f.recovered)
    # A fault whose check window had not ended when the run did is pending, not failed.
    pending = Counter(f.kind for f in state.faults if f.recovered is None)
    print(f"\n{'fault':<18}{'injected':>9}{'recovered':>10}{'pending':>8}")
    for kind in FAULTS:
        print(f"{kind:<18}{injected[kind]:>9}{recovered[kind]:>10}{pending[kind]:>8}")
    total = (sum(injected.values()), sum(recovered.values()), sum(pending.values()))
    print(f"{'total':<18}{total[0]:>9}{total[1]:>10}{total[2]:>8}")
    ended = {(o.antenna, o.norad_id, o.start) for o in daemon.outcomes}
    unreported = sorted(state.due - ended)
    no_reason = [o for o in daemon.outcomes if o.status == "aborted" and not o.reason]
    lost: dict[str, int] = {}
    for topic, type_name in (("pass/event", "pass_event"), ("event", "event")):
        count = daemon.stats.messages[type_name]
        lost[topic] = len(set(range(1, count + 1)) - observer.seqs[topic])
    bound = 100 * state.kills  # max_inflight of the publisher per broker kill
    rows = [
        ("no target beyond limits", not state.limit_violations,
         f"{len(state.limit_violations)} violations"),
        ("every due track ended", not unreported and not no_reason,
         f"{len(state.due)} due, {len(unreported)} unreported, {len(no_reason)} without reason"),
        ("no QoS 1 event lost", sum(lost.values()) <= bound,
         f"lost {lost} (bound {bound}: in flight at {state.kills} broker kills)"),
        ("memory flat (day 2 -> end)",
         rss_day2 is None or rss_end - rss_day2 <= rss_bound_mb,
         "n/a (< 2 days)" if rss_day2 is None else f"{rss_day2:.0f} -> {rss_end:.0f} MB"),
        ("daemon never exited", exits == 0 and code == 0, f"exit code at the end {code}"),
        ("every fault recovered", all(f.recovered is not False for f in state.faults),
         ", ".join(f"{f.kind}@{f.at:%d %H:%M}" for f in state.faults if f.recovered is False)
         or "all (pending ones excepted)"),
    ]  # fmt: skip
    print(f"\n{'invariant':<28}{'ok':<6}detail")
    for name, ok, detail in rows:
        print(f"{name:<28}{'yes' if ok else 'NO':<6}{detail}")
    executed = sum(1 for o in daemon.outcomes if o.status == "executed")
    print(f"\n{len(daemon.outcomes)} tracks ({executed} executed), {days:g} days in "
          f"{real_s:.0f} s real, {cpu_s:.0f} s CPU")  # fmt: skip
    return 0 if all(ok for _, ok, _ in rows) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-every-h", type=float, default=2.0)
    parser.add_argument("--policy", choices=("greedy", "optimal"), default="greedy")
    parser.add_argument("--rss-bound-mb", type=float, default=30.0)
    parser.add_argument(
        "--trace-top",
        type=int,
        default=0,
        metavar="N",
        help="trace allocations (slow) and print the N sites that grew most from 1/3 of the run",
    )
    args = parser.parse_args()
    if not (args.days > 0 and math.isfinite(args.days)):
        parser.error(f"--days {args.days!r}: must be a number > 0")
    if not args.fault_every_h > 0:
        parser.error(f"--fault-every-h {args.fault_every_h!r}: must be > 0")
    if args.trace_top < 0:
        parser.error(f"--trace-top {args.trace_top!r}: must be >= 0")
    if args.trace_top:
        tracemalloc.start(4)
    return asyncio.run(
        soak(
            args.days,
            args.seed,
            args.fault_every_h,
            args.policy,
            args.rss_bound_mb,
            args.trace_top,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
