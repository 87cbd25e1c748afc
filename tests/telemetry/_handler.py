"""A recording CommandHandler and one valid argument set per verb (shared by tests)."""

from __future__ import annotations

import asyncio
from typing import Any

from controller.telemetry.commands import (
    AbortCommand,
    CommandResult,
    PauseCommand,
    PointCommand,
    PriorityCommand,
    ReloadCommand,
    ResumeCommand,
    StowCommand,
    TrackCommand,
)


class RecordingHandler:
    """A CommandHandler that records what it applied; behaviour set per verb."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.behaviour: dict[str, Any] = {}
        self.release = asyncio.Event()

    async def _do(self, verb: str, command: Any) -> CommandResult:
        self.calls.append(command)
        action = self.behaviour.get(verb)
        if action == "hang":
            await self.release.wait()
        elif isinstance(action, BaseException):
            raise action
        elif action is not None:
            return action  # type: ignore[no-any-return]
        return {"applied": verb}

    async def stow(self, command: StowCommand) -> CommandResult:
        """Record a stow."""
        return await self._do("stow", command)

    async def abort(self, command: AbortCommand) -> CommandResult:
        """Record an abort."""
        return await self._do("abort", command)

    async def pause(self, command: PauseCommand) -> CommandResult:
        """Record a pause."""
        return await self._do("pause", command)

    async def resume(self, command: ResumeCommand) -> CommandResult:
        """Record a resume."""
        return await self._do("resume", command)

    async def reload(self, command: ReloadCommand) -> CommandResult:
        """Record a reload."""
        return await self._do("reload", command)

    async def priority(self, command: PriorityCommand) -> CommandResult:
        """Record a priority change."""
        return await self._do("priority", command)

    async def point(self, command: PointCommand) -> CommandResult:
        """Record a manual point."""
        return await self._do("point", command)

    async def track(self, command: TrackCommand) -> CommandResult:
        """Record a track-now."""
        return await self._do("track", command)


VALID: dict[str, dict[str, Any]] = {
    "stow": {"antenna": "a1"},
    "abort": {"antenna": "a1", "norad_id": 25544, "reason": "wind"},
    "pause": {"reason": "maintenance"},
    "resume": {},
    "reload": {"what": "tle"},
    "priority": {"norad_id": 25544, "weight": 2.5},
    "point": {"antenna": "a1", "az_deg": 180.0, "el_deg": 45.0},
    "track": {"norad_id": 25544},
}
