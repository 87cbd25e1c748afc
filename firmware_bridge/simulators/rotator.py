"""Rotator physics and the per-protocol rotator twins.

Physics (:class:`AxisMotion`, :class:`RotatorModel`)
----------------------------------------------------
Each axis moves on a trapezoidal velocity profile: constant acceleration up to the slew
rate, cruise, constant deceleration to rest exactly at the target. A new command while
moving starts from the current position *and velocity* (braking first if the axis moves the
wrong way or cannot stop in time). The profile is a short list of constant-acceleration
phases computed when a command arrives, so the position is a closed-form function of the
time since that command: nothing ticks, and a VirtualClock run is exact and cheap.

* Limits: a target beyond the axis range stops at the end of the range (the limit switch),
  including the overlap range (0..450 is one axis of 450 degrees).
* Backlash: the antenna follows the motor with ``backlash_deg`` of play (the antenna moves
  only once the play is taken up). The controller's sensor sits on the motor side, so the
  *reported* position is the motor's, the *true* position (:meth:`RotatorModel.true_position`,
  for the tracker's link model) the antenna's.
* Resolution: a twin reports the motor position quantised to its controller's resolution
  (GS-232 whole degrees, EasyComm tenths, SPID 1/PH and 1/PV).
* Stall (fault): a stalled axis freezes where it is; commands still change its target, and
  it resumes towards that target when released.

Twins (one per driver, same names)
----------------------------------
``gs232a`` ``gs232b`` ``easycomm1`` ``easycomm2`` ``easycomm3`` ``rot2prog`` ``rot1prog``
``rotctld``. Each is built on the device side of its driver's codec and reports what that
firmware reports (see each class). Default capabilities are the driver's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from firmware_bridge.clock import Clock
from firmware_bridge.drivers.rotator import Position, RotatorCapabilities, get_rotator_driver
from firmware_bridge.protocols.base import (
    Axis,
    Decoder,
    Direction,
    Event,
    GetPosition,
    Move,
    Park,
    SetPosition,
    Stop,
    StopAxis,
    UnknownCommand,
)
from firmware_bridge.protocols.easycomm import (
    EasycommDevice,
    EasycommVariant,
    GetErrorRegister,
    GetStatus,
    GetVersion,
    SetElevation,
    Velocity,
)
from firmware_bridge.protocols.easycomm import GetAzimuth as EcGetAzimuth
from firmware_bridge.protocols.easycomm import GetElevation as EcGetElevation
from firmware_bridge.protocols.gs232 import GetAzimuth, GetElevation, Gs232Device, Gs232Variant
from firmware_bridge.protocols.gs232 import SetSpeed as Gs232Speed
from firmware_bridge.protocols.hamlib_net import (
    DumpState,
    GetInfo,
    GetLevel,
    Quit,
    Reset,
    RotctldDevice,
    RotDumpState,
    RotMove,
    SetLevel,
)
from firmware_bridge.protocols.rot2prog import SpidDevice, SpidVariant
from firmware_bridge.simulators.base import Reply, Twin, register_simulator

__all__ = [
    "AxisMotion",
    "Easycomm1Twin",
    "Easycomm2Twin",
    "Easycomm3Twin",
    "EasycommTwin",
    "Gs232Twin",
    "Gs232aTwin",
    "Gs232bTwin",
    "Rot1ProgTwin",
    "Rot2ProgTwin",
    "RotatorModel",
    "RotatorTwin",
    "RotctldTwin",
    "SpidTwin",
]

_INF: Final = math.inf
# Below this a distance or speed is zero (float noise of the closed-form profile).
_TINY: Final = 1e-9


@dataclass(frozen=True, slots=True)
class _Phase:
    """Constant acceleration from ``t0`` to ``t1``."""

    t0: float
    p0: float
    v0: float
    a: float
    t1: float

    def at(self, t: float) -> tuple[float, float]:
        """(position, velocity) at ``t`` (clamped to the phase)."""
        dt = min(max(t, self.t0), self.t1) - self.t0
        return self.p0 + self.v0 * dt + 0.5 * self.a * dt * dt, self.v0 + self.a * dt


def _plan(t: float, p: float, v: float, target: float, vmax: float, amax: float) -> list[_Phase]:
    """Phases taking (p, v) at time t to rest at ``target``; each phase is monotone."""
    phases: list[_Phase] = []

    def push(duration: float, accel: float) -> None:
        nonlocal t, p, v
        if duration <= 0:
            return
        phases.append(_Phase(t, p, v, accel, t + duration))
        p, v = p + v * duration + 0.5 * accel * duration * duration, v + accel * duration
        t += duration

    if abs(v) > _TINY:
        sign = 1.0 if v > 0 else -1.0
        ahead = sign * (target - p)
        # A target behind, however close, needs the brake: the slack below only keeps
        # "stops exactly on the target" from braking early, and would let a target a hair
        # behind skip the braking phase (a jump in speed).
        if ahead < 0 or ahead < v * v / (2 * amax) - _TINY:
            # Moving away, or too fast to stop in time: brake to rest first.
            push(abs(v) / amax, -sign * amax)
            v = 0.0
        elif abs(v) > vmax:
            # The rate was lowered while moving: slow down to it.
            push((abs(v) - vmax) / amax, -sign * amax)
            v = sign * vmax
    else:
        v = 0.0
    distance = abs(target - p)
    if distance > _TINY:
        sign = 1.0 if target > p else -1.0
        u = abs(v)
        peak = math.sqrt(amax * distance + u * u / 2)
        if peak <= vmax:
            push((peak - u) / amax, sign * amax)
            push(peak / amax, -sign * amax)
        else:
            accel_d = (vmax * vmax - u * u) / (2 * amax)
            brake_d = vmax * vmax / (2 * amax)
            push((vmax - u) / amax, sign * amax)
            push((distance - accel_d - brake_d) / vmax, 0.0)
            push(vmax / amax, -sign * amax)
    phases.append(_Phase(t, target, 0.0, 0.0, _INF))
    return phases


class AxisMotion:
    """One axis: trapezoidal motion within limits, backlash, stall; evaluated at any time."""

    def __init__(
        self,
        *,
        min_deg: float,
        max_deg: float,
        rate_deg_s: float,
        accel_deg_s2: float,
        backlash_deg: float = 0.0,
        start_deg: float = 0.0,
        t0: float = 0.0,
    ) -> None:
        """An axis at rest at ``start_deg`` at time ``t0``."""
        for name, value in (("rate_deg_s", rate_deg_s), ("accel_deg_s2", accel_deg_s2)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"AxisMotion {name}={value!r}: need a finite number > 0")
        if not (math.isfinite(backlash_deg) and backlash_deg >= 0):
            raise ValueError(f"AxisMotion backlash_deg={backlash_deg!r}: need a number >= 0")
        if not min_deg <= start_deg <= max_deg:
            raise ValueError(
                f"AxisMotion start_deg={start_deg!r}: outside the range {min_deg!r}..{max_deg!r}"
            )
        self.min_deg = min_deg
        self.max_deg = max_deg
        self._rate = rate_deg_s
        self._accel = accel_deg_s2
        self._backlash = backlash_deg
        self._target = start_deg
        self._stalled = False
        self._phases = [_Phase(t0, start_deg, 0.0, 0.0, _INF)]
        self._antenna0 = start_deg

    @property
    def target_deg(self) -> float:
        """Where the axis is heading (or rests)."""
        return self._target

    @property
    def rate_deg_s(self) -> float:
        """The current slew rate limit."""
        return self._rate

    @property
    def stalled(self) -> bool:
        """True while the axis is stalled (fault)."""
        return self._stalled

    def state(self, t: float) -> tuple[float, float]:
        """Motor (position, velocity) at time ``t``."""
        for phase in reversed(self._phases):
            if t >= phase.t0:
                return phase.at(t)
        return self._phases[0].at(t)

    def position(self, t: float) -> float:
        """Motor position at time ``t`` (what the controller's sensor reads)."""
        return self.state(t)[0]

    def antenna(self, t: float) -> float:
        """Antenna position at ``t``: the motor position seen through the backlash play."""
        half = self._backlash / 2
        antenna = self._antenna0
        for phase in self._phases:
            if phase.t0 > t:
                break
            motor, _ = phase.at(t)
            # Within a monotone phase the play is taken up (or not) once: clamp is exact.
            antenna = min(max(antenna, motor - half), motor + half)
        return antenna

    def moving(self, t: float) -> bool:
        """True until the axis is at rest at its target."""
        return t < self._phases[-1].t0

    def command(self, t: float, target_deg: float) -> None:
        """Head for ``target_deg`` (stopping at the range end if it lies beyond)."""
        self._target = min(max(target_deg, self.min_deg), self.max_deg)
        self._replan(t)

    def move(self, t: float, *, positive: bool) -> None:
        """Move until stopped (or until the range end)."""
        self.command(t, self.max_deg if positive else self.min_deg)

    def stop(self, t: float) -> None:
        """Brake to rest as fast as the acceleration allows."""
        p, v = self.state(t)
        stop_at = p + math.copysign(v * v / (2 * self._accel), v) if v else p
        self._target = min(max(stop_at, self.min_deg), self.max_deg)
        self._replan(t)

    def set_rate(self, t: float, rate_deg_s: float) -> None:
        """Change the slew rate limit (applies at once, also mid-move)."""
        if not (math.isfinite(rate_deg_s) and rate_deg_s > 0):
            raise ValueError(f"AxisMotion rate_deg_s={rate_deg_s!r}: need a finite number > 0")
        self._rate = rate_deg_s
        self._replan(t)

    def stall(self, t: float) -> None:
        """Freeze the axis where it is (it keeps its target)."""
        antenna = self.antenna(t)
        self._phases = [_Phase(t, self.position(t), 0.0, 0.0, _INF)]
        self._antenna0 = antenna
        self._stalled = True

    def release(self, t: float) -> None:
        """End a stall; the axis resumes towards its target."""
        self._stalled = False
        self._replan(t)

    def _replan(self, t: float) -> None:
        p, v = self.state(t)
        antenna = self.antenna(t)
        if self._stalled:
            self._phases = [_Phase(t, p, 0.0, 0.0, _INF)]
        else:
            self._phases = _plan(t, p, v, self._target, self._rate, self._accel)
        self._antenna0 = antenna


class RotatorModel:
    """Two axes (or one, for azimuth-only rotators) on a clock; see the module docstring."""

    def __init__(
        self,
        capabilities: RotatorCapabilities,
        clock: Clock,
        *,
        backlash_deg: float = 0.0,
        start: Position | None = None,
    ) -> None:
        """A rotator at rest at ``start`` (default: the park position)."""
        self.capabilities = capabilities
        self._clock = clock
        start = start if start is not None else capabilities.park
        t0 = clock.monotonic()
        self.az = AxisMotion(
            min_deg=capabilities.az_min_deg,
            max_deg=capabilities.az_max_deg,
            rate_deg_s=capabilities.az_rate_deg_s,
            accel_deg_s2=capabilities.az_accel_deg_s2,
            backlash_deg=backlash_deg,
            start_deg=start.az_deg,
            t0=t0,
        )
        self.el = AxisMotion(
            min_deg=capabilities.el_min_deg,
            max_deg=capabilities.el_max_deg,
            rate_deg_s=capabilities.el_rate_deg_s,
            accel_deg_s2=capabilities.el_accel_deg_s2,
            backlash_deg=backlash_deg,
            start_deg=start.el_deg,
            t0=t0,
        )

    def _now(self) -> float:
        return self._clock.monotonic()

    def axis(self, axis: Axis) -> AxisMotion:
        """The motion of one axis."""
        return self.az if axis is Axis.AZ else self.el

    def command(self, az_deg: float | None = None, el_deg: float | None = None) -> None:
        """Head for a target; None leaves that axis alone."""
        now = self._now()
        if az_deg is not None:
            self.az.command(now, az_deg)
        if el_deg is not None and self.capabilities.has_elevation:
            self.el.command(now, el_deg)

    def stop(self, axis: Axis | None = None) -> None:
        """Brake one axis, or both."""
        now = self._now()
        for one in (Axis.AZ, Axis.EL) if axis is None else (axis,):
            self.axis(one).stop(now)

    def move(self, direction: Direction) -> None:
        """Move in a direction until stopped."""
        positive = direction in (Direction.RIGHT, Direction.UP)
        self.axis(direction.axis).move(self._now(), positive=positive)

    def park(self) -> None:
        """Head for the park position."""
        self.command(self.capabilities.park_az_deg, self.capabilities.park_el_deg)

    def set_rate(self, axis: Axis, rate_deg_s: float) -> None:
        """Change one axis's slew rate."""
        self.axis(axis).set_rate(self._now(), rate_deg_s)

    def stall(self, axis: Axis) -> None:
        """Fault: freeze one axis."""
        self.axis(axis).stall(self._now())

    def release(self, axis: Axis) -> None:
        """End a stall."""
        self.axis(axis).release(self._now())

    def position(self) -> Position:
        """The motor (sensor) position now."""
        now = self._now()
        return Position(self.az.position(now), self.el.position(now))

    def true_position(self) -> Position:
        """Where the antenna really points now (motor through backlash)."""
        now = self._now()
        return Position(self.az.antenna(now), self.el.antenna(now))

    def target(self) -> Position:
        """Where the axes are heading."""
        return Position(self.az.target_deg, self.el.target_deg)

    def moving(self) -> bool:
        """True while either axis moves."""
        now = self._now()
        return self.az.moving(now) or self.el.moving(now)


def _quantise(value: float, step: float) -> float:
    # Integer step count first: 123.4 at 0.1 gives the float nearest 123.4, not 123.40000001.
    steps = round(value / step)
    return steps / round(1 / step) if (1 / step).is_integer() else steps * step


class RotatorTwin(Twin):
    """Shared rotator twin: the model, quantised readings, the stall fault."""

    kind: ClassVar[str] = "rotator"

    def __init__(
        self,
        *,
        clock: Clock,
        capabilities: RotatorCapabilities | None = None,
        az_rate_deg_s: float | None = None,
        el_rate_deg_s: float | None = None,
        backlash_deg: float = 0.0,
        start: Position | None = None,
        latency_s: float = 0.0,
        name: str | None = None,
    ) -> None:
        """A twin with the driver's default capabilities unless given; rates may be overridden."""
        super().__init__(clock=clock, latency_s=latency_s, name=name)
        driver = get_rotator_driver(self.sim_name)
        caps = capabilities if capabilities is not None else driver.default_capabilities
        if az_rate_deg_s is not None:
            caps = caps.replace(az_rate_deg_s=az_rate_deg_s)
        if el_rate_deg_s is not None:
            caps = caps.replace(el_rate_deg_s=el_rate_deg_s)
        lo, hi = driver.wire_az_range_deg
        el_lo, el_hi = driver.wire_el_range_deg
        if not (
            lo <= caps.az_min_deg
            and caps.az_max_deg <= hi
            and el_lo <= caps.el_min_deg
            and caps.el_max_deg <= el_hi
        ):
            raise ValueError(
                f"{self.name}: capabilities az {caps.az_min_deg:g}..{caps.az_max_deg:g}, el "
                f"{caps.el_min_deg:g}..{caps.el_max_deg:g} do not fit what this controller "
                f"reports (az {lo:g}..{hi:g}, el {el_lo:g}..{el_hi:g})"
            )
        self.model = RotatorModel(caps, clock, backlash_deg=backlash_deg, start=start)

    @property
    def capabilities(self) -> RotatorCapabilities:
        """The simulated rotator's capabilities."""
        return self.model.capabilities

    def true_position(self) -> Position:
        """Where the simulated antenna really points (for link models and tests)."""
        return self.model.true_position()

    def reported_position(self) -> Position:
        """What the controller would report now (sensor position at its resolution)."""
        raw = self.model.position()
        caps = self.capabilities
        return Position(
            _quantise(raw.az_deg, caps.az_resolution_deg),
            _quantise(raw.el_deg, caps.el_resolution_deg),
        )

    def stall(self, axis: Axis) -> None:
        """Fault: the axis stops moving (a jammed gear, a dead motor)."""
        self._log.info("fault: axis stalled", axis=axis.value)
        self.model.stall(axis)

    def release(self, axis: Axis) -> None:
        """End a stall."""
        self._log.info("fault: axis released", axis=axis.value)
        self.model.release(axis)

    def _move(self, event: Event) -> bool:
        """Apply the motion commands every rotator protocol shares; True if it was one."""
        model = self.model
        if isinstance(event, SetPosition):
            model.command(event.az_deg, event.el_deg)
        elif isinstance(event, Stop):
            model.stop()
        elif isinstance(event, StopAxis):
            model.stop(event.axis)
        elif isinstance(event, Move):
            model.move(event.direction)
        elif isinstance(event, Park):
            model.park()
        else:
            return False
        return True


# --------------------------------------------------------------------------- GS-232


class Gs232Twin(RotatorTwin):
    """A Yaesu GS-232 controller: ``C2``/``C``/``B`` answered in whole degrees, ``W``/``M``/
    ``S``/``A``/``E``/``L``/``R``/``U``/``D``/``X1..4`` obeyed silently, unknown commands
    answered ``?>`` (believed, unverified; see gs232.md). ``ack_writes=True`` answers write-only
    commands with a bare CR LF, as some units do."""

    variant: ClassVar[Gs232Variant]

    def __init__(self, *, ack_writes: bool = False, **options: Any) -> None:
        """Create the twin; see :class:`RotatorTwin` for the options."""
        super().__init__(**options)
        self.ack_writes = ack_writes
        self.speed_level = 4

    def new_codec(self) -> Gs232Device:
        """A GS-232 device codec of this variant."""
        return Gs232Device(self.variant)

    def handle(self, codec: Decoder, event: Event) -> Reply | None:
        """Answer like the controller."""
        assert isinstance(codec, Gs232Device)
        here = self.reported_position()
        if isinstance(event, GetPosition):
            return Reply(codec.encode_position(here.az_deg, here.el_deg))
        if isinstance(event, GetAzimuth):
            return Reply(codec.encode_azimuth(here.az_deg))
        if isinstance(event, GetElevation):
            return Reply(codec.encode_elevation(here.el_deg))
        if isinstance(event, UnknownCommand):
            return Reply(codec.encode_error())
        if isinstance(event, Gs232Speed):
            # X1..X4: the azimuth speed in quarters of the full rate.
            self.speed_level = event.level
            self.model.set_rate(Axis.AZ, self.capabilities.az_rate_deg_s * event.level / 4)
        elif not self._move(event):
            return Reply(codec.encode_error())
        return Reply(codec.encode_ack()) if self.ack_writes else None


@register_simulator("rotator", "gs232a")
class Gs232aTwin(Gs232Twin):
    """GS-232A: ``C2`` answered ``+0aaa+0eee`` CR LF."""

    variant = Gs232Variant.A


@register_simulator("rotator", "gs232b")
class Gs232bTwin(Gs232Twin):
    """GS-232B: ``C2`` answered ``AZ=aaa  EL=eee`` CR LF."""

    variant = Gs232Variant.B


# --------------------------------------------------------------------------- EasyComm


class EasycommTwin(RotatorTwin):
    """An EasyComm controller, tenths of a degree. Level II/III answer ``AZ EL`` queries;
    level I answers nothing at all (the protocol has no feedback). Level III also answers
    ``GS`` (1 idle, 2 moving, 8 error) and ``GE`` (2 jam while an axis is stalled), and obeys
    ``VL``/``VR``/``VU``/``VD`` (move at a speed in millidegrees per second). Tokens it does
    not know (``UP000``, ``XXX``, ``RESET``) are ignored, as Hamlib expects."""

    variant: ClassVar[EasycommVariant]
    version: ClassVar[str] = "groundlink-sim-1"

    def new_codec(self) -> EasycommDevice:
        """An EasyComm device codec (one for all levels)."""
        return EasycommDevice()

    def handle(self, codec: Decoder, event: Event) -> Reply | None:
        """Answer like the controller of this level."""
        assert isinstance(codec, EasycommDevice)
        level = self.variant
        if self._move(event):
            return None
        if isinstance(event, SetElevation):
            self.model.command(el_deg=event.el_deg)
            return None
        if level is EasycommVariant.I:
            return None
        here = self.reported_position()
        if isinstance(event, GetPosition):
            return Reply(codec.encode_position(here.az_deg, here.el_deg))
        if isinstance(event, EcGetAzimuth):
            return Reply(codec.encode_azimuth(here.az_deg))
        if isinstance(event, EcGetElevation):
            return Reply(codec.encode_elevation(here.el_deg))
        if isinstance(event, GetVersion):
            return Reply(codec.encode_version(self.version))
        if level is not EasycommVariant.III:
            return None
        stalled = self.model.az.stalled or self.model.el.stalled
        if isinstance(event, GetStatus):
            flags = 8 if stalled else (2 if self.model.moving() else 1)
            return Reply(codec.encode_status(flags))
        if isinstance(event, GetErrorRegister):
            return Reply(codec.encode_error_register(2 if stalled else 0))
        if isinstance(event, Velocity):
            axis = event.direction.axis
            if event.mdeg_per_s == 0:
                self.model.stop(axis)
            else:
                self.model.set_rate(axis, event.mdeg_per_s / 1000.0)
                self.model.move(event.direction)
        return None


@register_simulator("rotator", "easycomm1")
class Easycomm1Twin(EasycommTwin):
    """EasyComm I: set-only."""

    variant = EasycommVariant.I


@register_simulator("rotator", "easycomm2")
class Easycomm2Twin(EasycommTwin):
    """EasyComm II."""

    variant = EasycommVariant.II


@register_simulator("rotator", "easycomm3")
class Easycomm3Twin(EasycommTwin):
    """EasyComm III."""

    variant = EasycommVariant.III


# --------------------------------------------------------------------------- SPID


class SpidTwin(RotatorTwin):
    """A SPID controller. Status and stop are answered with the position (Rot2Prog: tenths of
    a degree plus the PH/PV setting; Rot1Prog: whole degrees, azimuth only); set frames are
    obeyed silently; frames it does not know are ignored (there is no NAK)."""

    variant: ClassVar[SpidVariant]

    def __init__(
        self, *, az_resolution_ph: int = 2, el_resolution_pv: int = 2, **options: Any
    ) -> None:
        """Create the twin; PH/PV is the controller's setting (default 2: half degrees, the
        setting of the Hamlib captures in rot2prog.md)."""
        super().__init__(**options)
        # The codec validates PH/PV (1..255) and names a wrong value.
        SpidDevice(
            self.variant, az_resolution_ph=az_resolution_ph, el_resolution_pv=el_resolution_pv
        )
        self.resolution = (az_resolution_ph, el_resolution_pv)
        if self.variant is SpidVariant.ROT1PROG:
            step_az = step_el = 1.0
        else:
            step_az, step_el = 1.0 / az_resolution_ph, 1.0 / el_resolution_pv
        self.model.capabilities = self.model.capabilities.replace(
            az_resolution_deg=step_az, el_resolution_deg=step_el
        )

    def new_codec(self) -> SpidDevice:
        """A SPID device codec with this controller's resolution."""
        ph, pv = self.resolution
        return SpidDevice(self.variant, az_resolution_ph=ph, el_resolution_pv=pv)

    def _position_frame(self, codec: SpidDevice) -> bytes:
        here = self.reported_position()
        if self.variant is SpidVariant.ROT1PROG:
            return codec.encode_position(here.az_deg)
        return codec.encode_position(here.az_deg, here.el_deg)

    def handle(self, codec: Decoder, event: Event) -> Reply | None:
        """Answer like the controller."""
        assert isinstance(codec, SpidDevice)
        if isinstance(event, GetPosition):
            return Reply(self._position_frame(codec))
        if isinstance(event, Stop):
            self.model.stop()
            return Reply(self._position_frame(codec))
        if self._move(event):
            if self.variant is SpidVariant.MD01 and isinstance(event, SetPosition):
                return Reply(self._position_frame(codec))
            return None
        return None


@register_simulator("rotator", "rot2prog")
class Rot2ProgTwin(SpidTwin):
    """SPID Rot2Prog."""

    variant = SpidVariant.ROT2PROG


@register_simulator("rotator", "rot1prog")
class Rot1ProgTwin(SpidTwin):
    """SPID Rot1Prog (azimuth only)."""

    variant = SpidVariant.ROT1PROG


# --------------------------------------------------------------------------- rotctld


@register_simulator("rotator", "rotctld")
class RotctldTwin(RotatorTwin):
    """A rotator behind rotctld: answers like rotctld 4.5.4 with the dummy backend (two
    decimals, ``RPRT 0``, ``RPRT -1`` for targets outside the limits or bad commands,
    ``\\dump_state`` with this twin's limits, ``q`` hangs up)."""

    transports: ClassVar[frozenset[str]] = frozenset({"loop", "tcp"})
    info: ClassVar[str] = "groundlink rotator simulator"
    hamlib_model: ClassVar[int] = 1

    def __init__(self, **options: Any) -> None:
        """Create the twin; see :class:`RotatorTwin` for the options."""
        super().__init__(**options)
        self.speed = 50

    def new_codec(self) -> RotctldDevice:
        """A rotctld codec for one client connection."""
        return RotctldDevice()

    def handle(self, codec: Decoder, event: Event) -> Reply | None:
        """Answer like rotctld."""
        assert isinstance(codec, RotctldDevice)
        caps = self.capabilities
        if isinstance(event, GetPosition):
            here = self.model.position()
            return Reply(codec.encode_position(here.az_deg, here.el_deg))
        if isinstance(event, SetPosition):
            el = event.el_deg if event.el_deg is not None else caps.el_min_deg
            if not (
                caps.az_min_deg <= event.az_deg <= caps.az_max_deg
                and caps.el_min_deg <= el <= caps.el_max_deg
            ):
                return Reply(codec.encode_error(-1))
            self.model.command(event.az_deg, el)
            return Reply(codec.encode_ok())
        if isinstance(event, Stop | Park):
            self._move(event)
            return Reply(codec.encode_ok())
        if isinstance(event, RotMove):
            self.model.move(event.direction)
            return Reply(codec.encode_ok())
        if isinstance(event, Reset):
            return Reply(codec.encode_ok())
        if isinstance(event, SetLevel):
            self.speed = int(event.value)
            return Reply(codec.encode_ok())
        if isinstance(event, GetLevel):
            return Reply(codec.encode_level(self.speed))
        if isinstance(event, GetInfo):
            return Reply(codec.encode_info(self.info))
        if isinstance(event, DumpState):
            state = RotDumpState(
                protocol_version=1,
                model=self.hamlib_model,
                min_az_deg=caps.az_min_deg,
                max_az_deg=caps.az_max_deg,
                min_el_deg=caps.el_min_deg,
                max_el_deg=caps.el_max_deg,
            )
            return Reply(codec.encode_dump_state(state))
        if isinstance(event, Quit):
            return Reply(codec.encode_quit(), hang_up=True)
        if isinstance(event, UnknownCommand):
            return Reply(codec.encode_error(-1))
        # Anything else rotctld parses (send_cmd ...) is not available on this backend.
        return Reply(codec.encode_error(-11))
