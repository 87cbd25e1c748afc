"""TLE/OMM refresh: fetch the ``[catalog] urls`` into a local cache that survives restarts.

Each source (``https://``/``http://`` URL, ``file://`` URL or plain path) is fetched with a
whole-fetch deadline and a size limit, over HTTP with a conditional GET (``If-None-Match`` /
``If-Modified-Since`` from the last good response). Redirects are followed only to
``http(s)://`` and never from ``https`` down to ``http``; a body shorter than its
Content-Length is refused. What arrives is validated as a catalog
(:meth:`controller.orbit.catalog.Catalog.from_text`): content without a single usable element
set (an error page, a truncated or garbage file) is refused. Only validated content replaces
the cached copy, atomically (temporary file, fsync, rename), so the last good copy is always
on disk; a sidecar ``.meta.json`` keeps the validators and the time of the last successful
fetch over restarts.

The daemon reads ``tle_files`` plus :meth:`TleRefresher.cache_paths` into its catalog, calls
:meth:`TleRefresher.refresh` every ``daemon.tle_refresh_s`` (blocking I/O runs in the
default executor) and raises/clears the alarms of :meth:`TleRefresher.alarms`: a failing
source, no successful fetch within ``fetch_stale_after_h``, and a source whose newest epoch
is older than ``stale_after_days``.

Timestamps come from the injected clock; the network deadline runs on ``io_clock`` (the
system clock by default: it bounds real I/O).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urljoin, urlsplit

from controller import __version__
from controller.config import CatalogConfig
from controller.orbit.catalog import Catalog, CatalogFormat, detect_format
from controller.telemetry.payloads import Severity
from firmware_bridge.clock import Clock, SystemClock

__all__ = [
    "FetchOutcome",
    "FetchResult",
    "RefreshAlarm",
    "SourceStatus",
    "TleRefresher",
    "default_cache_dir",
    "source_slug",
    "sources_summary",
]

FetchOutcome = Literal["updated", "not_modified", "unchanged", "failed"]

_SUFFIX: dict[CatalogFormat, str] = {"tle": ".tle", "omm-json": ".json", "omm-csv": ".csv"}
_CHUNK_BYTES = 64 * 1024
_SECONDS_PER_HOUR = 3600.0
_SECONDS_PER_DAY = 86400.0
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5

_log = logging.getLogger(__name__)


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """$STATE_DIRECTORY/tle (systemd), $XDG_STATE_HOME/groundlink/tle or ~/.local/state/..."""
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state) / "tle"
    xdg = env.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "groundlink" / "tle"
    home = env.get("HOME")
    base = Path(home) if home else Path.home()
    return base / ".local" / "state" / "groundlink" / "tle"


def source_slug(url: str) -> str:
    """A file-name stem for a source: readable part plus a hash of the whole URL."""
    parts = urlsplit(url)
    readable = f"{parts.hostname or 'file'}-{Path(unquote(parts.path)).name}"
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", readable).strip("._-")[:60] or "source"
    return f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch of one source did."""

    url: str
    outcome: FetchOutcome
    error: str | None = None
    """Why it failed, naming the URL (None unless ``failed``)."""
    cache_path: Path | None = None
    """The good copy in use after this fetch (None: there is none yet)."""
    entries: int = 0
    """Usable element sets in the new content (0 unless ``updated``/``unchanged``)."""

    @property
    def changed(self) -> bool:
        """True when the cached copy was replaced (re-load the catalog, re-plan)."""
        return self.outcome == "updated"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What is known about one source, persisted next to its cached copy."""

    url: str
    cache_path: Path | None = None
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None
    last_success: datetime | None = None
    """Last fetch that gave (or confirmed) a good copy: 200 validated, 304, same file."""
    last_attempt: datetime | None = None
    last_error: str | None = None
    """The error of the last attempt (None when it succeeded)."""
    newest_epoch: datetime | None = None
    """Newest element-set epoch in the cached copy."""
    entries: int = 0

    def fetch_age_s(self, now: datetime) -> float | None:
        """Seconds since the last successful fetch (None: never)."""
        if self.last_success is None:
            return None
        return (now - self.last_success).total_seconds()

    def epoch_age_days(self, now: datetime) -> float | None:
        """Days since the newest epoch in the cached copy (None: no copy)."""
        if self.newest_epoch is None:
            return None
        return (now - self.newest_epoch).total_seconds() / _SECONDS_PER_DAY

    def to_json(self) -> str:
        """The persisted form (the sidecar ``.meta.json``)."""
        return json.dumps(
            {
                "url": self.url,
                "etag": self.etag,
                "last_modified": self.last_modified,
                "sha256": self.sha256,
                "last_success": _iso(self.last_success),
                "newest_epoch": _iso(self.newest_epoch),
                "entries": self.entries,
                "file": self.cache_path.name if self.cache_path else None,
            },
            indent=1,
        )


@dataclass(frozen=True, slots=True)
class RefreshAlarm:
    """An alarm the daemon raises for a source (id ``tle-source-<slug>``)."""

    severity: Severity
    message: str


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse_iso(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class _FetchError(Exception):
    """A fetch that gave no usable content; the message names the URL."""


@dataclass(frozen=True, slots=True)
class _Body:
    data: bytes | None  # None: 304 Not Modified
    etag: str | None = None
    last_modified: str | None = None


def _redirect_target(url: str, current: str, response: http.client.HTTPResponse) -> str:
    """Where a 3xx points; only http(s) targets, and never from https down to http."""
    location = response.getheader("Location")
    if not location:
        raise _FetchError(f"{url}: HTTP {response.status} redirect from {current} has no Location")
    target = urljoin(current, location.strip())
    from_scheme = urlsplit(current).scheme.lower()
    to_parts = urlsplit(target)
    to_scheme = to_parts.scheme.lower()
    if to_scheme not in ("http", "https") or not to_parts.hostname:
        why = "only http:// and https:// redirects are followed"
    elif from_scheme == "https" and to_scheme != "https":
        why = "a redirect from https to http is refused"
    else:
        return target
    raise _FetchError(f"{url}: redirect from {current} to {target} refused: {why}")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename itself survives a power cut only once the directory is synced.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class TleRefresher:
    """Fetches the ``[catalog] urls`` into ``cache_dir``; keeps the last good copy of each."""

    def __init__(
        self,
        catalog: CatalogConfig,
        *,
        clock: Clock,
        cache_dir: Path | None = None,
        io_clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Read the persisted state of every source; nothing is fetched yet."""
        self.config = catalog
        self.clock = clock
        self.io_clock: Clock = io_clock if io_clock is not None else SystemClock()
        chosen = cache_dir or catalog.cache_dir
        self.cache_dir = (
            chosen if chosen is not None else default_cache_dir(os.environ if env is None else env)
        )
        self._status: dict[str, SourceStatus] = {u: self._restore(u) for u in catalog.urls}
        self._in_flight: asyncio.Future[list[tuple[SourceStatus, FetchResult]]] | None = None

    # -- state --------------------------------------------------------------------------
    def _meta_path(self, url: str) -> Path:
        return self.cache_dir / f"{source_slug(url)}.meta.json"

    def _restore(self, url: str) -> SourceStatus:
        try:
            meta = json.loads(self._meta_path(url).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return SourceStatus(url=url)
        name = meta.get("file") if isinstance(meta, dict) else None
        if not isinstance(name, str) or meta.get("url") != url:
            return SourceStatus(url=url)
        # The sidecar is data on disk: its file name must stay this source's copy in cache_dir.
        if name != Path(name).name or not name.startswith(source_slug(url)):
            _log.warning(
                "%s: ignoring %s: its file %r is not a copy of this source in %s",
                url,
                self._meta_path(url),
                name,
                self.cache_dir,
            )
            return SourceStatus(url=url)
        path = self.cache_dir / name
        if not path.is_file():
            return SourceStatus(url=url)
        entries = meta.get("entries")
        return SourceStatus(
            url=url,
            cache_path=path,
            etag=meta.get("etag") if isinstance(meta.get("etag"), str) else None,
            last_modified=(
                meta.get("last_modified") if isinstance(meta.get("last_modified"), str) else None
            ),
            sha256=meta.get("sha256") if isinstance(meta.get("sha256"), str) else None,
            last_success=_parse_iso(meta.get("last_success")),
            newest_epoch=_parse_iso(meta.get("newest_epoch")),
            entries=entries if isinstance(entries, int) else 0,
        )

    def status(self) -> list[SourceStatus]:
        """Every source's state, in config order."""
        return [self._status[u] for u in self.config.urls]

    def cache_paths(self) -> list[Path]:
        """The good copies on disk, in config order (for ``Catalog.from_files``)."""
        return [s.cache_path for s in self.status() if s.cache_path is not None]

    def catalog_paths(self) -> list[Path]:
        """``tle_files`` followed by the cached copies: everything the catalog is built from."""
        return [*self.config.tle_files, *self.cache_paths()]

    # -- fetching -----------------------------------------------------------------------
    async def _gather(
        self, jobs: list[asyncio.Future[tuple[SourceStatus, FetchResult]]]
    ) -> list[tuple[SourceStatus, FetchResult]]:
        self._in_flight = asyncio.gather(*jobs)
        try:
            return await self._in_flight
        finally:
            self._in_flight = None

    async def fetched(self) -> None:
        """Return once no fetch is in flight.

        The fetches are real network I/O in the executor: a test stepping a virtual clock
        waits on this before each step, or it would run the clock past any deadline while
        the bytes are still on the way.
        """
        in_flight = self._in_flight
        if in_flight is not None:
            await asyncio.wait({in_flight})

    async def refresh(self) -> list[FetchResult]:
        """Fetch every source (blocking I/O in the default executor), in config order."""
        loop = asyncio.get_running_loop()
        now = self.clock.now()
        jobs = [
            loop.run_in_executor(None, self._fetch_blocking, self._status[u], now)
            for u in self.config.urls
        ]
        results: list[FetchResult] = []
        for url, (status, result) in zip(self.config.urls, await self._gather(jobs), strict=True):
            self._status[url] = status
            results.append(result)
        return results

    def _fetch_blocking(
        self, status: SourceStatus, now: datetime
    ) -> tuple[SourceStatus, FetchResult]:
        url = status.url
        attempted = replace(status, last_attempt=now)
        try:
            body = self._download(status)
            if body.data is None:  # 304: the cached copy is current
                done = replace(attempted, last_success=now, last_error=None)
                self._save_meta(done)
                return done, FetchResult(url, "not_modified", None, done.cache_path, done.entries)
            return self._accept(attempted, body, now)
        except _FetchError as exc:
            failed = replace(attempted, last_error=str(exc))
            return failed, FetchResult(url, "failed", str(exc), failed.cache_path, 0)
        except OSError as exc:  # the cache directory itself
            message = f"{url}: cannot write the cache in {self.cache_dir}: {exc.strerror or exc}"
            failed = replace(attempted, last_error=message)
            return failed, FetchResult(url, "failed", message, failed.cache_path, 0)

    def _download(self, status: SourceStatus) -> _Body:
        parts = urlsplit(status.url)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            return self._download_http(status)
        path = Path(unquote(parts.path)) if scheme == "file" else Path(status.url)
        return _Body(self._read_file(status.url, path))

    def _read_file(self, url: str, path: Path) -> bytes:
        limit = self.config.max_bytes
        try:
            with path.open("rb") as src:
                data = src.read(limit + 1)
        except OSError as exc:
            raise _FetchError(f"{url}: cannot read: {exc.strerror or exc}") from exc
        if len(data) > limit:
            raise _FetchError(f"{url}: larger than catalog.max_bytes = {limit}")
        return data

    def _download_http(self, status: SourceStatus) -> _Body:
        """GET the URL (following safe redirects) within ``fetch_timeout_s`` on ``io_clock``."""
        url = status.url
        timeout_s = self.config.fetch_timeout_s
        deadline = self.io_clock.monotonic() + timeout_s
        headers = {"User-Agent": f"groundlink/{__version__}", "Accept-Encoding": "identity"}
        if status.cache_path is not None and status.cache_path.is_file():
            # Only with a good copy on disk may the server answer "not modified".
            if status.etag:
                headers["If-None-Match"] = status.etag
            if status.last_modified:
                headers["If-Modified-Since"] = status.last_modified
        conditional = "If-None-Match" in headers or "If-Modified-Since" in headers
        current = url
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                conn, sock, response = self._request(url, current, headers, deadline)
                try:
                    code = response.status
                    if code in _REDIRECT_STATUSES:
                        current = _redirect_target(url, current, response)
                        continue
                    if code == 304 and conditional:
                        return _Body(None)
                    if not 200 <= code < 300:
                        raise _FetchError(f"{url}: HTTP {code} {response.reason}")
                    return _Body(
                        self._read_body(url, sock, response, deadline),
                        etag=response.getheader("ETag"),
                        last_modified=response.getheader("Last-Modified"),
                    )
                finally:
                    response.close()
                    conn.close()
            raise _FetchError(f"{url}: more than {_MAX_REDIRECTS} redirects (last to {current})")
        except TimeoutError as exc:
            raise _FetchError(f"{url}: timed out after {timeout_s:g} s") from exc
        except http.client.HTTPException as exc:  # bad status line, cut chunk, long header
            detail = str(exc).strip()[:200]  # may be the server's raw line: quoted, bounded
            raise _FetchError(
                f"{url}: cannot fetch: invalid HTTP response ({type(exc).__name__}: {detail!r})"
            ) from exc
        except OSError as exc:  # refused, reset, unknown host, TLS
            raise _FetchError(f"{url}: cannot fetch: {exc.strerror or exc}") from exc
        except ValueError as exc:  # a bad port in a redirect target, ...
            raise _FetchError(f"{url}: cannot fetch: {exc}") from exc

    def _remaining_s(self, url: str, deadline: float) -> float:
        """Seconds left before the whole-fetch deadline; a _FetchError once it has passed."""
        remaining_s = deadline - self.io_clock.monotonic()
        if remaining_s <= 0.0:
            raise _FetchError(f"{url}: timed out after {self.config.fetch_timeout_s:g} s")
        return remaining_s

    def _request(
        self, url: str, current: str, headers: Mapping[str, str], deadline: float
    ) -> tuple[http.client.HTTPConnection, socket.socket, http.client.HTTPResponse]:
        """Connect, send the GET and read the status and headers, each within the deadline."""
        parts = urlsplit(current)
        host = parts.hostname or ""
        port = parts.port
        conn: http.client.HTTPConnection
        if parts.scheme.lower() == "https":
            conn = http.client.HTTPSConnection(
                host,
                port,
                timeout=self._remaining_s(url, deadline),
                context=ssl.create_default_context(),
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self._remaining_s(url, deadline))
        try:
            conn.connect()
            # Kept here: getresponse() drops conn.sock when the server will close, while the
            # response still reads from this socket; its timeout bounds every later read.
            sock = conn.sock
            target = parts.path or "/"
            if parts.query:
                target = f"{target}?{parts.query}"
            sock.settimeout(self._remaining_s(url, deadline))
            conn.request("GET", target, headers=dict(headers))
            sock.settimeout(self._remaining_s(url, deadline))
            return conn, sock, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def _read_body(
        self, url: str, sock: socket.socket, response: http.client.HTTPResponse, deadline: float
    ) -> bytes:
        """The whole body: each read waits at most until the deadline; a cut body is refused."""
        limit = self.config.max_bytes
        expected = response.length  # Content-Length (None: chunked or until close)
        if expected is not None and expected > limit:
            raise _FetchError(
                f"{url}: Content-Length {expected} is larger than catalog.max_bytes = {limit}"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            # read1 returns what one recv gives, so a server dripping bytes cannot stretch
            # the fetch past the deadline: the socket timeout is what is left of it.
            sock.settimeout(self._remaining_s(url, deadline))
            chunk = response.read1(_CHUNK_BYTES)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _FetchError(f"{url}: body larger than catalog.max_bytes = {limit}")
            chunks.append(chunk)
        if expected is not None and size < expected:
            # http.client reports a short body as a clean end; a cut at a record boundary
            # would pass catalog validation and silently drop the rest of the catalog.
            raise _FetchError(f"{url}: body ended after {size} of {expected} bytes")
        return b"".join(chunks)

    def _accept(
        self, status: SourceStatus, body: _Body, now: datetime
    ) -> tuple[SourceStatus, FetchResult]:
        url = status.url
        data = body.data or b""
        # As Catalog.from_files does: a bad byte spoils its record, not the whole text.
        text = data.decode("utf-8", errors="replace")
        fmt = detect_format(Path(unquote(urlsplit(url).path)), text)
        catalog = Catalog.from_text(
            text, source=url, fmt=fmt, now=now, stale_after_days=self.config.stale_after_days
        )
        if not catalog.entries:
            first = catalog.errors[0].reason if catalog.errors else "empty"
            kept = "kept the last good copy" if status.cache_path else "no good copy yet"
            raise _FetchError(
                f"{url}: no usable element sets in the {len(data)} bytes received "
                f"({fmt}; first problem: {first}); {kept}"
            )
        digest = hashlib.sha256(data).hexdigest()
        newest = max(e.epoch for e in catalog.entries)
        path = self.cache_dir / f"{source_slug(url)}{_SUFFIX[fmt]}"
        outcome: FetchOutcome = "updated"
        if digest == status.sha256 and status.cache_path == path and path.is_file():
            outcome = "unchanged"  # same bytes (a file source, or a server without validators)
        else:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, data)
            if status.cache_path is not None and status.cache_path != path:
                with contextlib.suppress(OSError):
                    status.cache_path.unlink()  # the format changed; one copy per source
        done = replace(
            status,
            cache_path=path,
            etag=body.etag,
            last_modified=body.last_modified,
            sha256=digest,
            last_success=now,
            last_error=None,
            newest_epoch=newest,
            entries=len(catalog.entries),
        )
        self._save_meta(done)
        return done, FetchResult(url, outcome, None, path, len(catalog.entries))

    def _save_meta(self, status: SourceStatus) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(self._meta_path(status.url), status.to_json().encode())

    # -- alarms -------------------------------------------------------------------------
    def alarms(self, now: datetime) -> dict[str, RefreshAlarm | None]:
        """Per source ``tle-source-<slug>``: the alarm to raise, or None to clear it."""
        out: dict[str, RefreshAlarm | None] = {}
        fetch_limit_s = self.config.fetch_stale_after_h * _SECONDS_PER_HOUR
        epoch_limit_days = self.config.stale_after_days
        for status in self.status():
            reasons: list[str] = []
            severity: Severity = "info"
            fetch_age_s = status.fetch_age_s(now)
            if fetch_age_s is None:
                if status.last_attempt is not None:
                    reasons.append("never fetched successfully")
                    severity = "warning"
            elif fetch_age_s > fetch_limit_s:
                reasons.append(
                    f"last successful fetch {fetch_age_s / _SECONDS_PER_HOUR:.1f} h ago "
                    f"(limit {self.config.fetch_stale_after_h:g} h)"
                )
                severity = "warning"
            epoch_age = status.epoch_age_days(now)
            if epoch_age is not None and epoch_age > epoch_limit_days:
                reasons.append(
                    f"newest epoch {epoch_age:.1f} days old (limit {epoch_limit_days:g} days)"
                )
                severity = "warning"
            if status.last_error is not None:
                reasons.append(f"last fetch failed: {status.last_error}")
            alarm_id = f"tle-source-{source_slug(status.url)}"
            out[alarm_id] = RefreshAlarm(severity, "; ".join(reasons)) if reasons else None
        return out


def sources_summary(results: Sequence[FetchResult]) -> str:
    """One line for logs: how many sources were updated, unchanged and failed."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items())) or "none"
