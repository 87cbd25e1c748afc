"""``groundlink hamlib serve``: rotctld/rigctld servers in front of the configured drivers.

::

    groundlink hamlib serve --config configs/simulated.toml
    groundlink hamlib serve --rotator gs232b --rotator-url serial:///dev/ttyUSB0?baud=9600 \\
        --radio ic9700 --radio-url serial:///dev/ttyUSB1?baud=19200
    groundlink hamlib serve --rotator easycomm2 --radio ic9700 --simulated --rot-port 0

With ``--config`` the first antenna's rotator (its driver, URL, limits, rates and park
position) and the first radio connected to that antenna are served. With flags, each named
driver needs a URL, or ``--simulated``. A simulated device (``--simulated``, or
``simulated = true`` in the config) is its simulator twin, run in-process over ``loop://`` on
the system clock. The first line on stdout is one JSON object naming the endpoints, e.g.
``{"rotctld": "127.0.0.1:4533", "rigctld": "127.0.0.1:4532"}``; the servers then run until
SIGINT or SIGTERM (exit 0). A device that cannot be reached at start is not fatal: the driver
keeps reconnecting and clients get ``RPRT -6`` (EIO) meanwhile.

Exit codes: 0 after SIGINT/SIGTERM; 2 bad flags (unknown driver, malformed URL, bad port,
port in use); 78 a config that cannot be served (the message names the file and key).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from controller.config import ConfigError, GroundlinkConfig, RotatorConfig, load_config
from controller.daemon import DaemonError, rotator_capabilities
from firmware_bridge.clock import SystemClock
from firmware_bridge.drivers.base import (
    DriverKind,
    DriverState,
    create_driver,
    driver_names,
    get_driver,
)
from firmware_bridge.drivers.radio import RadioDriver
from firmware_bridge.drivers.rotator import RotatorCapabilities, RotatorDriver
from firmware_bridge.errors import BridgeError, TransportClosed, TransportUrlError
from firmware_bridge.hamlib_server import HamlibServers, serve_hamlib
from firmware_bridge.simulators import create_simulator
from firmware_bridge.transports import LoopRegistry, parse_serial_url, parse_tcp_url

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_USAGE", "HamlibServeError", "hamlib_serve"]

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_CONFIG: Final = 78

_URL_EXAMPLES: Final = "serial:///dev/ttyUSB0?baud=9600 or tcp://127.0.0.1:4533"


class HamlibServeError(Exception):
    """Input ``hamlib serve`` cannot use; ``exit_code`` is 2 (flags) or 78 (config)."""

    def __init__(self, message: str, exit_code: int) -> None:
        """Keep the message and the exit code."""
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class _Device:
    """One device to build: which driver, where (None: its twin), with which options."""

    kind: DriverKind
    driver: str
    url: str | None
    source: str
    """Where it was named, for messages (``--rotator`` or ``FILE: antennas[0].rotator``)."""
    exit_code: int
    options: dict[str, Any] = field(default_factory=dict)
    twin_options: dict[str, Any] = field(default_factory=dict)


def _check_driver(kind: DriverKind, name: str, where: str, exit_code: int) -> None:
    if name not in driver_names(kind):
        # A flag reads "--rotator 'x'", a config key "FILE: antennas[0].rotator.driver = 'x'".
        shown = f"{where} {name!r}" if where.startswith("--") else f"{where} = {name!r}"
        raise HamlibServeError(
            f"{shown}: no such {kind} driver; choose one of {', '.join(driver_names(kind))}",
            exit_code,
        )


def _check_url(url: str, where: str, exit_code: int) -> None:
    """Refuse a URL the driver could never open (it would reconnect forever)."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    try:
        if scheme == "serial":
            parse_serial_url(url)
        elif scheme == "tcp":
            parse_tcp_url(url)
        elif scheme == "loop":
            raise TransportUrlError(
                f"{url!r}: loop:// devices live inside one process; use simulated devices instead"
            )
        else:
            raise TransportUrlError(
                f"{url!r}: expected a serial:// or tcp:// URL, e.g. {_URL_EXAMPLES}"
            )
    except TransportUrlError as exc:
        raise HamlibServeError(f"{where}: {exc}", exit_code) from None


def _check_port(name: str, port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise HamlibServeError(
            f"{name} {port!r}: must be within 0..65535 (0 picks a free port)", EXIT_USAGE
        )


def _flag_device(
    kind: DriverKind, flag: str, name: str | None, url: str | None, simulated: bool
) -> _Device | None:
    url_flag = f"{flag}-url"
    if name is None:
        if url is not None:
            raise HamlibServeError(f"{url_flag} needs {flag} (the driver to use)", EXIT_USAGE)
        return None
    _check_driver(kind, name, flag, EXIT_USAGE)
    if simulated:
        if url is not None:
            raise HamlibServeError(
                f"{url_flag} {url!r} and --simulated exclude each other: a simulated "
                f"{kind} is its twin, run in-process",
                EXIT_USAGE,
            )
        return _Device(kind, name, None, flag, EXIT_USAGE)
    if url is None:
        raise HamlibServeError(
            f"{flag} {name} needs {url_flag} (e.g. {_URL_EXAMPLES}) or --simulated", EXIT_USAGE
        )
    _check_url(url, url_flag, EXIT_USAGE)
    return _Device(kind, name, url, flag, EXIT_USAGE)


def _rotator_capabilities(rot: RotatorConfig, where: str) -> RotatorCapabilities:
    """The config's limits, rates and park on top of the driver's (the daemon's rule)."""
    try:
        return rotator_capabilities(rot, where)
    except DaemonError as exc:
        raise HamlibServeError(str(exc), exc.exit_code) from None


def _config_devices(path: Path, cfg: GroundlinkConfig, simulated: bool) -> list[_Device]:
    if not cfg.antennas:
        raise HamlibServeError(
            f"{path}: antennas: the config has no [[antennas]]; hamlib serve needs at least one",
            EXIT_CONFIG,
        )
    antenna = cfg.antennas[0]
    rot = antenna.rotator
    where = f"{path}: antennas[0].rotator"
    _check_driver("rotator", rot.driver, f"{where}.driver", EXIT_CONFIG)
    caps = _rotator_capabilities(rot, where)
    devices = [
        _config_device(
            "rotator",
            rot.driver,
            rot.url,
            rot.simulated or simulated,
            where,
            options={"capabilities": caps, "device_name": f"{antenna.id}-rotator"},
            twin_options={"capabilities": caps},
        )
    ]
    # The radio connected to that antenna (the first one, if several are).
    for index, radio in enumerate(cfg.radios):
        if radio.antenna == antenna.id:
            where = f"{path}: radios[{index}]"
            _check_driver("radio", radio.driver, f"{where}.driver", EXIT_CONFIG)
            devices.append(
                _config_device(
                    "radio",
                    radio.driver,
                    radio.url,
                    radio.simulated or simulated,
                    where,
                    options={"device_name": radio.id},
                )
            )
            break
    return devices


def _config_device(
    kind: DriverKind,
    driver: str,
    url: str,
    simulated: bool,
    where: str,
    *,
    options: dict[str, Any],
    twin_options: dict[str, Any] | None = None,
) -> _Device:
    twin = twin_options or {}
    if simulated:
        return _Device(kind, driver, None, where, EXIT_CONFIG, options, twin)
    if not url:
        raise HamlibServeError(
            f'{where}.url is empty; set url = "serial:///dev/..." (or tcp://...), '
            "or simulated = true",
            EXIT_CONFIG,
        )
    _check_url(url, f"{where}.url", EXIT_CONFIG)
    return _Device(kind, driver, url, where, EXIT_CONFIG, options, twin)


def _plan(
    config: Path | None,
    rotator: str | None,
    rotator_url: str | None,
    radio: str | None,
    radio_url: str | None,
    host: str,
    rot_port: int,
    rig_port: int,
    simulated: bool,
) -> list[_Device]:
    """Check every input and decide what to build; raises HamlibServeError."""
    if not host:
        raise HamlibServeError("--host is empty; e.g. 127.0.0.1 (or 0.0.0.0 for all)", EXIT_USAGE)
    _check_port("--rot-port", rot_port)
    _check_port("--rig-port", rig_port)
    if config is not None:
        given = [
            flag
            for flag, value in (
                ("--rotator", rotator),
                ("--rotator-url", rotator_url),
                ("--radio", radio),
                ("--radio-url", radio_url),
            )
            if value is not None
        ]
        if given:
            raise HamlibServeError(
                f"--config and {', '.join(given)} exclude each other: the config names the devices",
                EXIT_USAGE,
            )
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            raise HamlibServeError(str(exc), EXIT_CONFIG) from None
        devices = _config_devices(config, cfg, simulated)
    else:
        found = [
            _flag_device("rotator", "--rotator", rotator, rotator_url, simulated),
            _flag_device("radio", "--radio", radio, radio_url, simulated),
        ]
        devices = [d for d in found if d is not None]
        if not devices:
            raise HamlibServeError(
                "nothing to serve: name --rotator and/or --radio (with their --*-url, or "
                "--simulated), or --config FILE",
                EXIT_USAGE,
            )
    kinds = {d.kind for d in devices}
    if kinds == {"rotator", "radio"} and rot_port == rig_port != 0:
        raise HamlibServeError(
            f"--rot-port and --rig-port are both {rot_port}; rotctld and rigctld need their "
            "own ports",
            EXIT_USAGE,
        )
    return devices


def hamlib_serve(
    config: Path | None,
    rotator: str | None,
    rotator_url: str | None,
    radio: str | None,
    radio_url: str | None,
    host: str,
    rot_port: int,
    rig_port: int,
    simulated: bool,
) -> int:
    """Serve rotctld/rigctld in front of the devices until SIGINT/SIGTERM; the exit code.

    See the module docstring. Bad input: a message on stderr and 2 (flags) or 78 (config).
    """
    try:
        devices = _plan(
            config, rotator, rotator_url, radio, radio_url, host, rot_port, rig_port, simulated
        )
        return asyncio.run(_serve(devices, host, rot_port, rig_port))
    except HamlibServeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.stderr.flush()
        return exc.exit_code


async def _serve(devices: list[_Device], host: str, rot_port: int, rig_port: int) -> int:
    clock = SystemClock()
    registry = LoopRegistry(clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            drivers: dict[str, Any] = {}
            for device in devices:
                drivers[device.kind] = await _open_device(device, clock, registry, stack)
            rot = drivers.get("rotator")
            rig = drivers.get("radio")
            assert rot is None or isinstance(rot, RotatorDriver)
            assert rig is None or isinstance(rig, RadioDriver)
            try:
                servers: HamlibServers = await serve_hamlib(
                    rotator=rot, radio=rig, host=host, rot_port=rot_port, rig_port=rig_port
                )
            except TransportClosed as exc:
                raise HamlibServeError(
                    f"cannot listen (--host {host}, --rot-port {rot_port}, --rig-port "
                    f"{rig_port}): {exc}",
                    EXIT_USAGE,
                ) from None
            stack.push_async_callback(servers.close)
            sys.stdout.write(json.dumps(servers.endpoints) + "\n")
            sys.stdout.flush()
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return EXIT_OK


async def _open_device(
    device: _Device,
    clock: SystemClock,
    registry: LoopRegistry,
    stack: contextlib.AsyncExitStack,
) -> RotatorDriver | RadioDriver:
    """Start the twin (if simulated), build and open the driver; closed by ``stack``."""
    url = device.url
    cls = get_driver(device.kind, device.driver)
    try:
        if url is None:
            twin = create_simulator(device.kind, cls.twin, clock=clock, **device.twin_options)
            server = await twin.serve_loop(registry, device.kind)
            stack.push_async_callback(server.close)
            url = server.url
        driver = create_driver(
            device.kind, device.driver, url, clock=clock, loop_registry=registry, **device.options
        )
    except (ValueError, TypeError, BridgeError) as exc:
        # e.g. limits the protocol cannot carry (a 0..450 range on a 0..360 wire).
        raise HamlibServeError(f"{device.source}: {exc}", device.exit_code) from None
    assert isinstance(driver, RotatorDriver | RadioDriver)
    await driver.open()
    stack.push_async_callback(driver.close)
    if driver.state is DriverState.FAULTED:
        # The driver keeps reconnecting; clients get RPRT -6 until the device answers.
        reason = driver.link.health().last_error if driver.link is not None else None
        sys.stderr.write(
            f"warning: {device.source}: {driver.name} is not answering yet ({reason}); "
            "serving anyway, clients get RPRT -6 until it does\n"
        )
    return driver
