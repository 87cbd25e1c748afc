"""Tests of the strict TLE parser (controller.orbit.tle) and its use through the Catalog."""

from __future__ import annotations

import math
import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sgp4.alpha5 import from_alpha5, to_alpha5
from sgp4.api import Satrec
from sgp4.io import compute_checksum as sgp4_checksum

from controller.orbit.catalog import Catalog
from controller.orbit.tle import compute_checksum, parse_alpha5, parse_tle_text
from tests.orbit import (
    SGP4_VER_TLE,
    Elements,
    fix_checksum,
    make_satrec,
    make_tle,
    replace_cols,
)

A = Elements(norad_id=11111, raan_deg=10.0)
B = Elements(norad_id=22222, raan_deg=20.0)
C = Elements(norad_id=33333, raan_deg=30.0)


def three_line(records: list[tuple[str, str, str]]) -> str:
    """Join (name, line1, line2) records into a 3-line file."""
    return "".join(f"{name}\n{l1}\n{l2}\n" for name, l1, l2 in records)


def abc_records() -> list[tuple[str, str, str]]:
    """Three good named records A, B, C; tests corrupt B."""
    return [(f"SAT {el.norad_id}", *make_tle(el)) for el in (A, B, C)]


# -- checksums and catalogue numbers --------------------------------------------------------


def test_checksum_agrees_with_sgp4_on_the_verification_file() -> None:
    """Our checksum equals sgp4's for every TLE line sgp4 ships."""
    lines = [
        line.rstrip()
        for line in SGP4_VER_TLE.read_text().splitlines()
        if line.startswith(("1 ", "2 "))
    ]
    assert len(lines) > 50
    for line in lines:
        assert compute_checksum(line) == sgp4_checksum(line[:68])


@given(st.text(alphabet=string.digits + "- .+ABCU", min_size=68, max_size=68))
def test_checksum_agrees_with_sgp4_on_random_lines(line: str) -> None:
    """Digits sum, '-' counts 1, everything else 0, modulo 10, like sgp4."""
    assert compute_checksum(line + "0") == sgp4_checksum(line)


@given(st.integers(min_value=0, max_value=339_999))
def test_alpha5_decoding_agrees_with_sgp4(norad_id: int) -> None:
    """Alpha-5 catalogue numbers decode like sgp4's own alpha5 module."""
    text = to_alpha5(norad_id)
    assert parse_alpha5(text) == from_alpha5(text) == norad_id


@pytest.mark.parametrize("text", ["I1234", "O0001", "a1234", " 1234", "1234", "12A45"])
def test_alpha5_rejects_malformed_numbers(text: str) -> None:
    """Letters I and O, lowercase, blanks and misplaced letters are not catalogue numbers."""
    with pytest.raises(ValueError, match="catalogue number"):
        parse_alpha5(text)


# -- good files -------------------------------------------------------------------------------


def test_two_line_file_parses_with_generated_names() -> None:
    """A 2-line file gives one entry per record named 'NORAD <id>' and no problems."""
    text = "\n".join(line for el in (A, B, C) for line in make_tle(el)) + "\n"
    result = parse_tle_text(text)
    assert result.issues == []
    assert [e.norad_id for e in result.elements] == [11111, 22222, 33333]
    assert [e.name for e in result.elements] == ["NORAD 11111", "NORAD 22222", "NORAD 33333"]
    assert [e.line for e in result.elements] == [1, 3, 5]


def test_three_line_file_with_zero_prefix_crlf_blanks_and_trailing_spaces() -> None:
    """3LE '0 ' name prefixes, CRLF, blank lines and trailing blanks are all tolerated."""
    (_, a1, a2), (_, b1, b2), (_, c1, c2) = abc_records()
    text = (
        f"0 ISS (ZARYA)   \r\n{a1}  \r\n{a2}\r\n\r\n"
        f"NOAA 19\r\n{b1}\r\n{b2}   \r\n"
        f"\n\nSAT C\n{c1}\n{c2}"  # no final newline
    )
    result = parse_tle_text(text)
    assert result.issues == []
    assert [(e.name, e.line) for e in result.elements] == [
        ("ISS (ZARYA)", 1),
        ("NOAA 19", 5),
        ("SAT C", 10),
    ]
    assert result.elements[0].line1 == a1
    assert result.elements[0].line2 == a2


def test_parsed_elements_match_the_generating_satrec() -> None:
    """The satrec built from our parsed lines propagates like the record that made them."""
    satrec = make_satrec(A)
    (entry,) = parse_tle_text("\n".join(make_tle(A))).elements
    assert entry.epoch == A.epoch
    for minutes in (0.0, 90.0, 1440.0):
        jd = satrec.jdsatepoch + minutes / 1440.0
        _, r_ref, _ = satrec.sgp4(jd, satrec.jdsatepochF)
        _, r_got, _ = entry.satrec.sgp4(jd, satrec.jdsatepochF)
        # The TLE rounds angles to 1e-4 deg: about 12 m along track at LEO.
        assert math.dist(r_ref, r_got) < 0.1


def test_alpha5_catalogue_number_is_decoded() -> None:
    """A satellite numbered above 99999 is written in Alpha-5 and read back as its number."""
    el = replace(A, norad_id=123456)
    line1, line2 = make_tle(el)
    assert line1[2:7] == "C3456"  # sgp4's exporter writes Alpha-5
    (entry,) = parse_tle_text(f"{line1}\n{line2}").elements
    assert entry.norad_id == 123456
    assert entry.satrec.satnum == 123456


def test_sgp4_verification_file() -> None:
    """SGP4-VER.TLE: comments skipped, columns after 69 warned, faulty records reported.

    The records expected to fail are found independently: lines whose checksum digit
    sgp4 disagrees with, the 11801 record whose ephemeris-type column is blank (the
    NORAD format wants a digit) and 33334, whose mean motion sgp4 rejects (error 3).
    """
    lines = SGP4_VER_TLE.read_text().splitlines()
    pairs = [
        (number, lines[number - 1].rstrip(), lines[number].rstrip())
        for number in range(1, len(lines))
        if lines[number - 1].startswith("1 ")
    ]
    bad_checksum = {
        int(l1[2:7])
        for _, l1, l2 in pairs
        if any(int(line[68]) != sgp4_checksum(line[:68]) for line in (l1, l2))
    }
    assert bad_checksum  # the file really contains such records
    expected_bad = bad_checksum | {11801}
    result = parse_tle_text(SGP4_VER_TLE.read_text())

    assert {i.norad_id for i in result.issues if i.severity == "error"} == expected_bad
    assert len(result.issues) == len(expected_bad)  # exactly one issue per bad record
    good_pairs = [p for p in pairs if int(p[1][2:7]) not in expected_bad]
    assert [(e.line, e.norad_id) for e in result.elements] == [
        (number, int(l1[2:7])) for number, l1, _ in good_pairs
    ]
    for element_set, (_, l1, l2) in zip(result.elements, good_pairs, strict=True):
        # Every line 2 there carries start/stop/step times after column 69.
        assert len(element_set.warnings) == 1
        assert element_set.warnings[0].startswith("line 2 has 35 characters after column 69")
        reference = Satrec.twoline2rv(l1[:69], l2[:69])
        assert element_set.satrec.sgp4(reference.jdsatepoch, 0.5) == reference.sgp4(
            reference.jdsatepoch, 0.5
        )


def test_sgp4_initialisation_error_is_reported() -> None:
    """33334 of SGP4-VER (mean motion 1e-5 rev/day): sgp4 error 3 is an error naming it."""
    line1 = fix_checksum("1 33334U 78066F   06174.85818871  .00000620  00000-0  10000-3 0  6809")
    line2 = fix_checksum("2 33334  68.4714 236.1303 5602877 123.7484 302.5767  0.00001000 67521")
    assert Satrec.twoline2rv(line1, line2).error == 3  # what sgp4 itself says
    result = parse_tle_text(f"{line1}\n{line2}\n")
    assert result.elements == []
    (issue,) = result.issues
    assert issue.norad_id == 33334
    assert issue.reason.startswith("sgp4 rejected the elements: sgp4 error 3 (perturbed")


# -- one corruption, one problem, neighbours kept ---------------------------------------------


def _corrupt_b(how: str) -> tuple[str, int | None, str]:
    """Return (file text, expected problem line, expected reason fragment) for ``how``."""
    records = abc_records()
    name, b1, b2 = records[1]
    b_line = 4  # B's name line in the 3-line file
    if how == "bad checksum":
        stated = (int(b2[68]) + 3) % 10
        records[1] = (name, b1, b2[:68] + str(stated))
        return three_line(records), b_line, f"line 2 checksum is {stated}, computed {b2[68]}"
    if how == "truncated line":
        records[1] = (name, b1[:60], b2)
        return three_line(records), b_line, "line 1 is 60 characters long, expected 69"
    if how == "mismatched ids":
        records[1] = (name, b1, replace_cols(b2, 3, "22223"))
        return (
            three_line(records),
            b_line,
            "catalogue number differs between lines: line 1 has 22222, line 2 has 22223",
        )
    if how == "bad exponent field":
        records[1] = (name, replace_cols(b1, 54, " 10270*4"), b2)
        return three_line(records), b_line, "line 1 cols 54-61 (BSTAR drag term) is ' 10270*4'"
    if how == "eccentricity 1 or more":
        records[1] = (name, b1, replace_cols(b2, 27, "1.00000"))
        return three_line(records), b_line, "line 2 cols 27-33 (eccentricity) is '1.00000'"
    if how == "inclination above 180":
        records[1] = (name, b1, replace_cols(b2, 9, "181.0000"))
        return three_line(records), b_line, "inclination 181 deg is outside 0..180 deg"
    if how == "mean motion above 17":
        records[1] = (name, b1, replace_cols(b2, 53, "17.50000000"))
        return three_line(records), b_line, "mean motion 17.5 rev/day is outside (0, 17)"
    if how == "epoch day 367":
        records[1] = (name, replace_cols(b1, 19, "24367.00000000"), b2)
        return three_line(records), b_line, "epoch day of year 367.00000000 is outside 1..366"
    if how == "classification":
        records[1] = (name, replace_cols(b1, 8, "X"), b2)
        return three_line(records), b_line, "line 1 col 8 (classification) is 'X'"
    if how == "non-ascii":
        records[1] = (name, b1[:30] + "é" + b1[31:], b2)
        return three_line(records), b_line, "line 1 contains the character 'é' at column 31"
    if how == "missing line 2":
        text = three_line(records).replace(b2 + "\n", "")
        return (
            text,
            b_line,
            "line 2 is missing: line 6 is not a TLE line 2 after line 1 (file line 5)",
        )
    if how == "missing line 1":
        text = three_line(records).replace(b1 + "\n", "")
        return text, b_line, "line 1 is missing: the name line is followed by line 2 (file line 5)"
    raise AssertionError(how)


CORRUPTIONS = [
    "bad checksum",
    "truncated line",
    "mismatched ids",
    "bad exponent field",
    "eccentricity 1 or more",
    "inclination above 180",
    "mean motion above 17",
    "epoch day 367",
    "classification",
    "non-ascii",
    "missing line 2",
    "missing line 1",
]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_one_corrupt_record_gives_one_error_and_keeps_neighbours(how: str) -> None:
    """Each corruption of record B is one error at B's line naming B; A and C are kept."""
    text, line, reason = _corrupt_b(how)
    catalog = Catalog.from_text(text, source="sats.tle")
    assert [e.norad_id for e in catalog] == [11111, 33333]
    (problem,) = catalog.problems
    assert problem.severity == "error"
    assert (problem.source, problem.line, problem.norad_id) == ("sats.tle", line, 22222)
    assert problem.name == "SAT 22222"
    assert reason in problem.reason
    assert str(problem).startswith(f"sats.tle:{line}: SAT 22222 [22222]: ")


def test_garbage_line_in_three_line_file_is_one_error() -> None:
    """A stray line between records is reported at its line; all three records are kept."""
    records = abc_records()
    text = three_line(records[:1]) + "this is not a TLE\n" + three_line(records[1:])
    catalog = Catalog.from_text(text, source="sats.tle")
    assert [e.norad_id for e in catalog] == [11111, 22222, 33333]
    assert catalog[22222].name == "SAT 22222"
    (problem,) = catalog.problems
    assert (problem.severity, problem.line, problem.norad_id) == ("error", 4, None)
    assert "'this is not a TLE' is neither a TLE line nor a name line" in problem.reason


def test_garbage_line_in_two_line_file_is_one_error() -> None:
    """In a file without names a non-TLE line is garbage, not a name for the next record."""
    lines = [line for el in (A, B, C) for line in make_tle(el)]
    lines.insert(2, "%%% garbage %%%")
    catalog = Catalog.from_text("\n".join(lines), source="two.tle")
    assert [(e.norad_id, e.name) for e in catalog] == [
        (11111, "NORAD 11111"),
        (22222, "NORAD 22222"),
        (33333, "NORAD 33333"),
    ]
    (problem,) = catalog.problems
    assert (problem.line, problem.norad_id) == (3, None)
    assert "not a TLE line (this file has no name lines)" in problem.reason


def test_truncated_line_does_not_eat_the_next_record_in_a_two_line_file() -> None:
    """Resync: a short line 2 loses its own record only; the next pair parses."""
    (a1, a2), (b1, b2), (c1, c2) = (make_tle(el) for el in (A, B, C))
    text = "\n".join([a1, a2, b1, b2[:40], c1, c2])
    result = parse_tle_text(text)
    assert [e.norad_id for e in result.elements] == [11111, 33333]
    (issue,) = result.issues
    assert (issue.line, issue.norad_id) == (3, 22222)
    assert issue.reason == "line 2 is 40 characters long, expected 69 (truncated?)"


def test_several_faults_of_one_record_are_one_problem() -> None:
    """Faults in both lines of a record are joined into one error, none lost."""
    records = abc_records()
    name, b1, b2 = records[1]
    records[1] = (name, b1[:68] + str((int(b1[68]) + 1) % 10), replace_cols(b2, 9, "200.0000"))
    result = parse_tle_text(three_line(records))
    (issue,) = result.issues
    assert issue.reason.startswith("line 1 checksum is")
    assert len(result.elements) == 2


def test_text_after_column_69_is_a_warning_and_the_record_is_kept() -> None:
    """Trailing text is ignored with one warning quoting it; the elements are unaffected."""
    line1, line2 = make_tle(A)
    catalog = Catalog.from_text(f"{line1}\n{line2} extra stuff\n", source="x.tle")
    assert catalog[11111].line2 == line2
    (problem,) = catalog.problems
    assert problem.severity == "warning"
    assert problem.reason == "line 2 has 12 characters after column 69 (ignored): 'extra stuff'"


def test_comment_lines_are_skipped() -> None:
    """Lines starting with '#' are comments, never names or garbage."""
    line1, line2 = make_tle(A)
    result = parse_tle_text(f"# header\nMY SAT\n# note\n{line1}\n{line2}\n")
    assert result.issues == []
    assert [e.name for e in result.elements] == ["MY SAT"]


# -- property: export -> parse -> same elements ----------------------------------------------

EPOCHS = st.datetimes(
    min_value=datetime(1957, 1, 1), max_value=datetime(2056, 12, 31), timezones=st.just(UTC)
)


@st.composite
def orbits(draw: st.DrawFn) -> Elements:
    """Random elements whose perigee stays above 200 km, so sgp4 accepts them."""
    mean_motion = draw(st.floats(min_value=0.9, max_value=16.2))
    semi_major_km = (398600.8 * (86400.0 / (2 * math.pi * mean_motion)) ** 2) ** (1 / 3)
    max_ecc = min(0.95, 1.0 - (6378.135 + 200.0) / semi_major_km)
    return Elements(
        norad_id=draw(st.integers(min_value=1, max_value=339_999)),
        epoch=draw(EPOCHS).replace(microsecond=0),
        inclination_deg=draw(st.floats(min_value=0.0, max_value=180.0)),
        raan_deg=draw(st.floats(min_value=0.0, max_value=359.9999)),
        eccentricity=draw(st.floats(min_value=0.0, max_value=max(0.0, max_ecc))),
        argp_deg=draw(st.floats(min_value=0.0, max_value=359.9999)),
        mean_anomaly_deg=draw(st.floats(min_value=0.0, max_value=359.9999)),
        mean_motion_rev_per_day=mean_motion,
        bstar=draw(
            st.just(0.0)
            | st.floats(min_value=1e-8, max_value=0.099)
            | st.floats(min_value=-0.099, max_value=-1e-8)
        ),
        ndot_rev_per_day2=draw(st.floats(min_value=-0.0099, max_value=0.0099)),
        intldesg=draw(st.from_regex(r"[0-9]{5}[A-Z]{1,3}", fullmatch=True)),
    )


@settings(max_examples=150, deadline=None)
@given(orbits())
def test_exported_tle_parses_back_to_the_same_elements(el: Elements) -> None:
    """Random valid elements -> sgp4 export_tle -> our parser -> the same elements."""
    source = make_satrec(el)
    line1, line2 = make_tle(el)
    result = parse_tle_text(f"{line1}\n{line2}\n")
    assert result.issues == []
    (parsed,) = result.elements
    got = parsed.satrec
    deg = math.pi / 180.0
    assert parsed.norad_id == el.norad_id == got.satnum
    assert abs(parsed.epoch - el.epoch) < timedelta(milliseconds=1)
    # Tolerances are the TLE's printed precision (half a unit in the last digit).
    assert got.inclo == pytest.approx(source.inclo, abs=0.51e-4 * deg)
    for name in ("nodeo", "argpo", "mo"):
        # 359.99996 prints as 360.0000: compare on the circle.
        delta = (getattr(got, name) - getattr(source, name) + math.pi) % (2 * math.pi) - math.pi
        assert abs(delta) <= 0.51e-4 * deg
    assert got.ecco == pytest.approx(source.ecco, abs=0.51e-7)
    assert got.no_kozai == pytest.approx(source.no_kozai, abs=0.51e-8 * 2 * math.pi / 1440)
    assert got.bstar == pytest.approx(source.bstar, rel=1e-4, abs=1e-12)
    assert got.ndot == pytest.approx(source.ndot, abs=0.51e-8 * 2 * math.pi / 1440**2)
    assert got.intldesg == el.intldesg
