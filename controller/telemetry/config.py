"""``[mqtt]`` configuration: broker URL, credentials and TLS from files, outbox bounds.

Example (TOML)::

    [mqtt]
    broker = "mqtts://broker.example.org:8883"
    username = "gs1"
    password_file = "secrets/mqtt-password"     # one line; read when connecting
    ca_file = "tls/ca.crt"
    cert_file = "tls/gs1.crt"                   # client certificate (optional)
    key_file = "tls/gs1.key"
    outbox_events = 10000                        # QoS 1 events/replies held during an outage
    command_max_age_s = 30

``embedded = true`` starts groundlink's own MQTT broker (:mod:`.mqtt_broker`) on the
loopback address of ``broker`` (TCP) and on ``embedded_ws_port`` (WebSocket, for
browser dashboards). By default (``embedded_process = true``) it runs in a child
process of the daemon: its work per packet and wake-up then stays off the control
loops' core, and a broker that stalls cannot stall them;
the child exits with the daemon. ``embedded_process = false`` keeps it in-process.
Secrets never sit in the config file or the URL: the password is read from
``password_file`` when connecting. Relative paths are resolved by
:meth:`MqttConfig.resolve_paths` against the config file's directory.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controller.telemetry.topics import TopicError, check_level, check_prefix, default_prefix

__all__ = [
    "ALL_VERBS",
    "BrokerAddress",
    "MqttConfig",
    "MqttConfigError",
    "is_loopback_host",
    "parse_broker_url",
]

ALL_VERBS: frozenset[str] = frozenset(
    {"stow", "abort", "pause", "resume", "reload", "priority", "point", "track", "ping"}
)
_ALWAYS_ENABLED = frozenset({"stow", "abort", "ping"})
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}

Verb = Literal["stow", "abort", "pause", "resume", "reload", "priority", "point", "track", "ping"]


class MqttConfigError(ValueError):
    """An MQTT setting that cannot be used (a secret file missing or empty, ...)."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A parsed broker URL."""

    scheme: Literal["mqtt", "mqtts"]
    host: str
    port: int

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS (``mqtts://``)."""
        return self.scheme == "mqtts"

    @property
    def url(self) -> str:
        """The URL back, normalised (``mqtt://host:port``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host[:port]`` or ``mqtts://host[:port]``; raise ValueError saying why not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"broker URL {url!r} is not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"broker URL {url!r}: scheme must be mqtt:// (plain) or mqtts:// (TLS), "
            f"not {parts.scheme or '(none)'}://"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"broker URL {url!r}: do not put credentials in the URL; "
            "use mqtt.username and mqtt.password_file"
        )
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r}: a host is required (e.g. mqtt://127.0.0.1:1883)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"broker URL {url!r}: no path, query or fragment is allowed")
    if port == 0:
        raise ValueError(f"broker URL {url!r}: port must be 1-65535")
    return BrokerAddress(
        scheme="mqtts" if scheme == "mqtts" else "mqtt",
        host=parts.hostname,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
    )


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names the loopback interface (``localhost``, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MqttConfig(BaseModel):
    """The ``[mqtt]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str = "mqtt://127.0.0.1:1883"
    prefix: str | None = None  # default: groundlink/<station_id>/
    client_id: str | None = None  # default: groundlink-<station_id> (stable per station)
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    embedded: bool = False
    embedded_process: bool = True
    embedded_ws_port: Annotated[int, Field(ge=0, le=65535)] | None = 9001
    keepalive_s: Annotated[int, Field(ge=2, le=600)] = 5
    connect_timeout_s: Annotated[float, Field(gt=0.0, le=120.0)] = 5.0
    reconnect_min_s: Annotated[float, Field(gt=0.0, le=60.0)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 30.0
    outbox_events: Annotated[int, Field(ge=10, le=10_000_000)] = 10_000
    outbox_stream_depth: Annotated[int, Field(ge=1, le=100_000)] = 32
    max_inflight: Annotated[int, Field(ge=1, le=65_535)] = 200
    command_max_age_s: Annotated[float, Field(gt=0.0, le=86_400.0)] = 30.0
    command_max_bytes: Annotated[int, Field(ge=256, le=1_000_000)] = 4096
    command_timeout_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 10.0
    commands_enabled: frozenset[Verb] = ALL_VERBS  # type: ignore[assignment]

    @field_validator("broker")
    @classmethod
    def _broker_ok(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_ok(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_prefix(value)
            except TopicError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id_ok(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not 1 <= len(value) <= 128 or not value.isascii() or not value.isprintable():
            # MQTT 3.1.1 only guarantees 1-23 characters; Mosquitto and amqtt accept longer
            # ids, and the default groundlink-<station_id> can reach 74.
            raise ValueError(f"client_id {value!r}: use 1-128 printable ASCII characters")
        if any(ch in value for ch in "+#/"):
            raise ValueError(f"client_id {value!r}: no '+', '#' or '/'")
        return value

    @field_validator("commands_enabled")
    @classmethod
    def _safety_verbs_enabled(cls, value: frozenset[str]) -> frozenset[str]:
        missing = sorted(_ALWAYS_ENABLED - value)
        if missing:
            raise ValueError(
                f"{', '.join(missing)} cannot be disabled: stow and abort move toward safety "
                "and ping is the liveness check"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        address = parse_broker_url(self.broker)
        problems = []
        if not address.tls and any(
            f is not None for f in (self.ca_file, self.cert_file, self.key_file)
        ):
            problems.append(
                "ca_file/cert_file/key_file are set but the broker URL is mqtt://; "
                "use mqtts:// for TLS"
            )
        if (self.cert_file is None) != (self.key_file is None):
            problems.append("cert_file and key_file go together (client certificate and its key)")
        if self.password_file is not None and self.username is None:
            problems.append("password_file is set but username is not")
        if self.reconnect_max_s < self.reconnect_min_s:
            problems.append(
                f"reconnect_max_s ({self.reconnect_max_s}) is below reconnect_min_s "
                f"({self.reconnect_min_s})"
            )
        if self.embedded:
            if address.tls:
                problems.append("embedded = true serves plain mqtt:// on loopback only")
            if not is_loopback_host(address.host):
                problems.append(
                    f"embedded = true binds the loopback interface only; broker host "
                    f"{address.host!r} is not loopback (use 127.0.0.1)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- derived values --------------------------------------------------------------
    @property
    def address(self) -> BrokerAddress:
        """The parsed broker URL."""
        return parse_broker_url(self.broker)

    def prefix_for(self, station_id: str) -> str:
        """The topic prefix for ``station_id``."""
        return self.prefix if self.prefix is not None else default_prefix(station_id)

    def client_id_for(self, station_id: str) -> str:
        """The stable MQTT client id for ``station_id``."""
        if self.client_id is not None:
            return self.client_id
        return f"groundlink-{check_level(station_id, what='station id')}"

    def resolve_paths(self, base: Path) -> MqttConfig:
        """Resolve relative secret and TLS file paths against ``base`` (the config's dir)."""
        update = {}
        for name in ("password_file", "ca_file", "cert_file", "key_file"):
            path: Path | None = getattr(self, name)
            if path is not None and not path.is_absolute():
                update[name] = base / path
        return self.model_copy(update=update)

    def read_password(self) -> str | None:
        """The password from ``password_file`` (first line, trailing newline stripped)."""
        if self.password_file is None:
            return None
        path = self.password_file
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise MqttConfigError(f"mqtt.password_file {str(path)!r}: file not found") from exc
        except OSError as exc:
            raise MqttConfigError(
                f"mqtt.password_file {str(path)!r}: cannot read: {exc.strerror}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise MqttConfigError(
                f"mqtt.password_file {str(path)!r}: not UTF-8 text ({exc.reason})"
            ) from exc
        password = text.splitlines()[0] if text else ""
        if not password:
            raise MqttConfigError(
                f"mqtt.password_file {str(path)!r}: empty; put the password on the first line"
            )
        return password

    def check_files(self) -> None:
        """Raise MqttConfigError naming the first secret/TLS file that is missing."""
        for name in ("password_file", "ca_file", "cert_file", "key_file"):
            path: Path | None = getattr(self, name)
            if path is not None and not path.is_file():
                raise MqttConfigError(f"mqtt.{name} {str(path)!r}: file not found")
