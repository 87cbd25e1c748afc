"""Tests of the Catalog: propagation health, epoch age, duplicates, files and lookups."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sgp4.api import SGP4_ERRORS, Satrec, jday
from sgp4.exporter import export_omm

from controller.orbit.catalog import Catalog, CatalogProblem, detect_format
from tests.orbit import SGP4_VER_TLE, Elements, make_satrec, make_tle

A = Elements(norad_id=11111, raan_deg=10.0)
B = Elements(norad_id=22222, raan_deg=20.0)
C = Elements(norad_id=33333, raan_deg=30.0)
# A very low orbit with a huge drag term: sgp4 gives up on it within days.
DECAYING = Elements(norad_id=22222, mean_motion_rev_per_day=16.4, bstar=0.01)


def tle_text(*elements: Elements, names: bool = True) -> str:
    """A TLE file of ``elements``, 3-line (named 'SAT <id>') or 2-line."""
    out = []
    for el in elements:
        if names:
            out.append(f"SAT {el.norad_id}")
        out.extend(make_tle(el))
    return "\n".join(out) + "\n"


def sgp4_code_at(el: Elements, moment: datetime) -> int:
    """The error code sgp4 itself gives for ``el`` at ``moment`` (independent of Catalog)."""
    satrec = make_satrec(el)
    jd, fr = jday(moment.year, moment.month, moment.day, moment.hour, moment.minute, 0.0)
    return int(satrec.sgp4(jd, fr)[0])


# -- problems print as the CLI shows them ------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (
            CatalogProblem("error", "file.tle", 12, 25544, "ISS (ZARYA)", "line 2 checksum is 3"),
            "file.tle:12: ISS (ZARYA) [25544]: line 2 checksum is 3",
        ),
        (CatalogProblem("error", "a.tle", 3, None, None, "junk"), "a.tle:3: junk"),
        (CatalogProblem("warning", "b.json", None, 5, None, "old"), "b.json: [5]: old"),
        (CatalogProblem("warning", "c.tle", 1, 5, "NORAD 5", "old"), "c.tle:1: [5]: old"),
        (CatalogProblem("error", "d.tle", 7, None, "SAT", "why"), "d.tle:7: SAT: why"),
    ],
)
def test_problem_str(problem: CatalogProblem, text: str) -> None:
    """str(problem) is 'source:line: NAME [id]: reason' without the unknown parts."""
    assert str(problem) == text


# -- epoch age ------------------------------------------------------------------------------


def test_stale_epoch_is_one_warning_and_the_satellite_is_kept() -> None:
    """An epoch older than stale_after_days warns once; the entry stays and stale() lists it."""
    now = B.epoch + timedelta(days=20)
    catalog = Catalog.from_text(tle_text(A, B), source="s.tle", now=now, stale_after_days=30)
    assert catalog.problems == []
    older_b = replace(B, epoch=B.epoch - timedelta(days=20))
    catalog = Catalog.from_text(
        tle_text(A, older_b), source="s.tle", now=now, stale_after_days=30.0
    )
    assert [e.norad_id for e in catalog] == [11111, 22222]
    (problem,) = catalog.problems
    assert (problem.severity, problem.line, problem.norad_id) == ("warning", 4, 22222)
    assert problem.reason == (
        "epoch 2024-02-10T12:00:00.000Z is 40.00 days old at 2024-03-21T12:00:00.000Z "
        "(stale after 30 days)"
    )
    assert [e.norad_id for e in catalog.stale(now, 14.0)] == [11111, 22222]
    assert [e.norad_id for e in catalog.stale(now, 25.0)] == [22222]
    assert catalog.stale(now, 45.0) == []


def test_epoch_more_than_a_day_ahead_of_now_is_a_warning() -> None:
    """Elements from the future (wrong clock or file) are kept with a warning."""
    catalog = Catalog.from_text(tle_text(A), now=A.epoch - timedelta(days=3))
    (problem,) = catalog.warnings
    assert "is 3.00 days after 2024-02-27T12:00:00.000Z" in problem.reason
    assert len(catalog) == 1
    assert Catalog.from_text(tle_text(A), now=A.epoch - timedelta(hours=12)).problems == []


def test_no_time_checks_without_now() -> None:
    """Without now nothing is judged by age: the catalog never reads the system clock."""
    ancient = replace(A, epoch=datetime(1990, 1, 1, tzinfo=UTC))
    assert Catalog.from_text(tle_text(ancient)).problems == []


# -- propagation health -----------------------------------------------------------------------


def test_decayed_satellite_is_one_error_and_excluded() -> None:
    """A satellite sgp4 cannot propagate to now is an error naming sgp4's reason; only it goes."""
    now = DECAYING.epoch + timedelta(days=20)
    code = sgp4_code_at(DECAYING, now)
    assert code in (1, 6)  # what sgp4 itself says about this orbit at now
    fresh = timedelta(days=19)  # A and C are 1 day old at now, DECAYING 20 days (stale)
    text = tle_text(replace(A, epoch=A.epoch + fresh), DECAYING, replace(C, epoch=C.epoch + fresh))
    assert len(Catalog.from_text(text)) == 3  # fine at its epoch
    catalog = Catalog.from_text(text, source="s.tle", now=now)
    assert [e.norad_id for e in catalog] == [11111, 33333]
    # One problem: the error, not also a staleness warning for the same satellite.
    (problem,) = catalog.problems
    assert (problem.severity, problem.line, problem.norad_id) == ("error", 4, 22222)
    assert problem.reason.startswith(f"sgp4 error {code} ({SGP4_ERRORS[code]}) at 2024-03-21T")
    assert "20.00 days after the epoch 2024-03-01T12:00:00.000Z" in problem.reason
    assert problem in catalog.errors


def test_decayed_satellite_from_the_sgp4_verification_file() -> None:
    """MINOTAUR R/B (28872, 'lost in 50 minutes' per SGP4-VER) is an error a day later."""
    lines = SGP4_VER_TLE.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("1 28872"))
    line1, line2 = lines[index][:69], lines[index + 1][:69]
    reference = Satrec.twoline2rv(line1, line2)
    code = int(reference.sgp4(reference.jdsatepoch + 1.0, reference.jdsatepochF)[0])
    assert code != 0
    epoch = datetime(2005, 11, 29, tzinfo=UTC) + timedelta(days=0.02012661)
    catalog = Catalog.from_text(f"MINOTAUR\n{line1}\n{line2}\n", now=epoch + timedelta(days=1))
    assert len(catalog) == 0
    (problem,) = catalog.errors
    assert problem.reason.startswith(f"sgp4 error {code} ({SGP4_ERRORS[code]})")


def test_deep_space_and_period() -> None:
    """deep_space follows sgp4's choice of theory; the period follows the mean motion."""
    gps = replace(A, norad_id=28129, mean_motion_rev_per_day=2.00562768, eccentricity=0.0048)
    catalog = Catalog.from_text(tle_text(A, gps))
    assert catalog[28129].deep_space is True
    assert catalog[11111].deep_space is False
    assert catalog[28129].period_min == pytest.approx(1440.0 / 2.00562768, rel=1e-8)


# -- duplicates --------------------------------------------------------------------------------


def test_duplicate_in_one_file_keeps_the_newer_epoch() -> None:
    """The newer element set wins wherever it is in the file; the older is a warning."""
    newer = replace(A, epoch=A.epoch + timedelta(days=1), raan_deg=11.0)
    catalog = Catalog.from_text(tle_text(newer, B, A), source="s.tle")
    assert catalog[11111].epoch == newer.epoch
    assert catalog[11111].line == 1
    (problem,) = catalog.problems
    assert (problem.severity, problem.line, problem.norad_id) == ("warning", 7, 11111)
    assert problem.reason == (
        "duplicate NORAD id 11111: this element set (epoch 2024-03-01T12:00:00.000Z) is dropped "
        "for the one at s.tle:1 (epoch 2024-03-02T12:00:00.000Z, which is newer)"
    )


def test_duplicate_with_the_same_epoch_keeps_the_first() -> None:
    """On a tie the first element set seen is kept."""
    catalog = Catalog.from_text(tle_text(A) + tle_text(replace(A, raan_deg=99.0)), source="s")
    assert catalog[11111].line == 1
    (problem,) = catalog.warnings
    assert problem.line == 4
    assert problem.reason.endswith("same epoch, seen first)")


def test_merged_keeps_newer_epochs_in_either_order() -> None:
    """merged() unions the satellites and problems; duplicates keep the newer and warn."""
    old = Catalog.from_text(tle_text(A, B), source="old.tle")
    newer_b = replace(B, epoch=B.epoch + timedelta(hours=6))
    new = Catalog.from_text(tle_text(newer_b, C) + "junk line\n", source="new.tle")
    for merged in (old.merged(new), new.merged(old)):
        assert [e.norad_id for e in merged] == [11111, 22222, 33333]
        assert merged[22222].source == "new.tle"
        assert merged[22222].epoch == newer_b.epoch
        assert len(merged.errors) == 1  # the junk line of new.tle, carried over
        (duplicate,) = merged.warnings
        assert (duplicate.source, duplicate.line, duplicate.norad_id) == ("old.tle", 4, 22222)
    assert len(old) == 2  # the inputs are unchanged
    assert len(new) == 2


# -- files -----------------------------------------------------------------------------------


def test_from_files_reads_every_format_and_survives_a_missing_file(tmp_path: Path) -> None:
    """TLE, JSON and CSV by extension, JSON by content; a missing file is one error."""
    d_record = export_omm(make_satrec(replace(A, norad_id=44444)), "SAT D")
    (tmp_path / "a.tle").write_text(tle_text(A))
    (tmp_path / "b.json").write_text(json.dumps([export_omm(make_satrec(B), "SAT B")]))
    c_record = export_omm(make_satrec(C), "SAT C")
    (tmp_path / "c.csv").write_text(
        ",".join(c_record) + "\n" + ",".join(str(v) for v in c_record.values()) + "\n"
    )
    (tmp_path / "d-noext").write_text(json.dumps(d_record))
    missing = tmp_path / "missing.tle"
    paths = [tmp_path / "a.tle", tmp_path / "b.json", tmp_path / "c.csv", tmp_path / "d-noext"]
    catalog = Catalog.from_files([*paths, missing], now=A.epoch)
    assert [(e.norad_id, e.name) for e in catalog] == [
        (11111, "SAT 11111"),
        (22222, "SAT B"),
        (33333, "SAT C"),
        (44444, "SAT D"),
    ]
    assert [e.source for e in catalog] == [str(p) for p in paths]
    (problem,) = catalog.problems
    assert (problem.severity, problem.source, problem.line) == ("error", str(missing), None)
    assert problem.reason == "cannot read: No such file or directory"


def test_undecodable_bytes_spoil_only_their_record(tmp_path: Path) -> None:
    """A non-UTF-8 byte in one TLE line is that record's error; the others are kept."""
    text = tle_text(A, B, C).encode()
    b_line1 = make_tle(B)[0].encode()
    path = tmp_path / "sats.txt"
    path.write_bytes(text.replace(b_line1, b_line1[:20] + b"\xff" + b_line1[21:]))
    catalog = Catalog.from_files([path])
    assert [e.norad_id for e in catalog] == [11111, 33333]
    (problem,) = catalog.problems
    assert (problem.line, problem.norad_id) == (4, 22222)
    assert problem.reason == f"line 1 contains the character {chr(0xFFFD)!r} at column 21"


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("x.TLE", "[", "tle"),
        ("x.json", "1 ", "omm-json"),
        ("x.csv", "", "omm-csv"),
        ("x", "\ufeff  [{}]", "omm-json"),
        ("x.dat", "OBJECT_NAME,NORAD_CAT_ID\r\nA,1", "omm-csv"),
        ("x.dat", "ISS\n1 25544U", "tle"),
    ],
)
def test_detect_format(name: str, text: str, fmt: str) -> None:
    """The extension decides; without a known one the content does."""
    assert detect_format(Path(name), text) == fmt


# -- arguments and lookups ---------------------------------------------------------------------


def test_naive_now_and_bad_ages_are_refused() -> None:
    """A naive datetime or a negative age is a caller error that says what to pass."""
    with pytest.raises(ValueError, match="now must be a timezone-aware UTC datetime"):
        Catalog.from_text(tle_text(A), now=datetime(2024, 3, 1))
    with pytest.raises(ValueError, match="stale_after_days must be a finite number"):
        Catalog.from_text(tle_text(A), now=A.epoch, stale_after_days=-1.0)
    catalog = Catalog.from_text(tle_text(A))
    with pytest.raises(ValueError, match="max_age_days"):
        catalog.stale(A.epoch, float("nan"))
    with pytest.raises(ValueError, match="unknown catalog format 'xml'"):
        Catalog.from_text("", fmt="xml")  # type: ignore[arg-type]


def test_non_utc_aware_now_is_converted() -> None:
    """An aware now in another zone means the same instant."""
    from datetime import timezone

    plus_two = (A.epoch + timedelta(days=20)).astimezone(timezone(timedelta(hours=2)))
    (problem,) = Catalog.from_text(tle_text(A), now=plus_two).warnings
    assert "at 2024-03-21T12:00:00.000Z" in problem.reason


def test_lookup_protocol() -> None:
    """Entries iterate in NORAD order; in, [], get() and len() work by id."""
    catalog = Catalog.from_text(tle_text(C, A, B) + "garbage\n")
    assert len(catalog) == 3
    assert [e.norad_id for e in catalog] == [11111, 22222, 33333]
    assert catalog.entries == tuple(catalog)
    assert 22222 in catalog
    assert 44444 not in catalog
    assert catalog[22222].name == "SAT 22222"
    assert catalog.get(44444) is None
    with pytest.raises(KeyError, match="NORAD id 44444 is not in the catalog"):
        catalog[44444]
    assert len(catalog.errors) == 1
    assert catalog.warnings == []
    assert repr(catalog) == "Catalog(3 satellites, 1 errors, 0 warnings)"
    empty = Catalog()
    assert (len(empty), empty.problems, list(empty)) == (0, [], [])


def test_entry_carries_the_lines_and_an_aware_epoch() -> None:
    """A TLE entry keeps its 69-column lines; the epoch is aware UTC."""
    line1, line2 = make_tle(A)
    entry = Catalog.from_text(tle_text(A), source="s.tle")[11111]
    assert (entry.line1, entry.line2, entry.source) == (line1, line2, "s.tle")
    assert entry.epoch == A.epoch
    assert entry.epoch.utcoffset() == timedelta(0)
    assert entry.age_days(A.epoch + timedelta(days=1.5)) == pytest.approx(1.5)
