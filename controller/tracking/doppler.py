"""Doppler control per radio channel, transponder-aware, without a dial race (sans-I/O).

Conventions (range rate ``v`` in km/s, positive when the satellite moves away; ``c`` the speed
of light):

* downlink heard on the ground: ``f_ground = f_sat * (1 - v/c)``; the shift is ``-f_sat v/c``
  (receding: lower, approaching: higher);
* uplink to send so that the satellite receives ``f_sat``: ``f_ground = f_sat / (1 - v/c)``
  (receding: higher). This is the exact inverse of the downlink formula, so an uplink
  computed here arrives at the satellite exactly on ``f_sat`` under the same first-order model
  (gpredict's ``f (1 + v/c)`` differs by ``f v^2/c^2``, under 0.1 Hz at 145 MHz).

Satellite-frame frequencies come from the configuration: a downlink the satellite transmits at
``downlink_hz + downlink_offset_hz`` (the offset is the per-satellite calibration, the
measured error of its oscillator), an uplink at ``uplink_hz + uplink_offset_hz``. A linear
transponder maps its uplink passband onto its downlink passband: non-inverting
``down = down_low + (up - up_low)``, inverting ``down = down_high - (up - up_low)``. The
operator works at a place in the passband (``downlink_hz``); the uplink follows from the
mapping, so the frequency at the satellite stays constant through the pass while both ground
frequencies move.

Sending: :meth:`DopplerController.due` returns a frequency only when it differs from the last
one *acknowledged by the radio* by more than the step.

The dial, without a race: gpredict reads the radio back and takes any difference from its last
set value as the operator's knob, so a read that overtakes a set (or a set that lands between
its read and its comparison) looks like a turn of the dial, and the two fight (#62, #235,
#326). Here the caller reads only when no set of its own is in flight (one task does both, in
order), and a reading is compared with the last value the radio acknowledged. A difference
beyond ``dial_tolerance_hz`` is the operator's. With ``dial_policy = "follow"`` it becomes the new
passband offset (computed back to the satellite frame with the range rate at the reading, so
the uplink of a transponder follows it); with ``"ignore"`` the next :meth:`due` simply sends the
Doppler frequency again.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

from controller.tracking.config import DopplerSettings, SatelliteLinkConfig, TransponderConfig

__all__ = [
    "SPEED_OF_LIGHT_KM_S",
    "Channel",
    "DialTurn",
    "DopplerController",
    "DopplerTargets",
    "Transponder",
    "downlink_at_ground_hz",
    "satellite_frame_downlink_hz",
    "satellite_frame_uplink_hz",
    "uplink_at_ground_hz",
]

SPEED_OF_LIGHT_KM_S: Final = 299_792.458
_STEP_FRACTION_OF_BANDWIDTH: Final = 1 / 50


def downlink_at_ground_hz(f_sat_hz: float, range_rate_km_s: float) -> float:
    """The frequency heard on the ground for ``f_sat_hz`` transmitted: ``f (1 - v/c)``."""
    return f_sat_hz * (1.0 - range_rate_km_s / SPEED_OF_LIGHT_KM_S)


def uplink_at_ground_hz(f_sat_hz: float, range_rate_km_s: float) -> float:
    """The frequency to send so the satellite receives ``f_sat_hz``: ``f / (1 - v/c)``."""
    return f_sat_hz / (1.0 - range_rate_km_s / SPEED_OF_LIGHT_KM_S)


def satellite_frame_downlink_hz(f_ground_hz: float, range_rate_km_s: float) -> float:
    """The transmitted frequency that is heard as ``f_ground_hz`` (inverse of the downlink)."""
    return f_ground_hz / (1.0 - range_rate_km_s / SPEED_OF_LIGHT_KM_S)


def satellite_frame_uplink_hz(f_ground_hz: float, range_rate_km_s: float) -> float:
    """The frequency the satellite receives when ``f_ground_hz`` is sent."""
    return f_ground_hz * (1.0 - range_rate_km_s / SPEED_OF_LIGHT_KM_S)


class Channel(enum.StrEnum):
    """A radio channel of a track."""

    DOWNLINK = "downlink"
    UPLINK = "uplink"


@dataclass(frozen=True, slots=True)
class Transponder:
    """A linear transponder's passband mapping (satellite frame)."""

    config: TransponderConfig

    @property
    def inverting(self) -> bool:
        """True if a higher uplink comes down lower."""
        return self.config.kind == "inverting"

    def downlink_for_uplink(self, uplink_hz: float) -> float:
        """Where an uplink at ``uplink_hz`` comes down."""
        c = self.config
        offset = uplink_hz - c.uplink_low_hz
        return c.downlink_high_hz - offset if self.inverting else c.downlink_low_hz + offset

    def uplink_for_downlink(self, downlink_hz: float) -> float:
        """The uplink that comes down at ``downlink_hz``."""
        c = self.config
        if self.inverting:
            return c.uplink_low_hz + (c.downlink_high_hz - downlink_hz)
        return c.uplink_low_hz + (downlink_hz - c.downlink_low_hz)


@dataclass(frozen=True, slots=True)
class DopplerTargets:
    """Ground frequencies for one instant, and the Doppler shifts they contain."""

    downlink_hz: float | None
    uplink_hz: float | None
    downlink_shift_hz: float | None
    uplink_shift_hz: float | None


@dataclass(frozen=True, slots=True)
class DialTurn:
    """The operator turned the dial on ``channel`` from ``expected_hz`` to ``read_hz``."""

    channel: Channel
    expected_hz: int
    read_hz: int
    followed: bool
    """True if it became the new passband offset (policy ``follow``)."""


class DopplerController:
    """Doppler control of one satellite's channels; see the module docstring."""

    def __init__(self, satellite: SatelliteLinkConfig, settings: DopplerSettings) -> None:
        """Prepare the channels the satellite has (downlink, uplink, or both)."""
        self.satellite = satellite
        self.settings = settings
        self.transponder = (
            Transponder(satellite.transponder) if satellite.transponder is not None else None
        )
        if self.transponder is not None and satellite.downlink_hz is None:
            raise ValueError(
                f"satellite {satellite.norad_id}: a transponder needs downlink_hz (where in the "
                "passband to work)"
            )
        self.downlink_shift_hz = 0.0
        """Passband offset from the dial (satellite frame, downlink side)."""
        self.uplink_shift_hz = 0.0
        """Uplink offset from the dial for satellites without a transponder."""
        bandwidth = satellite.bandwidth_hz
        default_step = bandwidth * _STEP_FRACTION_OF_BANDWIDTH
        self.steps_hz = {
            Channel.DOWNLINK: settings.downlink_step_hz or default_step,
            Channel.UPLINK: settings.uplink_step_hz or default_step,
        }
        self._last: dict[Channel, int | None] = {Channel.DOWNLINK: None, Channel.UPLINK: None}

    # -- satellite frame ------------------------------------------------------------------
    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels this satellite has."""
        out: list[Channel] = []
        if self.satellite.downlink_hz is not None:
            out.append(Channel.DOWNLINK)
        if self.transponder is not None or self.satellite.uplink_hz is not None:
            out.append(Channel.UPLINK)
        return tuple(out)

    def downlink_sat_hz(self) -> float | None:
        """What the satellite transmits where we listen (nominal + dial + calibration)."""
        if self.satellite.downlink_hz is None:
            return None
        return (
            self.satellite.downlink_hz + self.downlink_shift_hz + self.satellite.downlink_offset_hz
        )

    def uplink_sat_hz(self) -> float | None:
        """What the satellite must receive (its own frame, calibration included)."""
        sat = self.satellite
        if self.transponder is not None:
            assert sat.downlink_hz is not None
            nominal = self.transponder.uplink_for_downlink(sat.downlink_hz + self.downlink_shift_hz)
            return nominal + sat.uplink_offset_hz
        if sat.uplink_hz is None:
            return None
        return sat.uplink_hz + self.uplink_shift_hz + sat.uplink_offset_hz

    # -- ground frame ---------------------------------------------------------------------
    def targets(self, range_rate_km_s: float) -> DopplerTargets:
        """Ground frequencies for the range rate now."""
        down = self.downlink_sat_hz()
        up = self.uplink_sat_hz()
        down_g = downlink_at_ground_hz(down, range_rate_km_s) if down is not None else None
        up_g = uplink_at_ground_hz(up, range_rate_km_s) if up is not None else None
        return DopplerTargets(
            downlink_hz=down_g,
            uplink_hz=up_g,
            downlink_shift_hz=None if down is None or down_g is None else down_g - down,
            uplink_shift_hz=None if up is None or up_g is None else up_g - up,
        )

    def last_sent(self, channel: Channel) -> int | None:
        """The last frequency the radio acknowledged on ``channel``."""
        return self._last[channel]

    def due(self, channel: Channel, target_hz: float | None) -> int | None:
        """The whole-Hz frequency to send now, or None (no target, or within the step)."""
        if target_hz is None or not math.isfinite(target_hz):
            return None
        last = self._last[channel]
        if last is not None and abs(target_hz - last) <= self.steps_hz[channel]:
            return None
        return round(target_hz)

    def sent(self, channel: Channel, freq_hz: int) -> None:
        """Record what the radio acknowledged (the driver's return value)."""
        self._last[channel] = int(freq_hz)

    def observed(self, channel: Channel, read_hz: int, range_rate_km_s: float) -> DialTurn | None:
        """Check a reading taken with no set in flight; a turn of the dial is handled by policy."""
        last = self._last[channel]
        if last is None or abs(read_hz - last) <= self.settings.dial_tolerance_hz:
            return None
        follow = self.settings.dial_policy == "follow"
        if follow:
            self._follow(channel, read_hz, range_rate_km_s)
        # Either way the radio is on read_hz now: "follow" keeps it (the new offset makes it
        # the target), "ignore" lets the next due() send the Doppler frequency again.
        self._last[channel] = int(read_hz)
        return DialTurn(channel, last, int(read_hz), follow)

    def _follow(self, channel: Channel, read_hz: int, range_rate_km_s: float) -> None:
        sat = self.satellite
        if channel is Channel.DOWNLINK:
            if sat.downlink_hz is None:
                return
            heard_sat = satellite_frame_downlink_hz(read_hz, range_rate_km_s)
            self.downlink_shift_hz = heard_sat - sat.downlink_offset_hz - sat.downlink_hz
            return
        received_sat = satellite_frame_uplink_hz(read_hz, range_rate_km_s) - sat.uplink_offset_hz
        if self.transponder is not None:
            assert sat.downlink_hz is not None
            new_down = self.transponder.downlink_for_uplink(received_sat)
            self.downlink_shift_hz = new_down - sat.downlink_hz
        elif sat.uplink_hz is not None:
            self.uplink_shift_hz = received_sat - sat.uplink_hz
