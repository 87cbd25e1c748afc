"""Station configuration: pydantic models loaded from TOML with precise errors.

Every problem names the file, the key (dotted path), the value and what is allowed.
Relative paths inside a config file are resolved against the file's directory.

Tables: ``[station]``, ``[catalog]``, ``[[antennas]]``, ``[[radios]]``, ``[[satellites]]``,
``[scheduler]``, ``[mqtt]``, ``[tracking]`` (pointing, Doppler, link budget:
:mod:`controller.tracking.config`) and ``[daemon]`` (lifecycle, ``[daemon.clock]``,
``[daemon.metrics]``: :mod:`controller.daemon_config`).

Environment overrides: ``GROUNDLINK__<TABLE>__<KEY>=value`` sets one key after the file is
read, ``__`` separating the levels and a number indexing an array of tables, e.g.
``GROUNDLINK__MQTT__BROKER=mqtts://broker.example.org:8883``,
``GROUNDLINK__MQTT__USERNAME=gs1``, ``GROUNDLINK__DAEMON__METRICS__ENABLED=true`` or
``GROUNDLINK__ANTENNAS__0__ROTATOR__URL=serial:///dev/ttyUSB1?baud=9600``. For a key that is
an array or table in the schema the value is read as a TOML array or inline table; for any
other key it is a string that the schema converts (``9108`` to an int, ``true`` to a bool),
even when it starts with ``[`` or ``{``. Problems with an overridden key name the variable;
the value is shown unless the key's name contains password, secret, token or key (paths
such as ``key_file`` are shown).
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.daemon_config import DaemonConfig
from controller.errors import ConfigError
from controller.orbit.mask import HorizonMask, MaskError
from controller.orbit.predictor import Station
from controller.telemetry.config import MqttConfig
from controller.tracking.config import SatelliteLinkConfig, TrackingConfig, expand_norad_ranges

__all__ = [
    "ENV_PREFIX",
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
    "apply_env_overrides",
    "load_config",
    "load_station_list",
]


ENV_PREFIX = "GROUNDLINK__"
"""Environment variables starting with this override config keys (see the module doc)."""


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


_URL_SCHEMES = ("http", "https", "file")


class CatalogConfig(_Model):
    """Where the orbital elements come from: local files, and sources fetched into a cache."""

    tle_files: list[Path] = Field(default_factory=list)
    """TLE/OMM files read as they are (relative to the config file)."""
    urls: list[str] = Field(default_factory=list)
    """``https://``, ``http://``, ``file://`` URLs or paths, fetched every
    ``daemon.tle_refresh_s`` into ``cache_dir``; the last good copy is used when a fetch
    fails or returns no usable element sets (:mod:`controller.orbit.refresh`)."""
    cache_dir: Path | None = None
    """Where fetched copies are kept over restarts (None: $STATE_DIRECTORY/tle,
    $XDG_STATE_HOME/groundlink/tle or ~/.local/state/groundlink/tle)."""
    fetch_timeout_s: Annotated[float, Field(gt=0.0, le=600.0)] = 30.0
    """Whole-fetch deadline per source (connect, headers and body)."""
    max_bytes: Annotated[int, Field(ge=1024, le=1_000_000_000)] = 20_000_000
    """A larger body is refused (the last good copy is kept)."""
    fetch_stale_after_h: Annotated[float, Field(gt=0.0, le=24.0 * 365)] = 48.0
    """Alarm when a source has not been fetched successfully for this long."""
    stale_after_days: Annotated[float, Field(gt=0.0, le=365.0)] = 14.0
    """An element set with an epoch older than this raises a staleness warning."""

    @field_validator("urls")
    @classmethod
    def _urls_ok(cls, value: list[str]) -> list[str]:
        for url in value:
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018 -- reading it validates the port number
            except ValueError as exc:
                raise ValueError(f"{url!r} is not a valid URL: {exc}") from exc
            scheme = parts.scheme.lower()
            if scheme in ("http", "https"):
                if not parts.hostname:
                    raise ValueError(f"{url!r}: a host is required")
                if parts.username is not None or parts.password is not None:
                    raise ValueError(f"{url!r}: no credentials in the URL")
            elif scheme == "file":
                if not parts.path or parts.netloc not in ("", "localhost"):
                    raise ValueError(f"{url!r}: use file:///absolute/path")
            elif scheme or not url.strip():
                raise ValueError(
                    f"{url!r}: use {', '.join(s + '://' for s in _URL_SCHEMES)} or a file path"
                )
        repeated = sorted({u for u in value if value.count(u) > 1})
        if repeated:
            raise ValueError(f"sources must be unique; repeated: {', '.join(repeated)}")
        return value


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
    """What the station wants from one satellite (in the file: or from a range of them)."""

    norad_id: Annotated[int, Field(ge=1, le=339999)]
    weight: Annotated[float, Field(ge=0.0, le=1000.0)] = 1.0
    min_contact_s: Annotated[float, Field(ge=0.0, le=86400.0)] = 60.0
    min_el_deg: Annotated[float, Field(ge=-10.0, le=90.0)] = 0.0
    max_contacts_per_day: Annotated[int, Field(ge=1)] | None = None
    required_contacts_per_day: Annotated[int, Field(ge=0)] = 0
    downlink_hz: Annotated[float, Field(gt=0.0)] | None = None
    uplink_hz: Annotated[float, Field(gt=0.0)] | None = None
    _entry: str | None = PrivateAttr(default=None)

    @property
    def entry(self) -> str | None:
        """Where this entry stands in the file (e.g. ``satellites[0] (norad_ids 1..9)``)."""
        return self._entry


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
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)

    @model_validator(mode="wrap")
    @classmethod
    def _file_layout(cls, data: Any, handler: ModelWrapValidatorHandler[GroundlinkConfig]) -> Any:
        # DaemonConfig carries the tracking settings for the daemon, but the file keeps them
        # in one place only: the top-level [tracking] table.
        if not isinstance(data, dict):
            return handler(data)
        daemon = data.get("daemon")
        if isinstance(daemon, dict) and "tracking" in daemon:
            raise ValueError(
                "daemon.tracking: the tracking settings go in the top-level [tracking] table "
                "(e.g. [tracking.pointing], [[tracking.satellites]]), not under [daemon]"
            )
        data = dict(data)
        labels: list[str] = []
        if "satellites" in data:
            data["satellites"] = expand_norad_ranges(
                data["satellites"], "satellites", SatelliteConfig, labels
            )
        tracking = data.get("tracking")
        if isinstance(tracking, dict) and "satellites" in tracking:
            links = expand_norad_ranges(
                tracking["satellites"], "tracking.satellites", SatelliteLinkConfig
            )
            data["tracking"] = {**tracking, "satellites": links}
        model = handler(_with_satellite_frequencies(data))
        # Where each (possibly range-expanded) entry stands in the file, for later errors.
        for sat, label in zip(model.satellites, labels, strict=False):
            sat._entry = label
        return model

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
        unknown = sorted(set(self.tracking.antennas) - set(ids))
        if unknown:
            raise ValueError(
                f"tracking.antennas: {', '.join(unknown)} not among the antenna ids {ids}"
            )
        for i, sat in enumerate(self.satellites):
            link = next((t for t in self.tracking.satellites if t.norad_id == sat.norad_id), None)
            if link is None:
                continue
            for name in ("downlink_hz", "uplink_hz"):
                mine, theirs = getattr(sat, name), getattr(link, name)
                if mine is not None and theirs is not None and mine != theirs:
                    raise ValueError(
                        f"satellites[{i}].{name} = {mine} differs from tracking.satellites "
                        f"(NORAD {sat.norad_id}) {name} = {theirs}; give it in one place"
                    )
        return self


def _with_satellite_frequencies(data: dict[str, Any]) -> dict[str, Any]:
    """Copy ``[[satellites]]`` frequencies into ``[[tracking.satellites]]`` entries lacking them.

    The tracker takes a satellite's frequencies from its ``tracking.satellites`` entry when
    there is one; without this, adding a link budget there would silently drop the
    frequencies given in ``[[satellites]]``. Malformed input is left for the schema to report.
    """
    tracking = data.get("tracking")
    satellites = data.get("satellites")
    if not isinstance(tracking, dict) or not isinstance(satellites, list):
        return data
    links = tracking.get("satellites")
    if not isinstance(links, list):
        return data
    given = {s.get("norad_id"): s for s in satellites if isinstance(s, dict)}
    merged = []
    for link in links:
        sat = given.get(link.get("norad_id")) if isinstance(link, dict) else None
        if isinstance(link, dict) and sat is not None:
            extra = {
                k: sat[k] for k in ("downlink_hz", "uplink_hz") if k in sat and link.get(k) is None
            }
            link = {**link, **extra}
        merged.append(link)
    return {**data, "tracking": {**tracking, "satellites": merged}}


def _describe(errors: ValidationError, origins: Mapping[str, str] | None = None) -> list[str]:
    """One line per error: dotted key, value, rule; and the variables that set the key."""
    out = []
    for err in errors.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" = {_shown(key, value)}"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against the example configs)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        via = _origins_of(key, origins or {})
        out.append(f"{key}{shown}{via}: {msg}")
    return out


def _origins_of(key: str, origins: Mapping[str, str]) -> str:
    names = [
        var
        for where, var in sorted(origins.items())
        if key == "(top level)" or where == key or where.startswith(key + ".")
    ]
    return f" (set by ${', $'.join(names)})" if names else ""


_SENSITIVE_WORDS = ("password", "secret", "token", "key")
_REDACTED = "<redacted>"


def _sensitive(key: str) -> bool:
    """True when the last level of a dotted key (or a variable name) may name a secret."""
    last = key.lower().replace("__", ".").rsplit(".", 1)[-1]
    if last.endswith(("_file", "_path", "_dir")):
        # A path to a secret (password_file, key_file) is not itself secret, and the
        # operator needs to see which path was wrong.
        return False
    return any(word in last for word in _SENSITIVE_WORDS)


def _shown(key: str, value: object) -> str:
    """``repr(value)`` for an error message, or a placeholder when the key may be a secret."""
    return _REDACTED if _sensitive(key) else repr(value)


_Kind = Literal["table", "scalar", "unknown"]


def _kind_of(annotation: Any) -> _Kind:
    """Whether a schema type is an array/table, a plain value, or both/neither."""
    if get_origin(annotation) is Annotated:
        return _kind_of(get_args(annotation)[0])
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        kinds = {_kind_of(a) for a in get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else "unknown"
    if origin in (list, tuple, dict, set, frozenset) or annotation in (list, tuple, dict):
        return "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if annotation is Any:
        return "unknown"
    return "scalar"


def _child_types(annotation: Any, part: str) -> list[Any]:
    """The schema types one level below ``annotation`` at key/index ``part`` (may be empty)."""
    if get_origin(annotation) is Annotated:
        return _child_types(get_args(annotation)[0], part)
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (Union, UnionType):
        return [t for a in args if a is not type(None) for t in _child_types(a, part)]
    if origin is list and args and part.isdigit():
        return [args[0]]
    if origin is tuple and args and part.isdigit():
        index = int(part)
        if len(args) == 2 and args[1] is Ellipsis:
            return [args[0]]
        return [args[index]] if index < len(args) else []
    if origin is dict and len(args) == 2:
        return [args[1]]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part)
        return [field.annotation] if field is not None else []
    return []


def _target_kind(parts: list[str]) -> _Kind:
    """What the schema expects at the dotted key ``parts`` ("unknown": not in the schema)."""
    types: list[Any] = [GroundlinkConfig]
    for part in parts:
        types = [t for a in types for t in _child_types(a, part)]
        if not types:
            return "unknown"
    kinds = {_kind_of(t) for t in types}
    return kinds.pop() if len(kinds) == 1 else "unknown"


def _env_value(raw: str, kind: _Kind) -> Any:
    """The value of an override: TOML for an array/table key, the string for a plain value.

    A key the schema does not know (or that may be either) is read as TOML when it looks like
    an array or table and parses, else kept as the string for the schema to judge.
    """
    if kind == "scalar" or not raw.lstrip().startswith(("[", "{")):
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if kind == "unknown":
            return raw
        raise ValueError(f"not a TOML array or inline table: {exc}") from exc


def apply_env_overrides(
    data: Mapping[str, Any], env: Mapping[str, str], *, source: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """``data`` with every ``GROUNDLINK__...`` variable applied, and key -> variable name.

    Raise ConfigError naming each variable that cannot be applied (bad index, a value
    where a table is needed).
    """
    out: dict[str, Any] = copy.deepcopy(dict(data))
    origins: dict[str, str] = {}
    problems: list[str] = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if not all(parts):
            problems.append(
                f"${name}: empty key level; use {ENV_PREFIX}TABLE__KEY "
                f"(e.g. {ENV_PREFIX}MQTT__BROKER)"
            )
            continue
        try:
            value = _env_value(env[name], _target_kind(parts))
        except ValueError as exc:
            problems.append(f"${name} = {_shown(name, env[name])}: {exc}")
            continue
        node: Any = out
        for depth, part in enumerate(parts):
            where = ".".join(parts[:depth]) or "(top level)"
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    problems.append(
                        f"${name}: {where} has {len(node)} entries; {part!r} is not an index "
                        f"0..{len(node) - 1}"
                    )
                    break
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    child = node.setdefault(part, {})
                    node = child
            else:
                problems.append(f"${name}: {where} is a value, not a table")
                break
        else:
            origins[".".join(parts)] = name
    if problems:
        raise ConfigError(source, problems)
    return out, origins


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


def _resolve_source(base: Path, url: str) -> str:
    """A plain relative path becomes absolute against ``base``; URLs stay as they are."""
    if urlsplit(url).scheme:
        return url
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else base / path)


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> GroundlinkConfig:
    """Load and validate a groundlink TOML config; raise ConfigError listing every problem.

    ``env`` (default: the process environment) supplies the ``GROUNDLINK__...`` overrides.
    Device paths and TLS files are not opened here: a config for another machine loads.
    """
    data = _read_toml(path)
    data, origins = apply_env_overrides(data, os.environ if env is None else env, source=str(path))
    try:
        cfg = GroundlinkConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), _describe(exc, origins)) from exc
    base = path.parent
    tle = [p if p.is_absolute() else (base / p) for p in cfg.catalog.tle_files]
    missing = [f"catalog.tle_files = {str(p)!r}: file not found" for p in tle if not p.is_file()]
    if missing:
        raise ConfigError(str(path), missing)
    cache_dir = cfg.catalog.cache_dir
    if cache_dir is not None and not cache_dir.is_absolute():
        cache_dir = base / cache_dir
    run_dir = cfg.daemon.run_dir
    if run_dir is not None and not run_dir.is_absolute():
        run_dir = base / run_dir
    return cfg.model_copy(
        update={
            "catalog": cfg.catalog.model_copy(
                update={
                    "tle_files": tle,
                    "urls": [_resolve_source(base, u) for u in cfg.catalog.urls],
                    "cache_dir": cache_dir,
                }
            ),
            "mqtt": cfg.mqtt.resolve_paths(base),
            "daemon": cfg.daemon.model_copy(update={"run_dir": run_dir}),
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
