"""Operator commands over MQTT: strict validation, dispatch to the daemon, one reply each.

A command is a JSON object published (QoS 1, not retained) on ``cmd/<verb>``::

    {"request_id": "op-17", "ts": "2026-11-26T12:00:00Z", "antenna": "a1"}

Checks, in order; the first that fails is the reply's error (``code`` in brackets):

1. the verb is known                                   [unknown_verb]
2. the payload is at most ``max_bytes`` bytes          [too_large]
3. it is JSON and matches the verb's model exactly     [malformed] / [invalid]
   (strict: no type coercion, no unknown keys, finite numbers, aware ``ts``)
4. the verb is enabled on this station                 [not_authorised]
5. it did not come from the broker's retained store    [retained]
6. ``ts`` is within ``max_age_s`` of the station clock [stale]
7. the handler accepts and applies it                  [rejected] [device_error]
                                                       [timeout] [unavailable] [internal]

``stow`` and ``abort`` move toward safety and are always accepted: steps 5 and 6 only add
a warning for them, and a handler must never refuse them for policy reasons (paused,
manual mode, busy). ``ping`` is answered here without the handler.

Replies go to ``reply/<verb>`` with the ``request_id`` (when one could be read), ``ok``,
and a ``result`` or a precise ``error``. Nothing a client sends can make
:meth:`CommandDispatcher.dispatch` raise.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from controller.telemetry.config import ALL_VERBS
from controller.telemetry.payloads import (
    CommandError,
    Id,
    NoradId,
    Reply,
    UtcDatetime,
    format_ts,
)
from firmware_bridge.clock import Clock
from firmware_bridge.errors import BridgeError

__all__ = [
    "COMMAND_MODELS",
    "SAFETY_VERBS",
    "AbortCommand",
    "Command",
    "CommandDispatcher",
    "CommandHandler",
    "CommandIntake",
    "CommandRejected",
    "CommandResult",
    "PauseCommand",
    "PingCommand",
    "PointCommand",
    "PriorityCommand",
    "ReloadCommand",
    "ResumeCommand",
    "StowCommand",
    "TrackCommand",
]

_log = logging.getLogger(__name__)

SAFETY_VERBS: frozenset[str] = frozenset({"stow", "abort"})
RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Reason = Annotated[str, StringConstraints(max_length=200)]

CommandResult = Mapping[str, JsonValue] | None
"""What a handler returns: a small JSON object for the reply's ``result``, or None."""


class Command(BaseModel):
    """Fields every command carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    VERB: ClassVar[str]
    VERSION: ClassVar[int] = 1

    request_id: RequestId
    ts: UtcDatetime

    @classmethod
    def schema_id(cls) -> str:
        """``groundlink.cmd_<verb>/<version>``."""
        return f"groundlink.cmd_{cls.VERB}/{cls.VERSION}"


class StowCommand(Command):
    """Park one antenna (or every antenna when ``antenna`` is omitted) in its stow position."""

    VERB: ClassVar[str] = "stow"
    antenna: Id | None = None


class AbortCommand(Command):
    """Abort the track under way on ``antenna`` (only if it is ``norad_id``, when given)."""

    VERB: ClassVar[str] = "abort"
    antenna: Id
    norad_id: NoradId | None = None
    reason: Reason | None = None


class PauseCommand(Command):
    """Stop starting new tracks (tracks under way continue)."""

    VERB: ClassVar[str] = "pause"
    reason: Reason | None = None


class ResumeCommand(Command):
    """Start scheduling tracks again."""

    VERB: ClassVar[str] = "resume"


class ReloadCommand(Command):
    """Reload the configuration, the TLEs, or both."""

    VERB: ClassVar[str] = "reload"
    what: Literal["all", "config", "tle"] = "all"


class PriorityCommand(Command):
    """Set a satellite's scheduling weight (0 = never schedule)."""

    VERB: ClassVar[str] = "priority"
    norad_id: NoradId
    weight: Annotated[float, Field(ge=0.0, le=1000.0)]


class PointCommand(Command):
    """Point an antenna manually (limits are checked against the antenna's rotator)."""

    VERB: ClassVar[str] = "point"
    antenna: Id
    az_deg: Annotated[float, Field(ge=-360.0, le=720.0)]
    el_deg: Annotated[float, Field(ge=-90.0, le=180.0)]


class TrackCommand(Command):
    """Track a satellite now (on ``antenna``, or the best free antenna)."""

    VERB: ClassVar[str] = "track"
    norad_id: NoradId
    antenna: Id | None = None


class PingCommand(Command):
    """Liveness check; the reply echoes ``echo``."""

    VERB: ClassVar[str] = "ping"
    echo: Reason | None = None


COMMAND_MODELS: dict[str, type[Command]] = {
    cls.VERB: cls
    for cls in (
        StowCommand,
        AbortCommand,
        PauseCommand,
        ResumeCommand,
        ReloadCommand,
        PriorityCommand,
        PointCommand,
        TrackCommand,
        PingCommand,
    )
}
assert set(COMMAND_MODELS) == ALL_VERBS


class CommandRejected(Exception):
    """Raised by a handler to refuse a command with a precise reason."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class CommandHandler(Protocol):
    """What the daemon implements; each method applies one verb and returns a result.

    Raise :class:`CommandRejected` to refuse with a reason, or let a
    ``firmware_bridge`` error propagate (it becomes a ``device_error`` reply). ``stow``
    and ``abort`` must not be refused for policy reasons.
    """

    async def stow(self, command: StowCommand) -> CommandResult:
        """Stow one antenna or all."""
        ...

    async def abort(self, command: AbortCommand) -> CommandResult:
        """Abort the track under way on an antenna."""
        ...

    async def pause(self, command: PauseCommand) -> CommandResult:
        """Pause scheduling."""
        ...

    async def resume(self, command: ResumeCommand) -> CommandResult:
        """Resume scheduling."""
        ...

    async def reload(self, command: ReloadCommand) -> CommandResult:
        """Reload config and/or TLEs."""
        ...

    async def priority(self, command: PriorityCommand) -> CommandResult:
        """Set a satellite's weight."""
        ...

    async def point(self, command: PointCommand) -> CommandResult:
        """Point an antenna manually."""
        ...

    async def track(self, command: TrackCommand) -> CommandResult:
        """Track a satellite now."""
        ...


_RESULT = TypeAdapter(dict[str, JsonValue])


def _reply_verb(verb: str) -> str:
    # The reply topic is reply/<verb>; a hostile verb must not inject topic levels.
    return verb if verb in ALL_VERBS else "invalid"


def _best_effort_request_id(payload: bytes) -> str | None:
    """The request_id of a payload that failed validation, if it has a usable one."""
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if isinstance(raw, dict):
        rid = raw.get("request_id")
        if isinstance(rid, str) and 1 <= len(rid) <= 64 and rid.isascii() and rid.isprintable():
            return rid
    return None


def _describe_validation(exc: ValidationError) -> tuple[str, str | None]:
    """A precise one-line description of (up to three) validation errors, and the field."""
    parts = []
    first_field: str | None = None
    errors = exc.errors(include_url=False)
    for err in errors[:3]:
        loc = ".".join(str(p) for p in err["loc"])
        if first_field is None and loc:
            first_field = loc
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" = {value!r}"[:80]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        parts.append(f"{loc or '(payload)'}{shown}: {msg}")
    if len(errors) > 3:
        parts.append(f"... and {len(errors) - 3} more")
    return "; ".join(parts), first_field


class CommandDispatcher:
    """Validates raw commands, applies them through a :class:`CommandHandler`, builds replies."""

    def __init__(
        self,
        handler: CommandHandler | None,
        clock: Clock,
        *,
        max_age_s: float = 30.0,
        max_bytes: int = 4096,
        enabled: frozenset[str] = ALL_VERBS,
        timeout_s: float = 10.0,
    ) -> None:
        self._handler = handler
        self._clock = clock
        self._max_age_s = max_age_s
        self._max_bytes = max_bytes
        self._enabled = frozenset(enabled) | SAFETY_VERBS | {"ping"}
        self._timeout_s = timeout_s
        self.counts: Counter[str] = Counter()  # "ok" or the error code

    async def dispatch(self, verb: str, payload: bytes, *, retained: bool = False) -> Reply:
        """Validate and apply one command; always returns its reply, never raises."""
        try:
            reply = await self._dispatch(verb, payload, retained)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the dispatcher must survive anything a client sends
            _log.exception("command dispatch failed unexpectedly")
            reply = self._error(
                verb, None, "internal", f"internal error: {type(exc).__name__}: {exc}"[:500]
            )
        self.counts["ok" if reply.ok else (reply.error.code if reply.error else "?")] += 1
        return reply

    def busy(self, verb: str, payload: bytes) -> Reply:
        """The reply for a command dropped because the command queue is full."""
        self.counts["busy"] += 1
        return self._error(
            verb,
            _best_effort_request_id(payload[: self._max_bytes]),
            "busy",
            "too many commands waiting; this one was not applied, send it again later",
        )

    # -- the checks --------------------------------------------------------------------
    async def _dispatch(self, verb: str, payload: bytes, retained: bool) -> Reply:
        model = COMMAND_MODELS.get(verb)
        if model is None:
            shown = verb if len(verb) <= 64 else verb[:64] + "..."
            small = len(payload) <= self._max_bytes
            return self._error(
                verb,
                _best_effort_request_id(payload) if small else None,
                "unknown_verb",
                f"unknown command verb {shown!r}; known verbs: {', '.join(sorted(ALL_VERBS))}",
            )
        if len(payload) > self._max_bytes:
            return self._error(
                verb,
                None,
                "too_large",
                f"payload is {len(payload)} bytes; commands are limited to {self._max_bytes} "
                "bytes (mqtt.command_max_bytes)",
            )
        try:
            command = model.model_validate_json(payload)
        except ValidationError as exc:
            rid = _best_effort_request_id(payload)
            errors = exc.errors(include_url=False)
            if errors and errors[0]["type"] == "json_invalid":
                return self._error(
                    verb, rid, "malformed", f"payload is not valid JSON: {errors[0]['msg']}"
                )
            text, field = _describe_validation(exc)
            return self._error(verb, rid, "invalid", f"invalid {verb} command: {text}", field)
        rid = command.request_id
        if verb not in self._enabled:
            return self._error(
                verb,
                rid,
                "not_authorised",
                f"verb {verb!r} is disabled on this station (mqtt.commands_enabled)",
            )
        warnings: list[str] = []
        safety = verb in SAFETY_VERBS
        if retained:
            text = (
                "command arrived from the broker's retained store (published with retain=1); "
                "commands must not be retained, or every reconnect would replay them"
            )
            if not safety:
                return self._error(verb, rid, "retained", text)
            warnings.append(text + "; applied anyway because it moves toward safety")
        now = self._clock.now()
        age_s = (now - command.ts).total_seconds()
        if abs(age_s) > self._max_age_s:
            where = f"{age_s:.1f} s old" if age_s > 0 else f"{-age_s:.1f} s in the future"
            text = (
                f"ts {format_ts(command.ts)} is {where} by the station clock "
                f"({format_ts(now)}); commands must be within {self._max_age_s:g} s "
                "(mqtt.command_max_age_s)"
            )
            if not safety:
                return self._error(verb, rid, "stale", text, "ts")
            warnings.append(text + "; applied anyway because it moves toward safety")
        if isinstance(command, PingCommand):
            return Reply(
                request_id=rid,
                verb=verb,
                ok=True,
                result={"pong": True, "echo": command.echo, "age_s": round(age_s, 6)},
                warnings=warnings,
            )
        if self._handler is None:
            return self._error(
                verb,
                rid,
                "unavailable",
                "no command handler is attached (control loop not running)",
            )
        return await self._apply(verb, rid, command, warnings)

    async def _apply(self, verb: str, rid: str, command: Command, warnings: list[str]) -> Reply:
        method: Callable[[Any], Awaitable[CommandResult]] = getattr(self._handler, verb)
        try:
            result = await self._with_timeout(method(command))
        except CommandRejected as exc:
            return self._error(verb, rid, "rejected", exc.message, exc.field, warnings)
        except BridgeError as exc:
            return self._error(
                verb, rid, "device_error", f"{type(exc).__name__}: {exc}", None, warnings
            )
        except TimeoutError:
            return self._error(
                verb,
                rid,
                "timeout",
                f"not completed within {self._timeout_s:g} s (mqtt.command_timeout_s); "
                "it was cancelled",
                None,
                warnings,
            )
        except Exception as exc:  # a handler bug must not take the command loop down
            _log.exception("command handler %s failed", verb)
            return self._error(
                verb, rid, "internal", f"{type(exc).__name__}: {exc}"[:500], None, warnings
            )
        try:
            checked = None if result is None else _RESULT.validate_python(dict(result))
        except (ValidationError, TypeError, ValueError) as exc:
            return self._error(
                verb, rid, "internal", f"handler returned a non-JSON result: {exc}"[:500]
            )
        return Reply(request_id=rid, verb=verb, ok=True, result=checked, warnings=warnings)

    async def _with_timeout(self, work: Awaitable[CommandResult]) -> CommandResult:
        """Await ``work`` unless ``timeout_s`` of the injected clock passes first."""
        task = asyncio.ensure_future(work)
        timer = asyncio.ensure_future(self._clock.sleep(self._timeout_s))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled from outside: take the handler call down too
            task.cancel()
            timer.cancel()
            raise
        timer.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise TimeoutError
        return task.result()

    def _error(
        self,
        verb: str,
        rid: str | None,
        code: str,
        message: str,
        field: str | None = None,
        warnings: list[str] | None = None,
    ) -> Reply:
        return Reply(
            request_id=rid,
            verb=_reply_verb(verb),
            ok=False,
            error=CommandError.model_validate({"code": code, "message": message, "field": field}),
            warnings=warnings or [],
        )


class CommandIntake:
    """Two bounded lanes in front of a dispatcher: safety verbs never wait behind others.

    ``submit`` is called for every message received on ``cmd/+`` and never blocks; a
    full lane answers ``busy`` at once. ``run`` processes each lane in arrival order
    and hands every reply to ``reply``. A hung ``reload`` cannot delay a ``stow``.
    """

    def __init__(
        self,
        dispatcher: CommandDispatcher,
        reply: Callable[[Reply], None],
        *,
        lane_size: int = 64,
    ) -> None:
        self._dispatcher = dispatcher
        self._reply = reply
        self._safety: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(lane_size)
        self._normal: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(lane_size)

    def submit(self, verb: str, payload: bytes, *, retained: bool) -> None:
        """Queue one received command (or answer ``busy`` if its lane is full)."""
        lane = self._safety if verb in SAFETY_VERBS else self._normal
        try:
            lane.put_nowait((verb, payload, retained))
        except asyncio.QueueFull:
            self._reply(self._dispatcher.busy(verb, payload))

    async def run(self) -> None:
        """Process both lanes until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._lane(self._safety), name="commands-safety")
            tg.create_task(self._lane(self._normal), name="commands")

    async def _lane(self, queue: asyncio.Queue[tuple[str, bytes, bool]]) -> None:
        while True:
            verb, payload, retained = await queue.get()
            self._reply(await self._dispatcher.dispatch(verb, payload, retained=retained))
