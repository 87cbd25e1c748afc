"""``[daemon]`` settings of the station daemon (pydantic, every field with a default).

These are the knobs :mod:`controller.daemon` needs beyond what ``controller/config.py``
carries: where the device lock files go, the shutdown grace period, the TLE refresh and
re-plan periods, the health period, device reconnect backoff and the clock-health limits.

Until ``GroundlinkConfig`` has a ``daemon: DaemonConfig`` field, :func:`daemon_config_of`
returns the defaults (with ``GROUNDLINK_RUN_DIR`` honoured by the callers in
:mod:`controller.run_cmd` and :mod:`controller.demo`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.tracking.config import TrackingConfig

__all__ = ["ClockHealthConfig", "DaemonConfig", "daemon_config_of"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockHealthConfig(_Model):
    """How far the system clock may be off before an alarm (chrony / timedatectl)."""

    max_offset_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 0.5
    """An offset beyond this raises a critical ``clock-offset`` alarm."""
    check_period_s: Annotated[float, Field(gt=0.0, le=86400.0)] = 300.0
    refuse_transmit: bool = False
    """With an alarm raised, set no uplink frequency (reported in health; no transmitter yet)."""


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
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    """Pointing, Doppler and link-budget settings (satellite frequencies come from
    ``[[satellites]]`` when not given here)."""

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
    """The ``daemon`` table of a ``GroundlinkConfig`` if it has one, else the defaults."""
    found = getattr(config, "daemon", None)
    return found if isinstance(found, DaemonConfig) else DaemonConfig()
