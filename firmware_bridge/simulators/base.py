"""What every simulator twin shares, rotators and radios alike: serving, faults, registry.

A *twin* models one device. It is built on the **device side** of the same sans-I/O codec its
driver uses, and everything it waits for is on the injected clock. Per connection,
:meth:`Twin.serve` runs the serving loop::

    read bytes from the ByteTransport -> codec.receive_data()
    for each event from codec.next_event():
        Garbage        -> counted, ignored (a real controller drops what it cannot parse)
        command event  -> logged; reply = twin.handle(codec, event)   (the device model)
        reply          -> fault plan (drop / garbage / truncate / extra delay), then written
                          after twin.latency_s (+ any injected delay) on the clock

A subclass implements two methods: ``new_codec()`` (a fresh device-side decoder per
connection) and ``handle(codec, event) -> Reply | None``.

Serving (each returns a :class:`SimServer`; the twin's state survives reconnections):

* :meth:`Twin.serve_loop` -- ``loop://NAME`` in a :class:`LoopRegistry` (in-process tests),
* :meth:`Twin.serve_pty` -- a pseudo-terminal (``/dev/pts/N``, optionally behind a stable
  symlink) that Hamlib's ``rotctl``/``rigctl`` or our ``serial://`` transport can open,
* :meth:`Twin.serve_tcp` -- a TCP port (for net protocols such as rotctld).

Fault injection, controllable from tests and the CLI:

* ``twin.faults`` (:class:`TwinFaults`): drop replies, answer garbage, answer truncated
  frames, answer late (all for the next *n* replies or until cleared);
* ``server.drop()`` / ``server.restore()`` / ``server.disconnect_for(down_s)``: the device goes
  away (pty master closed, TCP listener closed, loop links cut) and comes back at the same
  address;
* kind-specific faults live in the subclasses (a stalled rotator axis).

Registry: ``@register_simulator(kind, name)`` on the twin class, :data:`BUILTIN_SIMULATOR_MODULES`
for lazy imports, :func:`create_simulator` to build one. A twin's name is its driver's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Self, TypeVar

import structlog

from firmware_bridge.clock import Clock
from firmware_bridge.errors import TransportClosed
from firmware_bridge.protocols.base import NEED_DATA, Decoder, Event, Garbage
from firmware_bridge.transports import (
    ByteTransport,
    FaultHook,
    LoopListener,
    LoopRegistry,
    PtyEndpoint,
    TcpServer,
    serve_tcp,
)

__all__ = [
    "BUILTIN_SIMULATOR_MODULES",
    "DEFAULT_GARBAGE",
    "LoopSimServer",
    "PtySimServer",
    "Reply",
    "SimServer",
    "TcpSimServer",
    "Twin",
    "TwinFaults",
    "create_simulator",
    "get_simulator",
    "register_simulator",
    "simulator_names",
]

_KINDS: Final = ("rotator", "radio")

BUILTIN_SIMULATOR_MODULES: Final[Mapping[str, Mapping[str, str]]] = {
    "rotator": {
        "gs232a": "firmware_bridge.simulators.rotator",
        "gs232b": "firmware_bridge.simulators.rotator",
        "easycomm1": "firmware_bridge.simulators.rotator",
        "easycomm2": "firmware_bridge.simulators.rotator",
        "easycomm3": "firmware_bridge.simulators.rotator",
        "rot2prog": "firmware_bridge.simulators.rotator",
        "rot1prog": "firmware_bridge.simulators.rotator",
        "rotctld": "firmware_bridge.simulators.rotator",
    },
    # Radio twins (written by the radio simulator module's owner).
    "radio": {
        "ic9700": "firmware_bridge.simulators.radio",
        "ic910": "firmware_bridge.simulators.radio",
        "rigctld": "firmware_bridge.simulators.radio",
    },
}
"""Which module defines each built-in twin; importing it registers the class."""

# The one mutable module-level object: filled by @register_simulator on import.
_REGISTRY: Final[dict[str, dict[str, type[Twin]]]] = {kind: {} for kind in _KINDS}

DEFAULT_GARBAGE: Final = b"\xff\x00#?!garbage\r\n"
"""What a twin answers instead of a reply under ``TwinFaults.garbage_replies``."""

FOREVER: Final = -1
_LOG_SIZE: Final = 1000


@dataclass(frozen=True, slots=True)
class Reply:
    """What the device model answers to one command: bytes, and whether it then hangs up."""

    data: bytes
    hang_up: bool = False


class TwinFaults:
    """Reply faults of one twin; each applies to the next ``count`` replies (None: until
    :meth:`clear`). When several are armed, drop wins over garbage, garbage over truncate."""

    def __init__(self) -> None:
        """No faults."""
        self._drop = 0
        self._garbage = 0
        self._truncate = 0
        self.garbage_data: bytes = DEFAULT_GARBAGE
        self.extra_latency_s: float = 0.0
        self.dropped = 0
        """Replies dropped so far."""
        self.garbled = 0
        """Replies replaced by garbage so far."""
        self.truncated = 0
        """Replies cut short so far."""

    @staticmethod
    def _count(what: str, count: int | None) -> int:
        if count is None:
            return FOREVER
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{what}(count={count!r}): need an integer >= 0, or None for 'always'")
        return count

    def drop_replies(self, count: int | None = None) -> None:
        """Do not answer the next ``count`` commands that have a reply (None: none at all)."""
        self._drop = self._count("drop_replies", count)

    def garbage_replies(self, count: int | None = None, *, data: bytes | None = None) -> None:
        """Answer ``data`` (default :data:`DEFAULT_GARBAGE`) instead of the next replies."""
        self._garbage = self._count("garbage_replies", count)
        if data is not None:
            if not data:
                raise ValueError("garbage_replies(data=b''): garbage must be at least one byte")
            self.garbage_data = bytes(data)

    def truncate_replies(self, count: int | None = None) -> None:
        """Send only the first half of the next replies (a frame cut short)."""
        self._truncate = self._count("truncate_replies", count)

    def late_replies(self, delay_s: float) -> None:
        """Add ``delay_s`` (clock seconds) to every reply's latency; 0 to stop."""
        if not (isinstance(delay_s, int | float) and 0 <= delay_s < float("inf")):
            raise ValueError(f"late_replies(delay_s={delay_s!r}): need a finite number >= 0")
        self.extra_latency_s = float(delay_s)

    def clear(self) -> None:
        """Remove every reply fault."""
        self._drop = self._garbage = self._truncate = 0
        self.garbage_data = DEFAULT_GARBAGE
        self.extra_latency_s = 0.0

    def apply(self, data: bytes) -> bytes | None:
        """The bytes to send instead of ``data`` (None: send nothing); consumes one count."""
        if self._take("_drop"):
            self.dropped += 1
            return None
        if self._take("_garbage"):
            self.garbled += 1
            return self.garbage_data
        if self._take("_truncate"):
            self.truncated += 1
            return data[: max(1, len(data) // 2)]
        return data

    def _take(self, attr: str) -> bool:
        left: int = getattr(self, attr)
        if left == 0:
            return False
        if left != FOREVER:
            setattr(self, attr, left - 1)
        return True


class Twin(ABC):
    """Base of every simulator twin; see the module docstring."""

    kind: ClassVar[str] = ""
    sim_name: ClassVar[str] = ""
    """Set by :func:`register_simulator` (the driver's name)."""
    transports: ClassVar[frozenset[str]] = frozenset({"loop", "pty", "tcp"})
    """Ways this twin can be served (a net protocol has no business on a pty)."""

    def __init__(self, *, clock: Clock, latency_s: float = 0.0, name: str | None = None) -> None:
        """Create the twin; ``latency_s`` is the controller's reply delay on ``clock``."""
        if not (isinstance(latency_s, int | float) and 0 <= latency_s < float("inf")):
            raise ValueError(f"{type(self).__name__}: latency_s={latency_s!r}: need a number >= 0")
        self._clock = clock
        self.latency_s = float(latency_s)
        self.name = name or self.sim_name or type(self).__name__
        self.faults = TwinFaults()
        self.rx_bytes = 0
        """Bytes received from hosts, over every connection."""
        self.tx_bytes = 0
        """Bytes written to hosts."""
        self.garbage_events = 0
        """Pieces of input the codec discarded as garbage."""
        self.command_count = 0
        """Commands decoded so far."""
        self.commands: deque[Event] = deque(maxlen=_LOG_SIZE)
        """The most recent decoded commands (oldest first)."""
        self.errors: list[BaseException] = []
        """Unexpected exceptions in the device model (a bug in the twin): tests assert none."""
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._log: structlog.typing.FilteringBoundLogger = structlog.get_logger(
            "firmware_bridge.simulators"
        ).bind(simulator=self.name)

    @property
    def clock(self) -> Clock:
        """The clock the twin's physics and latency run on."""
        return self._clock

    # -- the device model (subclasses) ---------------------------------------------
    @abstractmethod
    def new_codec(self) -> Decoder:
        """A fresh device-side decoder for one connection."""

    @abstractmethod
    def handle(self, codec: Decoder, event: Event) -> Reply | None:
        """Apply one command to the model; return the reply (None: the device says nothing)."""

    # -- serving ---------------------------------------------------------------------
    async def serve(self, transport: ByteTransport) -> None:
        """Serve one connection until the host hangs up or the transport closes."""
        codec = self.new_codec()
        self._log.debug("connection", url=transport.url)
        while True:
            try:
                data = await transport.read()
            except TransportClosed:
                return
            self.rx_bytes += len(data)
            codec.receive_data(data)
            while (event := codec.next_event()) is not NEED_DATA:
                if isinstance(event, Garbage):
                    self.garbage_events += 1
                    self._log.debug("garbage", data=event.data, reason=event.reason)
                    continue
                self._record(event)
                try:
                    reply = self.handle(codec, event)
                except Exception as exc:
                    # A bug in the model: keep it for the test to see, drop the connection.
                    self.errors.append(exc)
                    self._log.exception("device model failed", command=repr(event))
                    await transport.close()
                    return
                if reply is not None and not await self._answer(transport, reply):
                    return

    async def _answer(self, transport: ByteTransport, reply: Reply) -> bool:
        """Write one reply through the fault plan; False once the connection is over."""
        data = self.faults.apply(reply.data) if reply.data else b""
        if data:
            delay_s = self.latency_s + self.faults.extra_latency_s
            if delay_s > 0:
                await self._clock.sleep(delay_s)
            try:
                await transport.write(data)
                await transport.drain()
            except TransportClosed:
                return False
            self.tx_bytes += len(data)
        if reply.hang_up:
            await transport.close()
            return False
        return True

    def _record(self, event: Event) -> None:
        self.commands.append(event)
        self.command_count += 1
        still: list[tuple[int, asyncio.Future[None]]] = []
        for count, future in self._waiters:
            if self.command_count >= count:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((count, future))
        self._waiters = still

    async def wait_for_commands(self, count: int) -> None:
        """Wait until ``count`` commands in total have been decoded (no clock involved)."""
        if self.command_count >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        await future

    async def serve_loop(
        self,
        registry: LoopRegistry,
        name: str,
        *,
        to_server: FaultHook | None = None,
        to_client: FaultHook | None = None,
    ) -> LoopSimServer:
        """Serve on ``loop://name``; the hooks act on host→twin / twin→host bytes."""
        server = LoopSimServer(self, registry, name, to_server=to_server, to_client=to_client)
        await server.restore()
        return server

    async def serve_pty(self, *, link_path: str | os.PathLike[str] | None = None) -> PtySimServer:
        """Serve on a new pseudo-terminal; ``link_path`` keeps one path across restores."""
        server = PtySimServer(self, link_path=link_path)
        await server.restore()
        return server

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> TcpSimServer:
        """Serve on a TCP port (0 picks a free one; a restore rebinds the same port)."""
        server = TcpSimServer(self, host, port)
        await server.restore()
        return server


class SimServer(ABC):
    """One way a twin is reachable; it can go away and come back (disconnect fault)."""

    def __init__(self, twin: Twin) -> None:
        """Create a server that is down; ``restore()`` brings it up."""
        self._twin = twin
        self._up = False
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._restore_task: asyncio.Task[None] | None = None

    @property
    def twin(self) -> Twin:
        """The twin being served."""
        return self._twin

    @property
    def up(self) -> bool:
        """True while clients can reach the twin."""
        return self._up

    @property
    @abstractmethod
    def url(self) -> str:
        """The URL our transports open to reach the twin."""

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """What another program opens (a device path, tcp://host:port, loop://name)."""

    @abstractmethod
    async def _bring_up(self) -> None: ...

    @abstractmethod
    async def _bring_down(self) -> None: ...

    async def restore(self) -> None:
        """Bring the twin back at the same address (no-op if it is up)."""
        if self._closed:
            raise RuntimeError(f"{self._twin.name}: the server is closed")
        if not self._up:
            await self._bring_up()
            self._up = True

    async def drop(self) -> None:
        """The device goes away: connections end (clients read TransportClosed), none accepted."""
        if self._up:
            self._up = False
            await self._bring_down()
            await self._cancel_tasks()

    async def disconnect_for(self, down_s: float) -> None:
        """Drop now and come back after ``down_s`` seconds on the twin's clock."""
        await self.drop()

        async def come_back() -> None:
            await self._twin.clock.sleep(down_s)
            await self.restore()

        self._restore_task = asyncio.get_running_loop().create_task(
            come_back(), name=f"{self._twin.name}-come-back"
        )

    async def close(self) -> None:
        """Stop serving for good; idempotent."""
        if self._closed:
            return
        task, self._restore_task = self._restore_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.drop()
        self._closed = True

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        """Use the server as a context manager; it closes on exit."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the server."""
        await self.close()

    def __repr__(self) -> str:
        """Show the twin, the endpoint and whether it is up."""
        return f"<{type(self).__name__} {self._twin.name} {self.endpoint} up={self._up}>"


class LoopSimServer(SimServer):
    """A twin on ``loop://NAME`` in a LoopRegistry."""

    def __init__(
        self,
        twin: Twin,
        registry: LoopRegistry,
        name: str,
        *,
        to_server: FaultHook | None = None,
        to_client: FaultHook | None = None,
    ) -> None:
        """Create the server (down); use :meth:`Twin.serve_loop`."""
        super().__init__(twin)
        self._registry = registry
        self._name = name
        self._hooks = (to_server, to_client)
        self._listener: LoopListener | None = None
        self._connections: set[ByteTransport] = set()

    @property
    def url(self) -> str:
        """``loop://NAME``."""
        return f"loop://{self._name}"

    @property
    def endpoint(self) -> str:
        """``loop://NAME``."""
        return self.url

    async def _bring_up(self) -> None:
        to_server, to_client = self._hooks
        self._listener = self._registry.listen(self._name, to_server=to_server, to_client=to_client)
        self._spawn(self._accept(self._listener), f"{self._twin.name}-accept")

    async def _accept(self, listener: LoopListener) -> None:
        while True:
            try:
                connection = await listener.accept()
            except TransportClosed:
                return
            self._connections.add(connection)
            self._spawn(self._serve(connection), f"{self._twin.name}-{self._name}")

    async def _serve(self, connection: ByteTransport) -> None:
        try:
            await self._twin.serve(connection)
        finally:
            self._connections.discard(connection)
            await connection.close()

    async def _bring_down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
        for connection in list(self._connections):
            await connection.close()


class PtySimServer(SimServer):
    """A twin on a pseudo-terminal; ``url`` is ``serial://`` + the path to open."""

    def __init__(self, twin: Twin, *, link_path: str | os.PathLike[str] | None = None) -> None:
        """Create the server (down); use :meth:`Twin.serve_pty`."""
        super().__init__(twin)
        self._link = Path(link_path) if link_path is not None else None
        self._endpoint: PtyEndpoint | None = None
        self._last_path = ""

    @property
    def path(self) -> str:
        """The path a client opens: the stable symlink if one was asked for, else /dev/pts/N."""
        return str(self._link) if self._link is not None else self._last_path

    @property
    def pts_path(self) -> str:
        """The current /dev/pts/N (it changes when the server is restored)."""
        return self._last_path

    @property
    def url(self) -> str:
        """``serial://`` + :attr:`path` (the driver adds the protocol's baud rate)."""
        return f"serial://{self.path}"

    @property
    def endpoint(self) -> str:
        """The device path."""
        return self.path

    async def _bring_up(self) -> None:
        endpoint = await PtyEndpoint.open()
        self._endpoint = endpoint
        self._last_path = endpoint.path
        if self._link is not None:
            # Replace the link atomically, so a client never sees it missing or half made.
            staging = self._link.with_name(self._link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            staging.symlink_to(endpoint.path)
            staging.replace(self._link)
        self._spawn(self._twin.serve(endpoint), f"{self._twin.name}-pty")

    async def _bring_down(self) -> None:
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            # Closing the master hangs up the client: its pending read fails with EIO.
            await endpoint.close()

    async def close(self) -> None:
        """Stop serving and remove the symlink."""
        await super().close()
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()


class TcpSimServer(SimServer):
    """A twin on a TCP port."""

    def __init__(self, twin: Twin, host: str, port: int) -> None:
        """Create the server (down); use :meth:`Twin.serve_tcp`."""
        super().__init__(twin)
        self._host = host
        self._port = port
        self._server: TcpServer | None = None

    @property
    def port(self) -> int:
        """The bound port (after the first bring-up)."""
        return self._port

    @property
    def url(self) -> str:
        """``tcp://host:port``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"tcp://{host}:{self._port}"

    @property
    def endpoint(self) -> str:
        """``tcp://host:port``."""
        return self.url

    async def _bring_up(self) -> None:
        self._server = await serve_tcp(self._host, self._port, self._twin.serve)
        self._port = self._server.port

    async def _bring_down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.close()


# --------------------------------------------------------------------------- registry

W = TypeVar("W", bound=Twin)


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"simulator kind {kind!r} is not known; allowed: {', '.join(_KINDS)}")


def register_simulator(kind: str, name: str) -> Callable[[type[W]], type[W]]:
    """Class decorator: register a twin class as ``(kind, name)`` (its driver's name)."""
    _check_kind(kind)

    def decorate(cls: type[W]) -> type[W]:
        if cls.kind != kind:
            raise TypeError(f"{cls.__name__} is a {cls.kind!r} twin, not {kind!r}")
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"{kind} twin {name!r} is already registered by {existing.__name__}")
        cls.sim_name = name
        _REGISTRY[kind][name] = cls
        return cls

    return decorate


def simulator_names(kind: str) -> list[str]:
    """Names of every twin of ``kind`` (built-in and registered so far), sorted."""
    _check_kind(kind)
    return sorted(set(BUILTIN_SIMULATOR_MODULES[kind]) | set(_REGISTRY[kind]))


def get_simulator(kind: str, name: str) -> type[Twin]:
    """The twin class registered as ``(kind, name)``, importing its module if needed."""
    _check_kind(kind)
    cls = _REGISTRY[kind].get(name)
    if cls is None and name in BUILTIN_SIMULATOR_MODULES[kind]:
        __import__(BUILTIN_SIMULATOR_MODULES[kind][name])
        cls = _REGISTRY[kind].get(name)
    if cls is None:
        raise ValueError(
            f"no {kind} simulator called {name!r}; available: {', '.join(simulator_names(kind))}"
        )
    return cls


def create_simulator(kind: str, name: str, *, clock: Clock, **options: Any) -> Twin:
    """Build the twin ``(kind, name)`` on ``clock``; ``options`` go to its constructor."""
    return get_simulator(kind, name)(clock=clock, **options)
