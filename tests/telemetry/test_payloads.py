"""Payload models, the envelope, JSON Schema export, the topic tree and the in-memory sink."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from controller.telemetry.commands import COMMAND_MODELS
from controller.telemetry.payloads import (
    PAYLOAD_TYPES,
    Alarm,
    AntennaState,
    Event,
    PassEvent,
    Pointing,
    Reply,
    Status,
    decode_message,
    message_model,
    payload_type,
    schema_document,
)
from controller.telemetry.sink import InMemorySink, TelemetrySink
from controller.telemetry.topics import (
    TOPIC_TABLE,
    Delivery,
    TopicError,
    TopicTree,
    check_level,
    default_prefix,
)
from firmware_bridge.clock import VirtualClock

from ._jsonschema import SchemaViolation, validate
from ._samples import T0, samples


def test_every_sample_validates_against_its_exported_schema() -> None:
    """Each payload type's wire JSON satisfies the JSON Schema published for it."""
    sink = InMemorySink(VirtualClock(T0), "gs1")
    for payload in samples():
        sink.send(payload)
    for msg in sink.messages:
        doc = schema_document(payload_type(msg.type_name))
        instance = json.loads(msg.payload)
        validate(instance, doc)
        assert instance["schema"] == doc["$id"]


def test_schema_validator_is_not_vacuous() -> None:
    """The test validator rejects wrong types, missing and extra keys, and bad enums."""
    doc = schema_document(AntennaState)
    tracking = next(p for p in samples() if isinstance(p, AntennaState))
    good = json.loads(InMemorySink(VirtualClock(T0)).encoder.encode(tracking).payload)
    validate(good, doc)
    bad_cases = [
        {**good, "az_deg": "12"},
        {k: v for k, v in good.items() if k != "mode"},
        {**good, "colour": "red"},
        {**good, "mode": "dancing"},
        {**good, "schema": "groundlink.pointing/1"},
        {**good, "ts": "2026-11-26T12:00:00"},
        {**good, "seq": -1},
    ]
    for bad in bad_cases:
        with pytest.raises(SchemaViolation):
            validate(bad, doc)


def test_schema_documents_cover_payloads_and_commands() -> None:
    """Every payload and command model exports a draft 2020-12 schema with its id."""
    for cls in (*PAYLOAD_TYPES, *COMMAND_MODELS.values()):
        doc = schema_document(cls)
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"] == getattr(cls, "schema_id")()  # noqa: B009 - two model families
        assert {"ts", "seq", "schema"} <= set(doc["required"])
        assert doc["additionalProperties"] is False


def test_envelope_stamps_clock_time_and_per_topic_seq() -> None:
    """ts comes from the injected clock in ISO 8601 UTC; seq counts per topic from 1."""
    clock = VirtualClock(T0)
    sink = InMemorySink(clock, "gs1")
    sink.send(AntennaState(antenna="a1", mode="idle", az_deg=0.0, el_deg=90.0))
    sink.send(AntennaState(antenna="a2", mode="idle", az_deg=0.0, el_deg=90.0))
    clock.jump_wall(1.5)
    sink.send(AntennaState(antenna="a1", mode="parked", az_deg=0.0, el_deg=90.0))
    decoded = [json.loads(m.payload) for m in sink.messages]
    assert [(m.topic, d["seq"]) for m, d in zip(sink.messages, decoded, strict=True)] == [
        ("groundlink/gs1/antenna/a1/state", 1),
        ("groundlink/gs1/antenna/a2/state", 1),
        ("groundlink/gs1/antenna/a1/state", 2),
    ]
    assert decoded[0]["ts"] == "2026-11-26T12:00:00.000000Z"
    assert decoded[2]["ts"] == "2026-11-26T12:00:01.500000Z"
    assert list(decoded[0])[:3] == ["ts", "seq", "schema"]


def test_wire_form_round_trips_through_the_message_model() -> None:
    """decode_message picks the model by 'schema' and gives back the same content."""
    sink = InMemorySink(VirtualClock(T0))
    for payload in samples():
        sink.send(payload)
        decoded = decode_message(sink.messages[-1].payload)
        assert isinstance(decoded, type(payload))
        content = decoded.model_dump(exclude={"ts", "seq", "schema_"})
        assert content == payload.model_dump()


def test_delivery_qos_and_retain_follow_the_topic_table() -> None:
    """Each payload type's QoS and delivery match its row in TOPIC_TABLE."""
    rows = {spec.payload_type: spec for spec in TOPIC_TABLE}
    for cls in PAYLOAD_TYPES:
        spec = rows[cls.TYPE]
        assert (spec.delivery, spec.qos) == (cls.DELIVERY, cls.QOS), cls.TYPE
    sink = InMemorySink(VirtualClock(T0))
    for payload in samples():
        sink.send(payload)
    for msg in sink.messages:
        assert msg.retain == (msg.delivery is Delivery.STATE)


def test_naive_datetime_is_rejected_naming_the_field() -> None:
    """A naive 'since' fails validation with the field name in the error."""
    with pytest.raises(ValidationError, match="since") as info:
        Alarm(id="x", severity="info", since=datetime(2026, 1, 1), message="m")
    assert "timezone" in str(info.value)


def test_datetimes_are_converted_to_utc() -> None:
    """An aware non-UTC datetime is stored and serialised as UTC."""
    cest = timezone(timedelta(hours=2))
    alarm = Alarm(id="x", severity="info", since=datetime(2026, 6, 1, 14, tzinfo=cest), message="m")
    assert alarm.since == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert '"since":"2026-06-01T12:00:00Z"' in alarm.model_dump_json()


@pytest.mark.parametrize(
    ("factory", "needle"),
    [
        (lambda: AntennaState(antenna="a/1", mode="idle", az_deg=0, el_deg=0), "antenna"),
        (lambda: AntennaState(antenna="a1", mode="idle", az_deg=float("nan"), el_deg=0), "az_deg"),
        (lambda: AntennaState(antenna="a1", mode="idle", az_deg=800.0, el_deg=0), "az_deg"),
        (lambda: PassEvent(antenna="a1", norad_id=1, event="aborted"), "reason"),
        (lambda: PassEvent(antenna="a1", norad_id=1, event="handover"), "to_antenna"),
        (lambda: Reply(request_id="r", verb="ping", ok=False), "error"),
        (lambda: Event(kind="Bad Kind", message="m"), "kind"),
        (lambda: Status.model_validate({"state": "sleepy"}), "state"),
    ],
)
def test_invalid_payloads_are_refused_precisely(factory: object, needle: str) -> None:
    """Bad ids, NaN, out-of-range angles and inconsistent events fail naming the problem."""
    with pytest.raises(ValidationError, match=needle):
        factory()  # type: ignore[operator]


def test_pointing_keeps_rotator_native_azimuth() -> None:
    """actual_az_deg may be in the rotator's own 0-450 range (overlap), not folded."""
    sample = Pointing(
        antenna="a1",
        mode="tracking",
        norad_id=1,
        target_az_deg=10.0,
        target_el_deg=10.0,
        commanded_az_deg=370.0,
        commanded_el_deg=10.0,
        actual_az_deg=369.5,
        actual_el_deg=10.1,
        error_deg=0.5,
        period_s=0.5,
    )
    assert json.loads(sample.model_dump_json())["actual_az_deg"] == 369.5


def test_message_model_is_cached_and_requires_the_envelope() -> None:
    """The generated wire model is built once per type and rejects a missing seq."""
    assert message_model(Status) is message_model(Status)
    with pytest.raises(ValidationError, match="seq"):
        message_model(Status).model_validate(
            {"ts": "2026-01-01T00:00:00Z", "schema": "groundlink.status/1", "state": "ready"}
        )


def test_decode_message_explains_what_is_wrong() -> None:
    """Non-JSON, non-objects and unknown schemas raise ValueError saying which."""
    with pytest.raises(ValueError, match="not JSON"):
        decode_message(b"{nope")
    with pytest.raises(ValueError, match="schema"):
        decode_message(b"[1, 2]")
    with pytest.raises(ValueError, match="unknown payload type"):
        decode_message(b'{"schema": "groundlink.teapot/1"}')


def test_topic_tree_names_every_topic_under_the_prefix() -> None:
    """Topics are built under groundlink/<station>/ and parsed back."""
    tree = TopicTree.for_station("gs1")
    assert tree.prefix == default_prefix("gs1") == "groundlink/gs1/"
    assert tree.antenna_pointing("a1") == "groundlink/gs1/antenna/a1/pointing"
    assert tree.link("a1") == "groundlink/gs1/link/a1"
    assert tree.schema("pointing") == "groundlink/gs1/schema/pointing"
    assert tree.commands == "groundlink/gs1/cmd/+"
    assert tree.verb_of("groundlink/gs1/cmd/stow") == "stow"
    assert tree.verb_of("groundlink/gs1/reply/stow") is None
    assert tree.relative("groundlink/gs2/status") is None
    assert TopicTree("site/x/gs1/").pass_event == "site/x/gs1/pass/event"


@pytest.mark.parametrize("prefix", ["groundlink/gs1", "/gl/", "gl/+/", "gl/#/", "gl//x/", "$SYS/"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    """A prefix without trailing '/', with wildcards, empty levels or '$' is refused."""
    with pytest.raises(TopicError, match="prefix"):
        TopicTree(prefix)


@pytest.mark.parametrize("level", ["", "a/b", "a+", "#", "a b", "-x", "x" * 65])
def test_ids_that_are_not_one_topic_level_are_refused(level: str) -> None:
    """Ids become topic levels, so '/', wildcards, spaces and overlong ids are refused."""
    with pytest.raises(TopicError, match=re.escape(repr(level))):
        check_level(level, what="antenna id")


def test_in_memory_sink_is_a_telemetry_sink_and_keeps_retained_state() -> None:
    """InMemorySink satisfies the protocol and keeps the latest retained message per topic."""
    sink = InMemorySink(VirtualClock(T0), "gs1")
    assert isinstance(sink, TelemetrySink)
    sink.send(Status(state="starting"))
    sink.send(Status(state="ready"))
    sink.send(PassEvent(antenna="a1", norad_id=25544, event="aos"))
    assert json.loads(sink.retained[sink.topics.status].payload)["state"] == "ready"
    assert sink.topics.pass_event not in sink.retained
    assert [m.state for m in sink.decoded(Status)] == ["starting", "ready"]  # type: ignore[attr-defined]
    assert len(sink.on_topic(sink.topics.status)) == 2
