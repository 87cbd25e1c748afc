"""Pydantic models of every telemetry payload, their wire form and their JSON Schemas.

A producer builds the *content* of a message (``Pointing(antenna="a1", ...)``); the sink
stamps the envelope every payload carries and serialises one flat JSON object::

    {"ts": "2026-11-26T12:00:00.123456Z", "seq": 42, "schema": "groundlink.pointing/1",
     "antenna": "a1", "mode": "tracking", ...}

* ``ts``: ISO 8601 UTC time the message was produced (the injected clock);
* ``seq``: per-topic counter, +1 per message produced on that topic, so a subscriber
  sees loss (on ``state`` topics a gap means superseded values were coalesced; on
  ``stream`` topics the outbox ring dropped samples; ``event`` topics never have gaps
  except where an ``events_dropped`` event says so). The last will carries ``seq`` 0;
  a publisher restart starts again at 1;
* ``schema``: ``groundlink.<type>/<version>``.

Units are in the key names (``az_deg``, ``freq_hz``, ``range_km``); streams carry their
nominal period ``period_s`` so dashboards can mark stale data. :func:`message_model`
gives the full wire model (content + envelope) of a payload type, and
:func:`schema_document` its JSON Schema (draft 2020-12), published retained on
``schema/<type>``.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    create_model,
    model_validator,
)

from controller.telemetry.topics import LEVEL_PATTERN, Delivery, TopicTree

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "PAYLOAD_TYPES",
    "SCHEMA_TYPE",
    "Alarm",
    "Alarms",
    "AntennaInfo",
    "AntennaMode",
    "AntennaState",
    "Catalog",
    "CatalogEntry",
    "CommandError",
    "ComponentHealth",
    "CurrentTrack",
    "Event",
    "Health",
    "Id",
    "Info",
    "Link",
    "NoradId",
    "PassCurrent",
    "PassEvent",
    "Payload",
    "Pointing",
    "RadioInfo",
    "RadioState",
    "Reply",
    "Schedule",
    "ScheduledTrack",
    "Severity",
    "Site",
    "StationState",
    "Status",
    "UtcDatetime",
    "decode_message",
    "format_ts",
    "message_model",
    "payload_type",
    "schema_document",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TYPE = "schema"  # the payload type of the schema/<type> documents themselves


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, converted to UTC (naive datetimes are rejected)."""

Id = Annotated[str, StringConstraints(pattern=LEVEL_PATTERN)]
"""An antenna, radio or link id: one topic level."""

NoradId = Annotated[int, Field(ge=1, le=999_999_999)]
"""A NORAD catalogue number (Alpha-5 and 9-digit OMM numbers included)."""

ShortText = Annotated[str, StringConstraints(max_length=500)]

StationState = Literal["starting", "ready", "degraded", "safe", "stopping", "offline", "lost"]
AntennaMode = Literal["idle", "prepositioning", "tracking", "parked", "stowed", "manual", "fault"]
Severity = Literal["info", "warning", "critical"]
HealthState = Literal["ok", "degraded", "fault"]

Azimuth = Annotated[float, Field(ge=-360.0, le=720.0)]
Elevation = Annotated[float, Field(ge=-90.0, le=180.0)]
Period = Annotated[float, Field(gt=0.0, le=3600.0)]


def format_ts(when: datetime) -> str:
    """ISO 8601 UTC with microseconds and a ``Z`` suffix (the envelope's ``ts``)."""
    if when.tzinfo is not UTC:
        # Every clock hands out UTC already; only other zones (and naive times) convert.
        when = when.astimezone(UTC)
    # isoformat of a UTC datetime ends in "+00:00": 6 characters that become "Z".
    return when.isoformat("T", "microseconds")[:-6] + "Z"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Payload(_Model):
    """Content of one telemetry message; subclasses define type, delivery and topic."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    DELIVERY: ClassVar[Delivery]
    QOS: ClassVar[int]

    @classmethod
    def schema_id(cls) -> str:
        """``groundlink.<type>/<version>``, the envelope's ``schema`` value."""
        return f"groundlink.{cls.TYPE}/{cls.VERSION}"

    def topic(self, tree: TopicTree) -> str:
        """The full topic this payload is published on."""
        raise NotImplementedError(f"{type(self).__name__} does not define its topic")


# -- state topics ------------------------------------------------------------------


class Status(Payload):
    """``status``: the station's state (the last will publishes ``lost``)."""

    TYPE: ClassVar[str] = "status"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 1

    state: StationState
    detail: ShortText | None = None

    def topic(self, tree: TopicTree) -> str:
        """``status``."""
        return tree.status


class Site(_Model):
    """Where the station is (WGS-84)."""

    lat_deg: Annotated[float, Field(ge=-90.0, le=90.0)]
    lon_deg: Annotated[float, Field(ge=-180.0, le=180.0)]
    alt_m: float


class AntennaInfo(_Model):
    """One antenna and its rotator's capabilities."""

    id: Id
    rotator: str
    beamwidth_deg: Annotated[float, Field(gt=0.0, le=360.0)]
    az_min_deg: Azimuth
    az_max_deg: Azimuth
    el_min_deg: Elevation
    el_max_deg: Elevation


class RadioInfo(_Model):
    """One radio and its capabilities."""

    id: Id
    model: str
    capabilities: list[str] = Field(default_factory=list)


class Info(Payload):
    """``info``: version, site, antennas and radios."""

    TYPE: ClassVar[str] = "info"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 1

    version: str
    station_id: Id
    name: str = ""
    site: Site
    antennas: list[AntennaInfo]
    radios: list[RadioInfo]

    def topic(self, tree: TopicTree) -> str:
        """``info``."""
        return tree.info


class ComponentHealth(_Model):
    """Health of one task or device."""

    name: str
    kind: Literal["task", "device", "link", "service"]
    state: HealthState
    last_error: ShortText | None = None
    counters: dict[str, int] = Field(default_factory=dict)


class Health(Payload):
    """``health``: per task and device."""

    TYPE: ClassVar[str] = "health"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 0

    components: list[ComponentHealth]

    def topic(self, tree: TopicTree) -> str:
        """``health``."""
        return tree.health


class Alarm(_Model):
    """One active alarm."""

    id: str
    severity: Severity
    since: UtcDatetime
    message: ShortText
    source: str | None = None


class Alarms(Payload):
    """``alarms``: every active alarm (an empty list clears them)."""

    TYPE: ClassVar[str] = "alarms"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 1

    alarms: list[Alarm]

    def topic(self, tree: TopicTree) -> str:
        """``alarms``."""
        return tree.alarms


class ScheduledTrack(_Model):
    """One planned track."""

    antenna: Id
    norad_id: NoradId
    name: str
    aos: UtcDatetime
    tca: UtcDatetime
    los: UtcDatetime
    max_el_deg: Elevation
    weight: float | None = None


class Schedule(Payload):
    """``schedule``: the scheduler's current plan."""

    TYPE: ClassVar[str] = "schedule"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 1

    generated_at: UtcDatetime
    paused: bool = False
    tracks: list[ScheduledTrack]

    def topic(self, tree: TopicTree) -> str:
        """``schedule``."""
        return tree.schedule


class CatalogEntry(_Model):
    """One satellite of the catalog."""

    norad_id: NoradId
    name: str
    tle_epoch: UtcDatetime
    age_days: float
    stale: bool


class Catalog(Payload):
    """``catalog``: satellites, TLE epochs and staleness."""

    TYPE: ClassVar[str] = "catalog"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 1

    stale_after_days: Annotated[float, Field(gt=0.0)]
    satellites: list[CatalogEntry]

    def topic(self, tree: TopicTree) -> str:
        """``catalog``."""
        return tree.catalog


class CurrentTrack(_Model):
    """What one antenna is doing: a track under way (fields set) or none (nulls)."""

    antenna: Id
    norad_id: NoradId | None = None
    name: str | None = None
    aos: UtcDatetime | None = None
    tca: UtcDatetime | None = None
    los: UtcDatetime | None = None
    max_el_deg: Elevation | None = None


class PassCurrent(Payload):
    """``pass/current``: per antenna, the track under way or none."""

    TYPE: ClassVar[str] = "pass_current"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 1

    antennas: list[CurrentTrack]

    def topic(self, tree: TopicTree) -> str:
        """``pass/current``."""
        return tree.pass_current


class AntennaState(Payload):
    """``antenna/<id>/state``: mode and position."""

    TYPE: ClassVar[str] = "antenna_state"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 1

    antenna: Id
    mode: AntennaMode
    az_deg: Azimuth | None
    el_deg: Elevation | None
    norad_id: NoradId | None = None
    fault: ShortText | None = None

    def topic(self, tree: TopicTree) -> str:
        """``antenna/<id>/state``."""
        return tree.antenna_state(self.antenna)


class RadioState(Payload):
    """``radio/<id>/state``: frequencies and modes."""

    TYPE: ClassVar[str] = "radio_state"
    DELIVERY: ClassVar[Delivery] = Delivery.STATE
    QOS: ClassVar[int] = 1

    radio: Id
    downlink_hz: Annotated[float, Field(ge=0.0)] | None
    uplink_hz: Annotated[float, Field(ge=0.0)] | None
    downlink_mode: str | None = None
    uplink_mode: str | None = None
    satellite_mode: bool = False

    def topic(self, tree: TopicTree) -> str:
        """``radio/<id>/state``."""
        return tree.radio_state(self.radio)


# -- streams -----------------------------------------------------------------------


class Pointing(Payload):
    """``antenna/<id>/pointing``: one pointing sample (every ``period_s``)."""

    TYPE: ClassVar[str] = "pointing"
    DELIVERY: ClassVar[Delivery] = Delivery.STREAM
    QOS: ClassVar[int] = 0

    antenna: Id
    mode: AntennaMode
    norad_id: NoradId | None
    target_az_deg: Azimuth | None
    target_el_deg: Elevation | None
    commanded_az_deg: Azimuth | None
    commanded_el_deg: Elevation | None
    actual_az_deg: Azimuth | None  # as the rotator reports it (0-450, flipped above 90)
    actual_el_deg: Elevation | None
    error_deg: Annotated[float, Field(ge=0.0)] | None
    period_s: Period

    def topic(self, tree: TopicTree) -> str:
        """``antenna/<id>/pointing``."""
        return tree.antenna_pointing(self.antenna)


class Link(Payload):
    """``link/<id>``: the link telemetry record (every ``period_s``); id = antenna."""

    TYPE: ClassVar[str] = "link"
    DELIVERY: ClassVar[Delivery] = Delivery.STREAM
    QOS: ClassVar[int] = 0

    antenna: Id
    norad_id: NoradId
    range_km: Annotated[float, Field(ge=0.0)]
    range_rate_km_s: float
    doppler_down_hz: float | None
    doppler_up_hz: float | None
    downlink_hz: Annotated[float, Field(ge=0.0)] | None
    uplink_hz: Annotated[float, Field(ge=0.0)] | None
    snr_predicted_db: float | None
    snr_measured_db: float | None
    margin_db: float | None
    locked: bool
    period_s: Period

    def topic(self, tree: TopicTree) -> str:
        """``link/<antenna>``."""
        return tree.link(self.antenna)


# -- events ------------------------------------------------------------------------


class PassEvent(Payload):
    """``pass/event``: AOS, TCA, LOS, handover, aborted (with reason)."""

    TYPE: ClassVar[str] = "pass_event"
    DELIVERY: ClassVar[Delivery] = Delivery.EVENT
    QOS: ClassVar[int] = 1

    antenna: Id
    norad_id: NoradId
    event: Literal["aos", "tca", "los", "handover", "aborted"]
    reason: ShortText | None = None
    to_antenna: Id | None = None  # for handover
    az_deg: Azimuth | None = None
    el_deg: Elevation | None = None

    @model_validator(mode="after")
    def _reason_for_abort(self) -> PassEvent:
        if self.event == "aborted" and not self.reason:
            raise ValueError("an 'aborted' pass event needs a reason")
        if self.event == "handover" and self.to_antenna is None:
            raise ValueError("a 'handover' pass event needs to_antenna")
        return self

    def topic(self, tree: TopicTree) -> str:
        """``pass/event``."""
        return tree.pass_event


EventDetail = str | int | float | bool | None


class Event(Payload):
    """``event``: anything else an operator should know (kind says what)."""

    TYPE: ClassVar[str] = "event"
    DELIVERY: ClassVar[Delivery] = Delivery.EVENT
    QOS: ClassVar[int] = 1

    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    severity: Severity = "info"
    message: ShortText
    source: str | None = None
    details: dict[str, EventDetail] = Field(default_factory=dict)

    def topic(self, tree: TopicTree) -> str:
        """``event``."""
        return tree.event


class CommandError(_Model):
    """Why a command was not applied."""

    code: Literal[
        "malformed",
        "invalid",
        "too_large",
        "stale",
        "retained",
        "unknown_verb",
        "not_authorised",
        "busy",
        "unavailable",
        "rejected",
        "device_error",
        "timeout",
        "internal",
    ]
    message: str
    field: str | None = None


class Reply(Payload):
    """``reply/<verb>``: the answer to one command."""

    TYPE: ClassVar[str] = "reply"
    DELIVERY: ClassVar[Delivery] = Delivery.EVENT
    QOS: ClassVar[int] = 1

    request_id: str | None
    verb: Id
    ok: bool
    result: dict[str, JsonValue] | None = None
    error: CommandError | None = None
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ok_xor_error(self) -> Reply:
        if self.ok == (self.error is not None):
            raise ValueError("a reply has an error exactly when ok is false")
        return self

    def topic(self, tree: TopicTree) -> str:
        """``reply/<verb>``."""
        return tree.reply(self.verb)


PAYLOAD_TYPES: tuple[type[Payload], ...] = (
    Status,
    Info,
    Health,
    Alarms,
    Schedule,
    Catalog,
    PassCurrent,
    AntennaState,
    RadioState,
    Pointing,
    Link,
    PassEvent,
    Event,
    Reply,
)
_BY_TYPE = {cls.TYPE: cls for cls in PAYLOAD_TYPES}
_BY_SCHEMA_ID = {cls.schema_id(): cls for cls in PAYLOAD_TYPES}


def payload_type(name: str) -> type[Payload]:
    """The payload class for a type name (``pointing``) or schema id (``groundlink.pointing/1``)."""
    cls = _BY_TYPE.get(name) or _BY_SCHEMA_ID.get(name)
    if cls is None:
        known = ", ".join(sorted(_BY_TYPE))
        raise KeyError(f"unknown payload type {name!r}; known: {known}")
    return cls


@functools.cache
def message_model(cls: type[BaseModel]) -> type[BaseModel]:
    """The wire model of ``cls``: its fields plus ``ts``, ``seq`` and ``schema``.

    Works for payloads and for command models (anything with ``schema_id()``).
    """
    schema_id: str = getattr(cls, "schema_id")()  # noqa: B009 - classmethod on both kinds
    fields: dict[str, Any] = {
        "ts": (UtcDatetime, Field(description="time the message was produced, ISO 8601 UTC")),
        "seq": (int, Field(ge=0, description="per-topic counter, +1 per message")),
        "schema_": (
            Literal[schema_id],
            Field(alias="schema", description="payload type and version"),
        ),
    }
    model: type[BaseModel] = create_model(
        cls.__name__ + "Message",
        __base__=cls,
        __doc__=cls.__doc__,
        **fields,
    )
    return model


def schema_document(cls: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the wire form of ``cls``."""
    doc = message_model(cls).model_json_schema(by_alias=True)
    schema_id: str = getattr(cls, "schema_id")()  # noqa: B009
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id, **doc}


def decode_message(data: bytes | str) -> BaseModel:
    """Parse one wire message, choosing the model by its ``schema`` field.

    Raises ValueError (pydantic's ValidationError or KeyError text) naming the problem.
    """
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("schema"), str):
        raise ValueError("not a groundlink message: expected an object with a 'schema' string")
    try:
        cls = payload_type(raw["schema"])
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from exc
    return message_model(cls).model_validate(raw)
