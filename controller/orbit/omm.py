"""Parser for CelesTrak / Space-Track GP data as OMM (Orbit Mean-Elements Message) JSON and CSV.

Both formats carry the same keys (JSON object keys, CSV header names). Every record is
checked field by field before sgp4 sees it: a missing or empty field, a value that is not a
number (or not an integer where one is required), a non-finite number, or a value outside
its range each gets a message naming the field and the value. Values may be JSON numbers or
numeric strings (Space-Track sends strings; CSV has nothing else).

The sgp4 record is built with ``Satrec.sgp4init`` from the validated values, converted
exactly as ``sgp4.omm.initialize`` does, rather than by calling that helper: it indexes the
dict blindly and accepts only one epoch spelling, so its errors would be bare tracebacks.

Record positions (``ElementSet.line`` / ``RecordIssue.line``): for CSV the 1-based file line
where the row starts (the header is line 1); for JSON the 1-based index of the object in the
top-level array.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from math import pi

from sgp4.api import WGS72, Satrec

from controller.orbit.tle import (
    MAX_NORAD_ID,
    ElementSet,
    ParseResult,
    RecordIssue,
    element_range_errors,
    sgp4_error_text,
)

__all__ = ["REQUIRED_FIELDS", "parse_omm_csv", "parse_omm_json", "parse_omm_record"]

#: Every field a GP record must carry (CelesTrak's GP JSON/CSV column names).
REQUIRED_FIELDS = (
    "OBJECT_NAME",
    "OBJECT_ID",
    "EPOCH",
    "MEAN_MOTION",
    "ECCENTRICITY",
    "INCLINATION",
    "RA_OF_ASC_NODE",
    "ARG_OF_PERICENTER",
    "MEAN_ANOMALY",
    "EPHEMERIS_TYPE",
    "CLASSIFICATION_TYPE",
    "NORAD_CAT_ID",
    "ELEMENT_SET_NO",
    "REV_AT_EPOCH",
    "BSTAR",
    "MEAN_MOTION_DOT",
    "MEAN_MOTION_DDOT",
)

# Unit conversions of sgp4.omm / SGP4.cpp: OMM carries rev/day, rev/day^2 (/2) and
# rev/day^3 (/6); sgp4init wants rad/min and rad/min^2, rad/min^3.
_DEG_TO_RAD = pi / 180.0
_NDOT_UNITS = 1036800.0 / pi
_NDDOT_UNITS = 2985984000.0 / 2.0 / pi
_SGP4_EPOCH_ZERO = datetime(1949, 12, 31, tzinfo=UTC)
_SECONDS_PER_DAY = 86400.0

_EPOCH_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?Z?",
)
_OBJECT_ID_RE = re.compile(r"([0-9]{4})-([0-9]{3}[A-Z]{1,3})")
# Plain ASCII decimal numbers only: float() would also take "1_000", "infinity" or Arabic digits.
_NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")


class _FieldError(Exception):
    """One field of one record is unusable; the message names field, value and rule."""


def _raw(fields: Mapping[str, object], key: str) -> object:
    if key not in fields:
        raise _FieldError(f"missing field {key}")
    value = fields[key]
    if value is None:
        raise _FieldError(f"field {key} is null")
    if isinstance(value, str) and not value.strip():
        raise _FieldError(f"field {key} is empty")
    return value


def _number(fields: Mapping[str, object], key: str) -> float:
    value = _raw(fields, key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _FieldError(f"field {key} is {value!r}, not a number")
    if isinstance(value, str) and not _NUMBER_RE.fullmatch(value.strip()):
        raise _FieldError(f"field {key} is {value!r}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise _FieldError(f"field {key} is {value!r}, not a finite number")
    return number


def _integer(fields: Mapping[str, object], key: str, low: int, high: int | None) -> int:
    value = _raw(fields, key)
    allowed = f"{low}..{high}" if high is not None else f">= {low}"
    if isinstance(value, bool):
        raise _FieldError(f"field {key} is {value!r}, not an integer")
    if isinstance(value, int):
        number = value
    elif (isinstance(value, str) and _INTEGER_RE.fullmatch(value.strip())) or (
        isinstance(value, float) and value.is_integer()
    ):
        number = int(value)
    else:
        raise _FieldError(f"field {key} is {value!r}, not an integer")
    if number < low or (high is not None and number > high):
        raise _FieldError(f"field {key} is {number}, allowed {allowed}")
    return number


def _text(fields: Mapping[str, object], key: str) -> str:
    value = _raw(fields, key)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise _FieldError(f"field {key} is {value!r}, not text")
    return str(value).strip()


def _epoch(fields: Mapping[str, object]) -> tuple[datetime, float]:
    """Return (aware UTC epoch, days since 1949-12-31 00:00 UTC as sgp4init wants)."""
    text = _text(fields, "EPOCH")
    match = _EPOCH_RE.fullmatch(text)
    if match is None:
        raise _FieldError(
            f"field EPOCH is {text!r}, expected ISO 8601 UTC like 2024-03-01T12:34:56.789012"
        )
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction_s = float(match.group(7) or 0.0)
    try:
        whole = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise _FieldError(f"field EPOCH is {text!r}, not a valid UTC time: {exc}") from None
    # Days from the float seconds directly, so digits beyond microseconds still reach sgp4.
    delta = whole - _SGP4_EPOCH_ZERO
    epoch_days = delta.days + (delta.seconds + fraction_s) / _SECONDS_PER_DAY
    return whole + timedelta(seconds=fraction_s), epoch_days


def _intldesg(object_id: str) -> tuple[str, str | None]:
    """Return the TLE-style designator ('98067A') and a warning when the id is unusable."""
    match = _OBJECT_ID_RE.fullmatch(object_id)
    if match is None:
        return "", (
            f"OBJECT_ID {object_id!r} is not a COSPAR id like 1998-067A; "
            "the international designator is left blank"
        )
    return match.group(1)[2:] + match.group(2), None


class _Reader:
    """Reads typed fields of one record, collecting every fault instead of stopping at one."""

    def __init__(self, fields: Mapping[str, object]) -> None:
        self.fields = fields
        self.faults: list[str] = []

    def number(self, key: str) -> float | None:
        try:
            return _number(self.fields, key)
        except _FieldError as exc:
            self.faults.append(str(exc))
            return None

    def integer(self, key: str, low: int, high: int | None) -> int | None:
        try:
            return _integer(self.fields, key, low, high)
        except _FieldError as exc:
            self.faults.append(str(exc))
            return None

    def text(self, key: str) -> str | None:
        try:
            return _text(self.fields, key)
        except _FieldError as exc:
            self.faults.append(str(exc))
            return None

    def epoch(self) -> tuple[datetime, float] | None:
        try:
            return _epoch(self.fields)
        except _FieldError as exc:
            self.faults.append(str(exc))
            return None


_RANGE_LABELS = {
    "inclination": "INCLINATION",
    "right ascension of the ascending node": "RA_OF_ASC_NODE",
    "eccentricity": "ECCENTRICITY",
    "argument of perigee": "ARG_OF_PERICENTER",
    "mean anomaly": "MEAN_ANOMALY",
    "mean motion": "MEAN_MOTION",
}


def parse_omm_record(
    fields: Mapping[str, object], line: int
) -> tuple[ElementSet | None, RecordIssue | None]:
    """Validate one OMM record (a JSON object or a CSV row as a mapping).

    Returns the element set, or ``None`` and one error issue that names every unusable
    field of the record.
    """
    read = _Reader(fields)
    norad_id = read.integer("NORAD_CAT_ID", 0, MAX_NORAD_ID)
    name = read.text("OBJECT_NAME")
    object_id = read.text("OBJECT_ID")
    epoch = read.epoch()
    mean_motion = read.number("MEAN_MOTION")
    eccentricity = read.number("ECCENTRICITY")
    inclination = read.number("INCLINATION")
    raan = read.number("RA_OF_ASC_NODE")
    argp = read.number("ARG_OF_PERICENTER")
    mean_anomaly = read.number("MEAN_ANOMALY")
    bstar = read.number("BSTAR")
    ndot = read.number("MEAN_MOTION_DOT")
    nddot = read.number("MEAN_MOTION_DDOT")
    ephemeris_type = read.integer("EPHEMERIS_TYPE", 0, 9)
    classification = read.text("CLASSIFICATION_TYPE")
    element_set_no = read.integer("ELEMENT_SET_NO", 0, 9999)
    rev_at_epoch = read.integer("REV_AT_EPOCH", 0, None)
    faults = read.faults
    if classification is not None and classification not in ("U", "C", "S"):
        faults.append(f"field CLASSIFICATION_TYPE is {classification!r}, allowed U, C or S")

    def fail(reasons: list[str]) -> tuple[None, RecordIssue]:
        return None, RecordIssue("error", line, norad_id, name or None, "; ".join(reasons))

    if (
        faults
        or norad_id is None
        or name is None
        or object_id is None
        or epoch is None
        or mean_motion is None
        or eccentricity is None
        or inclination is None
        or raan is None
        or argp is None
        or mean_anomaly is None
        or bstar is None
        or ndot is None
        or nddot is None
        or ephemeris_type is None
        or classification is None
        or element_set_no is None
        or rev_at_epoch is None
    ):
        return fail(faults)
    faults = element_range_errors(
        inclination_deg=inclination,
        raan_deg=raan,
        eccentricity=eccentricity,
        argp_deg=argp,
        mean_anomaly_deg=mean_anomaly,
        mean_motion_rev_per_day=mean_motion,
        label=lambda key: _RANGE_LABELS[key],
    )
    if faults:
        return fail(faults)

    epoch_utc, epoch_days = epoch
    intldesg, designator_warning = _intldesg(object_id)
    satrec = Satrec()
    satrec.sgp4init(
        WGS72,
        "i",
        norad_id,
        epoch_days,
        bstar,
        ndot / _NDOT_UNITS,
        nddot / _NDDOT_UNITS,
        eccentricity,
        argp * _DEG_TO_RAD,
        inclination * _DEG_TO_RAD,
        mean_anomaly * _DEG_TO_RAD,
        mean_motion / 720.0 * pi,
        raan * _DEG_TO_RAD,
    )
    if satrec.error:
        return fail([f"sgp4 rejected the elements: {sgp4_error_text(int(satrec.error))}"])
    # Metadata sgp4init does not take; set so sgp4.exporter can write the TLE back.
    satrec.classification = classification
    satrec.intldesg = intldesg
    satrec.ephtype = ephemeris_type
    satrec.elnum = element_set_no
    satrec.revnum = rev_at_epoch
    element_set = ElementSet(
        line=line,
        norad_id=norad_id,
        name=name or f"NORAD {norad_id}",
        epoch=epoch_utc,
        satrec=satrec,
        line1=None,
        line2=None,
        warnings=(designator_warning,) if designator_warning else (),
    )
    return element_set, None


def _collect(result: ParseResult, outcome: tuple[ElementSet | None, RecordIssue | None]) -> None:
    element_set, issue = outcome
    if element_set is not None:
        result.elements.append(element_set)
    if issue is not None:
        result.issues.append(issue)


def parse_omm_json(text: str) -> ParseResult:
    """Parse GP/OMM JSON: an array of objects (a single object is accepted too)."""
    result = ParseResult()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        result.issues.append(
            RecordIssue(
                "error",
                exc.lineno,
                None,
                None,
                f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            )
        )
        return result
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        result.issues.append(
            RecordIssue(
                "error",
                None,
                None,
                None,
                f"JSON top level is {type(data).__name__}, expected an array of GP objects",
            )
        )
        return result
    for index, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            result.issues.append(
                RecordIssue(
                    "error",
                    index,
                    None,
                    None,
                    f"record {index} is {type(item).__name__}, expected a GP object",
                )
            )
            continue
        _collect(result, parse_omm_record(item, index))
    return result


def parse_omm_csv(text: str) -> ParseResult:
    """Parse GP/OMM CSV: a header row of field names, then one row per element set."""
    result = ParseResult()
    if text.startswith("\ufeff"):  # a byte-order mark left by spreadsheet exports
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 0
    previous_line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.issues.append(
                RecordIssue("error", reader.line_num, None, None, f"CSV syntax error: {exc}")
            )
            previous_line = reader.line_num
            continue
        first_line, previous_line = previous_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            header_line = first_line
            missing = [key for key in REQUIRED_FIELDS if key not in header]
            if missing:
                result.issues.append(
                    RecordIssue(
                        "error",
                        header_line,
                        None,
                        None,
                        f"CSV header lacks the columns {', '.join(missing)}; no row can be read",
                    )
                )
                return result
            continue
        if len(row) != len(header):
            # The columns may be shifted, so the id and name are only a best guess.
            id_column, name_column = header.index("NORAD_CAT_ID"), header.index("OBJECT_NAME")
            norad = row[id_column].strip() if id_column < len(row) else ""
            result.issues.append(
                RecordIssue(
                    "error",
                    first_line,
                    int(norad) if norad.isdigit() else None,
                    row[name_column].strip() or None if name_column < len(row) else None,
                    f"row has {len(row)} values but the header (line {header_line}) has "
                    f"{len(header)} columns",
                )
            )
            continue
        _collect(result, parse_omm_record(dict(zip(header, row, strict=True)), first_line))
    if header is None:
        result.issues.append(RecordIssue("error", None, None, None, "CSV has no header row"))
    return result
