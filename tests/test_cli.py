"""The groundlink command line: passes output formats, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controller.cli import app

ROOT = Path(__file__).resolve().parent.parent
JP = str(ROOT / "seeds" / "tle" / "jp_groups.tle")
runner = CliRunner()


def test_passes_jsonl_is_sorted_and_complete() -> None:
    """jsonl output has every documented field, ISO times with Z, sorted by AOS."""
    result = runner.invoke(
        app,
        [
            "passes",
            "--tle",
            JP,
            "--station",
            "35.2,140.3,60",
            "--start",
            "2026-11-26T00:00:00Z",
            "--hours",
            "6",
            "--format",
            "jsonl",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) > 20
    fields = {
        "norad_id",
        "name",
        "aos",
        "tca",
        "los",
        "max_el_deg",
        "aos_az_deg",
        "tca_az_deg",
        "los_az_deg",
        "duration_s",
        "flags",
    }
    assert all(set(r) == fields for r in rows)
    assert all(r["aos"].endswith("Z") and len(r["aos"]) == 24 for r in rows)
    assert [r["aos"] for r in rows] == sorted(r["aos"] for r in rows)


def test_passes_csv_and_min_el() -> None:
    """CSV has a header row; --min-el removes every pass peaking below it."""
    result = runner.invoke(
        app,
        [
            "passes",
            "--tle",
            JP,
            "--station",
            "35.2,140.3,60",
            "--start",
            "2026-11-26T00:00:00Z",
            "--hours",
            "6",
            "--format",
            "csv",
            "--min-el",
            "30",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("norad_id,name,aos,tca,los")
    assert len(lines) > 2
    assert all(float(line.split(",")[5]) >= 30.0 for line in lines[1:])


def test_bad_records_are_reported_and_exit_code_says_so(tmp_path: Path) -> None:
    """A corrupted record is named on stderr; the others are still predicted; exit 1."""
    lines = Path(JP).read_text().splitlines()
    bad = lines[2][:-1] + str((int(lines[2][-1]) + 1) % 10)  # wrong checksum, record 1
    path = tmp_path / "mixed.tle"
    path.write_text("\n".join([lines[0], lines[1], bad, *lines[3:]]) + "\n")
    result = runner.invoke(
        app,
        [
            "passes",
            "--tle",
            str(path),
            "--station",
            "35.2,140.3,60",
            "--start",
            "2026-11-26T00:00:00Z",
            "--hours",
            "3",
            "--format",
            "jsonl",
        ],
    )
    assert result.exit_code == 1
    assert "mixed.tle:1" in result.stderr
    assert "checksum" in result.stderr
    ids = {json.loads(x)["norad_id"] for x in result.stdout.splitlines()}
    assert ids
    assert 81101 not in ids


def test_usage_errors_have_exit_codes(tmp_path: Path) -> None:
    """Bad station text, missing files and bad configs get their documented exit codes."""
    r = runner.invoke(app, ["passes", "--tle", JP, "--station", "35.2,140.3"])
    assert r.exit_code == 2
    assert "LAT,LON,ALT_M" in r.stderr
    r = runner.invoke(app, ["passes", "--tle", str(tmp_path / "x.tle"), "--station", "1,2,3"])
    assert r.exit_code == 66
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text('[station]\nid = "Bad Id"\n')
    r = runner.invoke(app, ["passes", "--config", str(bad_cfg)])
    assert r.exit_code == 78
    assert "station.id" in r.stderr
    r = runner.invoke(app, ["passes", "--tle", JP, "--station", "1,2,3", "--start", "yesterday"])
    assert r.exit_code == 2
    assert "ISO 8601" in r.stderr


def test_seeds_passes_summarises() -> None:
    """`seeds passes` prints the per-station summary for the seed scenario and exits 0."""
    r = runner.invoke(app, ["seeds", "passes", "--hours", "2", "--start", "2026-11-26T00:00:00Z"])
    assert r.exit_code == 0, r.output
    assert "Passes per station" in r.stdout
    assert "de-weilheim" in r.stdout
    assert "jp-" in r.stdout
