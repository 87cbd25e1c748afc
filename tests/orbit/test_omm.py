"""Tests of the OMM JSON/CSV parser (controller.orbit.omm) and its use through the Catalog."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest
import sgp4.omm
from sgp4.api import Satrec
from sgp4.exporter import export_omm

from controller.orbit.catalog import Catalog, CatalogEntry
from controller.orbit.omm import parse_omm_csv, parse_omm_json
from tests.orbit import SGP4_VER_TLE, Elements, make_tle

A = Elements(norad_id=11111, raan_deg=10.0)
B = Elements(norad_id=22222, raan_deg=20.0)
C = Elements(norad_id=33333, raan_deg=30.0)


def ver_tle(norad_id: int) -> tuple[str, str]:
    """The first 69 columns of a record of sgp4's SGP4-VER.TLE."""
    lines = SGP4_VER_TLE.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"1 {norad_id:05d}"))
    return lines[index][:69], lines[index + 1][:69]


# A LEO made here, and from SGP4-VER: a Molniya, a GPS and a geostationary satellite.
ROUND_TRIP_TLES = {
    "LEO": make_tle(A),
    "MOLNIYA 2-14": ver_tle(8195),
    "NAVSTAR 53": ver_tle(28129),
    "XM-3": ver_tle(28626),
}


def omm_record(el: Elements, name: str | None = None) -> dict[str, Any]:
    """A GP record as CelesTrak would serve it, made by sgp4's own OMM exporter."""
    satrec = Satrec.twoline2rv(*make_tle(el))
    return dict(export_omm(satrec, name or f"SAT {el.norad_id}"))


def to_csv(records: list[dict[str, Any]]) -> str:
    """Write records as GP CSV with the header CelesTrak uses (Python float repr)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def assert_same_orbit(omm: CatalogEntry, tle: CatalogEntry) -> None:
    """Equal satrec fields within float noise and positions equal to the metre for 3 days."""
    a, b = omm.satrec, tle.satrec
    assert a.satnum == b.satnum
    assert a.jdsatepoch + a.jdsatepochF == pytest.approx(b.jdsatepoch + b.jdsatepochF, abs=2e-11)
    for name in ("inclo", "nodeo", "argpo", "mo", "ecco", "no_kozai", "bstar", "ndot", "nddot"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-12, abs=1e-18), name
    assert (a.classification, a.intldesg, a.elnum, a.revnum) == (
        b.classification,
        b.intldesg,
        b.elnum,
        b.revnum,
    )
    for hours in range(0, 72, 7):
        jd = b.jdsatepoch + hours / 24.0
        error_a, r_a, _ = a.sgp4(jd, b.jdsatepochF)
        error_b, r_b, _ = b.sgp4(jd, b.jdsatepochF)
        assert error_a == error_b == 0
        assert math.dist(r_a, r_b) < 1e-3  # km


@pytest.mark.parametrize("name", list(ROUND_TRIP_TLES))
def test_omm_json_round_trips_against_the_tle(name: str) -> None:
    """TLE -> sgp4 export_omm -> JSON -> our parser gives the orbit the TLE gives."""
    line1, line2 = ROUND_TRIP_TLES[name]
    from_tle = Catalog.from_text(f"{name}\n{line1}\n{line2}\n")
    record = export_omm(Satrec.twoline2rv(line1, line2), name)
    from_omm = Catalog.from_text(json.dumps([record]), fmt="omm-json", source="gp.json")
    assert from_omm.problems == []
    (entry,) = from_omm.entries
    assert (entry.name, entry.source, entry.line, entry.line1) == (name, "gp.json", 1, None)
    # sgp4's exporter writes EPOCH to whole microseconds; the TLE epoch has ~0.9 ms steps.
    assert abs((entry.epoch - from_tle.entries[0].epoch).total_seconds()) <= 2e-6
    assert_same_orbit(entry, from_tle.entries[0])


@pytest.mark.parametrize("name", list(ROUND_TRIP_TLES))
def test_omm_csv_round_trips_against_the_tle(name: str) -> None:
    """TLE -> sgp4 export_omm -> CSV -> our parser gives the orbit the TLE gives."""
    line1, line2 = ROUND_TRIP_TLES[name]
    from_tle = Catalog.from_text(f"{name}\n{line1}\n{line2}\n")
    text = to_csv([export_omm(Satrec.twoline2rv(line1, line2), name)])
    from_omm = Catalog.from_text(text, fmt="omm-csv", source="gp.csv")
    assert from_omm.problems == []
    (entry,) = from_omm.entries
    assert (entry.name, entry.line) == (name, 2)
    assert_same_orbit(entry, from_tle.entries[0])


def test_satrec_matches_sgp4_omm_initialize() -> None:
    """Our sgp4init call converts units exactly as sgp4.omm.initialize does."""
    fields = {key: str(value) for key, value in omm_record(A).items()}
    reference = Satrec()
    sgp4.omm.initialize(reference, fields)
    (entry,) = parse_omm_json(json.dumps([fields])).elements
    for name in ("inclo", "nodeo", "argpo", "mo", "ecco", "no_kozai", "bstar", "ndot", "nddot"):
        assert getattr(entry.satrec, name) == getattr(reference, name), name
    assert entry.satrec.jdsatepoch + entry.satrec.jdsatepochF == pytest.approx(
        reference.jdsatepoch + reference.jdsatepochF, abs=1e-11
    )


def test_space_track_style_strings_parse_like_numbers() -> None:
    """Numeric fields sent as JSON strings give the same satrec as JSON numbers."""
    numbers = omm_record(A)
    strings = {key: str(value) for key, value in numbers.items()}
    (from_numbers,) = parse_omm_json(json.dumps(numbers)).elements  # a lone object is accepted
    (from_strings,) = parse_omm_json(json.dumps([strings])).elements
    assert from_numbers.epoch == from_strings.epoch
    assert from_numbers.satrec.no_kozai == from_strings.satrec.no_kozai
    assert from_numbers.satrec.bstar == from_strings.satrec.bstar


def test_epoch_spellings() -> None:
    """EPOCH without fraction and with a trailing Z are read as UTC."""
    record = omm_record(A)
    record["EPOCH"] = "2024-03-01T12:00:00Z"
    other = dict(record, NORAD_CAT_ID=11112, EPOCH="2024-03-01T12:00:00")
    result = parse_omm_json(json.dumps([record, other]))
    assert result.issues == []
    assert [e.epoch for e in result.elements] == [A.epoch, A.epoch]


def _b_json_case(field: str, value: object) -> str:
    """The JSON text of records A, B, C with B's ``field`` set to ``value`` (or deleted)."""
    records = [omm_record(el) for el in (A, B, C)]
    if value is _DELETE:
        del records[1][field]
    else:
        records[1][field] = value
    return json.dumps(records)


_DELETE = object()

JSON_CORRUPTIONS = [
    ("BSTAR", _DELETE, "missing field BSTAR"),
    ("MEAN_MOTION", "fast", "field MEAN_MOTION is 'fast', not a number"),
    ("MEAN_MOTION", "1_5", "field MEAN_MOTION is '1_5', not a number"),
    ("ECCENTRICITY", 1.2, "ECCENTRICITY 1.2 is outside [0, 1)"),
    ("INCLINATION", math.nan, "field INCLINATION is nan, not a finite number"),
    ("INCLINATION", 200.0, "INCLINATION 200 deg is outside 0..180 deg"),
    ("RA_OF_ASC_NODE", -5, "RA_OF_ASC_NODE -5 deg is outside 0..360 deg"),
    ("MEAN_MOTION", 0, "MEAN_MOTION 0 rev/day is outside (0, 17): it must be positive"),
    ("EPOCH", "2024-13-01T00:00:00", "field EPOCH is '2024-13-01T00:00:00', not a valid UTC"),
    ("EPOCH", "01/03/2024 12:00", "expected ISO 8601 UTC"),
    ("BSTAR", None, "field BSTAR is null"),
    ("REV_AT_EPOCH", True, "field REV_AT_EPOCH is True, not an integer"),
    ("ELEMENT_SET_NO", 12.5, "field ELEMENT_SET_NO is 12.5, not an integer"),
    ("CLASSIFICATION_TYPE", "Q", "field CLASSIFICATION_TYPE is 'Q', allowed U, C or S"),
    ("OBJECT_ID", ["1998-067A"], "field OBJECT_ID is ['1998-067A'], not text"),
]


@pytest.mark.parametrize(("field", "value", "reason"), JSON_CORRUPTIONS)
def test_one_bad_json_record_gives_one_error_and_keeps_neighbours(
    field: str, value: object, reason: str
) -> None:
    """Each bad field of record B is one error at index 2 naming B; A and C are kept."""
    catalog = Catalog.from_text(_b_json_case(field, value), fmt="omm-json", source="gp.json")
    assert [e.norad_id for e in catalog] == [11111, 33333]
    (problem,) = catalog.problems
    assert (problem.severity, problem.source, problem.line) == ("error", "gp.json", 2)
    assert (problem.norad_id, problem.name) == (22222, "SAT 22222")
    assert reason in problem.reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (400000, "field NORAD_CAT_ID is 400000, allowed 0..339999"),
        ("25544x", "field NORAD_CAT_ID is '25544x', not an integer"),
    ],
)
def test_bad_norad_id_is_one_error_without_an_id(value: object, reason: str) -> None:
    """An unusable NORAD_CAT_ID is reported by name and index, with no id attributed."""
    catalog = Catalog.from_text(_b_json_case("NORAD_CAT_ID", value), fmt="omm-json")
    (problem,) = catalog.problems
    assert (problem.line, problem.norad_id, problem.name) == (2, None, "SAT 22222")
    assert problem.reason == reason
    assert len(catalog) == 2


def test_all_faults_of_a_record_are_named() -> None:
    """Two bad fields of one record are one error naming both."""
    records = [omm_record(A)]
    del records[0]["MEAN_ANOMALY"]
    records[0]["BSTAR"] = "x"
    (issue,) = parse_omm_json(json.dumps(records)).issues
    assert issue.reason == "missing field MEAN_ANOMALY; field BSTAR is 'x', not a number"


def test_non_cospar_object_id_is_a_warning() -> None:
    """An OBJECT_ID that is not like 1998-067A keeps the record with a warning."""
    record = dict(omm_record(A), OBJECT_ID="UNKNOWN")
    catalog = Catalog.from_text(json.dumps([record]), fmt="omm-json")
    assert catalog[11111].satrec.intldesg == ""
    (problem,) = catalog.problems
    assert problem.severity == "warning"
    assert problem.reason.startswith("OBJECT_ID 'UNKNOWN' is not a COSPAR id")


def test_invalid_json_is_one_error_with_its_line() -> None:
    """A JSON syntax error is reported with the line json found it on."""
    text = json.dumps([omm_record(A)], indent=1).replace('"EPOCH"', "EPOCH")
    expected_line = next(n for n, line in enumerate(text.splitlines(), 1) if "EPOCH" in line)
    catalog = Catalog.from_text(text, fmt="omm-json", source="gp.json")
    assert len(catalog) == 0
    (problem,) = catalog.problems
    assert problem.line == expected_line
    assert problem.reason.startswith("not valid JSON: Expecting property name")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("42", None, "JSON top level is int, expected an array of GP objects"),
        ('[["a"]]', 1, "record 1 is list, expected a GP object"),
    ],
)
def test_json_of_the_wrong_shape(text: str, line: int | None, reason: str) -> None:
    """JSON that is not an array of objects is one precise error."""
    (issue,) = parse_omm_json(text).issues
    assert (issue.line, issue.reason) == (line, reason)


def test_one_bad_csv_row_gives_one_error_at_its_line() -> None:
    """An empty and a non-numeric CSV cell are errors at the row's file line; others kept."""
    records = [omm_record(el) for el in (A, B, C, Elements(norad_id=44444))]
    records[1]["BSTAR"] = ""
    records[3]["INCLINATION"] = "abc"
    text = to_csv(records)
    # A blank line before the last row shifts its line number: rows 2, 3, 4, then 6.
    lines = text.split("\r\n")
    text = "\r\n".join([*lines[:4], "", *lines[4:]])
    catalog = Catalog.from_text(text, fmt="omm-csv", source="gp.csv")
    assert [e.norad_id for e in catalog] == [11111, 33333]
    assert [(p.line, p.norad_id, p.reason) for p in catalog.problems] == [
        (3, 22222, "field BSTAR is empty"),
        (6, 44444, "field INCLINATION is 'abc', not a number"),
    ]


def test_csv_missing_column_is_one_error() -> None:
    """A header without a required column is one error at the header line."""
    records = [omm_record(el) for el in (A, B)]
    for record in records:
        del record["MEAN_MOTION_DDOT"]
    result = parse_omm_csv("\n" + to_csv(records))
    assert result.elements == []
    (issue,) = result.issues
    assert (issue.line, issue.reason) == (
        2,
        "CSV header lacks the columns MEAN_MOTION_DDOT; no row can be read",
    )


def test_csv_row_with_extra_values_is_one_error() -> None:
    """A row with more cells than the header is reported, the other rows are kept."""
    records = [omm_record(el) for el in (A, B)]
    columns = len(records[0])
    lines = to_csv(records).split("\r\n")
    lines[1] += ",surplus"
    result = parse_omm_csv("\r\n".join(lines))
    assert [e.norad_id for e in result.elements] == [22222]
    (issue,) = result.issues
    assert (issue.line, issue.norad_id, issue.name) == (2, 11111, "SAT 11111")
    assert issue.reason == (
        f"row has {columns + 1} values but the header (line 1) has {columns} columns"
    )
