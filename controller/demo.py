"""``groundlink demo``: the simulated station on an accelerated virtual clock, live.

The station of ``configs/simulated.toml`` (two simulated antennas and radios, the seed
constellation) runs as the real daemon (:class:`~controller.daemon.Daemon`) on a
:class:`~firmware_bridge.clock.VirtualClock`: at real speed while the devices open and the
first plan is made, then stepped at up to ``speed`` times real time
(:meth:`~firmware_bridge.clock.VirtualClock.run_paced`: every wake-up at its own deadline,
so a machine that cannot keep up runs slower, never wrong). Telemetry goes to the
embedded broker (or ``--broker``). A live view shows the antennas; at the end a summary
lists the tracks executed and aborted, the link availability, the pointing error, the
commands sent and the alarms. SIGINT/SIGTERM end it early (stowed, ``offline``, exit 0).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from controller.config import ConfigError, load_config
from controller.daemon import EXIT_CONFIG, Daemon, DaemonError
from controller.daemon_config import daemon_config_of
from controller.logs import loop_exception_handler
from controller.telemetry.broker import EmbeddedBroker, EmbeddedBrokerError
from firmware_bridge.clock import Pace, SystemClock, VirtualClock

__all__ = ["DemoResult", "run_demo", "say", "summary_table"]

_VIEW_PERIOD_S = 0.25
# Virtual time forgiven (the machine fell behind the pace) above this share of the run: it
# did not keep up with the speed asked for.
_SHORTFALL_OK = 0.01


@dataclass(frozen=True)
class DemoResult:
    """What a demo run did (also what the summary shows)."""

    simulated_s: float
    real_s: float
    executed: int
    aborted: int
    abort_reasons: dict[str, int]
    link_availability: float | None
    beam_availability: float | None
    pointing_rms_deg: float | None
    pointing_max_deg: float
    rotator_commands: int
    frequency_commands: int
    operator_commands: int
    alarms: list[str]
    messages: int
    pace: Pace = field(default_factory=lambda: Pace(0.0))
    """How the paced clock kept to the speed asked for after start-up."""

    @property
    def speed(self) -> float:
        """Achieved simulated seconds per real second."""
        return self.simulated_s / self.real_s if self.real_s > 0 else 0.0


def _result(daemon: Daemon, simulated_s: float, real_s: float, pace: Pace) -> DemoResult:
    executed = [o for o in daemon.outcomes if o.status == "executed"]
    aborted = [o for o in daemon.outcomes if o.status == "aborted"]
    reasons = Counter((o.reason or "?").split(":")[0] for o in aborted)
    rot = sum(a.tracker.counters.rotator_commands for a in daemon.antennas.values() if a.tracker)
    freq = sum(a.tracker.counters.frequency_commands for a in daemon.antennas.values() if a.tracker)
    stats = daemon.stats
    return DemoResult(
        simulated_s=simulated_s,
        real_s=real_s,
        executed=len(executed),
        aborted=len(aborted),
        abort_reasons=dict(reasons),
        link_availability=stats.link_availability,
        beam_availability=stats.beam_availability,
        pointing_rms_deg=stats.pointing_rms_deg,
        pointing_max_deg=stats.pointing_max_deg,
        rotator_commands=rot,
        frequency_commands=freq,
        operator_commands=sum(daemon.commands_applied.values()),
        alarms=[f"{a.severity} {a.id}: {a.message}" for a in daemon.alarms.history],
        messages=sum(stats.messages.values()),
        pace=pace,
    )


def summary_table(result: DemoResult) -> Table:
    """The end-of-run summary as a rich table."""
    table = Table(title="groundlink demo: summary", show_header=False)
    table.add_column("what")
    table.add_column("value")
    hours = result.simulated_s / 3600
    table.add_row("simulated", f"{hours:.2f} h in {result.real_s:.1f} s ({result.speed:.0f}x)")
    table.add_row("tracks executed", str(result.executed))
    reasons = ", ".join(f"{k} x{v}" for k, v in result.abort_reasons.items()) or "-"
    table.add_row("tracks aborted", f"{result.aborted} ({reasons})")
    avail = result.link_availability
    beam = result.beam_availability
    parts = [
        "link budget: no satellite with frequencies tracked"
        if avail is None
        else f"link budget: {100 * avail:.1f} % of samples locked",
        "-" if beam is None else f"in the beam: {100 * beam:.1f} % of pointing samples",
    ]
    table.add_row("link availability", "\n".join(parts))
    rms = result.pointing_rms_deg
    table.add_row(
        "pointing error",
        "-" if rms is None else f"RMS {rms:.2f} deg, max {result.pointing_max_deg:.2f} deg",
    )
    table.add_row(
        "commands sent",
        f"rotator {result.rotator_commands}, frequency {result.frequency_commands}, "
        f"operator {result.operator_commands}",
    )
    table.add_row("telemetry messages", str(result.messages))
    pace = result.pace
    kept_up = pace.behind_s <= _SHORTFALL_OK * max(pace.virtual_s, 1.0)
    table.add_row(
        "clock",
        f"stepped at up to {pace.speed:g}x: {pace.achieved:.0f}x after start-up, "
        "every wake-up at its deadline"
        + (
            ""
            if kept_up
            else f"\n[yellow]this machine could not keep up with {pace.speed:g}x: it ran "
            f"at {pace.achieved:.0f}x (the figures are exact; only the speed is lower)[/]"
        ),
    )
    table.add_row("alarms raised", "\n".join(result.alarms) or "none")
    return table


def _view(daemon: Daemon, clock: VirtualClock, real_s: float, pace: Pace) -> Group:
    head = Text(
        f"{clock.now():%Y-%m-%d %H:%M:%S} UTC  state {daemon.state}  "
        f"speed {pace.achieved:.0f}x  real {real_s:.0f} s  "
        f"tracks done {sum(o.status == 'executed' for o in daemon.outcomes)}  "
        f"aborted {sum(o.status == 'aborted' for o in daemon.outcomes)}  "
        f"alarms {len(daemon.alarms.active)}"
    )
    table = Table(expand=False)
    for col in ("antenna", "mode", "satellite", "until LOS", "az/el (true)", "next track"):
        table.add_column(col)
    now = clock.now()
    for ant in daemon.antennas.values():
        mode = ant.tracker.mode if ant.tracker else "-"
        job = ant.current
        sat = f"{job.pass_.norad_id} {job.pass_.name}" if job else "-"
        left = f"{(job.los - now).total_seconds():.0f} s" if job else "-"
        where = ant.twin.true_position() if ant.twin else None
        pos = f"{where.az_deg:6.1f} / {where.el_deg:5.1f}" if where else "-"
        upcoming = [j for j in ant.jobs if j.aos > now]
        nxt = f"{upcoming[0].pass_.norad_id} at {upcoming[0].aos:%H:%M:%S}" if upcoming else "-"
        table.add_row(ant.id, mode, sat, left, pos, nxt)
    return Group(head, table)


def say(out: Console, text: RenderableType, *, highlight: bool | None = None) -> None:
    """Print ``text`` on ``out``; an output that cannot take it (EPIPE, ENOSPC) is ignored.

    Why: the demo's outcome is its exit code (and the telemetry); a reader that went away or
    a full disk must not turn a good run into exit 1.
    """
    try:
        out.print(text, highlight=highlight)
    except OSError:
        _drop_output(out)


def _drop_output(out: Console) -> None:
    """Point the console's file descriptor at /dev/null: the interpreter flushes stdout once
    more at exit, and that flush would fail too (Python then exits 120)."""
    try:
        fd = out.file.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not backed by a descriptor: nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def run_demo(
    config: Path,
    speed: float,
    duration_s: float,
    broker: str | None,
    forever: bool,
    *,
    console: Console | None = None,
    live: bool | None = None,
) -> int:
    """``groundlink demo``: run the simulated station; return the exit code (0, 75, 78)."""
    out = console or Console()
    if not speed > 0:
        say(out, f"[red]error:[/] --speed {speed!r}: must be > 0 (e.g. 1000)")
        return EXIT_CONFIG
    if not forever and not duration_s > 0:
        say(out, f"[red]error:[/] --duration {duration_s!r}: must be > 0 seconds")
        return EXIT_CONFIG
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        for problem in exc.problems:
            say(out, f"[red]{exc.source}[/]: {problem}", highlight=False)
        return EXIT_CONFIG
    show = out.is_terminal if live is None else live
    return asyncio.run(_demo(cfg, config, speed, duration_s, broker, forever, out, show))


async def _demo(
    cfg: object,
    path: Path,
    speed: float,
    duration_s: float,
    broker: str | None,
    forever: bool,
    out: Console,
    show: bool,
) -> int:
    from controller.config import GroundlinkConfig

    assert isinstance(cfg, GroundlinkConfig)
    real = SystemClock()
    clock = VirtualClock(real.now())
    # Real speed while the devices open and the first plan is made; then accelerate.
    clock.start_free_running(1.0)
    ready = asyncio.Event()
    pace = Pace(speed)
    pacer: list[asyncio.Task[None]] = []

    def on_ready() -> None:
        # Stepped from here on: free-running at a speed the machine cannot sustain would
        # wake the loops late and the antennas would fall behind their satellites.
        clock.stop_free_running()
        pacer.append(asyncio.create_task(clock.run_paced(speed, pace=pace), name="pacer"))
        ready.set()

    settings = daemon_config_of(cfg)
    run_dir = (
        Path(os.environ["GROUNDLINK_RUN_DIR"]) if os.environ.get("GROUNDLINK_RUN_DIR") else None
    )
    embedded: EmbeddedBroker | None = None
    if broker is None and cfg.mqtt.embedded:
        # The config's ports may be taken (another broker, another demo): fall back to free ones.
        embedded = EmbeddedBroker.from_config(cfg.mqtt)
        try:
            await embedded.start()
        except EmbeddedBrokerError:
            embedded = EmbeddedBroker(port=0, ws_port=0)
            await embedded.start()
        broker = embedded.url
        say(out, f"embedded MQTT broker at {broker} (topics groundlink/{cfg.station.id}/#)")
    daemon = Daemon(
        cfg,
        clock=clock,
        config_path=path,
        settings=settings,
        broker_url=broker,
        run_dir=run_dir,
        on_ready=on_ready,
        freeze_heap=True,
    )
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    loop.add_signal_handler(signal.SIGTERM, daemon.request_stop, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, daemon.request_stop, "SIGINT")
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    real0 = real.monotonic()
    sim0 = clock.monotonic()
    task = asyncio.create_task(daemon.run(), name="daemon")

    async def stopper() -> None:
        await ready.wait()
        await clock.sleep(duration_s)
        daemon.request_stop("demo duration reached")

    stop_task = None if forever else asyncio.create_task(stopper(), name="demo-stopper")
    try:
        if show:
            with Live(console=out, auto_refresh=False) as view:
                while not task.done():
                    view.update(_view(daemon, clock, real.monotonic() - real0, pace), refresh=True)
                    await asyncio.wait({task}, timeout=_VIEW_PERIOD_S)
        else:
            await asyncio.wait({task})
        code = task.result()
    except DaemonError as exc:
        say(out, f"[red]error:[/] {exc.message}", highlight=False)
        return exc.exit_code
    finally:
        if stop_task is not None:
            stop_task.cancel()
        for t in pacer:
            t.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if embedded is not None:
            await embedded.stop()
    result = _result(daemon, clock.monotonic() - sim0, real.monotonic() - real0, pace)
    say(out, summary_table(result))
    return code
