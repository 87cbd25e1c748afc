"""Logging set-up: structlog to stderr, JSON lines off a terminal, readable on one.

Configured once by the entry points (CLI, daemon), never at import time. A failing
write (a full disk, a closed pipe) is swallowed by the writer so that logging can never
take the station down.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging"]


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
