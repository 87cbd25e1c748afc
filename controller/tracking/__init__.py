"""Tracking: pointing plans, Doppler control, the link model, the tracker and its benchmark.

* :mod:`~controller.tracking.pointing` -- plans from the whole pass and the rotator's real
  dynamics (wrap variants, flip, optimised keyhole/stop paths), pre-position, deadband;
* :mod:`~controller.tracking.doppler` -- per-channel Doppler, linear transponders, calibration,
  send-on-step, the operator's dial without a race;
* :mod:`~controller.tracking.link` -- losses, C/N0 and SNR, and the simulated S-meter;
* :mod:`~controller.tracking.tracker` -- one tracker per antenna on the injected clock;
* :mod:`~controller.tracking.baselines` -- gpredict-like and SatNOGS-like policies;
* :mod:`~controller.tracking.closed_loop` -- runs against the simulators, and metrics.
"""

from __future__ import annotations

from controller.tracking.config import (
    AntennaLinkConfig,
    DopplerSettings,
    PointingSettings,
    SatelliteLinkConfig,
    TrackingConfig,
    TransponderConfig,
    load_tracking_config,
)
from controller.tracking.doppler import Channel, DialTurn, DopplerController, DopplerTargets
from controller.tracking.link import Emitter, LinkBudget, LinkSignalModel
from controller.tracking.pointing import (
    Command,
    PlanEvaluation,
    PointingPlan,
    PointingPlanner,
    outage_lower_bound_s,
)
from controller.tracking.sky import SkyPoint, SkyTrack
from controller.tracking.tracker import (
    AntennaTracker,
    Counters,
    TrackerError,
    TrackJob,
    TrackReport,
)

__all__ = [
    "AntennaLinkConfig",
    "AntennaTracker",
    "Channel",
    "Command",
    "Counters",
    "DialTurn",
    "DopplerController",
    "DopplerSettings",
    "DopplerTargets",
    "Emitter",
    "LinkBudget",
    "LinkSignalModel",
    "PlanEvaluation",
    "PointingPlan",
    "PointingPlanner",
    "PointingSettings",
    "SatelliteLinkConfig",
    "SkyPoint",
    "SkyTrack",
    "TrackJob",
    "TrackReport",
    "TrackerError",
    "TrackingConfig",
    "TransponderConfig",
    "load_tracking_config",
    "outage_lower_bound_s",
]
