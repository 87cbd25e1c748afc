"""Device drivers: a registry of rotator (and radio) drivers over CommandLink and the codecs.

Find a driver by kind and name, build it for a transport URL, use it as an async context
manager::

    from firmware_bridge.drivers import create_rotator

    async with create_rotator("gs232b", "serial:///dev/ttyUSB0", clock=clock) as rotator:
        await rotator.set_position(180.0, 45.0)

Rotator drivers: ``gs232a``, ``gs232b``, ``easycomm1`` (no readback), ``easycomm2``,
``easycomm3``, ``rot2prog``, ``rot1prog`` (azimuth only), ``rotctld`` (Hamlib's daemon over
TCP). Driver modules are imported on first use (see :mod:`firmware_bridge.drivers.base`).
"""

from __future__ import annotations

from firmware_bridge.drivers.base import (
    BUILTIN_DRIVER_MODULES,
    Driver,
    DriverHealth,
    DriverKind,
    DriverState,
    create_driver,
    driver_names,
    get_driver,
    register_driver,
)
from firmware_bridge.drivers.rotator import (
    Position,
    RotatorCapabilities,
    RotatorDriver,
    RotatorHealth,
    RotatorOutOfLimits,
    RotatorStalled,
    create_rotator,
    get_rotator_driver,
)

__all__ = [
    "BUILTIN_DRIVER_MODULES",
    "Driver",
    "DriverHealth",
    "DriverKind",
    "DriverState",
    "Position",
    "RotatorCapabilities",
    "RotatorDriver",
    "RotatorHealth",
    "RotatorOutOfLimits",
    "RotatorStalled",
    "create_driver",
    "create_rotator",
    "driver_names",
    "get_driver",
    "get_rotator_driver",
    "register_driver",
]
