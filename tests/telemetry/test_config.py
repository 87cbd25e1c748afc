"""The [mqtt] configuration: broker URLs, secrets from files, TLS, embedded, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.telemetry.config import (
    ALL_VERBS,
    MqttConfig,
    MqttConfigError,
    is_loopback_host,
    parse_broker_url,
)


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port"),
    [
        ("mqtt://127.0.0.1:1884", "mqtt", "127.0.0.1", 1884),
        ("mqtt://broker.example.org", "mqtt", "broker.example.org", 1883),
        ("mqtts://broker.example.org", "mqtts", "broker.example.org", 8883),
        ("MQTTS://[::1]:9883", "mqtts", "::1", 9883),
    ],
)
def test_broker_urls_parse(url: str, scheme: str, host: str, port: int) -> None:
    """mqtt:// and mqtts:// URLs give scheme, host and port (with default ports)."""
    address = parse_broker_url(url)
    assert (address.scheme, address.host, address.port) == (scheme, host, port)
    assert address.tls == (scheme == "mqtts")
    assert parse_broker_url(address.url) == address


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://host:1883", "scheme must be mqtt://"),
        ("host:1883", "scheme must be mqtt://"),
        ("mqtt://user:pw@host", "do not put credentials"),
        ("mqtt://:1883", "a host is required"),
        ("mqtt://host:99999", "not a valid URL"),
        ("mqtt://host:0", "port must be 1-65535"),
        ("mqtt://host/topic", "no path"),
    ],
)
def test_bad_broker_urls_say_what_is_wrong(url: str, needle: str) -> None:
    """Each malformed URL is refused with the URL and the reason."""
    with pytest.raises(ValueError, match=needle) as info:
        parse_broker_url(url)
    assert repr(url) in str(info.value)


def test_config_errors_name_the_key() -> None:
    """A bad value inside MqttConfig is reported under its key by pydantic."""
    with pytest.raises(ValidationError) as info:
        MqttConfig.model_validate({"broker": "ftp://x", "keepalive_s": 1})
    fields = {e["loc"][0] for e in info.value.errors()}
    assert fields == {"broker", "keepalive_s"}


def test_unknown_keys_are_refused() -> None:
    """A misspelt key is an error, not silently ignored."""
    with pytest.raises(ValidationError, match="keepalive"):
        MqttConfig.model_validate({"keepalive": 5})


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"broker": "mqtt://h", "ca_file": "ca.crt"}, "use mqtts://"),
        ({"broker": "mqtts://h", "cert_file": "c.crt"}, "cert_file and key_file go together"),
        ({"password_file": "pw"}, "username is not"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "below reconnect_min_s"),
        ({"embedded": True, "broker": "mqtt://10.0.0.5:1883"}, "not loopback"),
        ({"embedded": True, "broker": "mqtts://127.0.0.1:8883"}, "plain mqtt://"),
        ({"commands_enabled": ["ping", "pause"]}, "abort, stow cannot be disabled"),
        ({"commands_enabled": ["stow", "abort", "ping", "fly"]}, "commands_enabled"),
        ({"prefix": "groundlink/gs1"}, "must end with '/'"),
        ({"client_id": "a/b"}, "client_id"),
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, object], needle: str) -> None:
    """Combinations that cannot work are refused with a message saying why."""
    with pytest.raises(ValidationError, match=needle):
        MqttConfig.model_validate(values)


def test_defaults_derive_prefix_and_client_id_from_the_station() -> None:
    """Without overrides the prefix is groundlink/<id>/ and the client id is stable."""
    cfg = MqttConfig()
    assert cfg.prefix_for("gs1") == "groundlink/gs1/"
    assert cfg.client_id_for("gs1") == "groundlink-gs1"
    assert cfg.commands_enabled == ALL_VERBS
    custom = MqttConfig(prefix="lab/gs1/", client_id="gs1-main")
    assert (custom.prefix_for("gs1"), custom.client_id_for("gs1")) == ("lab/gs1/", "gs1-main")


def test_password_is_read_from_its_file(tmp_path: Path) -> None:
    """The password is the file's first line without the newline."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret\nignored\n")
    cfg = MqttConfig(username="gs1", password_file=secret)
    assert cfg.read_password() == "s3cret"
    assert MqttConfig().read_password() is None


@pytest.mark.parametrize(("content", "needle"), [(None, "file not found"), ("", "empty")])
def test_unusable_password_files_are_named(
    tmp_path: Path, content: str | None, needle: str
) -> None:
    """A missing or empty password file raises MqttConfigError naming the file."""
    secret = tmp_path / "pw"
    if content is not None:
        secret.write_text(content)
    cfg = MqttConfig(username="gs1", password_file=secret)
    with pytest.raises(MqttConfigError, match=needle) as info:
        cfg.read_password()
    assert str(secret) in str(info.value)


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    """resolve_paths anchors relative secret/TLS paths and leaves absolute ones alone."""
    cfg = MqttConfig(
        broker="mqtts://h",
        username="u",
        password_file=Path("secrets/pw"),
        ca_file=Path("/etc/ssl/ca.crt"),
    ).resolve_paths(tmp_path)
    assert cfg.password_file == tmp_path / "secrets/pw"
    assert cfg.ca_file == Path("/etc/ssl/ca.crt")
    with pytest.raises(MqttConfigError, match="password_file"):
        cfg.check_files()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True),
     ("10.0.0.1", False), ("example.org", False)],
)  # fmt: skip
def test_loopback_detection(host: str, loopback: bool) -> None:
    """Only localhost, 127.0.0.0/8 and ::1 count as loopback."""
    assert is_loopback_host(host) is loopback
