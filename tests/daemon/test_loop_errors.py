"""Errors no task awaited reach the log as one line, not as a traceback on stderr."""

from __future__ import annotations

import asyncio
import socket

import pytest
import structlog
from structlog.testing import capture_logs

from controller.logs import loop_exception_handler


async def test_a_socket_closed_before_the_loop_watched_it_is_a_debug_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """aiomqtt's race: add_writer scheduled as a callback, the socket closed before it ran
    (EBADF). With the handler: a debug line naming the callback, nothing on stderr."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    structlog.reset_defaults()
    a, b = socket.socketpair()
    try:
        with capture_logs() as logs:
            loop.call_soon(loop.add_writer, a.fileno(), lambda: None)
            a.close()
            for _ in range(3):
                await asyncio.sleep(0)
    finally:
        b.close()
        loop.set_exception_handler(None)
    assert [e["event"] for e in logs] == ["socket closed before the loop watched it"]
    assert logs[0]["log_level"] == "debug"
    assert "add_writer" in logs[0]["callback"]
    assert "Traceback" not in capsys.readouterr().err


async def test_any_other_callback_error_is_one_error_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A callback that raises: an error line with the loop's message and the exception's
    type and text, no traceback."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    structlog.reset_defaults()

    def broken() -> None:
        raise ValueError("bad reading 'x'")

    try:
        with capture_logs() as logs:
            loop.call_soon(broken)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert [e["event"] for e in logs] == ["event loop callback failed"]
    assert logs[0]["log_level"] == "error"
    assert logs[0]["error"] == "ValueError: bad reading 'x'"
    assert "Exception in callback" in logs[0]["message"]
    assert "Traceback" not in capsys.readouterr().err
