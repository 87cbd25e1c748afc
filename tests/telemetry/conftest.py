"""Fixtures: a real Mosquitto per test (plain, password, TLS, ACL), the embedded broker.

Every broker listens on its own free loopback port, with its own config, password file
and certificates in the test's temporary directory, so tests run in parallel under
pytest-xdist. Nothing here sleeps: readiness is Mosquitto's own "running" log line and
every wait has an ``asyncio.wait_for`` deadline as a hang guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from controller.telemetry.broker import EmbeddedBroker
from controller.telemetry.config import MqttConfig

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
ROOT = Path(__file__).resolve().parents[2]
ACL_EXAMPLE = ROOT / "docker" / "mosquitto.acl"
USERS = {
    "gs1": "gs1-secret",
    "gs2": "gs2-secret",
    "dashboard": "dash-secret",
    "operator": "op-secret",
}
DEADLINE_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""

    ca: Path
    server_crt: Path
    server_key: Path
    client_crt: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Generate the certificates once per worker (openssl CLI: no cryptography package here)."""
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=groundlink test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    for name, cn, san in (
        ("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "gs1", "extendedKeyUsage=clientAuth"),
    ):
        _openssl(
            "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d
        )
        (d / f"{name}.ext").write_text(san + "\n")
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d,
        )  # fmt: skip
    return TlsFiles(
        ca=d / "ca.crt",
        server_crt=d / "server.crt",
        server_key=d / "server.key",
        client_crt=d / "client.crt",
        client_key=d / "client.key",
    )


@pytest.fixture(scope="session")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Mosquitto password file for USERS (made by mosquitto_passwd)."""
    path = tmp_path_factory.mktemp("auth") / "passwd"
    for i, (user, password) in enumerate(USERS.items()):
        args = ["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(path), user, password]
        subprocess.run(args, check=True, capture_output=True, timeout=30)
    return path


def secret_file(tmp_path: Path, user: str) -> Path:
    """A password file (one line) for ``user``, as the station config would point to."""
    path = tmp_path / f"{user}.password"
    path.write_text(USERS[user] + "\n")
    return path


class MosquittoBroker:
    """One Mosquitto process with a generated config; start/stop/restart on the same port."""

    def __init__(
        self,
        workdir: Path,
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: TlsFiles | None = None,
        persistence: bool = False,
        raw_config: str | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self._raw_config = raw_config
        self.tls = tls
        self._password_file = password_file
        self._acl_file = acl_file
        self._persistence = persistence
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self.log: deque[str] = deque(maxlen=200)

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:port`` (or mqtts:// with TLS)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _config(self) -> str:
        if self._raw_config is not None:
            return self._raw_config
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self._password_file else 'true'}",
            f"persistence {'true' if self._persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            f"user {getpass.getuser()}",
            "set_tcp_nodelay true",
        ]
        if self._password_file:
            lines.append(f"password_file {self._password_file}")
        if self._acl_file:
            lines.append(f"acl_file {self._acl_file}")
        if self.tls:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_crt}",
                f"keyfile {self.tls.server_key}",
                "require_certificate true",
            ]
        return "\n".join(lines) + "\n"

    async def start(self) -> None:
        """Start and return once Mosquitto says it is running."""
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self._config())
        proc = await asyncio.create_subprocess_exec(
            MOSQUITTO,
            "-c",
            str(conf),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        assert proc.stderr is not None
        stderr = proc.stderr

        async def until_running() -> None:
            while True:
                line = await stderr.readline()
                if not line:
                    raise RuntimeError("mosquitto exited: " + " | ".join(self.log))
                self.log.append(line.decode(errors="replace").strip())
                if b" running" in line:
                    return

        await asyncio.wait_for(until_running(), DEADLINE_S)

        async def drain() -> None:
            # Keep reading its log so a full pipe never blocks the broker.
            while line := await stderr.readline():
                self.log.append(line.decode(errors="replace").strip())

        self._drain = asyncio.create_task(drain())

    async def stop(self) -> None:
        """SIGTERM (Mosquitto saves its persistence file) and wait for the exit."""
        await self._end(kill=False)

    async def kill(self) -> None:
        """SIGKILL and wait."""
        await self._end(kill=True)

    async def _end(self, *, kill: bool) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if not kill:
                # A SIGTERM that lands just before Mosquitto enters epoll_wait is only seen
                # at its next wake-up (up to a minute when idle): repeat it until it exits.
                for _ in range(int(DEADLINE_S / 0.5)):
                    if proc.returncode is not None:
                        break
                    proc.terminate()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(proc.wait()), 0.5)
        finally:
            # Whatever happened above, no broker outlives its test.
            if proc.returncode is None:
                proc.kill()
            await asyncio.wait_for(proc.wait(), DEADLINE_S)
            self._proc = None
            if self._drain is not None:
                await asyncio.wait_for(self._drain, DEADLINE_S)
        if not kill and proc.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"mosquitto exited with {proc.returncode}: {list(self.log)[-3:]}")


MosquittoFactory = Callable[..., Awaitable[MosquittoBroker]]


@pytest.fixture
async def mosquitto_factory(tmp_path: Path) -> AsyncIterator[MosquittoFactory]:
    """Start Mosquitto brokers for one test; all are stopped at teardown."""
    brokers: list[MosquittoBroker] = []

    async def make(**options: Any) -> MosquittoBroker:
        workdir = tmp_path / f"mosquitto{len(brokers)}"
        workdir.mkdir()
        for _attempt in range(3):
            broker = MosquittoBroker(workdir, **options)
            try:
                await broker.start()
            except RuntimeError:
                # Another worker took the port between free_port() and bind: try another.
                if not any("Address already in use" in line for line in broker.log):
                    raise
                continue
            brokers.append(broker)
            return broker
        raise RuntimeError("no free port for mosquitto after 3 attempts")

    yield make
    for broker in brokers:
        await broker.kill()


@pytest.fixture(params=["mosquitto", "embedded"])
async def any_broker(
    request: pytest.FixtureRequest, mosquitto_factory: MosquittoFactory
) -> AsyncIterator[tuple[str, int]]:
    """(url, port) of a plain Mosquitto or of the embedded broker."""
    if request.param == "mosquitto":
        broker = await mosquitto_factory()
        yield broker.url, broker.port
    else:
        async with EmbeddedBroker(port=0, ws_port=None) as embedded:
            yield embedded.url, embedded.tcp_port


@pytest.fixture
async def mosquitto(mosquitto_factory: MosquittoFactory) -> MosquittoBroker:
    """A plain, anonymous Mosquitto."""
    return await mosquitto_factory()


@pytest.fixture
async def embedded_broker() -> AsyncIterator[EmbeddedBroker]:
    """The embedded broker on free loopback TCP and WebSocket ports."""
    async with EmbeddedBroker(port=0, ws_port=0) as broker:
        yield broker


def fast_config(url: str, **overrides: Any) -> MqttConfig:
    """An MqttConfig that reconnects quickly (tests restart brokers)."""
    values: dict[str, Any] = {
        "broker": url,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.4,
        "connect_timeout_s": 5.0,
    }
    values.update(overrides)
    return MqttConfig(**values)


@dataclass(frozen=True)
class Received:
    """One message a test subscriber received."""

    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


class Subscriber:
    """An aiomqtt client that records every message on its filters.

    ``wait_for`` waits (with a deadline) until a predicate over the messages holds. A
    lost connection only ends the recording; ``reconnect()`` connects again (the test
    decides when, instead of a sleeping retry loop).
    """

    def __init__(
        self,
        port: int,
        filters: Iterable[str],
        *,
        transport: str = "tcp",
        **client_args: Any,
    ) -> None:
        self._port = port
        self._filters = list(filters)
        self._transport = transport
        self._args = client_args
        self.messages: list[Received] = []
        self.disconnected = asyncio.Event()
        self._changed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        """Connect and subscribe."""
        await self.reconnect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Disconnect."""
        await self._close()

    async def reconnect(self) -> None:
        """(Re)connect and subscribe; returns once subscribed."""
        await self._close()
        self.disconnected = asyncio.Event()
        client = aiomqtt.Client(
            "127.0.0.1",
            self._port,
            transport=self._transport,  # type: ignore[arg-type]
            **self._args,
        )
        await asyncio.wait_for(client.__aenter__(), DEADLINE_S)
        for topic_filter in self._filters:
            await client.subscribe(topic_filter, qos=1)
        self._client = client
        self._task = asyncio.create_task(self._read(client))

    async def _read(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                raw = message.payload
                payload = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
                self.messages.append(Received(message.topic.value, payload, bool(message.retain)))
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()
        except aiomqtt.MqttError:
            self.disconnected.set()
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def _close(self) -> None:
        task, self._task = self._task, None
        client, self._client = self._client, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await asyncio.wait_for(client.__aexit__(None, None, None), DEADLINE_S)

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float = DEADLINE_S
    ) -> None:
        """Return once ``predicate(messages)`` holds; fail after ``timeout_s``."""

        async def check() -> None:
            while True:
                changed = self._changed
                if predicate(self.messages):
                    return
                await changed.wait()

        await asyncio.wait_for(check(), timeout_s)

    def on(self, topic: str) -> list[Received]:
        """Messages received on ``topic``."""
        return [m for m in self.messages if m.topic == topic]


async def kill_station_and_see_it_lost(url: str, port: int, prefix: str) -> dict[str, Any]:
    """Run a station's publisher in a process of its own on the broker at ``url``, SIGKILL
    it once it is ready, and return the ``status`` the broker then publishes (its will);
    a subscriber that comes later must get it retained, state ``lost``."""
    async with Subscriber(port, [prefix + "status"]) as sub:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.telemetry._publisher_child",
            url,
            "gs1",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            assert (await asyncio.wait_for(child.stdout.readline(), 20)).strip() == b"ready"
            await sub.wait_for(lambda ms: any(m.json()["state"] == "ready" for m in ms))
            os.kill(child.pid, signal.SIGKILL)
            await asyncio.wait_for(child.wait(), DEADLINE_S)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        await sub.wait_for(lambda ms: ms[-1].json()["state"] == "lost")
        lost: dict[str, Any] = sub.messages[-1].json()
    async with Subscriber(port, [prefix + "status"]) as late:
        await late.wait_for(lambda ms: len(ms) == 1)
        assert late.messages[0].retain
        assert late.messages[0].json()["state"] == "lost"
    return lost
