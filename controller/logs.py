"""Logging set-up: structlog to stderr, JSON lines off a terminal, readable on one.

Configured once by the entry points (CLI, daemon), never at import time. A failing
write (a full disk, a closed pipe) is swallowed by the writer so that logging can never
take the station down.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sys
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "loop_exception_handler"]


class _SafeWriter:
    """A file wrapper whose write and flush never raise (counts what was lost)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.lost = 0

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            self.lost += 1
            return 0

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self.lost += 1


def configure_logging(
    level: str = "info", *, json_lines: bool | None = None, stream: TextIO | None = None
) -> None:
    """Route structlog to ``stream`` (stderr) at ``level``; JSON unless on a terminal."""
    out = stream if stream is not None else sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r}: choose debug, info, warning or error")
    if json_lines is None:
        json_lines = not out.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[*processors, structlog.processors.format_exc_info, renderer]
        if json_lines
        else [*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_SafeWriter(out)),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's handler for errors no task awaited: one log line, no traceback.

    asyncio's default prints a traceback to stderr. The one seen here: aiomqtt registers
    its socket with the loop through a callback scheduled from paho, and when the
    connection closes before that callback runs (a broker restart, a shutdown) it fails
    with EBADF. Nothing is lost then (the publisher reconnects and resends), so it is a
    debug line; anything else is an error line naming the callback and the exception.
    """
    exc = context.get("exception")
    source = context.get("handle") or context.get("future") or context.get("task")
    where = repr(source)[:200] if source is not None else None
    log = structlog.get_logger("groundlink.loop")
    if isinstance(exc, OSError) and exc.errno == errno.EBADF:
        log.debug("socket closed before the loop watched it", callback=where)
        return
    log.error(
        "event loop callback failed",
        message=str(context.get("message", "")),
        callback=where,
        error=f"{type(exc).__name__}: {exc}" if exc is not None else None,
    )
