"""In-memory transports: connected pairs, a registry of named listeners, and fault injection.

``loop_pair(clock)`` returns two connected :class:`LoopTransport` ends. Every write goes
through the direction's :class:`FaultHook` (if any), which turns it into
:class:`Delivery` pieces: the bytes to deliver and how long after the write they arrive.
Delays wait on the injected clock, so a ``VirtualClock`` test decides when delayed bytes
arrive. Pieces of one direction are delivered in order (a wire delays, it does not
reorder), and each delivered piece is returned by a separate ``read()``, so the chunk
boundaries a hook creates reach the reader exactly.

``LoopRegistry`` gives in-process simulators an address without module globals: the
composition root creates one registry, a simulator ``listen()``-s on a name (``rot1``) and
accepts connections, a driver opens ``loop://rot1`` with
``open_transport(url, clock=..., loop_registry=registry)``.

:class:`FaultInjector` is the ready-made hook: ``split(n)``, ``corrupt(...)``,
``drop(...)``, ``delay(seconds)`` and ``cut()``; random choices come from a seeded
``random.Random``, so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from firmware_bridge.clock import Clock
from firmware_bridge.errors import TransportClosed, TransportUrlError
from firmware_bridge.transports.base import ByteTransport, Inbox

__all__ = [
    "Delivery",
    "FaultHook",
    "FaultInjector",
    "LoopListener",
    "LoopRegistry",
    "LoopTransport",
    "loop_pair",
    "parse_loop_url",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Bytes to hand to the reader ``delay_s`` seconds (clock time) after the write."""

    data: bytes
    delay_s: float = 0.0


class FaultHook(Protocol):
    """What a loop link asks of a fault hook for one direction."""

    def on_write(self, data: bytes) -> Sequence[Delivery]:
        """Turn the bytes of one write into the pieces to deliver (possibly none)."""
        ...

    def attach(self, cut_link: Callable[[], None]) -> None:
        """Register a link; the hook calls ``cut_link()`` to break it (at once if already cut)."""
        ...

    def detach(self, cut_link: Callable[[], None]) -> None:
        """Forget a link that was closed."""
        ...


def _check_name(name: str, *, what: str) -> None:
    if not _NAME_RE.match(name):
        raise TransportUrlError(
            f"{what} {name!r}: a loop name is 1-64 characters of letters, digits, '_', '.' "
            "or '-', starting with a letter or digit (e.g. loop://rot1)"
        )


def parse_loop_url(url: str) -> str:
    """Return the name in ``loop://name``; raise TransportUrlError for anything else."""
    prefix = "loop://"
    if not url.startswith(prefix):
        raise TransportUrlError(f"{url!r} is not a loop URL; expected loop://NAME")
    name = url[len(prefix) :]
    if any(c in name for c in "/?#"):
        raise TransportUrlError(
            f"{url!r}: a loop URL is loop://NAME with no path, query or fragment (e.g. loop://rot1)"
        )
    _check_name(name, what=f"{url!r}: name")
    return name


class _Link:
    """The shared state of a connected pair: whether it was cut, and why."""

    def __init__(self) -> None:
        self.cut_reason: str | None = None
        self.ends: list[LoopTransport] = []

    def cut(self, reason: str) -> None:
        """Break both ends (once)."""
        if self.cut_reason is not None:
            return
        self.cut_reason = reason
        for end in self.ends:
            end._on_cut(reason)


class _Wire:
    """One direction of a pair: applies the fault hook and delivers pieces in order."""

    def __init__(self, clock: Clock, target: Inbox, hook: FaultHook | None) -> None:
        self._clock = clock
        self._target = target
        self._hook = hook
        self._queue: deque[tuple[float, bytes]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._end_after_queue: str | None = None

    def send(self, data: bytes) -> None:
        """Pass one write through the hook; deliver now or queue for later, in order."""
        pieces = self._hook.on_write(data) if self._hook is not None else (Delivery(data),)
        sent_at = self._clock.monotonic()
        for piece in pieces:
            if not piece.data:
                continue
            if piece.delay_s <= 0 and not self._queue:
                self._target.feed(piece.data)
            else:
                self._queue.append((sent_at + max(0.0, piece.delay_s), piece.data))
        if self._queue and self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._deliver_queued(), name="loop-wire-delivery"
            )

    def finish(self, reason: str) -> None:
        """The writing end closed: deliver what is in flight, then end the reader's stream."""
        if self._queue:
            self._end_after_queue = reason
        else:
            self._target.end(reason)

    def stop(self) -> None:
        """Throw away everything in flight (the link was cut or the reader went away)."""
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _deliver_queued(self) -> None:
        while self._queue:
            due, data = self._queue[0]
            wait_s = due - self._clock.monotonic()
            if wait_s > 0:
                await self._clock.sleep(wait_s)
            self._queue.popleft()
            self._target.feed(data)
        self._task = None
        if self._end_after_queue is not None:
            self._target.end(self._end_after_queue)


class LoopTransport(ByteTransport):
    """One end of an in-memory connected pair."""

    def __init__(self, url: str, side: str, link: _Link, inbox: Inbox) -> None:
        """Create an end; use :func:`loop_pair` or :class:`LoopRegistry` instead."""
        super().__init__(url)
        self._side = side
        self._link = link
        self._inbox = inbox
        self._out: _Wire | None = None
        self._in: _Wire | None = None
        self._peer: LoopTransport | None = None
        self._hooks: list[FaultHook] = []
        self._closed_reason: str | None = None
        self._lost_callbacks: list[Callable[[str], None]] = []

    @property
    def side(self) -> str:
        """Which end of the pair this is ("a" or "b")."""
        return self._side

    @property
    def closed(self) -> bool:
        """True once closed here, closed by the peer, or cut."""
        return self._closed_reason is not None

    async def read(self, max_bytes: int = 4096) -> bytes:
        """Return the next delivered piece (at most ``max_bytes`` of it)."""
        return await self._inbox.get(max_bytes)

    async def write(self, data: bytes) -> None:
        """Send bytes through this direction's fault hook."""
        if self._closed_reason is not None:
            raise TransportClosed(self._closed_reason)
        assert self._out is not None
        self._out.send(bytes(data))

    async def drain(self) -> None:
        """Nothing is buffered on the sending side; only report a closed link."""
        if self._closed_reason is not None:
            raise TransportClosed(self._closed_reason)

    async def reset_input(self) -> int:
        """Drop delivered but unread pieces (pieces still in flight arrive later)."""
        return self._inbox.clear()

    async def close(self) -> None:
        """Close this end; the peer reads what was already sent, then gets TransportClosed."""
        if self._closed_reason is not None and self._out is None:
            return
        self._lost_callbacks.clear()  # a local close is no loss of the far end
        reason = f"{self._url} ({self._side}): closed locally"
        if self._closed_reason is None:
            self._closed_reason = reason
        self._inbox.end(reason, discard=True)
        if self._in is not None:
            self._in.stop()
        if self._out is not None:
            self._out.finish(f"{self._url} ({self._other_side}): the peer closed the connection")
        if self._peer is not None:
            self._peer._on_peer_closed(
                f"{self._url} ({self._other_side}): the peer closed the connection"
            )
        self._detach_hooks()
        self._out = None

    @property
    def _other_side(self) -> str:
        return "b" if self._side == "a" else "a"

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """See :meth:`ByteTransport.on_lost`: the peer closed its end or the link was cut."""
        if self._out is None:  # closed here: nothing more to report
            return
        if self._closed_reason is not None:
            callback(self._closed_reason)
        else:
            self._lost_callbacks.append(callback)

    def _lost(self) -> None:
        callbacks, self._lost_callbacks = self._lost_callbacks, []
        for callback in callbacks:
            assert self._closed_reason is not None
            callback(self._closed_reason)

    def _on_peer_closed(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
        self._lost()
        if self._out is not None:
            # Our bytes would go to nobody.
            self._out.stop()

    def _on_cut(self, reason: str) -> None:
        if self._closed_reason is None or self._out is not None:
            self._closed_reason = reason
        self._inbox.end(reason, discard=True)
        if self._out is not None:
            self._out.stop()
        if self._in is not None:
            self._in.stop()
        self._detach_hooks()
        self._lost()

    def _cut_link(self) -> None:
        self._link.cut(f"{self._url}: the link was cut")

    def _detach_hooks(self) -> None:
        for hook in self._hooks:
            hook.detach(self._cut_link)
        self._hooks.clear()


def loop_pair(
    clock: Clock,
    *,
    fault: FaultHook | None = None,
    fault_back: FaultHook | None = None,
    name: str = "pair",
) -> tuple[LoopTransport, LoopTransport]:
    """Return two connected ends ``(a, b)``.

    ``fault`` acts on the bytes ``a`` writes (a→b), ``fault_back`` on those ``b`` writes
    (b→a). Delays wait on ``clock``. A hook's ``cut()`` breaks the whole pair: both ends
    then raise TransportClosed.
    """
    _check_name(name, what="loop_pair name")
    url = f"loop://{name}"
    link = _Link()
    a = LoopTransport(url, "a", link, Inbox(url, coalesce=False))
    b = LoopTransport(url, "b", link, Inbox(url, coalesce=False))
    a_to_b = _Wire(clock, b._inbox, fault)
    b_to_a = _Wire(clock, a._inbox, fault_back)
    a._out, a._in, a._peer = a_to_b, b_to_a, b
    b._out, b._in, b._peer = b_to_a, a_to_b, a
    link.ends = [a, b]
    # Hooks are attached last: an injector that is already cut breaks the pair at once.
    for end, hook in ((a, fault), (b, fault_back)):
        if hook is not None:
            end._hooks.append(hook)
            hook.attach(end._cut_link)
    return a, b


class LoopListener:
    """A name in a :class:`LoopRegistry` that accepts connections (the server side)."""

    def __init__(
        self,
        registry: LoopRegistry,
        name: str,
        to_server: FaultHook | None,
        to_client: FaultHook | None,
    ) -> None:
        """Create a listener; use :meth:`LoopRegistry.listen` instead."""
        self._registry = registry
        self._name = name
        self._to_server = to_server
        self._to_client = to_client
        self._pending: deque[LoopTransport] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def name(self) -> str:
        """The name clients connect to."""
        return self._name

    @property
    def url(self) -> str:
        """The URL clients open: ``loop://NAME``."""
        return f"loop://{self._name}"

    @property
    def closed(self) -> bool:
        """True once the listener stopped accepting."""
        return self._closed

    async def accept(self) -> LoopTransport:
        """Wait for the next client and return the server end of its connection."""
        while not self._pending:
            if self._closed:
                raise TransportClosed(f"{self.url}: the listener is closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pending.popleft()

    def _connect(self, clock: Clock) -> LoopTransport:
        client, server = loop_pair(
            clock, fault=self._to_server, fault_back=self._to_client, name=self._name
        )
        self._pending.append(server)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return client

    async def close(self) -> None:
        """Stop accepting: unregister the name and close connections nobody accepted."""
        if self._closed:
            return
        self._closed = True
        self._registry._unregister(self)
        while self._pending:
            await self._pending.popleft().close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def __aenter__(self) -> Self:
        """Use the listener as a context manager; it closes on exit."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the listener."""
        await self.close()


class LoopRegistry:
    """Named in-memory listeners for one process (created by the composition root)."""

    def __init__(self, clock: Clock) -> None:
        """Create an empty registry whose links delay bytes on ``clock``."""
        self._clock = clock
        self._listeners: dict[str, LoopListener] = {}

    @property
    def names(self) -> list[str]:
        """Names currently listening, sorted."""
        return sorted(self._listeners)

    def listen(
        self,
        name: str,
        *,
        to_server: FaultHook | None = None,
        to_client: FaultHook | None = None,
    ) -> LoopListener:
        """Start accepting connections on ``loop://name``.

        ``to_server`` and ``to_client`` are fault hooks shared by every connection made to
        this listener (client→server and server→client bytes).
        """
        _check_name(name, what="listen name")
        if name in self._listeners:
            raise TransportUrlError(
                f"loop://{name} is already listening; close that listener or pick another name"
            )
        listener = LoopListener(self, name, to_server, to_client)
        self._listeners[name] = listener
        return listener

    async def connect(self, name: str) -> LoopTransport:
        """Connect to the listener called ``name``; TransportClosed if nobody listens."""
        _check_name(name, what="connect name")
        listener = self._listeners.get(name)
        if listener is None:
            listening = ", ".join(f"loop://{n}" for n in self.names) or "none"
            raise TransportClosed(
                f"loop://{name}: nothing is listening (listening now: {listening})"
            )
        return listener._connect(self._clock)

    def _unregister(self, listener: LoopListener) -> None:
        if self._listeners.get(listener.name) is listener:
            del self._listeners[listener.name]


@dataclass
class _ByteRule:
    """Which bytes (counted from ``start``) a corrupt or drop rule hits."""

    start: int
    positions: frozenset[int] | None
    probability: float | None
    rng: random.Random

    def hits(self, offset: int) -> bool:
        """True if the byte at stream ``offset`` is affected."""
        if self.positions is not None:
            return (offset - self.start) in self.positions
        assert self.probability is not None
        # One draw per byte written (dropped or not), so a run depends only on the seed
        # and the bytes written.
        return self.rng.random() < self.probability


class FaultInjector:
    """A fault hook for one direction of a loop link: split, corrupt, drop, delay, cut.

    Byte positions count the bytes written through this injector from the moment the rule
    was set (position 0 is the first byte written after the call). Each rule replaces an
    earlier rule of the same kind; :meth:`clear` removes them all. Rules chain:
    ``FaultInjector(seed=1).split(2).delay(0.5)``.
    """

    def __init__(self, *, seed: int = 0) -> None:
        """Create an injector that passes bytes through unchanged until told otherwise."""
        self._rng = random.Random(seed)
        self._offset = 0
        self._split_n: int | None = None
        self._delay_s = 0.0
        self._corrupt: _ByteRule | None = None
        self._drop: _ByteRule | None = None
        self._cut = False
        self._links: list[Callable[[], None]] = []

    @property
    def bytes_seen(self) -> int:
        """Bytes written through this injector so far."""
        return self._offset

    @property
    def is_cut(self) -> bool:
        """True while the injector breaks every link it is attached to."""
        return self._cut

    def split(self, n: int) -> Self:
        """Deliver every write as pieces of at most ``n`` bytes (each read returns one)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"split(n={n!r}): n must be an integer >= 1 (bytes per piece)")
        self._split_n = n
        return self

    def corrupt(
        self,
        *,
        positions: Iterable[int] | None = None,
        probability: float | None = None,
        seed: int | None = None,
    ) -> Self:
        """Change the bytes at ``positions`` (or each byte with ``probability``) to another value.

        A corrupted byte is XOR-ed with a non-zero random mask, so it always differs.
        """
        self._corrupt = self._rule("corrupt", positions, probability, seed)
        return self

    def drop(
        self,
        *,
        positions: Iterable[int] | None = None,
        probability: float | None = None,
        seed: int | None = None,
    ) -> Self:
        """Lose the bytes at ``positions`` (or each byte with ``probability``)."""
        self._drop = self._rule("drop", positions, probability, seed)
        return self

    def delay(self, seconds: float) -> Self:
        """Deliver each write ``seconds`` (clock time) after it was made."""
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError(f"delay(seconds={seconds!r}): must be a finite number >= 0")
        self._delay_s = float(seconds)
        return self

    def cut(self) -> None:
        """Break every attached link now, and every link attached later until :meth:`clear`."""
        self._cut = True
        links, self._links = self._links, []
        for cut_link in links:
            cut_link()

    def clear(self) -> Self:
        """Remove every rule and the cut (links already cut stay broken)."""
        self._split_n = None
        self._delay_s = 0.0
        self._corrupt = None
        self._drop = None
        self._cut = False
        return self

    # -- FaultHook -------------------------------------------------------------
    def on_write(self, data: bytes) -> Sequence[Delivery]:
        """Apply drop, corrupt, split and delay to the bytes of one write."""
        out = bytearray()
        for i, value in enumerate(data):
            offset = self._offset + i
            dropped = self._drop is not None and self._drop.hits(offset)
            corrupted = self._corrupt is not None and self._corrupt.hits(offset)
            if dropped:
                continue
            if corrupted:
                assert self._corrupt is not None
                value ^= self._corrupt.rng.randrange(1, 256)
            out.append(value)
        self._offset += len(data)
        if not out:
            return ()
        n = self._split_n or len(out)
        return tuple(Delivery(bytes(out[i : i + n]), self._delay_s) for i in range(0, len(out), n))

    def attach(self, cut_link: Callable[[], None]) -> None:
        """Register a link (cut at once if the injector is cut)."""
        if self._cut:
            cut_link()
            return
        self._links.append(cut_link)

    def detach(self, cut_link: Callable[[], None]) -> None:
        """Forget a closed link."""
        if cut_link in self._links:
            self._links.remove(cut_link)

    def _rule(
        self,
        kind: str,
        positions: Iterable[int] | None,
        probability: float | None,
        seed: int | None,
    ) -> _ByteRule:
        if (positions is None) == (probability is None):
            raise ValueError(f"{kind}(): give exactly one of positions=[...] or probability=p")
        rng = random.Random(seed if seed is not None else self._rng.randrange(2**32))
        if positions is not None:
            chosen = frozenset(positions)
            bad = sorted(
                p for p in chosen if isinstance(p, bool) or not isinstance(p, int) or p < 0
            )
            if bad:
                raise ValueError(
                    f"{kind}(positions=...): {bad!r} are not byte positions (integers >= 0)"
                )
            return _ByteRule(self._offset, chosen, None, rng)
        assert probability is not None
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"{kind}(probability={probability!r}): must be within 0.0..1.0")
        return _ByteRule(self._offset, None, float(probability), rng)
