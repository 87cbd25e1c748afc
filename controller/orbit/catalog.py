"""The validated satellite catalog: element sets from TLE and OMM files keyed by NORAD id.

Building a catalog never raises for bad input data. Every record that cannot be used
becomes a :class:`CatalogProblem` (severity ``"error"``, record dropped) and every doubt
about a kept record a problem of severity ``"warning"``; the good records are kept.

Beyond the format checks of :mod:`controller.orbit.tle` and :mod:`controller.orbit.omm`,
each element set is propagated once at its epoch and, when ``now`` is given, once at
``now``; an sgp4 error code there (e.g. 6, decayed) is an error and the satellite is left
out. An epoch more than ``stale_after_days`` before ``now`` is a warning (the satellite is
kept), as is an epoch more than a day after ``now``. Without ``now`` those time checks are
skipped: the catalog never reads the system clock.

A NORAD id seen twice (in one file or across files, or by :meth:`Catalog.merged`) keeps
the element set with the newer epoch (the first one on a tie) and reports the dropped
one as a warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sgp4.api import Satrec, jday

from controller.orbit.omm import parse_omm_csv, parse_omm_json
from controller.orbit.tle import ElementSet, ParseResult, Severity, parse_tle_text, sgp4_error_text

__all__ = [
    "DEEP_SPACE_PERIOD_MIN",
    "FUTURE_EPOCH_TOLERANCE_DAYS",
    "Catalog",
    "CatalogEntry",
    "CatalogFormat",
    "CatalogProblem",
    "detect_format",
]

CatalogFormat = Literal["tle", "omm-json", "omm-csv"]

#: sgp4 switches to the deep-space (SDP4) theory for periods of 225 minutes or more.
DEEP_SPACE_PERIOD_MIN = 225.0
#: An epoch this far after ``now`` means a wrong clock or a wrong file: warn.
FUTURE_EPOCH_TOLERANCE_DAYS = 1.0

_SECONDS_PER_DAY = 86400.0
_SUFFIX_FORMATS: dict[str, CatalogFormat] = {
    ".tle": "tle",
    ".txt": "tle",
    ".2le": "tle",
    ".3le": "tle",
    ".json": "omm-json",
    ".csv": "omm-csv",
}


@dataclass(frozen=True)
class CatalogProblem:
    """One error (record dropped) or warning (record kept) found while building a catalog.

    ``line`` is the 1-based file line where the record starts: the name line of a 3-line
    TLE, the first line of a CSV row; for OMM JSON it is the 1-based index in the array.
    """

    severity: Severity
    source: str
    line: int | None
    norad_id: int | None
    name: str | None
    reason: str

    def __str__(self) -> str:
        """Format as ``source:line: NAME [id]: reason``, leaving out what is unknown."""
        parts = [self.source if self.line is None else f"{self.source}:{self.line}"]
        # The placeholder name of an unnamed 2-line record would only repeat the id.
        name = None if self.name == f"NORAD {self.norad_id}" else self.name
        if name and self.norad_id is not None:
            parts.append(f"{name} [{self.norad_id}]")
        elif name:
            parts.append(name)
        elif self.norad_id is not None:
            parts.append(f"[{self.norad_id}]")
        parts.append(self.reason)
        return ": ".join(parts)


@dataclass(frozen=True)
class CatalogEntry:
    """One satellite's validated element set and its initialised sgp4 record."""

    norad_id: int
    name: str
    epoch: datetime
    """Epoch of the elements, aware UTC."""
    source: str
    satrec: Satrec
    line1: str | None
    """TLE line 1 (69 columns), ``None`` for OMM-only records."""
    line2: str | None
    line: int | None = None
    """Where the record starts in ``source`` (same meaning as ``CatalogProblem.line``)."""

    @property
    def period_min(self) -> float:
        """Orbital period in minutes from the (Kozai) mean motion."""
        return 2.0 * math.pi / float(self.satrec.no_kozai)

    @property
    def deep_space(self) -> bool:
        """True when sgp4 propagates this orbit with the deep-space theory (period >= 225 min)."""
        return bool(self.satrec.method == "d")

    def age_days(self, now: datetime) -> float:
        """Days from the epoch to ``now`` (negative when the epoch is in the future)."""
        now_utc = _require_utc(now, "now")
        return (now_utc - self.epoch).total_seconds() / _SECONDS_PER_DAY


def _require_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware UTC datetime, got the naive {value.isoformat()}; "
            "use clock.now() or datetime(..., tzinfo=UTC)"
        )
    return value.astimezone(UTC)


def _require_days(value: float, name: str) -> float:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number of days >= 0, got {value!r}")
    return value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _julian(moment: datetime) -> tuple[float, float]:
    seconds = moment.second + moment.microsecond / 1e6
    jd, fraction = jday(moment.year, moment.month, moment.day, moment.hour, moment.minute, seconds)
    return float(jd), float(fraction)


def _sgp4_fault(satrec: Satrec, jd: float, fraction: float) -> str | None:
    """Propagate once; return why the result is unusable, or None when it is fine."""
    code, position_km, velocity_km_s = satrec.sgp4(jd, fraction)
    if code:
        return sgp4_error_text(int(code))
    if not all(math.isfinite(x) for x in (*position_km, *velocity_km_s)):
        return "sgp4 returned a non-finite position or velocity"
    return None


def _admit(
    element_set: ElementSet, source: str, now: datetime | None, stale_after_days: float
) -> tuple[CatalogEntry | None, list[CatalogProblem]]:
    """Run the propagation-health and epoch-age checks on one parsed element set."""

    def problem(severity: Severity, reason: str) -> CatalogProblem:
        return CatalogProblem(
            severity, source, element_set.line, element_set.norad_id, element_set.name, reason
        )

    satrec = element_set.satrec
    epoch_text = _iso(element_set.epoch)
    fault = _sgp4_fault(satrec, float(satrec.jdsatepoch), float(satrec.jdsatepochF))
    if fault:
        return None, [problem("error", f"{fault} at the epoch {epoch_text}")]
    problems = [problem("warning", text) for text in element_set.warnings]
    if now is not None:
        age_days = (now - element_set.epoch).total_seconds() / _SECONDS_PER_DAY
        fault = _sgp4_fault(satrec, *_julian(now))
        if fault:
            return None, [
                problem(
                    "error",
                    f"{fault} at {_iso(now)}, {age_days:.2f} days after the epoch {epoch_text}",
                )
            ]
        if age_days > stale_after_days:
            problems.append(
                problem(
                    "warning",
                    f"epoch {epoch_text} is {age_days:.2f} days old at {_iso(now)} "
                    f"(stale after {stale_after_days:g} days)",
                )
            )
        elif age_days < -FUTURE_EPOCH_TOLERANCE_DAYS:
            problems.append(
                problem(
                    "warning",
                    f"epoch {epoch_text} is {-age_days:.2f} days after {_iso(now)} "
                    f"(more than {FUTURE_EPOCH_TOLERANCE_DAYS:g} day in the future)",
                )
            )
    entry = CatalogEntry(
        norad_id=element_set.norad_id,
        name=element_set.name,
        epoch=element_set.epoch,
        source=source,
        satrec=satrec,
        line1=element_set.line1,
        line2=element_set.line2,
        line=element_set.line,
    )
    return entry, problems


def _build(
    result: ParseResult, source: str, now: datetime | None, stale_after_days: float
) -> tuple[list[CatalogEntry], list[CatalogProblem]]:
    entries: list[CatalogEntry] = []
    problems = [
        CatalogProblem(i.severity, source, i.line, i.norad_id, i.name, i.reason)
        for i in result.issues
    ]
    for element_set in result.elements:
        entry, found = _admit(element_set, source, now, stale_after_days)
        problems.extend(found)
        if entry is not None:
            entries.append(entry)
    # File-level problems (no line) first, then in file order; sort() is stable.
    problems.sort(key=lambda p: -1 if p.line is None else p.line)
    return entries, problems


def _parse(text: str, fmt: CatalogFormat) -> ParseResult:
    if fmt == "tle":
        return parse_tle_text(text)
    if fmt == "omm-json":
        return parse_omm_json(text)
    if fmt == "omm-csv":
        return parse_omm_csv(text)
    raise ValueError(f"unknown catalog format {fmt!r}; use 'tle', 'omm-json' or 'omm-csv'")


def detect_format(path: Path, text: str) -> CatalogFormat:
    """Choose the parser for a file: by extension, else by sniffing the content."""
    by_suffix = _SUFFIX_FORMATS.get(path.suffix.lower())
    if by_suffix is not None:
        return by_suffix
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith(("[", "{")):
        return "omm-json"
    first_line = head.split("\n", 1)[0]
    if "," in first_line and "NORAD_CAT_ID" in first_line:
        return "omm-csv"
    return "tle"


class Catalog:
    """Satellites keyed by NORAD id, with every problem found while building the catalog."""

    def __init__(
        self, entries: Iterable[CatalogEntry] = (), problems: Iterable[CatalogProblem] = ()
    ) -> None:
        """Hold ``entries`` (newer epoch wins on duplicate ids, reported) and ``problems``."""
        self._problems = list(problems)
        kept: dict[int, CatalogEntry] = {}
        for entry in entries:
            self._keep_newer(kept, entry)
        self._by_id = dict(sorted(kept.items()))
        self._entries = tuple(self._by_id.values())

    def _keep_newer(self, kept: dict[int, CatalogEntry], entry: CatalogEntry) -> None:
        held = kept.get(entry.norad_id)
        if held is None:
            kept[entry.norad_id] = entry
            return
        winner, loser = (entry, held) if entry.epoch > held.epoch else (held, entry)
        kept[entry.norad_id] = winner
        where = winner.source if winner.line is None else f"{winner.source}:{winner.line}"
        why = "which is newer" if winner.epoch > loser.epoch else "same epoch, seen first"
        self._problems.append(
            CatalogProblem(
                "warning",
                loser.source,
                loser.line,
                loser.norad_id,
                loser.name,
                f"duplicate NORAD id {loser.norad_id}: this element set (epoch "
                f"{_iso(loser.epoch)}) is dropped for the one at {where} (epoch "
                f"{_iso(winner.epoch)}, {why})",
            )
        )

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        source: str = "<string>",
        fmt: CatalogFormat = "tle",
        now: datetime | None = None,
        stale_after_days: float = 14.0,
    ) -> Catalog:
        """Build a catalog from one text in the given format; ``source`` names it in problems."""
        now_utc = None if now is None else _require_utc(now, "now")
        stale = _require_days(stale_after_days, "stale_after_days")
        entries, problems = _build(_parse(text, fmt), source, now_utc, stale)
        return cls(entries, problems)

    @classmethod
    def from_files(
        cls,
        paths: Sequence[Path],
        *,
        now: datetime | None = None,
        stale_after_days: float = 14.0,
    ) -> Catalog:
        """Build one catalog from several files; an unreadable file is an error, not a raise.

        The format comes from the extension (.tle/.txt/.2le/.3le TLE, .json OMM JSON,
        .csv OMM CSV), else from the content.
        """
        now_utc = None if now is None else _require_utc(now, "now")
        stale = _require_days(stale_after_days, "stale_after_days")
        entries: list[CatalogEntry] = []
        problems: list[CatalogProblem] = []
        for raw_path in paths:
            path = Path(raw_path)
            source = str(path)
            try:
                # Undecodable bytes become U+FFFD so the record holding them is reported
                # (non-ASCII in a TLE line) instead of the whole file failing to decode.
                text = path.read_bytes().decode("utf-8", errors="replace")
            except OSError as exc:
                reason = exc.strerror or str(exc)
                problems.append(
                    CatalogProblem("error", source, None, None, None, f"cannot read: {reason}")
                )
                continue
            found_entries, found_problems = _build(
                _parse(text, detect_format(path, text)), source, now_utc, stale
            )
            entries.extend(found_entries)
            problems.extend(found_problems)
        return cls(entries, problems)

    @property
    def entries(self) -> tuple[CatalogEntry, ...]:
        """All satellites, ordered by NORAD id."""
        return self._entries

    @property
    def problems(self) -> list[CatalogProblem]:
        """Every problem found, errors and warnings, in the order found."""
        return list(self._problems)

    @property
    def errors(self) -> list[CatalogProblem]:
        """The problems whose record was dropped."""
        return [p for p in self._problems if p.severity == "error"]

    @property
    def warnings(self) -> list[CatalogProblem]:
        """The problems whose record was kept."""
        return [p for p in self._problems if p.severity == "warning"]

    def __len__(self) -> int:
        """Number of satellites."""
        return len(self._entries)

    def __iter__(self) -> Iterator[CatalogEntry]:
        """Iterate the entries in NORAD id order."""
        return iter(self._entries)

    def __contains__(self, norad_id: object) -> bool:
        """Tell whether a NORAD id is in the catalog."""
        return norad_id in self._by_id

    def __getitem__(self, norad_id: int) -> CatalogEntry:
        """Return the entry of ``norad_id``; KeyError names the id when it is absent."""
        try:
            return self._by_id[norad_id]
        except KeyError:
            raise KeyError(
                f"NORAD id {norad_id!r} is not in the catalog ({len(self)} satellites)"
            ) from None

    def get(self, norad_id: int, default: CatalogEntry | None = None) -> CatalogEntry | None:
        """Return the entry of ``norad_id`` or ``default``."""
        return self._by_id.get(norad_id, default)

    def merged(self, other: Catalog) -> Catalog:
        """Return a catalog of both; a duplicate id keeps the newer epoch and is a warning."""
        return Catalog((*self._entries, *other._entries), (*self._problems, *other._problems))

    def stale(self, now: datetime, max_age_days: float) -> list[CatalogEntry]:
        """Return the entries whose epoch is more than ``max_age_days`` before ``now``."""
        now_utc = _require_utc(now, "now")
        limit = _require_days(max_age_days, "max_age_days")
        return [entry for entry in self._entries if entry.age_days(now_utc) > limit]

    def __repr__(self) -> str:
        """Summarise sizes, e.g. ``Catalog(12 satellites, 1 errors, 2 warnings)``."""
        return (
            f"Catalog({len(self)} satellites, {len(self.errors)} errors, "
            f"{len(self.warnings)} warnings)"
        )
