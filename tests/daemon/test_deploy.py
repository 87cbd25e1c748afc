"""Deployment files (no Docker engine or systemd here) and ``groundlink check-config``."""

from __future__ import annotations

import asyncio
import getpass
import io
import re
import ssl
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with amqtt; no stubs here

from controller.config import load_config
from controller.daemon_config import DaemonConfig
from controller.run_cmd import check_config
from controller.telemetry.mqtt import MqttPublisher
from controller.telemetry.payloads import PassEvent
from firmware_bridge.clock import SystemClock
from tests.daemon.conftest import ROOT, station_config_text
from tests.telemetry.conftest import MosquittoFactory, Subscriber, free_port

DOCKER = ROOT / "docker"


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)?", text.strip())
    assert match, text
    return float(match.group(1)) * (60 if match.group(2) == "m" else 1)


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def _secret_outputs() -> set[str]:
    """The files docker/make-secrets.sh says it makes (relative to its output directory)."""
    text = (DOCKER / "make-secrets.sh").read_text()
    return set(re.findall(r"^#   DIR/(\S+)", text, re.M))


def test_compose_file_parses_and_names_what_exists() -> None:
    """compose.yaml: the broker files and the build it names exist (secrets are made by
    make-secrets.sh and ignored by git); the daemon's stop grace is longer than its own
    shutdown grace (which is longer than a stow)."""
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"mosquitto-passwd", "mosquitto", "groundlink"}
    secrets = {f"./secrets/{name}" for name in _secret_outputs()}
    mounted = [v.split(":")[0] for v in services["mosquitto"]["volumes"]]
    mounted += [s["file"] for s in compose["secrets"].values()]
    for source in mounted:
        if source.startswith("./secrets/"):
            assert source in secrets or any(s.startswith(source + "/") for s in secrets), source
        elif source.startswith("./"):
            assert (DOCKER / source).is_file(), source
        else:
            assert source in compose["volumes"], source
    ignore = (DOCKER / "secrets" / ".gitignore").read_text().split()
    assert ignore[-2:] == ["*", "!.gitignore"]
    build = services["groundlink"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).is_file()
    command = services["groundlink"]["command"]
    assert command[0] == "run"
    config = command[command.index("--config") + 1]
    assert (ROOT / config.removeprefix("/app/")).is_file()
    defaults = DaemonConfig()
    assert _seconds(services["groundlink"]["stop_grace_period"]) > defaults.grace_period_s
    assert defaults.grace_period_s > defaults.stow_timeout_s


def _listeners(conf: str) -> dict[int, str | None]:
    """Port -> bind address (None: every interface) of each Mosquitto listener."""
    out: dict[int, str | None] = {}
    for line in conf.splitlines():
        parts = line.split()
        if parts[:1] == ["listener"]:
            out[int(parts[1])] = parts[2] if len(parts) > 2 else None
    return out


def _compose_env_config(secrets_dir: Path | None = None, broker: str | None = None) -> Any:
    """The daemon's config as the compose file runs it (its environment applied); secret
    paths point into ``secrets_dir`` when given."""
    compose = _compose()
    service = compose["services"]["groundlink"]
    env = dict(service["environment"])
    if secrets_dir is not None:
        for name, secret in compose["secrets"].items():
            local = str(secrets_dir / secret["file"].removeprefix("./secrets/"))
            env = {k: v.replace(f"/run/secrets/{name}", local) for k, v in env.items()}
    if broker is not None:
        env["GROUNDLINK__MQTT__BROKER"] = broker
    command = service["command"]
    config = ROOT / command[command.index("--config") + 1].removeprefix("/app/")
    return load_config(config, env=env)


def test_compose_daemon_reaches_mosquitto_on_the_compose_network() -> None:
    """The daemon's broker is the mosquitto service on a TLS listener bound to every
    interface of its container, both on one network, with no port published to the host;
    its user is granted its station's subtree by the ACL the broker mounts."""
    compose = _compose()
    services = compose["services"]
    broker_svc, daemon_svc = services["mosquitto"], services["groundlink"]
    assert "ports" not in broker_svc
    assert "ports" not in daemon_svc
    assert set(broker_svc["networks"]) & set(daemon_svc["networks"])
    cfg = _compose_env_config()
    address = cfg.mqtt.address
    assert address.host == "mosquitto"
    assert address.tls
    assert not cfg.mqtt.embedded
    conf = (DOCKER / "mosquitto.conf").read_text()
    listeners = _listeners(conf)
    assert listeners[address.port] is None, "the daemon's listener must not be loopback-only"
    assert listeners[1883] == "127.0.0.1"
    assert re.search(r"^allow_anonymous false$", conf, re.M)
    # Every secret the daemon reads is one compose mounts into it.
    targets = {f"/run/secrets/{name}" for name in daemon_svc["secrets"]}
    assert {str(cfg.mqtt.password_file), str(cfg.mqtt.ca_file)} <= targets
    # The password file is where the one-shot service writes it, in the shared volume.
    password_file = re.search(r"^password_file (\S+)$", conf, re.M)
    assert password_file is not None
    assert password_file.group(1) in " ".join(services["mosquitto-passwd"]["command"])
    volume = "mosquitto-config:/mosquitto/config"
    assert volume in broker_svc["volumes"]
    assert volume in services["mosquitto-passwd"]["volumes"]
    assert password_file.group(1).startswith("/mosquitto/config/")
    assert " demo " in " ".join(services["mosquitto-passwd"]["command"])
    acl = (DOCKER / "mosquitto.acl").read_text()
    station = cfg.station.id
    assert re.search(
        rf"^user {cfg.mqtt.username}\ntopic write groundlink/{station}/#\n"
        rf"topic read groundlink/{station}/cmd/#$",
        acl,
        re.M,
    )


@pytest.fixture
def compose_secrets(tmp_path: Path) -> tuple[Path, Path]:
    """docker/make-secrets.sh run into a temporary directory, and a Mosquitto password file
    made from its password as the compose mosquitto-passwd service does (plus a reader)."""
    secrets_dir = tmp_path / "secrets"
    subprocess.run(
        ["sh", str(DOCKER / "make-secrets.sh"), str(secrets_dir)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    password = (secrets_dir / "mqtt-password").read_text().strip()
    passwd = tmp_path / "passwd"
    for i, (user, secret) in enumerate((("demo", password), ("dashboard", "dash-secret"))):
        args = ["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(passwd), user, secret]
        subprocess.run(args, check=True, capture_output=True, timeout=30)
    return secrets_dir, passwd


async def test_compose_secrets_and_broker_config_work_with_a_real_mosquitto(
    mosquitto_factory: MosquittoFactory, compose_secrets: tuple[Path, Path], tmp_path: Path
) -> None:
    """make-secrets.sh output, docker/mosquitto.conf and the ACL in a real Mosquitto: the
    daemon's MQTT client, configured exactly as compose configures it (TLS with the made
    CA, user demo, password from the secret), connects and publishes its station's topics."""
    secrets_dir, passwd = compose_secrets
    made = {str(p.relative_to(secrets_dir)) for p in secrets_dir.rglob("*") if p.is_file()}
    assert made == _secret_outputs()
    assert len((secrets_dir / "mqtt-password").read_text().strip()) >= 32
    tls_port = free_port()
    conf = (DOCKER / "mosquitto.conf").read_text()
    replacements = {
        "/mosquitto/config/passwd": str(passwd),
        "/mosquitto/config/mosquitto.acl": str(DOCKER / "mosquitto.acl"),
        "/mosquitto/data/": f"{tmp_path}/",
        "/mosquitto/config/tls/": f"{secrets_dir}/tls/",
        "listener 1883 127.0.0.1": f"listener {free_port()} 127.0.0.1",
        "listener 8883\n": f"listener {tls_port} 127.0.0.1\n",
        "listener 9001\n": f"listener {free_port()} 127.0.0.1\n",
        "log_dest stdout": "log_dest stderr",
    }
    for old, new in replacements.items():
        assert old in conf, old
        conf = conf.replace(old, new)
    await mosquitto_factory(raw_config=conf + f"user {getpass.getuser()}\n", port=tls_port)
    cfg = _compose_env_config(secrets_dir, broker=f"mqtts://127.0.0.1:{tls_port}")
    tls = aiomqtt.TLSParameters(
        ca_certs=str(secrets_dir / "tls" / "ca.crt"), cert_reqs=ssl.CERT_REQUIRED
    )
    topic = f"groundlink/{cfg.station.id}/pass/event"
    async with (
        Subscriber(
            tls_port, [topic], tls_params=tls, username="dashboard", password="dash-secret"
        ) as dashboard,
        MqttPublisher(cfg.mqtt, cfg.station.id, SystemClock()) as publisher,
    ):
        await asyncio.wait_for(publisher.wait_connected(), 10.0)
        publisher.send(PassEvent(antenna="ant1", norad_id=80001, event="aos"))
        await dashboard.wait_for(lambda ms: len(ms) == 1)
        assert dashboard.messages[0].json()["event"] == "aos"


def test_dockerfile_copies_what_exists_and_runs_unprivileged() -> None:
    """Dockerfile: every COPY source exists, a non-root user in dialout, a healthcheck, and
    the entry point is the installed `groundlink` script."""
    text = (DOCKER / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    assert re.search(r"^USER groundlink$", text, re.M)
    assert "--groups dialout" in text
    assert "HEALTHCHECK" in text
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "groundlink" in scripts
    assert 'ENTRYPOINT ["groundlink"]' in text


def test_systemd_unit_notifies_and_outlasts_a_stow() -> None:
    """groundlink.service: Type=notify with a watchdog, stop timeout above the grace period."""
    lines = dict(
        line.split("=", 1)
        for line in (DOCKER / "groundlink.service").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert lines["Type"] == "notify"
    assert _seconds(lines["WatchdogSec"]) > DaemonConfig().health_period_s * 2
    assert _seconds(lines["TimeoutStopSec"]) > DaemonConfig().grace_period_s
    assert " run --config " in lines["ExecStart"]
    assert lines["KillSignal"] == "SIGTERM"


def test_check_config_accepts_the_simulated_station() -> None:
    """The shipped simulated config has no problem."""
    out = io.StringIO()
    assert check_config(ROOT / "configs" / "simulated.toml", out=out) == 0
    assert out.getvalue().strip().endswith(": ok")


def test_check_config_names_every_problem_and_exits_78(tmp_path: Path) -> None:
    """Two bad values: both reported with file, key and value; exit 78."""
    path = tmp_path / "bad.toml"
    text = station_config_text()
    text = text.replace('driver = "rot2prog"', 'driver = "rot9prog"')
    text = text.replace("slew_az_deg_s = 6.0", "slew_az_deg_s = 600.0")
    path.write_text(text)
    out = io.StringIO()
    assert check_config(path, out=out) == 78
    report = out.getvalue()
    assert "antennas.0.rotator.slew_az_deg_s = 600.0" in report
    assert str(path) in report


def test_check_config_names_an_unknown_driver_and_limits_the_protocol_cannot_carry(
    tmp_path: Path,
) -> None:
    """Beyond the schema: an unknown rotator driver, and an elevation axis to 180 deg on an
    azimuth-only protocol (Rot1Prog)."""
    path = tmp_path / "bad.toml"
    text = station_config_text().replace('driver = "rot2prog"', 'driver = "rot9prog"')
    text = text.replace('driver = "gs232b"', 'driver = "rot1prog"')
    path.write_text(text)
    out = io.StringIO()
    assert check_config(path, out=out) == 78
    report = out.getvalue()
    assert "antennas[1].rotator.driver = 'rot9prog'" in report
    assert "antennas[0].rotator" in report
    assert "180" in report


def test_systemd_unit_provides_what_the_example_station_reads() -> None:
    """The example station's password file is the unit's credential and its TLE cache lies
    in the unit's state directory (writable under ProtectSystem=strict)."""
    lines = dict(
        line.split("=", 1)
        for line in (DOCKER / "groundlink.service").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert lines["ProtectSystem"] == "strict"
    cfg = load_config(ROOT / "configs" / "station.example.toml", env={})
    credential = lines["LoadCredential"].split(":", 1)[0]
    assert cfg.mqtt.password_file == Path("/run/credentials/groundlink.service") / credential
    assert cfg.catalog.cache_dir is not None
    assert cfg.catalog.cache_dir.is_relative_to(Path("/var/lib") / lines["StateDirectory"])
