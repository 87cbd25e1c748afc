"""``[daemon]`` settings of the station daemon (pydantic, every field with a default).

The ``[daemon]`` table of the station config (``GroundlinkConfig.daemon``): where the device
lock files go, the shutdown grace period, the TLE refresh and re-plan periods, the health
period, device reconnect backoff, the clock-health limits (``[daemon.clock]``) and the
Prometheus endpoint (``[daemon.metrics]``).

The tracking settings are the top-level ``[tracking]`` table of the config file (operators
look for them there, next to ``[[antennas]]`` and ``[[satellites]]``); the daemon reads them
as ``daemon_config_of(config).tracking``, which :func:`daemon_config_of` fills in. Code that
builds a :class:`DaemonConfig` directly (tests, benchmarks) passes ``tracking=`` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.telemetry.config import is_loopback_host
from controller.tracking.config import TrackingConfig

__all__ = ["ClockHealthConfig", "DaemonConfig", "MetricsConfig", "daemon_config_of"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockHealthConfig(_Model):
    """How far the system clock may be off before an alarm (chrony / timedatectl)."""

    max_offset_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 0.5
    """An offset beyond this raises a critical ``clock-offset`` alarm."""
    check_period_s: Annotated[float, Field(gt=0.0, le=86400.0)] = 300.0
    refuse_transmit: bool = False
    """With an alarm raised, set no uplink frequency (reported in health; no transmitter yet)."""


class MetricsConfig(_Model):
    """``[daemon.metrics]``: Prometheus metrics over HTTP (off unless enabled)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    """Listen address; loopback only unless ``allow_non_loopback`` (put a proxy in front)."""
    port: Annotated[int, Field(ge=0, le=65535)] = 9108
    """TCP port (0: any free port, for tests)."""
    allow_non_loopback: bool = False
    """Explicitly allow a non-loopback ``host``: the endpoint has no authentication."""

    @model_validator(mode="after")
    def _loopback(self) -> MetricsConfig:
        if not self.allow_non_loopback and not is_loopback_host(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address; use 127.0.0.1, ::1 or "
                "localhost, or set allow_non_loopback = true (the endpoint has no "
                "authentication)"
            )
        return self


class DaemonConfig(_Model):
    """Lifecycle settings of ``groundlink run`` / ``groundlink demo``."""

    run_dir: Path | None = None
    """Device lock files live here (None: $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/groundlink, or
    /tmp/groundlink-<uid>)."""
    grace_period_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 150.0
    """SIGTERM: abort, stow, publish offline and exit within this (longer than a stow)."""
    stow_timeout_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 120.0
    """How long to wait for the antennas to reach their stow position."""
    tle_refresh_s: Annotated[float, Field(gt=0.0, le=7 * 86400.0)] = 3600.0
    """Re-read the element files this often (re-plan when they changed)."""
    replan_period_s: Annotated[float, Field(gt=0.0, le=7 * 86400.0)] = 3 * 3600.0
    """Re-plan this often so the plan always reaches ``horizon_h`` ahead."""
    plan_budget_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 20.0
    """Real seconds the optimiser may spend improving a plan."""
    health_period_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 5.0
    reconnect_min_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 1.0
    reconnect_max_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0
    twin_latency_s: Annotated[float, Field(ge=0.0, le=10.0)] = 0.02
    """Reply latency of the simulator twins of ``simulated = true`` devices."""
    clock: ClockHealthConfig = Field(default_factory=ClockHealthConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    """Pointing, Doppler and link-budget settings: the config file's top-level ``[tracking]``
    table, put here by :func:`daemon_config_of` (satellite frequencies come from
    ``[[satellites]]`` when not given there)."""

    @model_validator(mode="after")
    def _ordered(self) -> DaemonConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"reconnect_min_s={self.reconnect_min_s} is above "
                f"reconnect_max_s={self.reconnect_max_s}"
            )
        if self.stow_timeout_s >= self.grace_period_s:
            raise ValueError(
                f"stow_timeout_s={self.stow_timeout_s} must be below "
                f"grace_period_s={self.grace_period_s} (the stow happens inside the grace)"
            )
        return self


def daemon_config_of(config: Any) -> DaemonConfig:
    """The ``[daemon]`` table of a ``GroundlinkConfig`` with its ``[tracking]`` table inside.

    Anything without a ``daemon`` attribute gets the defaults (and without ``tracking``,
    the default tracking settings).
    """
    found = getattr(config, "daemon", None)
    settings = found if isinstance(found, DaemonConfig) else DaemonConfig()
    tracking = getattr(config, "tracking", None)
    if isinstance(tracking, TrackingConfig):
        settings = settings.model_copy(update={"tracking": tracking})
    return settings
