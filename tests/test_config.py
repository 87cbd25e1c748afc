"""Config loading: the example configs load; every error names file, key, value and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import ConfigError, load_config, load_station_list

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


GOOD = """
[station]
id = "t1"
[station.site]
lat_deg = 10.0
lon_deg = 20.0
"""


def test_simulated_config_loads() -> None:
    """configs/simulated.toml is valid and its TLE paths resolve next to the file."""
    cfg = load_config(ROOT / "configs" / "simulated.toml")
    assert cfg.station.id == "demo"
    assert [a.id for a in cfg.antennas] == ["ant1", "ant2"]
    assert all(p.is_file() for p in cfg.catalog.tle_files)


def test_seed_station_list_loads() -> None:
    """seeds/stations.toml loads as a list of stations with their masks."""
    stations = load_station_list(ROOT / "seeds" / "stations.toml")
    assert {s.country for s in stations} >= {"JP", "DE"}
    assert any(not s.site.mask.is_flat for s in stations)


def test_minimal_config_uses_defaults(tmp_path: Path) -> None:
    """A station with only a site gets a flat 0-degree mask and no antennas."""
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.station.site.mask.max_el_deg == 0.0
    assert cfg.antennas == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[station.site]\nlat_deg = 95.0\nlon_deg = 0.0\n", "station.site.lat_deg = 95.0"),
        ("[bogus]\nx = 1\n", "bogus"),
    ],
)
def test_errors_name_key_and_value(tmp_path: Path, extra: str, expected: str) -> None:
    """An out-of-range value or unknown table is reported with its dotted key and value."""
    text = '[station]\nid = "t1"\n' + extra if "station.site" in extra else GOOD + extra
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path / "station.toml") in message
    assert expected in message


def test_inverted_rotator_limits_rejected(tmp_path: Path) -> None:
    """az_min above az_max is an error naming the range."""
    text = (
        GOOD
        + """
[[antennas]]
id = "a1"
[antennas.rotator]
driver = "gs232b"
az_min_deg = 360.0
az_max_deg = 0.0
"""
    )
    with pytest.raises(ConfigError, match=r"antennas\.0\.rotator.*az range 360.0\.\.0.0"):
        load_config(_write(tmp_path, text))


def test_radio_on_unknown_antenna_rejected(tmp_path: Path) -> None:
    """A radio wired to an antenna that does not exist is named with the known ids."""
    text = (
        GOOD
        + """
[[radios]]
id = "r1"
driver = "ic9700"
antenna = "nope"
"""
    )
    with pytest.raises(ConfigError, match="antenna 'nope' is not one of"):
        load_config(_write(tmp_path, text))


def test_missing_tle_file_and_bad_toml(tmp_path: Path) -> None:
    """A missing element file and a TOML syntax error each get a precise message."""
    with pytest.raises(ConfigError, match=r"catalog\.tle_files.*file not found"):
        load_config(_write(tmp_path, GOOD + '[catalog]\ntle_files = ["missing.tle"]\n'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[station\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")
