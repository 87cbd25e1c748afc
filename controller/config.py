"""Station configuration: pydantic models loaded from TOML with precise errors.

Every problem names the file, the key (dotted path), the value and what is allowed.
Relative paths inside a config file are resolved against the file's directory.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.orbit.mask import HorizonMask, MaskError
from controller.orbit.predictor import Station
from controller.telemetry.config import MqttConfig

__all__ = [
    "AntennaConfig",
    "CatalogConfig",
    "ConfigError",
    "GroundlinkConfig",
    "RadioConfig",
    "ReservationConfig",
    "RotatorConfig",
    "SatelliteConfig",
    "SchedulerConfig",
    "SiteConfig",
    "StationConfig",
    "WindowConfig",
    "load_config",
    "load_station_list",
]


class ConfigError(ValueError):
    """A configuration that cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Model):
    """Where the antennas are (WGS-84) and what the horizon hides."""

    lat_deg: Annotated[float, Field(ge=-90.0, le=90.0)]
    lon_deg: Annotated[float, Field(ge=-180.0, le=180.0)]
    alt_m: Annotated[float, Field(ge=-500.0, le=9000.0)] = 0.0
    horizon_mask: list[tuple[float, float]] = Field(default_factory=lambda: [(0.0, 0.0)])

    @field_validator("horizon_mask")
    @classmethod
    def _mask_ok(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        try:
            HorizonMask.from_pairs(value)
        except MaskError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @property
    def mask(self) -> HorizonMask:
        """The horizon mask object."""
        return HorizonMask.from_pairs(self.horizon_mask)


class StationConfig(_Model):
    """One ground station."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: str = ""
    country: str = ""
    site: SiteConfig

    def station(self) -> Station:
        """The predictor's view of this station."""
        return Station(
            lat_deg=self.site.lat_deg,
            lon_deg=self.site.lon_deg,
            alt_m=self.site.alt_m,
            mask=self.site.mask,
            station_id=self.id,
        )


class CatalogConfig(_Model):
    """Where the orbital elements come from."""

    tle_files: list[Path] = Field(default_factory=list)
    stale_after_days: Annotated[float, Field(gt=0.0, le=365.0)] = 14.0


class WindowConfig(_Model):
    """A time window (aware UTC datetimes in TOML, e.g. 2026-11-27T08:00:00Z)."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> WindowConfig:
        if self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} is not after start {self.start.isoformat()}"
            )
        return self


class RotatorConfig(_Model):
    """A rotator: which driver, where, and what the mechanics can do."""

    driver: str
    url: str = ""
    simulated: bool = False
    az_min_deg: float = 0.0
    az_max_deg: float = 360.0
    el_min_deg: float = 0.0
    el_max_deg: float = 90.0
    slew_az_deg_s: Annotated[float, Field(gt=0.0, le=90.0)] = 5.0
    slew_el_deg_s: Annotated[float, Field(gt=0.0, le=90.0)] = 5.0
    accel_az_deg_s2: Annotated[float, Field(gt=0.0, le=360.0)] = 10.0
    accel_el_deg_s2: Annotated[float, Field(gt=0.0, le=360.0)] = 10.0
    park_az_deg: float = 0.0
    park_el_deg: float = 90.0

    @model_validator(mode="after")
    def _limits(self) -> RotatorConfig:
        if not -360.0 <= self.az_min_deg < self.az_max_deg <= 720.0:
            raise ValueError(
                f"az range {self.az_min_deg}..{self.az_max_deg} deg: need "
                "-360 <= az_min_deg < az_max_deg <= 720"
            )
        if self.az_max_deg - self.az_min_deg < 360.0:
            raise ValueError(
                f"az range {self.az_min_deg}..{self.az_max_deg} deg covers less than 360 deg"
            )
        if not -10.0 <= self.el_min_deg < self.el_max_deg <= 180.0:
            raise ValueError(
                f"el range {self.el_min_deg}..{self.el_max_deg} deg: need "
                "-10 <= el_min_deg < el_max_deg <= 180"
            )
        if not self.az_min_deg <= self.park_az_deg <= self.az_max_deg:
            raise ValueError(f"park_az_deg {self.park_az_deg} is outside the az range")
        if not self.el_min_deg <= self.park_el_deg <= self.el_max_deg:
            raise ValueError(f"park_el_deg {self.park_el_deg} is outside the el range")
        return self


class AntennaConfig(_Model):
    """An antenna on a rotator."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    beamwidth_deg: Annotated[float, Field(gt=0.0, le=180.0)] = 10.0
    bands_hz: list[tuple[float, float]] = Field(default_factory=lambda: [(1.0, 1e12)])
    min_el_deg: Annotated[float, Field(ge=-10.0, le=90.0)] = 0.0
    unavailable: list[WindowConfig] = Field(default_factory=list)
    rotator: RotatorConfig


class RadioConfig(_Model):
    """A radio (rig) and the antenna it is connected to."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    driver: str
    url: str = ""
    simulated: bool = False
    antenna: str


class SatelliteConfig(_Model):
    """What the station wants from one satellite."""

    norad_id: Annotated[int, Field(ge=1, le=339999)]
    weight: Annotated[float, Field(ge=0.0, le=1000.0)] = 1.0
    min_contact_s: Annotated[float, Field(ge=0.0, le=86400.0)] = 60.0
    min_el_deg: Annotated[float, Field(ge=-10.0, le=90.0)] = 0.0
    max_contacts_per_day: Annotated[int, Field(ge=1)] | None = None
    required_contacts_per_day: Annotated[int, Field(ge=0)] = 0
    downlink_hz: Annotated[float, Field(gt=0.0)] | None = None
    uplink_hz: Annotated[float, Field(gt=0.0)] | None = None


class ReservationConfig(_Model):
    """A fixed track booked by an operator."""

    antenna: str
    norad_id: Annotated[int, Field(ge=1, le=339999)]
    start: AwareDatetime
    end: AwareDatetime


class SchedulerConfig(_Model):
    """Scheduling policy and set-up times."""

    policy: Literal["optimal", "greedy"] = "optimal"
    horizon_h: Annotated[float, Field(gt=0.0, le=24.0 * 31)] = 24.0
    pre_pass_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 30.0
    post_pass_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 10.0
    resolution_s: Annotated[float, Field(gt=0.0, le=600.0)] = 10.0
    one_antenna_per_satellite: bool = True
    default_weight: Annotated[float, Field(ge=0.0)] = 1.0
    reservations: list[ReservationConfig] = Field(default_factory=list)


class GroundlinkConfig(_Model):
    """The whole configuration file."""

    station: StationConfig
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    antennas: list[AntennaConfig] = Field(default_factory=list)
    radios: list[RadioConfig] = Field(default_factory=list)
    satellites: list[SatelliteConfig] = Field(default_factory=list)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)

    @model_validator(mode="after")
    def _references(self) -> GroundlinkConfig:
        ids = [a.id for a in self.antennas]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"antenna ids must be unique; repeated: {', '.join(dup)}")
        for radio in self.radios:
            if radio.antenna not in ids:
                raise ValueError(
                    f"radio {radio.id!r}: antenna {radio.antenna!r} is not one of {ids}"
                )
        for res in self.scheduler.reservations:
            if res.antenna not in ids:
                raise ValueError(
                    f"scheduler.reservations: antenna {res.antenna!r} is not one of {ids}"
                )
        return self


def _describe(errors: ValidationError) -> list[str]:
    out = []
    for err in errors.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against the example configs)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        out.append(f"{key}{shown}: {msg}")
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(str(path), ["file not found"]) from exc
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from exc


def load_config(path: Path) -> GroundlinkConfig:
    """Load and validate a groundlink TOML config; raise ConfigError listing every problem."""
    data = _read_toml(path)
    try:
        cfg = GroundlinkConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), _describe(exc)) from exc
    base = path.parent
    tle = [p if p.is_absolute() else (base / p) for p in cfg.catalog.tle_files]
    missing = [f"catalog.tle_files = {str(p)!r}: file not found" for p in tle if not p.is_file()]
    if missing:
        raise ConfigError(str(path), missing)
    return cfg.model_copy(
        update={
            "catalog": cfg.catalog.model_copy(update={"tle_files": tle}),
            "mqtt": cfg.mqtt.resolve_paths(base),
        }
    )


def load_station_list(path: Path) -> list[StationConfig]:
    """Load a list of stations (``[[station]]`` tables, as in ``seeds/stations.toml``)."""
    data = _read_toml(path)
    raw = data.get("station")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(str(path), ["station: expected one or more [[station]] tables"])
    stations: list[StationConfig] = []
    problems: list[str] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            problems.append(f"station[{i}]: expected a table")
            continue
        site_keys = {"lat_deg", "lon_deg", "alt_m", "horizon_mask"}
        shaped = {k: v for k, v in entry.items() if k not in site_keys}
        shaped["site"] = {k: v for k, v in entry.items() if k in site_keys}
        try:
            stations.append(StationConfig.model_validate(shaped))
        except ValidationError as exc:
            problems.extend(f"station[{i}].{p}" for p in _describe(exc))
    if problems:
        raise ConfigError(str(path), problems)
    return stations
