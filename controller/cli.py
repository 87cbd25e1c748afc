"""The ``groundlink`` command line.

Exit codes: 0 success; 1 some input records were rejected (the rest were used);
2 bad usage; 65 no usable input data; 66 an input file is missing; 78 bad config.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from controller.config import ConfigError, GroundlinkConfig, load_config, load_station_list
from controller.logs import configure_logging
from controller.orbit.catalog import Catalog
from controller.orbit.predictor import Pass, PassPredictor, PredictionResult, Station, iso_z
from firmware_bridge.clock import SystemClock

app = typer.Typer(
    name="groundlink",
    help="Ground-station satellite link controller: passes, tracking, telemetry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
seeds_app = typer.Typer(help="The frozen seed scenario (constellation, stations, fixtures).")
app.add_typer(seeds_app, name="seeds")
sim_app = typer.Typer(help="Simulator twins of the supported devices, for other programs.")
app.add_typer(sim_app, name="sim")
hamlib_app = typer.Typer(help="Hamlib-compatible rotctld/rigctld servers in front of drivers.")
app.add_typer(hamlib_app, name="hamlib")


@app.callback()
def _setup(
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error (to stderr).")
    ] = "warning",
) -> None:
    """Ground-station satellite link controller: passes, tracking, telemetry."""
    try:
        configure_logging(log_level)
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc


EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_DATAERR = 65
EXIT_NOINPUT = 66
EXIT_CONFIG = 78

_REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = _REPO_ROOT / "seeds"

# soft_wrap: a problem line (file:line: satellite: reason) is never broken by width.
err_console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _load_config_or_exit(path: Path) -> GroundlinkConfig:
    """Load a config, or print every problem (file: key = value: rule) and exit 78."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for reason in exc.problems:
            err_console.print(f"[red]{exc.source}[/]: {reason}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from exc


def _parse_utc(text: str) -> datetime:
    """Parse ISO 8601; a value without offset is taken as UTC, 'Z' is accepted."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise _fail(
            f"--start {text!r} is not ISO 8601 (e.g. 2026-11-26T12:00:00Z)", EXIT_USAGE
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _parse_station(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        lat, lon, alt = (float(p) for p in parts)
    except ValueError as exc:
        raise _fail(
            f"--station {text!r}: expected LAT,LON,ALT_M in degrees and metres "
            "(e.g. 47.88,11.08,600)",
            EXIT_USAGE,
        ) from exc
    return lat, lon, alt


@app.command()
def passes(
    tle: Annotated[
        list[Path] | None,
        typer.Option("--tle", help="TLE (2/3-line), OMM JSON or OMM CSV file; repeatable."),
    ] = None,
    station: Annotated[
        str | None, typer.Option(help="Site as LAT,LON,ALT_M (degrees, metres).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="groundlink config file (site, mask, TLE files).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Window start, ISO 8601 UTC (default: now).")
    ] = None,
    hours: Annotated[float, typer.Option(help="Window length in hours.")] = 24.0,
    min_el: Annotated[
        float | None, typer.Option("--min-el", help="Raise the horizon mask to at least DEG.")
    ] = None,
    dut1: Annotated[float, typer.Option(help="UT1-UTC in seconds.")] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="table, jsonl or csv.")] = "table",
) -> None:
    """Predict passes of every satellite in the TLE files over one station."""
    if fmt not in ("table", "jsonl", "csv"):
        raise _fail(f"--format {fmt!r}: choose table, jsonl or csv", EXIT_USAGE)
    if (station is None) == (config is None):
        raise _fail("give exactly one of --station LAT,LON,ALT_M or --config FILE", EXIT_USAGE)
    if not 0 < hours <= 24 * 366:
        raise _fail(f"--hours {hours}: must be > 0 and at most one year", EXIT_USAGE)
    if min_el is not None and not -10.0 <= min_el <= 80.0:
        raise _fail(f"--min-el {min_el}: must be within -10..80 degrees", EXIT_USAGE)
    if abs(dut1) > 0.9:
        raise _fail(f"--dut1 {dut1}: UT1-UTC is always within -0.9..0.9 s", EXIT_USAGE)
    clock = SystemClock()
    begin = _parse_utc(start) if start else clock.now()
    tle_files = list(tle or [])
    stale_days = 14.0
    if config is not None:
        cfg = _load_config_or_exit(config)
        site = cfg.station.station()
        if not tle_files:
            tle_files = list(cfg.catalog.tle_files)
        stale_days = cfg.catalog.stale_after_days
    else:
        assert station is not None
        lat, lon, alt = _parse_station(station)
        try:
            site = Station(lat, lon, alt)
            _ = site.site
        except ValueError as exc:
            raise _fail(f"--station {station!r}: {exc}", EXIT_USAGE) from exc
    if min_el is not None:
        site = Station(
            site.lat_deg, site.lon_deg, site.alt_m, site.mask.raised(min_el), site.station_id
        )
    if not tle_files:
        raise _fail(
            "no element files: give --tle FILE (or catalog.tle_files in --config)", EXIT_USAGE
        )
    missing = [p for p in tle_files if not p.is_file()]
    if missing:
        raise _fail(", ".join(f"{p}: file not found" for p in missing), EXIT_NOINPUT)

    catalog = Catalog.from_files(tle_files, now=begin, stale_after_days=stale_days)
    for problem in catalog.problems:
        colour = "red" if problem.severity == "error" else "yellow"
        err_console.print(f"[{colour}]{problem.severity}[/]: {problem}", highlight=False)
    if len(catalog) == 0:
        raise _fail("no usable satellites in the input files", EXIT_DATAERR)

    predictor = PassPredictor(list(catalog), dut1_s=dut1)
    end = begin + timedelta(hours=hours)
    result = _predict_with_progress(predictor, site, begin, end, clock, fmt == "table")
    for sat_problem in result.problems:
        err_console.print(f"[yellow]warning[/]: {sat_problem}", highlight=False)

    out = sys.stdout
    if fmt == "jsonl":
        for p in result.passes:
            out.write(json.dumps(p.to_json()) + "\n")
    elif fmt == "csv":
        fields = [
            "norad_id",
            "name",
            "aos",
            "tca",
            "los",
            "max_el_deg",
            "aos_az_deg",
            "tca_az_deg",
            "los_az_deg",
            "duration_s",
            "flags",
        ]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for p in result.passes:
            row = p.to_json()
            row["flags"] = ";".join(p.flags)
            writer.writerow(row)
    else:
        _print_table(result.passes, site, begin, end)
    if catalog.errors:
        raise typer.Exit(EXIT_PARTIAL)


def _predict_with_progress(
    predictor: PassPredictor,
    site: Station,
    begin: datetime,
    end: datetime,
    clock: SystemClock,
    show: bool,
) -> PredictionResult:
    """Run the prediction; show a progress bar if it takes longer than a second."""
    started = clock.monotonic()
    progress: Progress | None = None
    task = None

    def report(fraction: float) -> None:
        nonlocal progress, task
        if not show:
            return
        if progress is None and clock.monotonic() - started > 1.0:
            progress = Progress(
                TextColumn("predicting passes"),
                BarColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            )
            progress.start()
            task = progress.add_task("predict", total=1.0)
        if progress is not None and task is not None:
            progress.update(task, completed=fraction)

    try:
        return predictor.passes(site, begin, end, progress=report)
    finally:
        if progress is not None:
            progress.stop()


def _fmt_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _console() -> Console:
    console = Console()
    if not console.is_terminal:
        # Piped output (make demo in CI, logs): don't squeeze the tables to 80 columns.
        console = Console(width=140)
    return console


def _print_table(found: list[Pass], site: Station, begin: datetime, end: datetime) -> None:
    console = _console()
    table = Table(
        title=(
            f"{len(found)} passes over {site.station_id} "
            f"({site.lat_deg:.4f}, {site.lon_deg:.4f}, {site.alt_m:.0f} m), "
            f"{_fmt_time(begin)} - {_fmt_time(end)} UTC"
        ),
        title_justify="left",
    )
    for col in (
        "satellite",
        "NORAD",
        "AOS (UTC)",
        "TCA",
        "LOS",
        "max el",
        "AOS az",
        "LOS az",
        "duration",
        "flags",
    ):
        table.add_column(col, justify="right" if col not in ("satellite", "flags") else "left")
    for p in found:
        table.add_row(
            p.name,
            str(p.norad_id),
            p.aos.strftime("%m-%d %H:%M:%S"),
            p.tca.strftime("%H:%M:%S"),
            p.los.strftime("%H:%M:%S"),
            f"{p.max_el_deg:.1f}°",
            f"{p.aos_az_deg:.0f}°",
            f"{p.los_az_deg:.0f}°",
            f"{p.duration_s / 60:.1f} min",
            ",".join(p.flags),
        )
    console.print(table)


@app.command()
def run(
    config: Annotated[Path, typer.Option(help="Station config (TOML).")],
    broker: Annotated[
        str | None, typer.Option(help="Override the config's broker (mqtt:// or mqtts:// URL).")
    ] = None,
) -> None:
    """The station daemon, in real time, until SIGTERM/SIGINT (SIGHUP reloads)."""
    from controller.run_cmd import run_daemon

    code = run_daemon(config, broker)
    if code:
        raise typer.Exit(code)


@app.command()
def demo(
    config: Annotated[Path, typer.Option(help="Simulated station config.")] = (
        _REPO_ROOT / "configs" / "simulated.toml"
    ),
    speed: Annotated[float, typer.Option(help="Virtual time per real second.")] = 150.0,
    duration: Annotated[
        float, typer.Option(help="Simulated seconds to run (default 3 hours).")
    ] = 10800.0,
    broker: Annotated[
        str | None, typer.Option(help="Use this broker instead of the embedded one.")
    ] = None,
    forever: Annotated[bool, typer.Option(help="Run until Ctrl-C.")] = False,
) -> None:
    """The simulated station on the accelerated virtual clock, with a summary at the end."""
    from controller.demo import run_demo

    code = run_demo(config, speed, duration, broker, forever)
    if code:
        raise typer.Exit(code)


@app.command("check-config")
def check_config_cmd(
    file: Annotated[Path, typer.Argument(help="The config file to check.")],
) -> None:
    """Print every problem of a config (file, key, value, what is allowed); exit 78 if any."""
    from controller.run_cmd import check_config

    code = check_config(file)
    if code:
        raise typer.Exit(code)


@seeds_app.command("passes")
def seeds_passes(
    hours: Annotated[float, typer.Option(help="How far ahead to look, in hours.")] = 6.0,
    start: Annotated[str | None, typer.Option(help="Start, ISO 8601 UTC (default: now).")] = None,
) -> None:
    """Show the seed constellation's upcoming passes over the seed stations."""
    clock = SystemClock()
    begin = _parse_utc(start) if start else clock.now()
    end = begin + timedelta(hours=hours)
    console = _console()
    tle_files = sorted((SEEDS_DIR / "tle").glob("*_constellation.tle")) + sorted(
        (SEEDS_DIR / "tle").glob("jp_*.tle")
    )
    try:
        stations = load_station_list(SEEDS_DIR / "stations.toml")
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc
    catalog = Catalog.from_files(tle_files, now=begin)
    console.rule("[bold]groundlink demo: the seed scenario")
    console.print(
        f"{len(catalog)} satellites from {', '.join(p.name for p in tle_files)}; "
        f"{len(stations)} stations; window {iso_z(begin)} + {hours:g} h"
    )
    for problem in catalog.problems:
        console.print(f"[yellow]{problem.severity}[/]: {problem}", highlight=False)
    predictor = PassPredictor(list(catalog))
    summary = Table(title="Passes per station", title_justify="left")
    for col in (
        "station",
        "country",
        "passes",
        "satellites seen",
        "longest",
        "highest",
        "next AOS (UTC)",
        "next satellite",
        "predicted in",
    ):
        summary.add_column(col)
    for st in stations:
        site = st.station()
        t0 = clock.monotonic()
        result = predictor.passes(site, begin, end)
        took = clock.monotonic() - t0
        found = result.passes
        upcoming = [p for p in found if "clipped_start" not in p.flags]
        nxt = upcoming[0] if upcoming else None
        summary.add_row(
            st.id,
            st.country,
            str(len(found)),
            str(len({p.norad_id for p in found})),
            f"{max((p.duration_s for p in found), default=0) / 60:.1f} min",
            f"{max((p.max_el_deg for p in found), default=0):.1f}°",
            _fmt_time(nxt.aos) if nxt else "-",
            nxt.name if nxt else "-",
            f"{took * 1000:.0f} ms",
        )
    console.print(summary)
    first = stations[0].station()
    found = predictor.passes(first, begin, end).passes
    _print_table([p for p in found if p.max_el_deg >= 30.0][:15], first, begin, end)
    console.print(
        "[dim](passes above 30° at the first station; "
        "`groundlink passes --help` for the full list)[/]"
    )


def _parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65534:
        raise _fail(f"--tcp {text!r}: expected HOST:PORT, e.g. 127.0.0.1:4533", EXIT_USAGE)
    return host, int(port)


@sim_app.command("serve")
def sim_serve(
    rotator: Annotated[
        str | None, typer.Option(help="Rotator twin: gs232a, gs232b, easycomm2, rot2prog, ...")
    ] = None,
    radio: Annotated[str | None, typer.Option(help="Radio twin: ic9700, ic910, rigctld.")] = None,
    pty: Annotated[
        bool, typer.Option("--pty", help="Serve each twin on a pseudo-terminal.")
    ] = False,
    tcp: Annotated[
        str | None, typer.Option(help="Serve on TCP HOST:PORT (radio on PORT+1).")
    ] = None,
    slew_az: Annotated[
        float | None, typer.Option("--slew-az", help="Azimuth slew rate, deg/s.")
    ] = None,
    slew_el: Annotated[
        float | None, typer.Option("--slew-el", help="Elevation slew rate, deg/s.")
    ] = None,
    control: Annotated[
        bool,
        typer.Option(
            "--control",
            help="Read fault commands from stdin (e.g. 'stall rotator az', 'drop radio 3', "
            "'disconnect rotator 10'); one JSON answer per line on stdout.",
        ),
    ] = False,
) -> None:
    """Serve simulator twins in real time until SIGINT/SIGTERM.

    The first line on stdout is one JSON object naming the endpoints, e.g.
    {"rotator": "/dev/pts/5", "radio": "/dev/pts/6"}.
    """
    import asyncio
    import signal

    from firmware_bridge.drivers.base import driver_names
    from firmware_bridge.simulators.serve import serve_simulators

    if rotator is None and radio is None:
        raise _fail("name at least one of --rotator and --radio", EXIT_USAGE)
    if rotator is not None and rotator not in driver_names("rotator"):
        allowed = ", ".join(sorted(driver_names("rotator")))
        raise _fail(f"--rotator {rotator!r}: unknown; choose one of {allowed}", EXIT_USAGE)
    if radio is not None and radio not in driver_names("radio"):
        allowed = ", ".join(sorted(driver_names("radio")))
        raise _fail(f"--radio {radio!r}: unknown; choose one of {allowed}", EXIT_USAGE)
    if not pty and tcp is None:
        raise _fail("choose --pty and/or --tcp HOST:PORT", EXIT_USAGE)
    hostport = _parse_hostport(tcp) if tcp is not None else None

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        served = await serve_simulators(
            rotator,
            radio,
            pty=pty,
            tcp=hostport,
            clock=SystemClock(),
            slew_az_deg_s=slew_az,
            slew_el_deg_s=slew_el,
        )
        async with served:
            sys.stdout.write(json.dumps(dict(served)) + "\n")
            sys.stdout.flush()
            # The control reader runs beside the wait so a signal ends it too.
            reader_task = asyncio.create_task(_control_loop(served, stop)) if control else None
            await stop.wait()
            if reader_task is not None:
                reader_task.cancel()

    try:
        asyncio.run(serve())
    except (OSError, ValueError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc


@hamlib_app.command("serve")
def hamlib_serve_cmd(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Station TOML: serve the first antenna's rotator and radio."),
    ] = None,
    rotator: Annotated[
        str | None, typer.Option(help="Rotator driver: gs232b, easycomm2, rot2prog, rotctld, ...")
    ] = None,
    rotator_url: Annotated[
        str | None, typer.Option("--rotator-url", help="e.g. serial:///dev/ttyUSB0?baud=9600")
    ] = None,
    radio: Annotated[str | None, typer.Option(help="Radio driver: ic9700, ic910, rigctld.")] = None,
    radio_url: Annotated[
        str | None, typer.Option("--radio-url", help="e.g. serial:///dev/ttyUSB1?baud=19200")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    rot_port: Annotated[
        int, typer.Option("--rot-port", help="rotctld port (0: a free one).")
    ] = 4533,
    rig_port: Annotated[
        int, typer.Option("--rig-port", help="rigctld port (0: a free one).")
    ] = 4532,
    simulated: Annotated[
        bool, typer.Option("--simulated", help="Run the devices' simulator twins in-process.")
    ] = False,
) -> None:
    """Serve rotctld/rigctld in front of groundlink drivers until SIGINT/SIGTERM.

    The first stdout line is a JSON object of endpoints, e.g. {"rotctld": "127.0.0.1:4533"}.
    """
    from controller.hamlib_cmd import hamlib_serve

    code = hamlib_serve(
        config, rotator, rotator_url, radio, radio_url, host, rot_port, rig_port, simulated
    )
    if code:
        raise typer.Exit(code)


@app.command()
def schedule(
    config: Annotated[Path, typer.Option(help="Station config (antennas, satellites, policy).")],
    tle: Annotated[
        list[Path] | None, typer.Option("--tle", help="Element files (default: the config's).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Plan start, ISO 8601 UTC (default: now).")
    ] = None,
    hours: Annotated[
        float | None, typer.Option(help="Horizon in hours (default: scheduler.horizon_h).")
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="optimal or greedy (default: scheduler.policy).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    budget: Annotated[
        float, typer.Option("--budget", help="Seconds the optimiser may spend (bounded mode).")
    ] = 30.0,
) -> None:
    """Assign the passes of the whole catalog to the station's antennas."""
    from controller.scheduler.cli import schedule_command

    clock = SystemClock()
    begin = _parse_utc(start) if start else clock.now()
    code = schedule_command(
        config, list(tle or []), begin, hours, policy, fmt, budget_s=budget, clock=clock
    )
    if code:
        raise typer.Exit(code)


@app.command()
def monitor(
    broker: Annotated[
        str | None, typer.Option(help="Broker URL, mqtt://host:port or mqtts://host:port.")
    ] = None,
    station: Annotated[str | None, typer.Option(help="Station id to watch.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Take broker, station id and credentials from here.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Live terminal dashboard of a station, built from its MQTT topics alone."""
    import asyncio

    from controller.telemetry.config import parse_broker_url
    from controller.telemetry.monitor import run_monitor

    username = password = ca_file = prefix = None
    if config is not None:
        cfg = _load_config_or_exit(config)
        broker = broker or cfg.mqtt.broker
        station = station or cfg.station.id
        username = cfg.mqtt.username
        password = cfg.mqtt.read_password()
        ca_file = str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None
        prefix = cfg.mqtt.prefix
    broker = broker or "mqtt://127.0.0.1:1883"
    if station is None:
        raise _fail("give --station ID (or --config FILE)", EXIT_USAGE)
    try:
        parse_broker_url(broker)
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    # Ctrl-C is the normal way out of a live dashboard.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_monitor(
                broker,
                station,
                clock=SystemClock(),
                duration_s=duration,
                prefix=prefix,
                username=username,
                password=password,
                ca_file=ca_file,
            )
        )


async def _control_loop(served: object, stop: object) -> None:
    """Apply fault commands read from stdin until EOF or stop (see controller.sim_control)."""
    import asyncio

    from controller.sim_control import apply_control
    from firmware_bridge.simulators.serve import ServedSimulators

    assert isinstance(served, ServedSimulators)
    assert isinstance(stop, asyncio.Event)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while not stop.is_set():
        line = await reader.readline()
        if not line:
            return  # stdin closed: keep serving until a signal
        answer = await apply_control(served, line.decode("utf-8", errors="replace"))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


@seeds_app.command("generate")
def seeds_generate(
    out: Annotated[Path, typer.Option(help="Directory to write the seed files into.")] = Path(
        "seeds"
    ),
) -> None:
    """Regenerate the seed scenario deterministically (constellation TLEs, stations)."""
    from controller import seeds

    for path in seeds.generate(out):
        typer.echo(f"wrote {path}")


def main() -> None:
    """Console-script entry point."""
    app()
