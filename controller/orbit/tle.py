"""Strict parser for NORAD two-line element sets (2-line and 3-line files).

sgp4's own ``Satrec.twoline2rv`` is deliberately lenient: it reads a truncated
line as NaN and a bad checksum not at all. This module checks what it skips,
column by column against the NORAD two-line layout, before sgp4 sees a line:

* the checksum (column 69, sum of digits with ``-`` counting 1, modulo 10);
* every field's exact columns and shape, including Alpha-5 catalogue numbers
  (``A0000``..``Z9999``, letters I and O unused) and the packed exponent
  fields such as ``" 12345-3"``;
* the same catalogue number on both lines;
* value ranges: inclination 0..180 deg, RAAN / argument of perigee / mean
  anomaly 0..360 deg, eccentricity in [0, 1), mean motion in (0, 17) rev/day;
* sgp4's own initialisation error code.

File conventions: blank lines, trailing whitespace and CRLF are tolerated;
lines starting with ``#`` are comments (sgp4 ships ``SGP4-VER.TLE`` with
them) and are skipped; a name line may carry the ``"0 "`` prefix of the
3LE format. Text after column 69 (``SGP4-VER.TLE`` puts its verification
start/stop/step times there) is ignored with one warning per record, never
silently, because on real data it usually means a line was pasted together.

A bad record yields one error issue (all its faults joined by ``"; "``) and is
dropped; parsing resumes at the next line that starts with ``"1 "``, so one
broken line never takes its neighbours down.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sgp4.api import SGP4_ERRORS, Satrec

__all__ = [
    "MAX_MEAN_MOTION_REV_PER_DAY",
    "MAX_NORAD_ID",
    "ElementSet",
    "ParseResult",
    "RecordIssue",
    "Severity",
    "compute_checksum",
    "element_range_errors",
    "parse_alpha5",
    "parse_tle_text",
    "sgp4_error_text",
]

Severity = Literal["error", "warning"]

#: Above ~17 rev/day the perigee would be inside the atmosphere: no such orbit survives.
MAX_MEAN_MOTION_REV_PER_DAY = 17.0
#: The largest catalogue number five TLE columns can carry (Alpha-5 ``Z9999``).
MAX_NORAD_ID = 339_999

_LINE_LENGTH = 69
# More faults than this in one line almost always mean a shifted line; listing every
# column then only hides the first, most useful message.
_MAX_FAULTS_PER_LINE = 4


@dataclass(frozen=True)
class ElementSet:
    """One validated element set with its initialised sgp4 record."""

    line: int
    """1-based position of the record: its first file line (TLE), CSV line or JSON index."""
    norad_id: int
    name: str
    epoch: datetime
    """Epoch of the elements, aware UTC."""
    satrec: Satrec
    line1: str | None
    line2: str | None
    warnings: tuple[str, ...] = ()
    """Non-fatal remarks about this record (e.g. ignored trailing text)."""


@dataclass(frozen=True)
class RecordIssue:
    """A problem found while parsing, not yet tied to a source name."""

    severity: Severity
    line: int | None
    norad_id: int | None
    name: str | None
    reason: str


@dataclass
class ParseResult:
    """What a parser returns: the good element sets and every problem it found."""

    elements: list[ElementSet] = field(default_factory=list)
    issues: list[RecordIssue] = field(default_factory=list)


def compute_checksum(line: str) -> int:
    """Return the NORAD checksum of the first 68 columns: digits summed, '-' counts 1, mod 10."""
    total = 0
    for char in line[: _LINE_LENGTH - 1]:
        if char.isdigit():
            total += int(char)
        elif char == "-":
            total += 1
    return total % 10


_ALPHA5_RE = re.compile(r"[0-9]{5}|[A-HJ-NP-Z][0-9]{4}")


def parse_alpha5(field_text: str) -> int:
    """Decode a five-column catalogue number (digits or Alpha-5 like ``A0001``) to an int."""
    if not _ALPHA5_RE.fullmatch(field_text):
        raise ValueError(
            f"catalogue number {field_text!r} is not 5 digits or an Alpha-5 number "
            "(a letter A-Z without I and O, then 4 digits)"
        )
    first = field_text[0]
    if first.isdigit():
        return int(field_text)
    # Alpha-5: A=10 .. Z=33, skipping I and O so they cannot be confused with 1 and 0.
    value = ord(first) - ord("A") + 10
    value -= first > "I"
    value -= first > "O"
    return value * 10_000 + int(field_text[1:])


@dataclass(frozen=True)
class _Field:
    start: int  # 1-based first column
    end: int  # 1-based last column
    label: str
    pattern: re.Pattern[str]
    expected: str


def _f(start: int, end: int, label: str, pattern: str, expected: str) -> _Field:
    return _Field(start, end, label, re.compile(pattern), expected)


_BLANK = r" "
_EXPONENT = r"[ +-][0-9]{5}[+-][0-9]"
_EXPONENT_TEXT = "a sign or blank, 5 digits, a sign and 1 exponent digit like ' 12345-3'"
_ANGLE = r" {0,2}[0-9]{1,3}\.[0-9]{4}"
_ANGLE_TEXT = "a right-aligned number with 4 decimals like ' 51.6416'"

_LINE1_FIELDS = (
    _f(2, 2, "separator", _BLANK, "a blank"),
    _f(3, 7, "catalogue number", _ALPHA5_RE.pattern, "5 digits or Alpha-5 like 'A0001'"),
    _f(8, 8, "classification", r"[UCS]", "U, C or S"),
    _f(9, 9, "separator", _BLANK, "a blank"),
    _f(
        10,
        17,
        "international designator",
        r"[0-9]{5}[A-Z]{1,3} *| {8}",
        "YYNNNPPP like '98067A  ' or all blank",
    ),
    _f(18, 18, "separator", _BLANK, "a blank"),
    _f(19, 32, "epoch", r"[0-9]{5}\.[0-9]{8}", "YYDDD.DDDDDDDD"),
    _f(33, 33, "separator", _BLANK, "a blank"),
    _f(
        34,
        43,
        "first derivative of mean motion",
        r"[ +-]\.[0-9]{8}",
        "a sign or blank, '.', 8 digits",
    ),
    _f(44, 44, "separator", _BLANK, "a blank"),
    _f(45, 52, "second derivative of mean motion", _EXPONENT, _EXPONENT_TEXT),
    _f(53, 53, "separator", _BLANK, "a blank"),
    _f(54, 61, "BSTAR drag term", _EXPONENT, _EXPONENT_TEXT),
    _f(62, 62, "separator", _BLANK, "a blank"),
    _f(63, 63, "ephemeris type", r"[0-9]", "a digit"),
    _f(64, 64, "separator", _BLANK, "a blank"),
    _f(65, 68, "element set number", r" {0,3}[0-9]{1,4}", "a right-aligned number up to 9999"),
    _f(69, 69, "checksum", r"[0-9]", "a digit"),
)

_LINE2_FIELDS = (
    _f(2, 2, "separator", _BLANK, "a blank"),
    _f(3, 7, "catalogue number", _ALPHA5_RE.pattern, "5 digits or Alpha-5 like 'A0001'"),
    _f(8, 8, "separator", _BLANK, "a blank"),
    _f(9, 16, "inclination", _ANGLE, _ANGLE_TEXT),
    _f(17, 17, "separator", _BLANK, "a blank"),
    _f(18, 25, "right ascension of the ascending node", _ANGLE, _ANGLE_TEXT),
    _f(26, 26, "separator", _BLANK, "a blank"),
    _f(27, 33, "eccentricity", r"[0-9]{7}", "7 digits after an assumed leading '0.'"),
    _f(34, 34, "separator", _BLANK, "a blank"),
    _f(35, 42, "argument of perigee", _ANGLE, _ANGLE_TEXT),
    _f(43, 43, "separator", _BLANK, "a blank"),
    _f(44, 51, "mean anomaly", _ANGLE, _ANGLE_TEXT),
    _f(52, 52, "separator", _BLANK, "a blank"),
    _f(
        53,
        63,
        "mean motion",
        r" ?[0-9]{1,2}\.[0-9]{8}",
        "a right-aligned number with 8 decimals like '15.50103472'",
    ),
    _f(64, 68, "revolution number", r" {0,4}[0-9]{1,5}", "a right-aligned number up to 99999"),
    _f(69, 69, "checksum", r"[0-9]", "a digit"),
)


def _cols(text: str, start: int, end: int) -> str:
    return text[start - 1 : end]


def _line_faults(which: int, text: str) -> list[str]:
    """Return every layout fault of TLE line ``which`` (1 or 2); empty when the line is sound."""
    for col, char in enumerate(text, start=1):
        if not char.isascii() or not char.isprintable():
            return [f"line {which} contains the character {char!r} at column {col}"]
    if len(text) < _LINE_LENGTH:
        return [
            f"line {which} is {len(text)} characters long, expected {_LINE_LENGTH} (truncated?)"
        ]
    faults: list[str] = []
    fields = _LINE1_FIELDS if which == 1 else _LINE2_FIELDS
    for spec in fields:
        value = _cols(text, spec.start, spec.end)
        if spec.pattern.fullmatch(value):
            continue
        where = f"col {spec.start}" if spec.start == spec.end else f"cols {spec.start}-{spec.end}"
        faults.append(f"line {which} {where} ({spec.label}) is {value!r}, expected {spec.expected}")
    if len(faults) > _MAX_FAULTS_PER_LINE:
        more = len(faults) - _MAX_FAULTS_PER_LINE
        faults = [*faults[:_MAX_FAULTS_PER_LINE], f"line {which}: {more} more column faults"]
    if not faults:
        stated = int(text[_LINE_LENGTH - 1])
        computed = compute_checksum(text)
        if stated != computed:
            faults.append(f"line {which} checksum is {stated}, computed {computed}")
    return faults


def element_range_errors(
    *,
    inclination_deg: float,
    raan_deg: float,
    eccentricity: float,
    argp_deg: float,
    mean_anomaly_deg: float,
    mean_motion_rev_per_day: float,
    label: Callable[[str], str] = lambda name: name,
) -> list[str]:
    """Return a message for every element outside its physical range.

    ``label`` maps the internal names (``inclination``, ``eccentricity``, ...) to the
    names the user's input used (e.g. ``INCLINATION`` for OMM).
    """
    faults: list[str] = []
    if not 0.0 <= inclination_deg <= 180.0:
        faults.append(f"{label('inclination')} {inclination_deg:g} deg is outside 0..180 deg")
    for name, value in (
        ("right ascension of the ascending node", raan_deg),
        ("argument of perigee", argp_deg),
        ("mean anomaly", mean_anomaly_deg),
    ):
        # 360 itself is allowed: a value like 359.99996 rounds to 360.0000 in 4 decimals.
        if not 0.0 <= value <= 360.0:
            faults.append(f"{label(name)} {value:g} deg is outside 0..360 deg")
    if not 0.0 <= eccentricity < 1.0:
        faults.append(
            f"{label('eccentricity')} {eccentricity:g} is outside [0, 1) "
            "(sgp4 handles closed orbits only)"
        )
    if not 0.0 < mean_motion_rev_per_day < MAX_MEAN_MOTION_REV_PER_DAY:
        if mean_motion_rev_per_day <= 0.0:
            why = "it must be positive"
        else:
            why = "an orbit that fast would have its perigee inside the atmosphere"
        faults.append(
            f"{label('mean motion')} {mean_motion_rev_per_day:g} rev/day is outside "
            f"(0, {MAX_MEAN_MOTION_REV_PER_DAY:g}): {why}"
        )
    return faults


def _epoch_from_tle(field_text: str) -> tuple[datetime | None, str | None]:
    """Return the aware UTC epoch of a YYDDD.DDDDDDDD field, or an error message."""
    two_digit_year = int(field_text[:2])
    # The NORAD convention: 57..99 are 1957..1999 (Sputnik), 00..56 are 2000..2056.
    year = two_digit_year + (1900 if two_digit_year >= 57 else 2000)
    day_of_year = float(field_text[2:])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days_in_year = 366 if leap else 365
    if not 1.0 <= day_of_year < days_in_year + 1:
        return None, (
            f"epoch day of year {field_text[2:]} is outside 1..{days_in_year}.99999999 for {year}"
        )
    start = datetime(year, 1, 1, tzinfo=UTC)
    return start + timedelta(days=day_of_year - 1.0), None


def sgp4_error_text(code: int) -> str:
    """Return sgp4's own description of an error code, with the code."""
    meaning = SGP4_ERRORS.get(code, "unknown sgp4 error")
    return f"sgp4 error {code} ({meaning})"


def _build(
    line_no: int, name: str | None, line1: str, line2: str
) -> tuple[ElementSet | None, RecordIssue | None]:
    """Validate one record's two lines; return the element set or the one error issue."""
    id1 = _try_norad_id(line1)
    norad_id = id1 if id1 is not None else _try_norad_id(line2)

    def fail(reasons: list[str]) -> tuple[None, RecordIssue]:
        return None, RecordIssue("error", line_no, norad_id, name, "; ".join(reasons))

    faults = _line_faults(1, line1) + _line_faults(2, line2)
    if faults:
        return fail(faults)
    id2 = _try_norad_id(line2)
    if id1 != id2:
        return fail([f"catalogue number differs between lines: line 1 has {id1}, line 2 has {id2}"])
    assert id1 is not None  # both fields matched the catalogue-number pattern above

    epoch, epoch_fault = _epoch_from_tle(_cols(line1, 19, 32))
    if epoch is None:
        return fail([epoch_fault or "bad epoch"])
    faults = element_range_errors(
        inclination_deg=float(_cols(line2, 9, 16)),
        raan_deg=float(_cols(line2, 18, 25)),
        eccentricity=float("0." + _cols(line2, 27, 33)),
        argp_deg=float(_cols(line2, 35, 42)),
        mean_anomaly_deg=float(_cols(line2, 44, 51)),
        mean_motion_rev_per_day=float(_cols(line2, 53, 63)),
    )
    if faults:
        return fail(faults)

    core1, core2 = line1[:_LINE_LENGTH], line2[:_LINE_LENGTH]
    try:
        satrec = Satrec.twoline2rv(core1, core2)
    except (ValueError, RuntimeError) as exc:  # pragma: no cover - our checks run first
        return fail([f"sgp4 could not read the lines: {exc}"])
    if satrec.error:
        return fail([f"sgp4 rejected the elements: {sgp4_error_text(int(satrec.error))}"])

    warnings = tuple(
        f"line {which} has {len(text) - _LINE_LENGTH} characters after column "
        f"{_LINE_LENGTH} (ignored): {text[_LINE_LENGTH:].strip()!r}"
        for which, text in ((1, line1), (2, line2))
        if len(text) > _LINE_LENGTH
    )
    element_set = ElementSet(
        line=line_no,
        norad_id=id1,
        name=name if name else f"NORAD {id1}",
        epoch=epoch,
        satrec=satrec,
        line1=core1,
        line2=core2,
        warnings=warnings,
    )
    return element_set, None


def _try_norad_id(line: str) -> int | None:
    try:
        return parse_alpha5(_cols(line, 3, 7))
    except ValueError:
        return None


def _is_line1(text: str) -> bool:
    return text.startswith("1 ")


def _is_line2(text: str) -> bool:
    return text.startswith("2 ")


def _clean_name(text: str) -> str:
    # 3LE files (space-track) prefix the name with "0 "; the name itself is the rest.
    if text.startswith("0 "):
        text = text[2:]
    return text.strip()


def _content_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text without trailing whitespace) of non-blank lines."""
    if text.startswith("\ufeff"):  # a byte-order mark left by some Windows editors
        text = text[1:]
    # splitlines() would also split at form feeds and other separators; TLE files only use
    # LF or CRLF, and a stray CR is stripped with the trailing whitespace.
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.rstrip()
        if not stripped or stripped.startswith("#"):
            continue
        yield number, stripped


def _uses_name_lines(lines: list[tuple[int, str]]) -> bool:
    """Tell whether most records in the file carry a name line (3-line format)."""
    named = unnamed = 0
    for index, (_, text) in enumerate(lines):
        if not (_is_line1(text) and index + 1 < len(lines) and _is_line2(lines[index + 1][1])):
            continue
        previous = lines[index - 1][1] if index > 0 else None
        if previous is not None and not _is_line1(previous) and not _is_line2(previous):
            named += 1
        else:
            unnamed += 1
    return named >= unnamed and named > 0


def parse_tle_text(text: str) -> ParseResult:
    """Parse a 2-line or 3-line TLE file's text into element sets and issues."""
    lines = list(_content_lines(text))
    named_file = _uses_name_lines(lines)
    result = ParseResult()
    issue = result.issues.append
    pending: tuple[int, str] | None = None  # a name line waiting for its TLE lines
    index = 0
    while index < len(lines):
        number, line = lines[index]
        if _is_line1(line):
            first_line = pending[0] if pending else number
            name = _clean_name(pending[1]) if pending else None
            pending = None
            if index + 1 < len(lines) and _is_line2(lines[index + 1][1]):
                element_set, error = _build(first_line, name, line, lines[index + 1][1])
                if element_set is not None:
                    result.elements.append(element_set)
                if error is not None:
                    issue(error)
                index += 2
            else:
                following = (
                    f"line {lines[index + 1][0]} is not a TLE line 2"
                    if index + 1 < len(lines)
                    else "the file ends"
                )
                issue(
                    RecordIssue(
                        "error",
                        first_line,
                        _try_norad_id(line),
                        name,
                        f"line 2 is missing: {following} after line 1 (file line {number})",
                    )
                )
                index += 1
            continue
        if _is_line2(line):
            if pending:
                issue(
                    RecordIssue(
                        "error",
                        pending[0],
                        _try_norad_id(line),
                        _clean_name(pending[1]),
                        f"line 1 is missing: the name line is followed by line 2 (file line "
                        f"{number})",
                    )
                )
            else:
                issue(
                    RecordIssue(
                        "error",
                        number,
                        _try_norad_id(line),
                        None,
                        "line 2 without a preceding line 1",
                    )
                )
            pending = None
            index += 1
            continue
        if not named_file:
            issue(
                RecordIssue(
                    "error",
                    number,
                    None,
                    None,
                    f"not a TLE line (this file has no name lines): {line[:40]!r}",
                )
            )
        elif pending:
            issue(_orphan_name(pending, f"followed by another non-TLE line (file line {number})"))
            pending = (number, line)
        else:
            pending = (number, line)
        index += 1
    if pending:
        issue(_orphan_name(pending, "at the end of the file"))
    return result


def _orphan_name(pending: tuple[int, str], why: str) -> RecordIssue:
    number, text = pending
    return RecordIssue(
        "error",
        number,
        None,
        None,
        f"{text[:40]!r} is neither a TLE line nor a name line followed by line 1: {why}",
    )
