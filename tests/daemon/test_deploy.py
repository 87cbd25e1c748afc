"""Deployment files (no Docker engine or systemd here) and ``groundlink check-config``."""

from __future__ import annotations

import io
import re
import tomllib
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # PyYAML comes with amqtt; no stubs here

from controller.daemon_config import DaemonConfig
from controller.run_cmd import check_config
from tests.daemon.conftest import ROOT, station_config_text

DOCKER = ROOT / "docker"


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)?", text.strip())
    assert match, text
    return float(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_compose_file_parses_and_names_what_exists() -> None:
    """compose.yaml: the broker files and the build it names exist; the daemon's stop grace
    is longer than its own shutdown grace (which is longer than a stow)."""
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"mosquitto", "groundlink"}
    for volume in services["mosquitto"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (DOCKER / source).is_file(), source
    assert "mosquitto-data" in compose["volumes"]
    build = services["groundlink"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).is_file()
    command = services["groundlink"]["command"]
    assert command[0] == "run"
    config = command[command.index("--config") + 1]
    assert (ROOT / config.removeprefix("/app/")).is_file()
    defaults = DaemonConfig()
    assert _seconds(services["groundlink"]["stop_grace_period"]) > defaults.grace_period_s
    assert defaults.grace_period_s > defaults.stow_timeout_s


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
