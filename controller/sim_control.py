"""Fault injection for `groundlink sim serve --control`: one command per stdin line.

Commands (ROLE is ``rotator`` or ``radio``)::

    stall rotator az|el         release rotator az|el
    drop ROLE [COUNT]           garbage ROLE [COUNT]       truncate ROLE [COUNT]
    late ROLE SECONDS           clear ROLE
    disconnect ROLE SECONDS     (the device vanishes, then comes back)

Each line gets one JSON line on stdout: ``{"ok": true, "applied": "..."}`` or
``{"ok": false, "error": "..."}``; a bad line never stops the server.
"""

from __future__ import annotations

import math
from typing import Any

from firmware_bridge.protocols.base import Axis
from firmware_bridge.simulators.rotator import RotatorTwin
from firmware_bridge.simulators.serve import ServedSimulators

__all__ = ["ControlError", "apply_control"]

USAGE = (
    "commands: stall|release rotator az|el; drop|garbage|truncate ROLE [COUNT]; "
    "late ROLE SECONDS; clear ROLE; disconnect ROLE SECONDS"
)


class ControlError(ValueError):
    """A control line that cannot be applied; the message says why."""


def _count(words: list[str]) -> int | None:
    if len(words) < 3:
        return None
    try:
        value = int(words[2])
    except ValueError as exc:
        raise ControlError(f"COUNT {words[2]!r} is not a whole number") from exc
    if value < 0:
        raise ControlError(f"COUNT {value} must be >= 0")
    return value


def _seconds(words: list[str]) -> float:
    if len(words) != 3:
        raise ControlError(f"{words[0]} needs ROLE SECONDS")
    try:
        value = float(words[2])
    except ValueError as exc:
        raise ControlError(f"SECONDS {words[2]!r} is not a number") from exc
    if not math.isfinite(value) or value < 0:
        raise ControlError(f"SECONDS {value} must be a finite number >= 0")
    return value


async def apply_control(served: ServedSimulators, line: str) -> dict[str, Any]:
    """Apply one control line to the served twins; return the JSON-able answer."""
    words = line.split()
    try:
        if not words:
            raise ControlError(USAGE)
        verb = words[0].lower()
        if len(words) < 2:
            raise ControlError(f"{verb}: name the device (rotator or radio); {USAGE}")
        role = words[1].lower()
        twin = served.twins.get(role)
        if twin is None:
            raise ControlError(f"no {role!r} is served here; served: {sorted(served.twins)}")
        if verb in ("stall", "release"):
            if not isinstance(twin, RotatorTwin):
                raise ControlError(f"{verb} applies to a rotator, not the {role}")
            if len(words) != 3 or words[2].lower() not in ("az", "el"):
                raise ControlError(f"{verb} needs an axis: az or el")
            axis = Axis.AZ if words[2].lower() == "az" else Axis.EL
            (twin.stall if verb == "stall" else twin.release)(axis)
        elif verb == "drop":
            twin.faults.drop_replies(_count(words))
        elif verb == "garbage":
            twin.faults.garbage_replies(_count(words))
        elif verb == "truncate":
            twin.faults.truncate_replies(_count(words))
        elif verb == "late":
            twin.faults.late_replies(_seconds(words))
        elif verb == "clear":
            twin.faults.clear()
        elif verb == "disconnect":
            down_s = _seconds(words)
            servers = [s for s in served.servers if s.twin is twin]
            for server in servers:
                await server.disconnect_for(down_s)
        else:
            raise ControlError(f"unknown command {verb!r}; {USAGE}")
    except (ControlError, ValueError) as exc:
        return {"ok": False, "error": str(exc), "line": line.strip()}
    return {"ok": True, "applied": " ".join(words)}
