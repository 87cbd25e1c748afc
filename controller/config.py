"""Station configuration: pydantic models loaded from TOML with precise errors.

Every problem names the file, the key (dotted path), the value and what is allowed.
Relative paths inside a config file are resolved against the file's directory.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.orbit.mask import HorizonMask, MaskError
from controller.orbit.predictor import Station

__all__ = [
    "CatalogConfig",
    "ConfigError",
    "GroundlinkConfig",
    "SiteConfig",
    "StationConfig",
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


class GroundlinkConfig(_Model):
    """The whole configuration file."""

    station: StationConfig
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)


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
    return cfg.model_copy(update={"catalog": cfg.catalog.model_copy(update={"tle_files": tle})})


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
