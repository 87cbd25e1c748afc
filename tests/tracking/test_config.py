"""Tracking settings: defaults, and precise errors for bad input."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from controller.config import ConfigError
from controller.tracking.config import (
    SatelliteLinkConfig,
    TrackingConfig,
    TransponderConfig,
    load_tracking_config,
)


def test_defaults_fill_everything() -> None:
    """An empty table gives a usable configuration; unknown antennas/satellites get defaults."""
    cfg = load_tracking_config({})
    assert cfg.pointing.park_after_idle_s > 0
    assert cfg.antenna("nowhere").g_over_t_db_k == TrackingConfig().antenna("x").g_over_t_db_k
    assert cfg.satellite(80001).norad_id == 80001


def test_errors_name_the_key_the_value_and_the_rule() -> None:
    """Every problem is listed with its dotted key and value; unknown keys are called so."""
    with pytest.raises(ConfigError) as info:
        load_tracking_config(
            {
                "pointing": {"preposition_margin_s": -5, "colour": "red"},
                "doppler": {"dial_policy": "guess"},
            },
            source="station.toml [tracking]",
        )
    text = str(info.value)
    assert "station.toml [tracking]: pointing.preposition_margin_s = -5" in text
    assert "pointing.colour = 'red': unknown key" in text
    assert "doppler.dial_policy = 'guess'" in text
    assert len(info.value.problems) == 3


def test_transponder_passbands_must_match() -> None:
    """A linear transponder's passbands have the same width; the widths are in the message."""
    with pytest.raises(ValidationError, match=r"100000\.0 Hz wide, downlink 50000\.0 Hz"):
        TransponderConfig(
            kind="inverting",
            uplink_low_hz=145.9e6,
            uplink_high_hz=146.0e6,
            downlink_low_hz=435.80e6,
            downlink_high_hz=435.85e6,
        )


def test_working_frequency_must_lie_in_the_passband() -> None:
    """downlink_hz outside the transponder's downlink passband is refused with both."""
    tp = TransponderConfig(
        kind="non_inverting",
        uplink_low_hz=145.9e6,
        uplink_high_hz=146.0e6,
        downlink_low_hz=435.8e6,
        downlink_high_hz=435.9e6,
    )
    with pytest.raises(ValidationError, match="outside the transponder's downlink passband"):
        SatelliteLinkConfig(norad_id=1, downlink_hz=436.0e6, transponder=tp)


def test_satellites_are_unique() -> None:
    """The same NORAD id twice is refused, naming it."""
    with pytest.raises(ConfigError, match=r"norad_id repeated: \[7\]"):
        load_tracking_config({"satellites": [{"norad_id": 7}, {"norad_id": 7}]})
