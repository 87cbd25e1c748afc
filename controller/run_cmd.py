"""``groundlink run`` (the daemon in real time) and ``groundlink check-config``.

Exit codes: 0 after SIGTERM/SIGINT (antennas stowed, ``offline`` published); 75 the devices
are locked by another instance; 78 a config that cannot be used (every problem printed with
the file, key, value and what is allowed); 70 an internal error.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote, urlsplit

from controller.config import ConfigError, GroundlinkConfig, load_config
from controller.daemon import (
    EXIT_CONFIG,
    EXIT_OK,
    Daemon,
    DaemonError,
    rotator_capabilities,
)
from controller.daemon_config import daemon_config_of
from controller.logs import loop_exception_handler
from controller.orbit.catalog import Catalog
from controller.orbit.refresh import TleRefresher
from controller.scheduler import SchedulerInputError, antennas_from_config, satellites_from_config
from controller.telemetry.config import parse_broker_url
from firmware_bridge.clock import SystemClock
from firmware_bridge.drivers.radio import get_radio_driver
from firmware_bridge.drivers.rotator import get_rotator_driver

__all__ = ["check_config", "config_problems", "run_daemon"]


def config_problems(path: Path) -> list[str]:
    """Every problem of the config at ``path``, each naming file, key, value and what is allowed.

    Beyond the schema: the drivers exist and their protocols carry the configured limits,
    the scheduler accepts antennas and satellites, the element files (and the local sources
    and cached copies of ``catalog.urls``) hold usable satellites. Nothing is fetched and no
    device, TLS or secret file is opened: a config written for another machine checks here.
    """
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return [f"{exc.source}: {p}" for p in exc.problems]
    problems: list[str] = []
    src = str(path)
    for i, ant in enumerate(cfg.antennas):
        where = f"antennas[{i}].rotator"
        try:
            caps = rotator_capabilities(ant.rotator, where)
            cls = get_rotator_driver(ant.rotator.driver)
            # The driver checks that its protocol carries the ranges (0..450 on a 0..360 wire).
            cls("loop://check", clock=SystemClock(), capabilities=caps)
        except DaemonError as exc:
            problems.append(f"{src}: {exc.message}")
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"{src}: {where}.driver = {ant.rotator.driver!r}: {exc}")
        if not ant.rotator.simulated and not ant.rotator.url:
            problems.append(
                f"{src}: antennas[{i}].rotator.url = '': required unless simulated = true "
                "(e.g. serial:///dev/serial/by-id/...?baud=9600)"
            )
    for i, radio in enumerate(cfg.radios):
        try:
            get_radio_driver(radio.driver)
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"{src}: radios[{i}].driver = {radio.driver!r}: {exc}")
        if not radio.simulated and not radio.url:
            problems.append(f"{src}: radios[{i}].url = '': required unless simulated = true")
    try:
        antennas_from_config(cfg.station.id, cfg.antennas, source=src)
    except SchedulerInputError as exc:
        problems.append(str(exc))
    sources, unfetched, source_problems = _catalog_sources(cfg, src)
    problems += source_problems
    catalog = Catalog.from_files(
        sources,
        now=SystemClock().now(),
        stale_after_days=cfg.catalog.stale_after_days,
    )
    problems += [f"{p.source}:{p.line or '-'}: {p.reason}" for p in catalog.errors]
    # With a URL not fetched yet the satellites are unknown here: nothing more to check.
    if unfetched:
        return problems
    if not catalog.entries:
        problems.append(
            f"{src}: catalog.tle_files = {[str(p) for p in cfg.catalog.tle_files]}: no usable "
            "satellites; give at least one readable TLE/OMM file or catalog.urls"
        )
    else:
        try:
            satellites_from_config(catalog.entries, cfg.satellites, source=src)
        except SchedulerInputError as exc:
            problems.append(str(exc))
    return problems


def _catalog_sources(cfg: GroundlinkConfig, src: str) -> tuple[list[Path], bool, list[str]]:
    """The files to check, whether a URL has no cached copy yet, and missing local sources."""
    paths = list(cfg.catalog.tle_files)
    problems: list[str] = []
    cached = {s.url: s.cache_path for s in TleRefresher(cfg.catalog, clock=SystemClock()).status()}
    unfetched = False
    for i, url in enumerate(cfg.catalog.urls):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            copy = cached.get(url)
            if copy is not None:
                paths.append(copy)
            else:
                unfetched = True
            continue
        local = Path(unquote(parts.path)) if parts.scheme == "file" else Path(url)
        if local.is_file():
            paths.append(local)
        else:
            problems.append(f"{src}: catalog.urls[{i}] = {url!r}: file not found")
    return paths, unfetched, problems


def check_config(path: Path, *, out: TextIO | None = None) -> int:
    """``groundlink check-config FILE``: print every problem and return 78, or ``ok`` and 0."""
    stream = out if out is not None else sys.stdout
    problems = config_problems(path)
    for problem in problems:
        stream.write(problem + "\n")
    if problems:
        stream.write(f"{path}: {len(problems)} problem(s)\n")
        return EXIT_CONFIG
    stream.write(f"{path}: ok\n")
    return EXIT_OK


def _print_config_error(exc: ConfigError) -> None:
    for problem in exc.problems:
        sys.stderr.write(f"{exc.source}: {problem}\n")


def run_daemon(config: Path, broker: str | None) -> int:
    """``groundlink run --config FILE [--broker URL]``: the daemon in real time, until a signal."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _print_config_error(exc)
        return EXIT_CONFIG
    if broker is not None:
        try:
            parse_broker_url(broker)
        except ValueError as exc:
            sys.stderr.write(f"--broker {broker!r}: {exc}\n")
            return EXIT_CONFIG
    return asyncio.run(_run(cfg, config, broker))


async def _run(cfg: GroundlinkConfig, path: Path, broker: str | None) -> int:
    settings = daemon_config_of(cfg)
    run_dir = (
        Path(os.environ["GROUNDLINK_RUN_DIR"]) if os.environ.get("GROUNDLINK_RUN_DIR") else None
    )
    daemon = Daemon(
        cfg,
        clock=SystemClock(),
        config_path=path,
        settings=settings,
        broker_url=broker,
        run_dir=run_dir,
        notify_socket=os.environ.get("NOTIFY_SOCKET"),
        freeze_heap=True,
    )
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    loop.add_signal_handler(signal.SIGTERM, daemon.request_stop, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, daemon.request_stop, "SIGINT")
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    try:
        return await daemon.run()
    except DaemonError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
