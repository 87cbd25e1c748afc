"""Settings of the tracking layer: pointing, Doppler and link budget (pydantic, with defaults).

These models are the ``[tracking]`` table of the station config: the link budget of each
satellite (EIRP, bandwidth, required SNR, transponder, frequency calibration), the station's
G/T per antenna, and the tracker's own knobs (deadband as a fraction of the beam, pre-position
margin, idle time before parking, Doppler step and dial policy). Every field has a default, so
a tracker can be built from an :class:`~controller.config.AntennaConfig` alone.

Errors follow the config convention: :func:`load_tracking_config` raises
:class:`~controller.errors.ConfigError` (re-exported by ``controller.config``) naming the
key, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from controller.errors import ConfigError

__all__ = [
    "AntennaLinkConfig",
    "DialPolicy",
    "DopplerSettings",
    "PointingSettings",
    "SatelliteLinkConfig",
    "TrackingConfig",
    "TransponderConfig",
    "load_tracking_config",
]

DialPolicy = Literal["follow", "ignore"]
"""What to do when the operator turns the dial: take it as a new passband offset, or undo it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointingSettings(_Model):
    """How an antenna is pointed; every rate and deadband scales with the beam and the rotator."""

    deadband_beam_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    """The finest deadband, as a fraction of the half-power beamwidth (0.1: 0.12 dB)."""
    command_interval_s: Annotated[float, Field(gt=0.0, le=600.0)] = 30.0
    """The pace of commands when the link allows: the deadband is what the plan moves in half
    this time, so a slow controller gets a new target about this often, not every tick."""
    deadband_margin_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    """With a link budget the deadband never exceeds the pointing error whose pattern loss
    takes this fraction of the link margin at that moment."""
    deadband_max_beam_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.75
    """The deadband never exceeds this fraction of the beamwidth (0.75: 6.75 dB of pattern
    loss, used only when the margin is that large)."""
    deadband_resolution_steps: Annotated[float, Field(ge=1.0, le=10.0)] = 2.0
    """The deadband is never below this many rotator resolution steps (a step it can report)."""
    catch_up_s: Annotated[float, Field(gt=0.0, le=30.0)] = 1.0
    """Also command when an axis lags its plan by more than this much travel time."""
    tick_min_s: Annotated[float, Field(gt=0.0, le=10.0)] = 0.1
    """Fastest control tick (narrow beams, fast passes)."""
    tick_max_s: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    """Slowest control tick (wide beams)."""
    preposition_margin_s: Annotated[float, Field(ge=0.0, le=600.0)] = 10.0
    """Be at the AOS point this long before AOS (on top of the rotator's travel time)."""
    park_after_idle_s: Annotated[float, Field(ge=0.0, le=86400.0)] = 300.0
    """Park when the next pre-position starts more than this long after LOS."""
    safe_az_deg: float | None = None
    """Where to go on a fault (None: the rotator's park position)."""
    safe_el_deg: float | None = None
    readback_period_s: Annotated[float, Field(gt=0.0, le=60.0)] = 1.0
    """How often the rotator position is read during a track (telemetry, stall detection)."""
    signal_period_s: Annotated[float, Field(gt=0.0, le=60.0)] = 1.0
    """How often the S-meter is read during a track (measured SNR)."""
    telemetry_period_s: Annotated[float, Field(gt=0.0, le=10.0)] = 0.25
    """Period of the pointing and link telemetry records during a track."""
    plan_step_s: Annotated[float, Field(gt=0.0, le=10.0)] = 0.5
    """Time step of the pointing plan (and of its evaluation)."""
    latency_initial_s: Annotated[float, Field(ge=0.0, le=10.0)] = 0.05
    """Command latency assumed before the first measurement."""
    latency_smoothing: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2
    """Weight of a new latency measurement in the running average."""

    @model_validator(mode="after")
    def _ticks(self) -> PointingSettings:
        if self.tick_min_s > self.tick_max_s:
            raise ValueError(f"tick_min_s={self.tick_min_s} is above tick_max_s={self.tick_max_s}")
        if (self.safe_az_deg is None) != (self.safe_el_deg is None):
            raise ValueError("safe_az_deg and safe_el_deg go together: give both or neither")
        return self


class AntennaLinkConfig(_Model):
    """The receiving side of an antenna for the link budget."""

    g_over_t_db_k: Annotated[float, Field(ge=-60.0, le=80.0)] = -15.0
    """Station figure of merit G/T at boresight (dB/K)."""
    zenith_atmospheric_loss_db: Annotated[float, Field(ge=0.0, le=20.0)] = 0.1
    """Clear-air loss towards the zenith; grows as 1/sin(el) towards the horizon."""
    pattern_floor_db: Annotated[float, Field(gt=0.0, le=80.0)] = 30.0
    """Largest pattern loss: off the main lobe the sidelobes still receive this much less."""


class TransponderConfig(_Model):
    """A linear transponder: an uplink passband mapped onto a downlink passband."""

    kind: Literal["inverting", "non_inverting"]
    uplink_low_hz: Annotated[float, Field(gt=0.0)]
    uplink_high_hz: Annotated[float, Field(gt=0.0)]
    downlink_low_hz: Annotated[float, Field(gt=0.0)]
    downlink_high_hz: Annotated[float, Field(gt=0.0)]

    @model_validator(mode="after")
    def _passbands(self) -> TransponderConfig:
        up = self.uplink_high_hz - self.uplink_low_hz
        down = self.downlink_high_hz - self.downlink_low_hz
        if up <= 0 or down <= 0:
            raise ValueError(
                f"passbands must have low < high: uplink {self.uplink_low_hz}.."
                f"{self.uplink_high_hz} Hz, downlink {self.downlink_low_hz}.."
                f"{self.downlink_high_hz} Hz"
            )
        if abs(up - down) > 1.0:
            raise ValueError(
                f"a linear transponder has passbands of equal width; uplink is {up} Hz wide, "
                f"downlink {down} Hz"
            )
        return self


class SatelliteLinkConfig(_Model):
    """Link budget, frequencies and Doppler calibration of one satellite."""

    norad_id: Annotated[int, Field(ge=1, le=339999)]
    downlink_hz: Annotated[float, Field(gt=0.0)] | None = None
    """Downlink frequency at the satellite (for a transponder: where in the passband we work)."""
    uplink_hz: Annotated[float, Field(gt=0.0)] | None = None
    """Uplink frequency at the satellite (for a transponder it follows from the downlink)."""
    eirp_dbw: Annotated[float, Field(ge=-60.0, le=80.0)] = 0.0
    bandwidth_hz: Annotated[float, Field(gt=0.0, le=1e9)] = 15_000.0
    """Receiver filter (= noise) bandwidth of this link."""
    required_snr_db: Annotated[float, Field(ge=-30.0, le=60.0)] = 10.0
    """SNR at which the link counts as available (lock)."""
    transponder: TransponderConfig | None = None
    downlink_offset_hz: Annotated[float, Field(ge=-1e6, le=1e6)] = 0.0
    """Calibration: the satellite's measured downlink error (transmits nominal + this)."""
    uplink_offset_hz: Annotated[float, Field(ge=-1e6, le=1e6)] = 0.0
    """Calibration: the satellite's measured uplink (receiver/translator) error."""

    @model_validator(mode="after")
    def _transponder(self) -> SatelliteLinkConfig:
        tp = self.transponder
        if tp is not None and self.downlink_hz is not None:
            lo, hi = tp.downlink_low_hz, tp.downlink_high_hz
            if not lo <= self.downlink_hz <= hi:
                raise ValueError(
                    f"downlink_hz={self.downlink_hz} is outside the transponder's downlink "
                    f"passband {lo}..{hi} Hz"
                )
        return self


class DopplerSettings(_Model):
    """When frequencies are sent and what the operator's dial means."""

    downlink_step_hz: Annotated[float, Field(gt=0.0, le=1e6)] | None = None
    """Send a new downlink frequency only when it moved more than this (None: bandwidth/50)."""
    uplink_step_hz: Annotated[float, Field(gt=0.0, le=1e6)] | None = None
    """Same for the uplink (None: bandwidth/50)."""
    dial_policy: DialPolicy = "follow"
    dial_tolerance_hz: Annotated[float, Field(ge=0.0, le=1e5)] = 5.0
    """A read-back differing from what we set by more than this is the operator's dial."""
    poll_period_s: Annotated[float, Field(gt=0.0, le=60.0)] = 0.5
    """How often the Doppler is recomputed during a track."""
    dial_check_period_s: Annotated[float, Field(gt=0.0, le=600.0)] = 2.0
    """How often the radio's frequencies are read back to notice the operator's dial."""


NORAD_ID_MAX = 339999
"""Largest catalogue number a TLE's five characters can carry (Alpha-5 'Z9999')."""


def expand_norad_ranges(
    entries: Any, where: str, model: type[BaseModel], labels: list[str] | None = None
) -> Any:
    """Expand entries with ``norad_ids = [first, last]`` into one entry per catalogue number.

    Why: a constellation layer has hundreds of satellites sharing a band and a link budget;
    one entry for the layer beats hundreds of copies. An entry with a single ``norad_id``
    overrides the range for that satellite, wherever it stands. The range entry itself is
    validated once (as ``model``), so a bad value is reported once, at the range's own
    index, not once per satellite. Malformed lists are left for the schema to report.
    When the list has ranges, single entries are validated here too, so that every error
    names the entry's index in the file (the expanded list's indices differ).

    ``labels`` (if given) receives one label per returned entry naming where it came from
    in the file, e.g. ``satellites[2]`` or ``satellites[0] (norad_ids 80001..80144)``.
    """
    if not isinstance(entries, list):
        return entries
    if not any(isinstance(e, dict) and "norad_ids" in e for e in entries):
        if labels is not None:
            labels.extend(f"{where}[{i}]" for i in range(len(entries)))
        return entries
    singles = {e.get("norad_id") for e in entries if isinstance(e, dict) and "norad_ids" not in e}
    claimed: dict[int, int] = {}
    out: list[Any] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "norad_ids" not in entry:
            _check_entry(model, entry, f"{where}[{i}]")
            out.append(entry)
            if labels is not None:
                labels.append(f"{where}[{i}]")
            continue
        ids = entry["norad_ids"]
        if "norad_id" in entry:
            raise ValueError(f"{where}[{i}]: give norad_id or norad_ids = [first, last], not both")
        if not (
            isinstance(ids, list)
            and len(ids) == 2
            and all(type(n) is int for n in ids)
            and 1 <= ids[0] <= ids[1] <= NORAD_ID_MAX
        ):
            raise ValueError(
                f"{where}[{i}].norad_ids = {ids!r}: expected [first, last], whole numbers "
                f"with 1 <= first <= last <= {NORAD_ID_MAX}"
            )
        template = {k: v for k, v in entry.items() if k != "norad_ids"}
        label = f"{where}[{i}] (norad_ids {ids[0]}..{ids[1]})"
        _check_entry(model, {**template, "norad_id": ids[0]}, label)
        for norad_id in range(ids[0], ids[1] + 1):
            if norad_id in claimed:
                raise ValueError(
                    f"{where}[{i}].norad_ids: NORAD {norad_id} is also in "
                    f"{where}[{claimed[norad_id]}].norad_ids; ranges must not overlap"
                )
            claimed[norad_id] = i
            if norad_id not in singles:
                out.append({**template, "norad_id": norad_id})
                if labels is not None:
                    labels.append(label)
    return out


def _check_entry(model: type[BaseModel], entry: Any, label: str) -> None:
    """Validate one entry as ``model``; ValueError naming ``label``, each key, value, rule."""
    try:
        model.model_validate(entry)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(entry)'} = {err.get('input')!r}: "
            f"{err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"{label}: {problems}") from None


class TrackingConfig(_Model):
    """All tracking settings of a station."""

    pointing: PointingSettings = Field(default_factory=PointingSettings)
    doppler: DopplerSettings = Field(default_factory=DopplerSettings)
    antennas: dict[str, AntennaLinkConfig] = Field(default_factory=dict)
    """Per antenna id; antennas not listed use the defaults."""
    satellites: list[SatelliteLinkConfig] = Field(default_factory=list)
    """Per satellite (``norad_id``) or per range of them (``norad_ids = [first, last]``)."""

    @model_validator(mode="before")
    @classmethod
    def _ranges(cls, data: Any) -> Any:
        if isinstance(data, dict) and "satellites" in data:
            sats = expand_norad_ranges(data["satellites"], "satellites", SatelliteLinkConfig)
            return {**data, "satellites": sats}
        return data

    @model_validator(mode="after")
    def _unique(self) -> TrackingConfig:
        ids = [s.norad_id for s in self.satellites]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"satellites: norad_id repeated: {dup}")
        return self

    def antenna(self, antenna_id: str) -> AntennaLinkConfig:
        """The link settings of an antenna (defaults if not configured)."""
        return self.antennas.get(antenna_id, AntennaLinkConfig())

    def satellite(self, norad_id: int) -> SatelliteLinkConfig:
        """The link settings of a satellite (defaults if not configured)."""
        for sat in self.satellites:
            if sat.norad_id == norad_id:
                return sat
        return SatelliteLinkConfig(norad_id=norad_id)


def load_tracking_config(data: Mapping[str, Any], *, source: str = "tracking") -> TrackingConfig:
    """Validate a ``[tracking]`` table; ConfigError names every bad key, value and limit."""
    try:
        return TrackingConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f" = {value!r}"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling)"
            problems.append(f"{key}{shown}: {msg}")
        raise ConfigError(source, problems) from exc
