"""The MQTT topic tree of one station.

Every topic lives under a prefix, by default ``groundlink/<station_id>/``::

    status                 retained  QoS 1  starting/ready/degraded/safe/stopping/offline;
                                            the last will sets ``lost``
    info                   retained  QoS 1  version, site, antennas and radios
    health                 retained  QoS 0  per task and device: ok/degraded/fault
    alarms                 retained  QoS 1  active alarms
    schedule               retained  QoS 1  the current plan
    catalog                retained  QoS 1  satellites, TLE epochs, staleness
    pass/current           retained  QoS 1  per antenna: the track under way, or none
    pass/event             event     QoS 1  aos, tca, los, handover, aborted
    antenna/<id>/state     retained  QoS 1  mode and position
    antenna/<id>/pointing  stream    QoS 0  target, commanded and actual az/el
    radio/<id>/state       retained  QoS 1  frequencies and modes
    link/<id>              stream    QoS 0  the link telemetry record
    event                  event     QoS 1  everything else an operator should know
    schema/<type>          retained  QoS 1  JSON Schema of each payload type
    cmd/<verb>             inbound   QoS 1  operator commands
    reply/<verb>           event     QoS 1  one reply per command

``state`` topics are retained and latest-value-wins; ``stream`` topics are periodic,
non-retained and may drop old samples; ``event`` topics are non-retained and must not be
lost. Ids and verbs become single topic levels, so they are restricted to
``[A-Za-z0-9_.-]`` (no ``/``, ``+`` or ``#``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "LEVEL_PATTERN",
    "TOPIC_TABLE",
    "Delivery",
    "TopicError",
    "TopicSpec",
    "TopicTree",
    "check_level",
    "check_prefix",
    "default_prefix",
]

LEVEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_LEVEL_RE = re.compile(LEVEL_PATTERN)
_NAMES_KEPT = 256
"""Checked topic names a tree remembers per kind: ids come from the config, but verbs come
from the network, so the memory is bounded (names past it are checked on every call)."""


class TopicError(ValueError):
    """A name that cannot be used as (part of) a topic."""


class Delivery(StrEnum):
    """How a topic is delivered, which decides how the outbox keeps it."""

    STATE = "state"  # retained, latest value wins
    STREAM = "stream"  # periodic samples, QoS 0, old samples may be dropped
    EVENT = "event"  # QoS 1, in order, never silently dropped


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One row of the topic table (for documentation, tests and dashboards)."""

    pattern: str
    delivery: Delivery | None  # None: inbound (commands)
    qos: int
    payload_type: str
    description: str

    @property
    def retained(self) -> bool:
        """Whether messages on this topic are retained by the broker."""
        return self.delivery is Delivery.STATE


TOPIC_TABLE: tuple[TopicSpec, ...] = (
    TopicSpec("status", Delivery.STATE, 1, "status", "station state; the last will sets lost"),
    TopicSpec("info", Delivery.STATE, 1, "info", "version, site, antennas, radios"),
    TopicSpec("health", Delivery.STATE, 0, "health", "per task and device health"),
    TopicSpec("alarms", Delivery.STATE, 1, "alarms", "active alarms"),
    TopicSpec("schedule", Delivery.STATE, 1, "schedule", "the current plan"),
    TopicSpec("catalog", Delivery.STATE, 1, "catalog", "satellites and TLE staleness"),
    TopicSpec("pass/current", Delivery.STATE, 1, "pass_current", "track under way per antenna"),
    TopicSpec("pass/event", Delivery.EVENT, 1, "pass_event", "aos, tca, los, handover, aborted"),
    TopicSpec("antenna/<id>/state", Delivery.STATE, 1, "antenna_state", "mode and position"),
    TopicSpec("antenna/<id>/pointing", Delivery.STREAM, 0, "pointing", "pointing samples"),
    TopicSpec("radio/<id>/state", Delivery.STATE, 1, "radio_state", "frequencies and modes"),
    TopicSpec("link/<id>", Delivery.STREAM, 0, "link", "link telemetry samples"),
    TopicSpec("event", Delivery.EVENT, 1, "event", "operator-relevant events"),
    TopicSpec("schema/<type>", Delivery.STATE, 1, "schema", "JSON Schema of each payload type"),
    TopicSpec("cmd/<verb>", None, 1, "cmd_<verb>", "operator commands (inbound)"),
    TopicSpec("reply/<verb>", Delivery.EVENT, 1, "reply", "one reply per command"),
)


def check_level(value: str, *, what: str) -> str:
    """Return ``value`` if it can be one topic level, else raise TopicError naming it."""
    if not isinstance(value, str) or not _LEVEL_RE.match(value):
        raise TopicError(
            f"{what} {value!r} cannot be an MQTT topic level: use 1-64 characters from "
            "A-Z a-z 0-9 _ . - starting with a letter or digit (no '/', '+', '#' or spaces)"
        )
    return value


def default_prefix(station_id: str) -> str:
    """The default topic prefix ``groundlink/<station_id>/``."""
    return f"groundlink/{check_level(station_id, what='station id')}/"


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can prefix every topic, else raise TopicError saying why."""
    problems = []
    if not prefix.endswith("/"):
        problems.append("must end with '/'")
    if prefix.startswith("/"):
        problems.append("must not start with '/'")
    if prefix.startswith("$"):
        problems.append("must not start with '$' (reserved for broker topics such as $SYS)")
    if "+" in prefix or "#" in prefix:
        problems.append("must not contain the wildcards '+' or '#'")
    if "//" in prefix:
        problems.append("must not contain empty levels ('//')")
    if "\x00" in prefix:
        problems.append("must not contain NUL")
    if problems:
        raise TopicError(f"topic prefix {prefix!r} " + "; ".join(problems))
    return prefix


class TopicTree:
    """Full topic names for one station under its prefix."""

    def __init__(self, prefix: str) -> None:
        self._prefix = check_prefix(prefix)
        self._cmd = prefix + "cmd/"
        self.status = prefix + "status"
        self.info = prefix + "info"
        self.health = prefix + "health"
        self.alarms = prefix + "alarms"
        self.schedule = prefix + "schedule"
        self.catalog = prefix + "catalog"
        self.pass_current = prefix + "pass/current"
        self.pass_event = prefix + "pass/event"
        self.event = prefix + "event"
        # Per kind, the full topics already built (their level was checked once): telemetry
        # asks for the same few names several times a second per antenna.
        self._named: dict[str, dict[str, str]] = {}

    @classmethod
    def for_station(cls, station_id: str, prefix: str | None = None) -> TopicTree:
        """The tree for ``station_id`` under ``prefix`` (default ``groundlink/<id>/``)."""
        return cls(prefix if prefix is not None else default_prefix(station_id))

    @property
    def prefix(self) -> str:
        """The prefix every topic starts with (ends with '/')."""
        return self._prefix

    @property
    def everything(self) -> str:
        """Subscription filter for the whole subtree."""
        return self._prefix + "#"

    @property
    def commands(self) -> str:
        """Subscription filter for inbound commands (one level: the verb)."""
        return self._cmd + "+"

    def full(self, suffix: str) -> str:
        """Prefix a relative topic such as ``antenna/a1/state``."""
        return self._prefix + suffix

    def relative(self, topic: str) -> str | None:
        """The part of ``topic`` after the prefix, or None if it is not ours."""
        if topic.startswith(self._prefix):
            return topic[len(self._prefix) :]
        return None

    def antenna_state(self, antenna_id: str) -> str:
        """``antenna/<id>/state``."""
        try:
            return self._named["antenna_state"][antenna_id]
        except (KeyError, TypeError):
            return self._check_and_keep(
                "antenna_state", antenna_id, "antenna id", self._prefix + "antenna/", "/state"
            )

    def antenna_pointing(self, antenna_id: str) -> str:
        """``antenna/<id>/pointing``."""
        try:
            return self._named["antenna_pointing"][antenna_id]
        except (KeyError, TypeError):
            return self._check_and_keep(
                "antenna_pointing", antenna_id, "antenna id", self._prefix + "antenna/", "/pointing"
            )

    def radio_state(self, radio_id: str) -> str:
        """``radio/<id>/state``."""
        try:
            return self._named["radio_state"][radio_id]
        except (KeyError, TypeError):
            return self._check_and_keep(
                "radio_state", radio_id, "radio id", self._prefix + "radio/", "/state"
            )

    def link(self, link_id: str) -> str:
        """``link/<id>``."""
        try:
            return self._named["link"][link_id]
        except (KeyError, TypeError):
            return self._check_and_keep("link", link_id, "link id", self._prefix + "link/", "")

    def schema(self, type_name: str) -> str:
        """``schema/<type>``."""
        try:
            return self._named["schema"][type_name]
        except (KeyError, TypeError):
            return self._check_and_keep(
                "schema", type_name, "payload type", self._prefix + "schema/", ""
            )

    def cmd(self, verb: str) -> str:
        """``cmd/<verb>``."""
        try:
            return self._named["cmd"][verb]
        except (KeyError, TypeError):
            return self._check_and_keep("cmd", verb, "command verb", self._cmd, "")

    def reply(self, verb: str) -> str:
        """``reply/<verb>``."""
        try:
            return self._named["reply"][verb]
        except (KeyError, TypeError):
            return self._check_and_keep("reply", verb, "command verb", self._prefix + "reply/", "")

    def _check_and_keep(self, kind: str, level: str, what: str, head: str, tail: str) -> str:
        """``head + level + tail`` once ``level`` passes check_level; remembered per kind."""
        topic = head + check_level(level, what=what) + tail
        named = self._named.setdefault(kind, {})
        if len(named) < _NAMES_KEPT:
            named[level] = topic
        return topic

    def verb_of(self, topic: str) -> str | None:
        """The verb of a ``cmd/<verb>`` topic (unvalidated), or None for other topics."""
        if topic.startswith(self._cmd):
            return topic[len(self._cmd) :]
        return None
