"""Command validation and dispatch, without a broker (the dispatcher is driven directly)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.telemetry.commands import (
    COMMAND_MODELS,
    CommandDispatcher,
    CommandIntake,
    CommandRejected,
    StowCommand,
)
from controller.telemetry.payloads import Reply
from firmware_bridge.clock import VirtualClock
from firmware_bridge.errors import LimitError

from ._handler import VALID, RecordingHandler

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _cmd(ts: datetime = T0, **fields: Any) -> bytes:
    body = {"request_id": "op-1", "ts": ts.isoformat().replace("+00:00", "Z"), **fields}
    return json.dumps(body).encode()


@pytest.fixture
def handler() -> RecordingHandler:
    """A fresh recording handler."""
    return RecordingHandler()


@pytest.fixture
def dispatcher(handler: RecordingHandler) -> CommandDispatcher:
    """A dispatcher on a virtual clock at T0 (max age 30 s, 1 KiB, 5 s handler timeout)."""
    return CommandDispatcher(
        handler, VirtualClock(T0), max_age_s=30.0, max_bytes=1024, timeout_s=5.0
    )


@pytest.mark.parametrize("verb", sorted(VALID))
async def test_each_valid_verb_reaches_the_handler_and_is_answered(
    verb: str, handler: RecordingHandler, dispatcher: CommandDispatcher
) -> None:
    """A well-formed, fresh command is applied once and answered ok with its request_id."""
    reply = await dispatcher.dispatch(verb, _cmd(**VALID[verb]))
    assert reply.ok, reply.error
    assert (reply.request_id, reply.verb, reply.result) == ("op-1", verb, {"applied": verb})
    assert len(handler.calls) == 1
    command = handler.calls[0]
    assert isinstance(command, COMMAND_MODELS[verb])
    for key, value in VALID[verb].items():
        assert getattr(command, key) == value


async def test_ping_is_answered_without_a_handler() -> None:
    """ping needs no daemon; other verbs say the handler is unavailable."""
    dispatcher = CommandDispatcher(None, VirtualClock(T0 + timedelta(seconds=2)))
    pong = await dispatcher.dispatch("ping", _cmd(echo="hello"))
    assert pong.ok
    assert pong.result == {"pong": True, "echo": "hello", "age_s": 2.0}
    stow = await dispatcher.dispatch("stow", _cmd())
    assert not stow.ok
    assert stow.error is not None
    assert stow.error.code == "unavailable"


@pytest.mark.parametrize(
    ("verb", "payload", "code", "needle"),
    [
        ("point", b"{not json", "malformed", "not valid JSON"),
        ("point", b"[1, 2]", "invalid", "object"),
        ("point", _cmd(antenna="a1", az_deg=1.0), "invalid", "el_deg"),
        ("point", _cmd(antenna="a1", az_deg="10", el_deg=5.0), "invalid", "az_deg = '10'"),
        ("point", _cmd(antenna="a1", az_deg=10.0, el_deg=5.0, speed=3), "invalid", "speed"),
        ("point", _cmd(antenna="a1", az_deg=999.0, el_deg=5.0), "invalid", "or equal to 720"),
        ("point", b'{"request_id":"x","ts":"2026-11-26T12:00:00Z","antenna":"a1",'
                  b'"az_deg":NaN,"el_deg":1}', "invalid", "finite number"),
        ("point", _cmd(antenna="a/1", az_deg=1.0, el_deg=5.0), "invalid", "antenna"),
        ("priority", _cmd(norad_id=True, weight=1.0), "invalid", "norad_id"),
        ("stow", b'{"request_id":"x","ts":"2026-11-26T12:00:00"}', "invalid", "timezone"),
        ("stow", b'{"request_id":"x y","ts":"2026-11-26T12:00:00Z"}', "invalid", "request_id"),
        ("reload", _cmd(what="everything"), "invalid", "what"),
    ],
)  # fmt: skip
async def test_malformed_commands_are_rejected_precisely(
    verb: str,
    payload: bytes,
    code: str,
    needle: str,
    handler: RecordingHandler,
    dispatcher: CommandDispatcher,
) -> None:
    """Bad JSON, wrong types, unknown/missing fields and out-of-range values are refused."""
    reply = await dispatcher.dispatch(verb, payload)
    assert not reply.ok
    assert reply.error is not None
    assert reply.error.code == code
    assert needle in reply.error.message
    assert handler.calls == []


async def test_rejected_command_keeps_its_request_id_when_readable(
    dispatcher: CommandDispatcher,
) -> None:
    """An invalid command still gets its request_id in the reply, and the failing field."""
    reply = await dispatcher.dispatch("point", _cmd(antenna="a1", az_deg=1.0, el_deg=500.0))
    assert reply.request_id == "op-1"
    assert reply.error is not None
    assert reply.error.field == "el_deg"


async def test_oversized_command_is_rejected_before_parsing(
    handler: RecordingHandler, dispatcher: CommandDispatcher
) -> None:
    """A payload above max_bytes is refused with its size and the limit."""
    reply = await dispatcher.dispatch("pause", _cmd(reason="x" * 150) + b" " * 2000)
    assert reply.error is not None
    assert reply.error.code == "too_large"
    assert "bytes; commands are limited to 1024" in reply.error.message
    assert handler.calls == []


@pytest.mark.parametrize(
    ("offset_s", "needle"), [(-31.0, "31.0 s old"), (45.0, "45.0 s in the future")]
)
async def test_stale_and_future_commands_are_rejected(
    offset_s: float, needle: str, handler: RecordingHandler, dispatcher: CommandDispatcher
) -> None:
    """A command stamped more than max_age_s from the station clock is not applied."""
    reply = await dispatcher.dispatch(
        "point", _cmd(T0 + timedelta(seconds=offset_s), **VALID["point"])
    )
    assert reply.error is not None
    assert reply.error.code == "stale"
    assert needle in reply.error.message
    assert reply.error.field == "ts"
    assert handler.calls == []


async def test_retained_commands_are_rejected(
    handler: RecordingHandler, dispatcher: CommandDispatcher
) -> None:
    """A command replayed from the broker's retained store is not applied."""
    reply = await dispatcher.dispatch("track", _cmd(**VALID["track"]), retained=True)
    assert reply.error is not None
    assert reply.error.code == "retained"
    assert handler.calls == []


@pytest.mark.parametrize("verb", ["stow", "abort"])
async def test_safety_commands_are_accepted_even_stale_and_retained(
    verb: str, handler: RecordingHandler, dispatcher: CommandDispatcher
) -> None:
    """stow and abort move toward safety: applied with warnings, not refused."""
    stale = T0 - timedelta(minutes=10)
    reply = await dispatcher.dispatch(verb, _cmd(stale, **VALID[verb]), retained=True)
    assert reply.ok
    assert len(reply.warnings) == 2
    assert "retained" in reply.warnings[0]
    assert "600.0 s old" in reply.warnings[1]
    assert len(handler.calls) == 1


async def test_disabled_verbs_are_not_authorised(handler: RecordingHandler) -> None:
    """A verb left out of commands_enabled is refused as not authorised; stow stays enabled."""
    dispatcher = CommandDispatcher(handler, VirtualClock(T0), enabled=frozenset({"ping", "pause"}))
    point = await dispatcher.dispatch("point", _cmd(**VALID["point"]))
    assert point.error is not None
    assert point.error.code == "not_authorised"
    assert "'point' is disabled" in point.error.message
    assert (await dispatcher.dispatch("stow", _cmd())).ok
    assert [type(c) for c in handler.calls] == [StowCommand]


@pytest.mark.parametrize("verb", ["selfdestruct", "stow/now", "", "#", "x" * 500])
async def test_unknown_verbs_are_answered_on_reply_invalid(
    verb: str, dispatcher: CommandDispatcher
) -> None:
    """An unknown verb gets an unknown_verb error on reply/invalid (no topic injection)."""
    reply = await dispatcher.dispatch(verb, _cmd())
    assert reply.verb == "invalid"
    assert reply.error is not None
    assert reply.error.code == "unknown_verb"
    assert "known verbs: abort, pause, ping, point" in reply.error.message
    assert reply.request_id == "op-1"  # read on a best-effort basis for the operator
    assert len(reply.error.message) < 300


@pytest.mark.parametrize(
    ("behaviour", "code", "needle"),
    [
        (CommandRejected("antenna 'a9' is unknown; known: a1", field="antenna"), "rejected", "a9"),
        (LimitError("elevation 95.0 outside 0..90"), "device_error", "LimitError: elevation"),
        (RuntimeError("bug in handler"), "internal", "RuntimeError: bug in handler"),
        ({"bad": object()}, "internal", "non-JSON result"),
    ],
)
async def test_handler_failures_become_error_replies(
    behaviour: Any,
    code: str,
    needle: str,
    handler: RecordingHandler,
    dispatcher: CommandDispatcher,
) -> None:
    """Rejections, device errors, bugs and bad results are answered, never raised."""
    handler.behaviour["point"] = behaviour
    reply = await dispatcher.dispatch("point", _cmd(**VALID["point"]))
    assert reply.error is not None
    assert reply.error.code == code
    assert needle in reply.error.message
    if code == "rejected":
        assert reply.error.field == "antenna"
    assert (await dispatcher.dispatch("ping", _cmd())).ok


async def test_a_hung_handler_times_out_on_the_injected_clock(
    handler: RecordingHandler,
) -> None:
    """A handler that never returns is cancelled after timeout_s of the injected clock."""
    clock = VirtualClock(T0)
    dispatcher = CommandDispatcher(handler, clock, timeout_s=5.0)
    handler.behaviour["reload"] = "hang"
    task = asyncio.create_task(dispatcher.dispatch("reload", _cmd(**VALID["reload"])))
    await clock.advance(4.9)
    assert not task.done()
    await clock.advance(0.2)
    reply = await asyncio.wait_for(task, 5)
    assert reply.error is not None
    assert reply.error.code == "timeout"
    assert "5 s" in reply.error.message


async def test_safety_lane_is_not_blocked_by_a_hung_command(handler: RecordingHandler) -> None:
    """With a reload hanging, a stow is still applied; a full lane answers busy."""
    clock = VirtualClock(T0)
    dispatcher = CommandDispatcher(handler, clock, timeout_s=60.0)
    replies: list[Reply] = []
    got_reply = asyncio.Event()

    def on_reply(reply: Reply) -> None:
        replies.append(reply)
        got_reply.set()

    intake = CommandIntake(dispatcher, on_reply, lane_size=1)
    handler.behaviour["reload"] = "hang"
    runner = asyncio.create_task(intake.run())
    try:
        intake.submit("reload", _cmd(**VALID["reload"]), retained=False)
        await clock.settle()  # the reload is now being handled (and hangs)
        intake.submit("pause", _cmd(**VALID["pause"]), retained=False)  # fills the lane
        intake.submit("resume", _cmd(), retained=False)  # no room: busy
        intake.submit("stow", _cmd(**VALID["stow"]), retained=False)
        await asyncio.wait_for(clock.settle(), 5)
        assert [(r.verb, r.ok, r.error.code if r.error else None) for r in replies] == [
            ("resume", False, "busy"),
            ("stow", True, None),
        ]
        handler.release.set()
        await asyncio.wait_for(clock.settle(), 5)
        assert [r.verb for r in replies[2:]] == ["reload", "pause"]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


_FIELD_NAMES = st.sampled_from(
    ["request_id", "ts", "antenna", "norad_id", "az_deg", "el_deg", "weight", "what", "reason",
     "echo", "x", ""]
)  # fmt: skip
_JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["2026-11-26T12:00:00Z", "2026-11-26T11:00:00+00:00", "a1", "all", "op-1"]),
)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_FIELD_NAMES, inner, max_size=6),
    max_leaves=20,
)
_PAYLOADS = st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(_FIELD_NAMES, _JSON, max_size=8).map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda verb, extra: _cmd(**{**VALID.get(verb, {}), **extra}),
        st.sampled_from(sorted(VALID)),
        st.dictionaries(
            _FIELD_NAMES.filter(lambda k: k not in ("request_id", "ts")), _JSON_LEAF, max_size=2
        ),
    ),
)
_VERBS = st.one_of(st.sampled_from([*sorted(VALID), "ping"]), st.text(max_size=20))


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for every fuzz example (a loop per example costs more than the test)."""
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(verb=_VERBS, payload=_PAYLOADS, retained=st.booleans())
def test_fuzzed_commands_never_disturb_the_dispatcher(
    runner: asyncio.Runner, verb: str, payload: bytes, retained: bool
) -> None:
    """Any verb and payload gets a valid reply; the handler only sees what the reply accepts."""
    handler = RecordingHandler()
    dispatcher = CommandDispatcher(handler, VirtualClock(T0), max_bytes=256)
    reply = runner.run(dispatcher.dispatch(verb, payload, retained=retained))
    assert isinstance(reply, Reply)
    Reply.model_validate(reply.model_dump())  # the reply itself is well-formed
    assert len(handler.calls) == (1 if reply.ok and verb != "ping" else 0)
    if not reply.ok:
        assert reply.error is not None
        assert reply.error.code != "internal", reply.error
    assert runner.run(dispatcher.dispatch("ping", _cmd())).ok
