"""What every device driver shares, rotators and radios alike: state, registry, link, logging.

A driver is an async context manager around one :class:`~firmware_bridge.link.CommandLink`
(one request in flight, timeouts, retries, reconnect). The kind-specific base classes
(``RotatorDriver``, later ``RadioDriver``) own validation and the public API; a protocol
module implements only the small raw part (template method, as python-can's ``BusABC``).

Registry
--------
Drivers are found by ``(kind, name)``, kind being ``"rotator"`` or ``"radio"``::

    cls = get_driver("rotator", "gs232b")
    async with create_driver("rotator", "gs232b", "serial:///dev/ttyUSB0", clock=clock) as rot:
        ...

A driver module registers its classes with ``@register_driver(kind, name)`` when it is
imported. :data:`BUILTIN_DRIVER_MODULES` lists which module defines each built-in name, so
looking a name up imports only that module (python-can's lazy backend table). To add a
driver: write the module, decorate the class, and add ``"name": "module.path"`` to the table.

Every driver names its simulator twin (``twin``, a name in the simulator registry of
:mod:`firmware_bridge.simulators`); the conformance suite fails a driver without one.

States (:class:`DriverState`) come from the link, with one overlay: a driver may declare a
*device* fault (a stalled rotator axis) that reads ``faulted`` while the link itself is fine.
Whoever must react to a state change at once (the daemon raising an alarm) registers a
listener with :meth:`Driver.add_state_listener` instead of polling ``state``: it is called
with the driver after every change of the link's state or last error, and of the device
fault.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, Self, TypeVar, get_args
from urllib.parse import parse_qsl, urlsplit

import structlog

from firmware_bridge.clock import Clock
from firmware_bridge.errors import DeviceFault
from firmware_bridge.link import (
    CommandLink,
    LinkHealth,
    LinkPolicy,
    LinkState,
    Listeners,
    ReplyDecoder,
)
from firmware_bridge.transports import ByteTransport, LoopRegistry, open_transport

__all__ = [
    "BUILTIN_DRIVER_MODULES",
    "Driver",
    "DriverHealth",
    "DriverKind",
    "DriverState",
    "StateListener",
    "create_driver",
    "driver_names",
    "get_driver",
    "register_driver",
]

DriverKind = Literal["rotator", "radio"]
"""The two kinds of device the HAL drives."""

_KINDS: Final[tuple[str, ...]] = get_args(DriverKind)

BUILTIN_DRIVER_MODULES: Final[Mapping[str, Mapping[str, str]]] = {
    "rotator": {
        "gs232a": "firmware_bridge.drivers.gs232",
        "gs232b": "firmware_bridge.drivers.gs232",
        "easycomm1": "firmware_bridge.drivers.easycomm",
        "easycomm2": "firmware_bridge.drivers.easycomm",
        "easycomm3": "firmware_bridge.drivers.easycomm",
        "rot2prog": "firmware_bridge.drivers.rot2prog",
        "rot1prog": "firmware_bridge.drivers.rot2prog",
        "rotctld": "firmware_bridge.drivers.rotctld",
    },
    # Radio drivers (written by the radio driver module's owner; keep in step with
    # drivers/radio.py RADIO_DRIVER_MODULES).
    "radio": {
        "ic9700": "firmware_bridge.drivers.icom",
        "ic910": "firmware_bridge.drivers.icom",
        "rigctld": "firmware_bridge.drivers.rigctld",
    },
}
"""Which module defines each built-in driver; importing it registers the class."""

# The one mutable module-level object: filled by @register_driver as driver modules are
# imported. Nothing else in the HAL keeps global state.
_REGISTRY: Final[dict[str, dict[str, type[Driver]]]] = {kind: {} for kind in _KINDS}


class DriverState(enum.StrEnum):
    """What a driver reports about itself."""

    DISCONNECTED = "disconnected"
    """Not opened yet, or closed."""
    CONNECTING = "connecting"
    """The first connection is being made."""
    OK = "ok"
    """Connected and answering."""
    DEGRADED = "degraded"
    """Connected, but retries or failures happened recently."""
    FAULTED = "faulted"
    """The link is down (reconnecting) or the device misbehaves (e.g. a stalled axis)."""


_FROM_LINK: Final = {
    LinkState.CONNECTING: DriverState.CONNECTING,
    LinkState.OK: DriverState.OK,
    LinkState.DEGRADED: DriverState.DEGRADED,
    LinkState.FAULTED: DriverState.FAULTED,
    LinkState.CLOSED: DriverState.DISCONNECTED,
}


@dataclass(frozen=True, slots=True)
class DriverHealth:
    """A snapshot of a driver's health (kind-specific subclasses add fields)."""

    name: str
    kind: str
    driver: str
    url: str
    state: DriverState
    link: LinkHealth | None
    device_fault: str | None


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"driver kind {kind!r} is not known; allowed: {', '.join(_KINDS)}")


D = TypeVar("D", bound="Driver")


def register_driver(kind: DriverKind, name: str) -> Callable[[type[D]], type[D]]:
    """Class decorator: register a driver class as ``(kind, name)``; names are unique."""
    _check_kind(kind)
    if not name or not name.isidentifier() or name != name.lower():
        raise ValueError(f"driver name {name!r}: use a lower-case identifier such as 'gs232b'")

    def decorate(cls: type[D]) -> type[D]:
        if cls.kind != kind:
            raise TypeError(f"{cls.__name__} is a {cls.kind!r} driver, not {kind!r}")
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"{kind} driver {name!r} is already registered by {existing.__qualname__}"
            )
        if not getattr(cls, "twin", ""):
            raise TypeError(f"{cls.__name__}: a driver must name its simulator twin (twin = ...)")
        cls.driver_name = name
        _REGISTRY[kind][name] = cls
        return cls

    return decorate


def driver_names(kind: DriverKind) -> list[str]:
    """Names of every driver of ``kind``: built-in ones and any registered so far, sorted."""
    _check_kind(kind)
    return sorted(set(BUILTIN_DRIVER_MODULES[kind]) | set(_REGISTRY[kind]))


def get_driver(kind: DriverKind, name: str) -> type[Driver]:
    """The driver class registered as ``(kind, name)``, importing its module if needed."""
    _check_kind(kind)
    cls = _REGISTRY[kind].get(name)
    if cls is None and name in BUILTIN_DRIVER_MODULES[kind]:
        importlib.import_module(BUILTIN_DRIVER_MODULES[kind][name])
        cls = _REGISTRY[kind].get(name)
    if cls is None:
        raise ValueError(
            f"no {kind} driver called {name!r}; available: {', '.join(driver_names(kind))}"
        )
    return cls


def create_driver(
    kind: DriverKind,
    name: str,
    url: str,
    *,
    clock: Clock,
    loop_registry: LoopRegistry | None = None,
    **options: Any,
) -> Driver:
    """Build the driver ``(kind, name)`` for the device at ``url`` (not opened yet).

    ``options`` go to the driver's constructor (e.g. ``capabilities=...``, ``policy=...``,
    ``device_name="rot1"``); an unknown option raises TypeError naming it.
    """
    cls = get_driver(kind, name)
    return cls(url, clock=clock, loop_registry=loop_registry, **options)


T = TypeVar("T")


StateListener = Callable[["Driver"], None]
"""Called with the driver after its state (or the reason behind it) changed."""


class Driver:
    """Base of every driver: link lifecycle, state, health, logging; see the module docstring.

    Subclasses set ``kind`` (through their kind base class), ``twin``, and may set
    ``default_baud`` (added to a ``serial://`` URL without ``baud=``) and ``default_policy``.
    They may override ``_probe`` (check the device answers on every (re)connect) and
    ``_resync`` (bytes that put the device's parser back in step before a retry).
    """

    kind: ClassVar[str] = ""
    driver_name: ClassVar[str] = ""
    """Set by :func:`register_driver`."""
    twin: ClassVar[str] = ""
    """Name of the simulator twin in the simulator registry."""
    default_baud: ClassVar[int | None] = None
    default_policy: ClassVar[LinkPolicy] = LinkPolicy()

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        loop_registry: LoopRegistry | None = None,
        device_name: str | None = None,
        policy: LinkPolicy | None = None,
    ) -> None:
        """Remember where the device is; nothing is opened until ``open()``/``async with``."""
        if not isinstance(url, str) or "://" not in url:
            raise ValueError(
                f"{self.driver_name or type(self).__name__}: url={url!r} is not a transport URL; "
                "e.g. serial:///dev/ttyUSB0?baud=9600, tcp://127.0.0.1:4533, loop://rot1"
            )
        self._url = self._with_default_baud(url)
        self._clock = clock
        self._loop_registry = loop_registry
        self._name = device_name or f"{self.driver_name}@{self._url}"
        self._policy = policy if policy is not None else self.default_policy
        self._link: CommandLink | None = None
        self._entered = False
        self._device_fault: str | None = None
        self._listeners: Listeners[[Driver]] = Listeners(self._name)
        self._log: structlog.typing.FilteringBoundLogger = structlog.get_logger(
            "firmware_bridge.drivers"
        ).bind(device=self._name, driver=self.driver_name)

    def _with_default_baud(self, url: str) -> str:
        if self.default_baud is None or urlsplit(url).scheme != "serial":
            return url
        query = urlsplit(url).query
        if any(key == "baud" for key, _ in parse_qsl(query, keep_blank_values=True)):
            return url
        return f"{url}{'&' if query else '?'}baud={self.default_baud}"

    # -- read-only views -----------------------------------------------------------
    @property
    def name(self) -> str:
        """The device name used in logs and messages."""
        return self._name

    @property
    def url(self) -> str:
        """The transport URL (with the protocol's default baud added for serial ports)."""
        return self._url

    @property
    def clock(self) -> Clock:
        """The clock every wait of this driver uses."""
        return self._clock

    @property
    def link(self) -> CommandLink | None:
        """The open link (None before ``open()``)."""
        return self._link

    @property
    def state(self) -> DriverState:
        """The link state, overlaid by a device fault (``faulted``)."""
        if self._link is None:
            return DriverState.DISCONNECTED
        state = _FROM_LINK[self._link.state]
        if self._device_fault is not None and state is not DriverState.DISCONNECTED:
            return DriverState.FAULTED
        return state

    def health(self) -> DriverHealth:
        """A snapshot for health reports."""
        return DriverHealth(
            name=self._name,
            kind=self.kind,
            driver=self.driver_name,
            url=self._url,
            state=self.state,
            link=None if self._link is None else self._link.health(),
            device_fault=self._device_fault,
        )

    # -- state listeners -----------------------------------------------------------
    def add_state_listener(self, listener: StateListener) -> None:
        """Call ``listener(driver)`` after every state change from now on (see the module
        docstring); it survives close() and open()."""
        self._listeners.add(listener)

    def remove_state_listener(self, listener: StateListener) -> None:
        """Stop calling ``listener``; a listener that was not added is ignored."""
        self._listeners.remove(listener)

    def _state_changed(self) -> None:
        self._listeners.notify(self)

    # -- lifecycle -----------------------------------------------------------------
    async def open(self) -> None:
        """Connect (a failed connect leaves the driver ``faulted`` and reconnecting)."""
        if self._link is not None and self._link.state is not LinkState.CLOSED:
            raise RuntimeError(f"{self._name}: already open; close() it first")
        self._device_fault = None
        self._link = CommandLink(
            self._open_transport,
            clock=self._clock,
            policy=self._policy,
            resync=self._resync,
            probe=self._probe,
            name=self._name,
        )
        self._link.add_state_listener(self._state_changed)
        self._log.info("opening", url=self._url)
        await self._link.open()
        self._log.info("opened", state=self.state.value)

    async def close(self) -> None:
        """Close the link; idempotent. The driver may be opened again afterwards."""
        if self._link is not None and self._link.state is not LinkState.CLOSED:
            await self._link.close()
            self._log.info("closed")

    async def wait_ready(self) -> None:
        """Wait until the link is up (after ``open()`` or a reconnect)."""
        await self._require_link().wait_ready()

    async def __aenter__(self) -> Self:
        """Open the driver; it is closed on exit. Re-entering while inside is an error."""
        if self._entered:
            raise RuntimeError(f"{self._name}: already inside 'async with'; enter it once")
        self._entered = True
        try:
            await self.open()
        except BaseException:
            self._entered = False
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the driver."""
        self._entered = False
        await self.close()

    # -- hooks for subclasses ------------------------------------------------------
    async def _open_transport(self) -> ByteTransport:
        return await open_transport(self._url, clock=self._clock, loop_registry=self._loop_registry)

    async def _probe(self, transport: ByteTransport) -> None:
        """Check a fresh connection answers; raise to refuse it. Default: accept it."""

    async def _resync(self, transport: ByteTransport) -> None:
        """Bring the device's command parser back in step before a retry. Default: nothing."""

    # -- requests ------------------------------------------------------------------
    def _require_link(self) -> CommandLink:
        if self._link is None:
            raise DeviceFault(f"{self._name}: not open; use 'async with driver:' or open()")
        return self._link

    async def _request(self, data: bytes, decoder: ReplyDecoder[T]) -> T:
        """Send ``data`` and return the decoded reply (timeouts and retries in the link)."""
        link = self._require_link()
        self._log.debug("request", tx=data)
        return await link.request(data, decoder=decoder)

    async def _send(self, data: bytes) -> None:
        """Send a command the device does not answer."""
        link = self._require_link()
        self._log.debug("send", tx=data)
        await link.send(data)

    def _set_device_fault(self, reason: str | None) -> None:
        """Declare (or with None clear) a device fault; ``state`` reads ``faulted`` meanwhile."""
        if reason != self._device_fault:
            if reason is None:
                self._log.info("device fault cleared", was=self._device_fault)
            else:
                self._log.warning("device fault", reason=reason)
            self._device_fault = reason
            self._state_changed()

    def __repr__(self) -> str:
        """Show the driver, the device name and the state."""
        return f"<{type(self).__name__} {self._name} {self.state.value}>"
