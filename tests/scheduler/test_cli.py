"""``schedule_command``: JSON and table output, exit codes and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.scheduler.cli import schedule_command
from tests.scheduler import START

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "simulated.toml"


def _config(tmp_path: Path, old: str = "", new: str = "") -> Path:
    """simulated.toml with absolute TLE paths and one text replacement."""
    text = CONFIG.read_text().replace('"../seeds/', f'"{ROOT}/seeds/')
    if old:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def test_json_plan_of_the_simulated_station(capsys: pytest.CaptureFixture[str]) -> None:
    """One hour, both antennas: exit 0, the documented JSON, tracks inside the hour."""
    code = schedule_command(CONFIG, [], START, 1.0, "optimal", "json")
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["policy"] == "optimal"
    assert data["objective"] <= data["upper_bound"] + 1e-6
    assert data["tracks"]
    assert {t["antenna"] for t in data["tracks"]} <= {"ant1", "ant2"}
    assert all(
        "2026-11-26T00:00:00Z" <= t["start"] < t["end"] <= "2026-11-26T01:00:00Z"
        for t in data["tracks"]
    )
    # The S-band antenna never gets the UHF satellites configured with frequencies.
    assert not any(
        t["antenna"] == "ant2" and t["norad_id"] in (80001, 81301) for t in data["tracks"]
    )


def test_table_and_greedy_policy(capsys: pytest.CaptureFixture[str]) -> None:
    """The greedy baseline prints a per-antenna timeline."""
    code = schedule_command(CONFIG, [], START, 1.0, "greedy", "table")
    out = capsys.readouterr().out
    assert code == 0
    assert "greedy plan" in out
    assert "demo/ant1" in out
    assert "demo/ant2" in out


def test_horizon_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """--hours 0 is a usage error that says what to give."""
    assert schedule_command(CONFIG, [], START, 0.0, None, "table") == 2
    assert "horizon of zero" in capsys.readouterr().err


def test_unknown_satellite_in_priorities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A [[satellites]] entry not in the catalog is a config error naming the entry."""
    cfg = _config(tmp_path, "norad_id = 81301", "norad_id = 12345")
    assert schedule_command(cfg, [], START, 1.0, None, "table") == 78
    err = capsys.readouterr().err
    assert "satellites[5].norad_id = 12345" in err  # its index in the file
    assert "not in the catalog" in err


def test_antenna_without_capabilities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An antenna whose bands_hz is empty is refused, naming the antenna."""
    cfg = _config(tmp_path, "bands_hz = [[435.0e6, 438.0e6], [2.2e9, 2.3e9]]", "bands_hz = []")
    assert schedule_command(cfg, [], START, 1.0, None, "table") == 78
    err = capsys.readouterr().err
    assert "antennas[1]" in err
    assert "bands_hz is empty" in err


def test_bad_format_and_policy(capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown --format and --policy values are usage errors."""
    assert schedule_command(CONFIG, [], START, 1.0, None, "xml") == 2
    assert schedule_command(CONFIG, [], START, 1.0, "fastest", "table") == 2
    err = capsys.readouterr().err
    assert "--format 'xml'" in err
    assert "--policy 'fastest'" in err
