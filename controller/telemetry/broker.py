"""The embedded MQTT broker on loopback: the zero-setup broker of ``make demo``.

``mqtt.embedded = true`` runs it for the daemon (in a child process unless
``mqtt.embedded_process = false``), with a TCP listener on the loopback address of
``mqtt.broker`` and a WebSocket listener on ``embedded_ws_port`` for
browser dashboards. It binds loopback only and allows anonymous clients, so it is for a
single machine; production points ``mqtt.broker`` at Mosquitto instead. Port 0 picks a
free port (tests); the bound ports are then on :attr:`EmbeddedBroker.tcp_port` and
:attr:`EmbeddedBroker.ws_port`.

The broker is groundlink's own (:mod:`controller.telemetry.mqtt_broker`, a few
microseconds of CPU per message). ``engine="amqtt"`` runs the amqtt broker instead (a
hundred times that, some 200-400 µs per message; kept for ``bench/broker.py``'s
comparison).

``isolated=True`` runs the same broker in a child process instead
(``python -m controller.telemetry.broker``): its work per message then runs on another
core than the antennas' control loops. The child exits when stopped or when its parent
dies (its stdin closes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from types import TracebackType
from typing import Any, Literal, Self, get_args

from controller.telemetry.config import MqttConfig, is_loopback_host
from controller.telemetry.mqtt_broker import MqttBroker, MqttBrokerError

__all__ = ["BrokerEngine", "EmbeddedBroker", "EmbeddedBrokerError"]

BrokerEngine = Literal["native", "amqtt"]
"""``native``: :class:`~controller.telemetry.mqtt_broker.MqttBroker`; ``amqtt``: amqtt."""


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not start (port taken, bad address, ...)."""


class EmbeddedBroker:
    """MQTT 3.1.1 broker on loopback TCP and WebSocket, in this process or a child."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        ws_port: int | None = 9001,
        isolated: bool = False,
        engine: BrokerEngine = "native",
    ):
        if not is_loopback_host(host):
            raise EmbeddedBrokerError(
                f"embedded broker host {host!r} is not a loopback address; it only serves "
                "this machine (use 127.0.0.1)"
            )
        for name, value in (("port", port), ("ws_port", ws_port)):
            if value is not None and not 0 <= value <= 65535:
                raise EmbeddedBrokerError(f"embedded broker {name} {value} is not 0-65535")
        if engine not in get_args(BrokerEngine):
            raise EmbeddedBrokerError(
                f"embedded broker engine {engine!r} is not one of "
                + ", ".join(get_args(BrokerEngine))
            )
        self._engine: BrokerEngine = engine
        self._host = host
        self._port = port
        self._ws_port = ws_port
        self._isolated = isolated
        self._broker: Any = None
        self._child: asyncio.subprocess.Process | None = None
        self._bound: dict[str, int] = {}

    @classmethod
    def from_config(cls, config: MqttConfig) -> EmbeddedBroker:
        """The broker ``[mqtt]`` asks for (``broker``'s host and port, ``embedded_ws_port``,
        ``embedded_process``)."""
        address = config.address
        return cls(
            host=address.host,
            port=address.port,
            ws_port=config.embedded_ws_port,
            isolated=config.embedded_process,
        )

    @property
    def tcp_port(self) -> int:
        """The bound TCP port (after start)."""
        return self._require("default")

    @property
    def ws_port(self) -> int | None:
        """The bound WebSocket port, or None without a WebSocket listener."""
        return self._require("ws") if self._ws_port is not None else None

    @property
    def pid(self) -> int | None:
        """The child process running an isolated broker (None in-process or stopped)."""
        return self._child.pid if self._child is not None else None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` of the TCP listener."""
        return f"mqtt://{self._host}:{self.tcp_port}"

    @property
    def ws_url(self) -> str | None:
        """``ws://host:port/`` of the WebSocket listener, if any."""
        port = self.ws_port
        return None if port is None else f"ws://{self._host}:{port}/"

    async def start(self) -> None:
        """Open the listeners."""
        if self._broker is not None or self._child is not None:
            raise EmbeddedBrokerError("the embedded broker is already running")
        if self._isolated:
            await self._start_child()
            return
        if self._engine == "native":
            await self._start_native()
            return
        # Imported here: amqtt pulls in websockets, transitions and its plugin registry,
        # which only this comparison engine needs (it may become an optional package).
        try:
            from amqtt.broker import Broker
        except ImportError as exc:
            raise EmbeddedBrokerError(
                f"embedded broker engine 'amqtt' needs the amqtt package ({exc})"
            ) from exc

        listeners: dict[str, dict[str, Any]] = {
            "default": {"type": "tcp", "bind": f"{self._host}:{self._port}"}
        }
        if self._ws_port is not None:
            listeners["ws"] = {"type": "ws", "bind": f"{self._host}:{self._ws_port}"}
        config = {
            "listeners": listeners,
            # Only anonymous auth: the default set adds packet loggers and a $SYS
            # publisher that cost throughput and say nothing a station needs.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        broker = Broker(config)
        try:
            await broker.start()
        except Exception as exc:
            raise self._listen_error(exc) from exc
        self._broker = broker
        # amqtt has no public accessor for the bound address; port 0 needs it.
        servers = getattr(broker, "_servers", {})
        for name, server in servers.items():
            sockets = getattr(server.instance, "sockets", None) or []
            if sockets:
                self._bound[name] = int(sockets[0].getsockname()[1])
        logging.getLogger(__name__).info("embedded MQTT broker listening: %s", self._bound)

    async def stop(self) -> None:
        """Close the listeners and drop every session (idempotent)."""
        broker, self._broker = self._broker, None
        child, self._child = self._child, None
        self._bound = {}
        if isinstance(broker, MqttBroker):
            await broker.stop()
        elif broker is not None:
            await broker.shutdown()
        if child is not None:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
            await child.wait()

    def _listen_error(self, exc: Exception) -> EmbeddedBrokerError:
        """The error for a broker that could not listen, naming the address(es)."""
        ws = f" (ws {self._ws_port})" if self._ws_port is not None else ""
        return EmbeddedBrokerError(
            f"embedded broker could not listen on {self._host}:{self._port}{ws}: {exc}"
        )

    async def _start_native(self) -> None:
        broker = MqttBroker()
        try:
            await broker.start(self._host, self._port, self._ws_port)
        except MqttBrokerError as exc:
            raise self._listen_error(exc) from exc
        self._broker = broker
        assert broker.tcp_port is not None
        self._bound["default"] = broker.tcp_port
        if broker.ws_port is not None:
            self._bound["ws"] = broker.ws_port
        logging.getLogger(__name__).info("embedded MQTT broker listening: %s", self._bound)

    async def _start_child(self) -> None:
        args = [sys.executable, "-m", "controller.telemetry.broker", "--host", self._host]
        args += ["--port", str(self._port), "--engine", self._engine]
        if self._ws_port is not None:
            args += ["--ws-port", str(self._ws_port)]
        # stderr is inherited: a pipe nobody reads would stall a child that logs a lot.
        # Its own session: a Ctrl-C on the terminal reaches the daemon only, which still
        # publishes its final state through this broker before it stops it.
        child = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert child.stdout is not None
        # The child prints one JSON line once it listens: the bound ports, or its error.
        line = await child.stdout.readline()
        try:
            reply = json.loads(line) if line else {}
        except ValueError:
            reply = {}
        if not isinstance(reply, dict) or "ports" not in reply:
            if child.returncode is None:
                child.kill()
            await child.wait()
            why = reply.get("error") if isinstance(reply, dict) else None
            raise EmbeddedBrokerError(
                why or f"embedded broker process exited with status {child.returncode}"
            )
        self._child = child
        self._bound = {str(k): int(v) for k, v in reply["ports"].items()}

    async def __aenter__(self) -> Self:
        """Start the broker."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the broker."""
        await self.stop()

    def _require(self, name: str) -> int:
        if name not in self._bound:
            raise EmbeddedBrokerError("the embedded broker is not running (use 'async with')")
        return self._bound[name]


async def _serve_child(host: str, port: int, ws_port: int | None, engine: BrokerEngine) -> None:
    """The isolated broker's process: listen, report the ports, run until told to stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The parent holds our stdin: end of file means it is gone, so are we.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    orphaned = asyncio.ensure_future(reader.read())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        async with EmbeddedBroker(host=host, port=port, ws_port=ws_port, engine=engine) as broker:
            _reply({"ports": broker._bound})
            await asyncio.wait({orphaned, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        orphaned.cancel()
        stopped.cancel()


def main(argv: list[str] | None = None) -> int:
    """``python -m controller.telemetry.broker``: the broker of ``isolated=True``."""
    parser = argparse.ArgumentParser(description="groundlink's embedded MQTT broker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--ws-port", type=int, default=None)
    parser.add_argument("--engine", choices=get_args(BrokerEngine), default="native")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    # Our broker's warnings too: a client closed for a malformed packet, named.
    logging.getLogger("controller.telemetry.mqtt_broker").setLevel(logging.WARNING)
    try:
        asyncio.run(_serve_child(args.host, args.port, args.ws_port, args.engine))
    except EmbeddedBrokerError as exc:
        _reply({"error": str(exc)})
        return 1
    return 0


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
