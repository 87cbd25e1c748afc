"""``RotatorDriver``: the shared behaviour of every rotator driver, and its capabilities.

The public API (``get_position``, ``set_position``, ``stop``, ``park``, ``capabilities``,
``state``, ``health``) lives here once. A protocol module implements only four raw methods,
in the protocol's own angle frame (the *wire* frame)::

    _raw_get()              -> (az_deg, el_deg | None)   read the controller's position
    _raw_set(az_deg, el_deg)                             command a target
    _raw_stop()                                          stop both axes
    _raw_park()                                          go to the park position (default:
                                                         _raw_set of capabilities.park)

What this base class owns:

* **Validation.** A target outside the rotator's limits, NaN or infinity raises
  :class:`~firmware_bridge.errors.LimitError` before a single byte is sent. Nothing is ever
  clamped.
* **Wrap normalisation.** Public angles are in the rotator's own frame
  (``capabilities.az_min_deg .. az_max_deg``; with a 450 deg rotator 10 and 370 are different
  positions). When that range lies inside what the protocol carries (``wire_az_range_deg``)
  the frames are the same. When it does not but spans at most one turn (a -180..180
  rotator on GS-232, whose wire carries 0..450), an angle is sent as the same bearing inside
  the wire range (-10 goes out as 350, as Hamlib does) and a reading is mapped back into
  the rotator's range. A range over one turn that the wire cannot carry as it is would be
  ambiguous, and is refused when the driver is built.
* **Stall detection.** While an axis has a target it has not reached, every reading is
  compared with the last one that showed movement; if the axis has not moved by at least
  its resolution for ``stall_timeout_s`` (on the clock), it is stalled: that
  ``get_position()`` raises :class:`RotatorStalled` (a ``DeviceStalled``), and ``state`` reads
  ``faulted`` (``health().stalled_axes`` names the axes) until the axis moves again or
  ``stop()`` is called. Detection needs readings: a rotator without readback (EasyComm I)
  cannot detect stalls.
* **Logging** (structlog, bound to the device name) and **state** (from the CommandLink).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Final

from firmware_bridge.clock import Clock
from firmware_bridge.drivers.base import Driver, DriverHealth, get_driver
from firmware_bridge.errors import DeviceFault, DeviceStalled, LimitError, LocalProtocolError
from firmware_bridge.link import LinkPolicy
from firmware_bridge.protocols.base import Axis
from firmware_bridge.transports import LoopRegistry

__all__ = [
    "Position",
    "RotatorCapabilities",
    "RotatorDriver",
    "RotatorHealth",
    "RotatorOutOfLimits",
    "RotatorStalled",
    "create_rotator",
    "get_rotator_driver",
]

# Slack for float noise when comparing angles that should be equal.
_EPS_DEG: Final = 1e-6
_TURN_DEG: Final = 360.0


@dataclass(frozen=True, slots=True)
class Position:
    """A rotator position in the rotator's own frame (degrees)."""

    az_deg: float
    el_deg: float


@dataclass(frozen=True, slots=True)
class RotatorCapabilities:
    """What a rotator can do; all angles in degrees, in the rotator's own frame.

    ``az_min_deg``/``az_max_deg`` include any overlap (0..450, -180..540);
    ``el_max_deg`` above 90 means the elevation axis can flip over the zenith (0..180). An
    azimuth-only rotator has ``el_min_deg == el_max_deg`` (its only elevation). Rates and
    accelerations are per axis; ``*_resolution_deg`` is the smallest step the controller
    reports. ``readback`` is False for controllers that cannot report a position.
    """

    az_min_deg: float = 0.0
    az_max_deg: float = 360.0
    el_min_deg: float = 0.0
    el_max_deg: float = 90.0
    az_rate_deg_s: float = 5.0
    el_rate_deg_s: float = 5.0
    az_accel_deg_s2: float = 10.0
    el_accel_deg_s2: float = 10.0
    az_resolution_deg: float = 1.0
    el_resolution_deg: float = 1.0
    park_az_deg: float = 0.0
    park_el_deg: float = 0.0
    readback: bool = True

    def __post_init__(self) -> None:
        """Refuse capabilities that cannot describe a rotator, naming the field and value."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "readback":
                if not isinstance(value, bool):
                    raise ValueError(f"RotatorCapabilities.readback={value!r}: must be True/False")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"RotatorCapabilities.{f.name}={value!r}: must be a number")
            if not math.isfinite(value):
                raise ValueError(f"RotatorCapabilities.{f.name}={value!r}: must be finite")
        for name in (
            "az_rate_deg_s",
            "el_rate_deg_s",
            "az_accel_deg_s2",
            "el_accel_deg_s2",
            "az_resolution_deg",
            "el_resolution_deg",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"RotatorCapabilities.{name}={getattr(self, name)!r}: must be > 0")
        if not self.az_min_deg < self.az_max_deg:
            raise ValueError(
                f"RotatorCapabilities: az_min_deg={self.az_min_deg!r} must be below "
                f"az_max_deg={self.az_max_deg!r}"
            )
        if self.az_max_deg - self.az_min_deg > 2 * _TURN_DEG:
            raise ValueError(
                f"RotatorCapabilities: az range {self.az_min_deg!r}..{self.az_max_deg!r} spans "
                "more than two turns; no rotator does that"
            )
        if not self.el_min_deg <= self.el_max_deg:
            raise ValueError(
                f"RotatorCapabilities: el_min_deg={self.el_min_deg!r} must not exceed "
                f"el_max_deg={self.el_max_deg!r}"
            )
        if not (self.el_min_deg >= -90.0 and self.el_max_deg <= 270.0):
            raise ValueError(
                f"RotatorCapabilities: el range {self.el_min_deg!r}..{self.el_max_deg!r} is not "
                "an elevation range (allowed within -90..270)"
            )
        if not self.az_min_deg <= self.park_az_deg <= self.az_max_deg:
            raise ValueError(
                f"RotatorCapabilities.park_az_deg={self.park_az_deg!r}: outside the az range "
                f"{self.az_min_deg!r}..{self.az_max_deg!r}"
            )
        if not self.el_min_deg <= self.park_el_deg <= self.el_max_deg:
            raise ValueError(
                f"RotatorCapabilities.park_el_deg={self.park_el_deg!r}: outside the el range "
                f"{self.el_min_deg!r}..{self.el_max_deg!r}"
            )

    @property
    def has_elevation(self) -> bool:
        """False for azimuth-only rotators."""
        return self.el_max_deg > self.el_min_deg

    @property
    def az_overlap_deg(self) -> float:
        """Degrees of azimuth beyond one full turn (90 for a 0..450 rotator)."""
        return max(0.0, self.az_max_deg - self.az_min_deg - _TURN_DEG)

    @property
    def flip_capable(self) -> bool:
        """True if the elevation axis goes past the zenith."""
        return self.el_max_deg > 90.0

    @property
    def park(self) -> Position:
        """The park (stow) position."""
        return Position(self.park_az_deg, self.park_el_deg)

    def replace(self, **changes: Any) -> RotatorCapabilities:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class RotatorHealth(DriverHealth):
    """A rotator driver's health: the link's, plus target, last reading and stalled axes."""

    target: Position | None = None
    last_position: Position | None = None
    stalled_axes: tuple[Axis, ...] = ()


class RotatorStalled(DeviceStalled):
    """An axis was commanded but did not move; ``axes`` and the ``position`` read are kept."""

    def __init__(self, message: str, axes: tuple[Axis, ...], position: Position) -> None:
        """Keep the stalled axes and the position that showed it."""
        super().__init__(message)
        self.axes = axes
        self.position = position


class RotatorOutOfLimits(DeviceFault):
    """The controller reported a position outside the rotator's limits (a sensor or wiring
    fault, or a rotator driven past its stops): the reading is not believed, and no target is
    sent until a reading inside the limits comes back; ``position`` is the reading."""

    def __init__(self, message: str, position: Position | None) -> None:
        """Keep the reading that showed it (None when a command was refused)."""
        super().__init__(message)
        self.position = position


@dataclass(slots=True)
class _AxisWatch:
    """Stall watch of one axis (rotator frame)."""

    target: float | None = None
    ref_deg: float | None = None
    ref_t: float = 0.0
    stalled: bool = False
    stalled_at_deg: float = field(default=math.nan)


def _check_angle(device: str, name: str, value: float, low: float, high: float) -> float:
    """Return ``value`` as float if it is a finite angle within ``low..high``, else LimitError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LimitError(f"{device}: {name}={value!r} is not a number of degrees")
    if not math.isfinite(value):
        raise LimitError(
            f"{device}: {name}={value!r} refused; need a finite angle within {low:g}..{high:g} deg"
        )
    if not low <= value <= high:
        if low == high:
            raise LimitError(
                f"{device}: {name}={value!r} refused; this rotator has no such axis, pass "
                f"{name}={low:g}; nothing was sent"
            )
        raise LimitError(
            f"{device}: {name}={value!r} is outside this rotator's range {low:g}..{high:g} deg; "
            "nothing was sent (targets are never clamped)"
        )
    return float(value)


def _default_stall_timeout_s(caps: RotatorCapabilities) -> float:
    """Long enough for an axis starting from rest to move two resolution steps, at least 3 s."""
    worst = 0.0
    for res, rate, accel in (
        (caps.az_resolution_deg, caps.az_rate_deg_s, caps.az_accel_deg_s2),
        (caps.el_resolution_deg, caps.el_rate_deg_s, caps.el_accel_deg_s2),
    ):
        worst = max(worst, rate / accel + 2 * res / rate)
    return max(3.0, 2 * worst)


class RotatorDriver(Driver, ABC):
    """Base of every rotator driver; see the module docstring."""

    kind: ClassVar[str] = "rotator"
    default_capabilities: ClassVar[RotatorCapabilities] = RotatorCapabilities()
    wire_az_range_deg: ClassVar[tuple[float, float]] = (0.0, 360.0)
    """Azimuths the protocol can carry."""
    wire_el_range_deg: ClassVar[tuple[float, float]] = (0.0, 90.0)
    """Elevations the protocol can carry."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        loop_registry: LoopRegistry | None = None,
        device_name: str | None = None,
        policy: LinkPolicy | None = None,
        capabilities: RotatorCapabilities | None = None,
        stall_timeout_s: float | None = None,
    ) -> None:
        """Create the driver; ``capabilities`` default to the protocol's typical rotator."""
        super().__init__(
            url, clock=clock, loop_registry=loop_registry, device_name=device_name, policy=policy
        )
        caps = capabilities if capabilities is not None else self.default_capabilities
        if not isinstance(caps, RotatorCapabilities):
            raise TypeError(f"{self._name}: capabilities={caps!r} is not a RotatorCapabilities")
        self._caps = caps
        self._check_frames()
        if stall_timeout_s is None:
            stall_timeout_s = _default_stall_timeout_s(caps)
        if not (isinstance(stall_timeout_s, int | float) and stall_timeout_s > 0):
            raise ValueError(f"{self._name}: stall_timeout_s={stall_timeout_s!r}: must be > 0")
        self._stall_timeout_s = float(stall_timeout_s)
        self._watch = {Axis.AZ: _AxisWatch(), Axis.EL: _AxisWatch()}
        self._target: Position | None = None
        self._last_position: Position | None = None
        self._limits_fault: str | None = None

    async def open(self) -> None:
        """Connect; a reopened driver starts without target or stall history."""
        self._watch = {Axis.AZ: _AxisWatch(), Axis.EL: _AxisWatch()}
        self._target = None
        self._limits_fault = None
        await super().open()

    # -- frames --------------------------------------------------------------------
    def _wire_az_range(self) -> tuple[float, float]:
        """Azimuths the protocol carries now (a driver may learn them from the device)."""
        return self.wire_az_range_deg

    def _wire_el_range(self) -> tuple[float, float]:
        """Elevations the protocol carries now."""
        return self.wire_el_range_deg

    def _same_frame(self) -> bool:
        lo, hi = self._wire_az_range()
        return lo <= self._caps.az_min_deg and self._caps.az_max_deg <= hi

    def _check_frames(self) -> None:
        caps = self._caps
        az_lo, az_hi = self._wire_az_range()
        if not self._same_frame() and (
            caps.az_max_deg - caps.az_min_deg > _TURN_DEG or az_hi - az_lo < _TURN_DEG
        ):
            raise ValueError(
                f"{self._name}: capabilities az range {caps.az_min_deg:g}..{caps.az_max_deg:g} "
                f"cannot be carried by {self.driver_name}, whose commands carry "
                f"{az_lo:g}..{az_hi:g} deg (a range over one turn must fit as it is)"
            )
        el_lo, el_hi = self._wire_el_range()
        if not (el_lo <= caps.el_min_deg and caps.el_max_deg <= el_hi):
            raise ValueError(
                f"{self._name}: capabilities el range {caps.el_min_deg:g}..{caps.el_max_deg:g} "
                f"cannot be carried by {self.driver_name}, whose commands carry "
                f"{el_lo:g}..{el_hi:g} deg"
            )

    def _to_wire_az(self, az_deg: float) -> float:
        """The azimuth to send for ``az_deg`` (rotator frame); see the module docstring."""
        lo, hi = self._wire_az_range()
        if self._same_frame() or lo <= az_deg <= hi:
            return az_deg
        for turns in (1, -1, 2, -2):
            candidate = az_deg + turns * _TURN_DEG
            if lo <= candidate <= hi:
                return candidate
        raise LimitError(
            f"{self._name}: az_deg={az_deg!r} cannot be expressed in {self.driver_name}'s "
            f"{lo:g}..{hi:g} deg; nothing was sent"
        )

    def _from_wire_az(self, wire_deg: float) -> float:
        """The rotator-frame azimuth for a reading in the wire frame."""
        if self._same_frame():
            return wire_deg
        caps = self._caps
        slack = caps.az_resolution_deg
        candidates = [
            wire_deg + turns * _TURN_DEG
            for turns in (0, 1, -1, 2, -2)
            if caps.az_min_deg - slack <= wire_deg + turns * _TURN_DEG <= caps.az_max_deg + slack
        ]
        if not candidates:
            # A controller reading outside our range: report it as read, do not invent one.
            self._log.warning("azimuth reading outside the rotator range", wire_az_deg=wire_deg)
            return wire_deg
        reference = self._target.az_deg if self._target is not None else wire_deg
        return min(candidates, key=lambda c: abs(c - reference))

    # -- public API ----------------------------------------------------------------
    @property
    def capabilities(self) -> RotatorCapabilities:
        """What this rotator can do (limits, rates, resolution, park)."""
        return self._caps

    @property
    def stall_timeout_s(self) -> float:
        """How long a commanded axis may show no movement before it counts as stalled."""
        return self._stall_timeout_s

    @property
    def target(self) -> Position | None:
        """The last commanded target (None after stop())."""
        return self._target

    def validate(self, az_deg: float, el_deg: float) -> Position:
        """Return the target as floats or raise LimitError (what set_position checks first)."""
        caps = self._caps
        az = _check_angle(self._name, "az_deg", az_deg, caps.az_min_deg, caps.az_max_deg)
        el = _check_angle(self._name, "el_deg", el_deg, caps.el_min_deg, caps.el_max_deg)
        return Position(az, el)

    async def get_position(self) -> Position:
        """Read the position (rotator frame). May raise RotatorStalled; see the module doc."""
        if not self._caps.readback:
            raise LocalProtocolError(
                f"{self._name}: {self.driver_name} cannot report a position (the protocol has no "
                "readback); track the commanded target instead"
            )
        wire_az, wire_el = await self._raw_get()
        az = self._from_wire_az(wire_az)
        el = wire_el if wire_el is not None else self._caps.el_min_deg
        position = Position(az, el)
        self._last_position = position
        self._check_limits(position)
        self._check_motion(position)
        return position

    async def set_position(self, az_deg: float, el_deg: float) -> None:
        """Command a target; LimitError (before any byte is sent) if it is out of range;
        RotatorOutOfLimits while the last reading was outside the limits."""
        target = self.validate(az_deg, el_deg)
        self._refuse_if_out_of_limits(target)
        wire_az = self._to_wire_az(target.az_deg)
        self._log.debug(
            "set_position", az_deg=target.az_deg, el_deg=target.el_deg, wire_az_deg=wire_az
        )
        await self._raw_set(wire_az, target.el_deg)
        self._commanded(target)

    async def stop(self) -> None:
        """Stop both axes now (also clears a stall)."""
        self._log.info("stop")
        await self._raw_stop()
        self._target = None
        for watch in self._watch.values():
            watch.target = None
            watch.ref_deg = None
            watch.stalled = False
        # A stop ends a stall; a position outside the limits stays a fault until a reading
        # inside them comes back.
        self._set_device_fault(self._limits_fault)

    async def park(self) -> None:
        """Go to ``capabilities.park``."""
        park = self.validate(self._caps.park_az_deg, self._caps.park_el_deg)
        self._refuse_if_out_of_limits(park)
        self._log.info("park", az_deg=park.az_deg, el_deg=park.el_deg)
        await self._raw_park()
        self._commanded(park)

    def health(self) -> RotatorHealth:
        """A snapshot for health reports."""
        base = super().health()
        return RotatorHealth(
            name=base.name,
            kind=base.kind,
            driver=base.driver,
            url=base.url,
            state=base.state,
            link=base.link,
            device_fault=base.device_fault,
            target=self._target,
            last_position=self._last_position,
            stalled_axes=tuple(axis for axis, watch in self._watch.items() if watch.stalled),
        )

    # -- limits of the readings ----------------------------------------------------
    def _check_limits(self, position: Position) -> None:
        caps = self._caps
        # A reading may sit one resolution step past a limit the axis is parked on.
        az_slack = caps.az_resolution_deg + _EPS_DEG
        el_slack = caps.el_resolution_deg + _EPS_DEG
        outside = []
        if not caps.az_min_deg - az_slack <= position.az_deg <= caps.az_max_deg + az_slack:
            outside.append(
                f"az {position.az_deg:g} deg (limits {caps.az_min_deg:g}..{caps.az_max_deg:g})"
            )
        if caps.has_elevation and not (
            caps.el_min_deg - el_slack <= position.el_deg <= caps.el_max_deg + el_slack
        ):
            outside.append(
                f"el {position.el_deg:g} deg (limits {caps.el_min_deg:g}..{caps.el_max_deg:g})"
            )
        if not outside:
            if self._limits_fault is not None:
                self._limits_fault = None
                self._set_device_fault(None)
            return
        reason = "position reported outside the limits: " + ", ".join(outside)
        self._limits_fault = reason
        self._set_device_fault(reason)
        raise RotatorOutOfLimits(
            f"{self._name}: {reason}; not believed, nothing commanded", position
        )

    def _refuse_if_out_of_limits(self, target: Position) -> None:
        if self._limits_fault is not None:
            raise RotatorOutOfLimits(
                f"{self._name}: target az {target.az_deg:g} el {target.el_deg:g} not sent: "
                f"{self._limits_fault}; stop it, check the sensor, read the position again",
                None,
            )

    # -- stall detection -----------------------------------------------------------
    def _commanded(self, target: Position) -> None:
        self._target = target
        self._watch[Axis.AZ].target = target.az_deg
        self._watch[Axis.EL].target = target.el_deg if self._caps.has_elevation else None

    def _check_motion(self, position: Position) -> None:
        now = self._clock.monotonic()
        caps = self._caps
        newly: list[Axis] = []
        readings = {
            Axis.AZ: (position.az_deg, caps.az_resolution_deg),
            Axis.EL: (position.el_deg, caps.el_resolution_deg),
        }
        for axis, (value, resolution) in readings.items():
            watch = self._watch[axis]
            if watch.target is None:
                continue
            if abs(value - watch.target) <= resolution + _EPS_DEG:
                # Arrived (within what the controller can resolve): nothing more to watch.
                watch.target = None
                watch.ref_deg = None
                watch.stalled = False
                continue
            if watch.ref_deg is None or abs(value - watch.ref_deg) >= resolution - _EPS_DEG:
                watch.ref_deg = value
                watch.ref_t = now
                watch.stalled = False
            elif not watch.stalled and now - watch.ref_t >= self._stall_timeout_s:
                watch.stalled = True
                watch.stalled_at_deg = value
                newly.append(axis)
        stalled = [(axis, watch) for axis, watch in self._watch.items() if watch.stalled]
        if not stalled:
            self._set_device_fault(None)
            return
        reason = "; ".join(
            f"{axis.value} axis stalled at {watch.stalled_at_deg:g} deg, commanded "
            f"{watch.target:g} deg, no movement for {now - watch.ref_t:g} s"
            for axis, watch in stalled
        )
        self._set_device_fault(reason)
        if newly:
            raise RotatorStalled(f"{self._name}: {reason}", tuple(newly), position)

    # -- the raw part each protocol implements --------------------------------------
    @abstractmethod
    async def _raw_get(self) -> tuple[float, float | None]:
        """Read (az, el) in the wire frame; el None if the protocol reports azimuth only."""

    @abstractmethod
    async def _raw_set(self, az_deg: float, el_deg: float) -> None:
        """Command (az, el) in the wire frame (already validated)."""

    @abstractmethod
    async def _raw_stop(self) -> None:
        """Stop both axes."""

    async def _raw_park(self) -> None:
        """Go to the park position; default: a plain set to ``capabilities.park``."""
        await self._raw_set(self._to_wire_az(self._caps.park_az_deg), self._caps.park_el_deg)


def get_rotator_driver(name: str) -> type[RotatorDriver]:
    """The rotator driver class called ``name``."""
    cls = get_driver("rotator", name)
    if not issubclass(cls, RotatorDriver):
        raise TypeError(f"rotator driver {name!r} ({cls.__qualname__}) is not a RotatorDriver")
    return cls


def create_rotator(
    name: str,
    url: str,
    *,
    clock: Clock,
    loop_registry: LoopRegistry | None = None,
    **options: Any,
) -> RotatorDriver:
    """Build the rotator driver ``name`` for ``url`` (typed shortcut of ``create_driver``)."""
    return get_rotator_driver(name)(url, clock=clock, loop_registry=loop_registry, **options)
