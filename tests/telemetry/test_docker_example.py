"""The example broker setup in docker/ works as documented, run by a real Mosquitto."""

from __future__ import annotations

import asyncio
import getpass
import ssl
from pathlib import Path

import aiomqtt

from controller.telemetry.mqtt import MqttPublisher
from controller.telemetry.payloads import PassEvent
from firmware_bridge.clock import SystemClock

from .conftest import (
    ACL_EXAMPLE,
    DEADLINE_S,
    ROOT,
    MosquittoFactory,
    Subscriber,
    TlsFiles,
    fast_config,
    free_port,
    secret_file,
)

EXAMPLE = ROOT / "docker" / "mosquitto.conf"


def _localise(text: str, tmp: Path, password_file: Path, tls: TlsFiles) -> tuple[str, int, int]:
    """The example with its container paths and public ports swapped for test ones."""
    tls_port, ws_port = free_port(), free_port()
    replacements = {
        "/mosquitto/config/passwd": str(password_file),
        "/mosquitto/config/mosquitto.acl": str(ACL_EXAMPLE),
        "/mosquitto/data/": f"{tmp}/",
        "/mosquitto/config/tls/ca.crt": str(tls.ca),
        "/mosquitto/config/tls/server.crt": str(tls.server_crt),
        "/mosquitto/config/tls/server.key": str(tls.server_key),
        "listener 1883 127.0.0.1": f"listener {free_port()} 127.0.0.1",
        "listener 8883\n": f"listener {tls_port} 127.0.0.1\n",
        "listener 9001\n": f"listener {ws_port} 127.0.0.1\n",
        "log_dest stdout": "log_dest stderr",
    }
    for old, new in replacements.items():
        assert old in text, f"docker/mosquitto.conf no longer contains {old!r}"
        text = text.replace(old, new)
    return text + f"user {getpass.getuser()}\n", tls_port, ws_port


async def test_example_config_serves_stations_over_tls_and_dashboards_over_websocket(
    mosquitto_factory: MosquittoFactory, password_file: Path, tls_files: TlsFiles, tmp_path: Path
) -> None:
    """A station publishes over mqtts:// with a password; a dashboard reads over wss://."""
    config, tls_port, ws_port = _localise(EXAMPLE.read_text(), tmp_path, password_file, tls_files)
    await mosquitto_factory(raw_config=config, port=tls_port)
    dashboard_tls = aiomqtt.TLSParameters(ca_certs=str(tls_files.ca), cert_reqs=ssl.CERT_REQUIRED)
    station = fast_config(
        f"mqtts://127.0.0.1:{tls_port}",
        username="gs1",
        password_file=secret_file(tmp_path, "gs1"),
        ca_file=tls_files.ca,
    )
    async with (
        Subscriber(
            ws_port,
            ["groundlink/gs1/pass/event"],
            transport="websockets",
            websocket_path="/",
            tls_params=dashboard_tls,
            username="dashboard",
            password="dash-secret",
        ) as dashboard,
        MqttPublisher(station, "gs1", SystemClock()) as publisher,
    ):
        await asyncio.wait_for(publisher.wait_connected(), DEADLINE_S)
        publisher.send(PassEvent(antenna="a1", norad_id=25544, event="aos"))
        await dashboard.wait_for(lambda ms: len(ms) == 1)
        assert dashboard.messages[0].json()["event"] == "aos"
