"""Simulator twins: one per driver, built on the device side of the same codec.

Twins are found by kind and name (a twin's name is its driver's name)::

    twin = create_simulator("rotator", "gs232b", clock=clock)
    server = await twin.serve_pty()          # or serve_loop(registry, "rot1"), serve_tcp()
    ... rotctl -m 603 -r server.path ...
    await server.close()

See :mod:`firmware_bridge.simulators.base` (serving loop, faults, registry),
:mod:`firmware_bridge.simulators.rotator` (physics and rotator twins) and
:mod:`firmware_bridge.simulators.serve` (the entry point the CLI uses).
"""

from __future__ import annotations

from firmware_bridge.simulators.base import (
    BUILTIN_SIMULATOR_MODULES,
    LoopSimServer,
    PtySimServer,
    Reply,
    SimServer,
    TcpSimServer,
    Twin,
    TwinFaults,
    create_simulator,
    get_simulator,
    register_simulator,
    simulator_names,
)

__all__ = [
    "BUILTIN_SIMULATOR_MODULES",
    "LoopSimServer",
    "PtySimServer",
    "Reply",
    "SimServer",
    "TcpSimServer",
    "Twin",
    "TwinFaults",
    "create_simulator",
    "get_simulator",
    "register_simulator",
    "simulator_names",
]
