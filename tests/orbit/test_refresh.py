"""TLE refresh from URLs and files against a real HTTP server on loopback.

The server runs in a thread (``http.server``) and answers what each test sets; a request it
must hold (the timeout case) waits on an event released at teardown, never on a sleep.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.config import CatalogConfig
from controller.orbit.catalog import Catalog
from controller.orbit.refresh import TleRefresher, source_slug
from firmware_bridge.clock import VirtualClock
from tests.telemetry.conftest import TlsFiles, free_port
from tests.telemetry.conftest import tls_files as tls_files  # the fixture, for HTTPS tests

ROOT = Path(__file__).resolve().parents[2]
SEED_TLE = (ROOT / "seeds" / "tle" / "eu_constellation.tle").read_bytes()
SEED_JP = (ROOT / "seeds" / "tle" / "jp_groups.tle").read_bytes()
# The seed epochs are 2026-11-25; one day later they are fresh.
T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


@dataclass
class Reply:
    """What the server answers next."""

    status: int = 200
    body: bytes = SEED_TLE
    etag: str | None = '"v1"'
    last_modified: str | None = formatdate(T0.timestamp() - 3600, usegmt=True)
    content_length: bool = True
    hold: bool = False
    location: str | None = None
    """Sent as the Location header (with a 3xx status)."""
    raw: bytes | None = None
    """Written as it is instead of a well-formed response (then the connection closes)."""
    drip: bool = False
    """Announce the whole body, then send it one byte per 0.2 s (at most 50 bytes)."""


@dataclass
class TleServer:
    """A loopback HTTP server serving one path with conditional GET."""

    port: int
    scheme: str = "http"
    reply: Reply = field(default_factory=Reply)
    requests: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """The URL of the served catalog."""
        return f"{self.scheme}://127.0.0.1:{self.port}/gp.php?GROUP=demo&FORMAT=tle"


def _handler(state: TleServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append({k: v for k, v in self.headers.items()})
            reply = state.reply
            if reply.hold:
                state.held.set()
                state.release.wait(30.0)
                return
            if reply.raw is not None:
                self.close_connection = True
                self.wfile.write(reply.raw)
                return
            if reply.drip:
                self._drip(reply.body)
                return
            fresh = reply.etag is not None and self.headers.get("If-None-Match") == reply.etag
            if reply.status == 200 and fresh:
                self.send_response(304)
                self.send_header("ETag", str(reply.etag))
                self.end_headers()
                return
            self.send_response(reply.status)
            if reply.etag is not None:
                self.send_header("ETag", reply.etag)
            if reply.last_modified is not None:
                self.send_header("Last-Modified", reply.last_modified)
            if reply.location is not None:
                self.send_header("Location", reply.location)
            if reply.content_length:
                self.send_header("Content-Length", str(len(reply.body)))
            else:
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)

        def _drip(self, body: bytes) -> None:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # Bounded, so a client without a per-read deadline still ends (late, failing).
            for byte in body[:50]:
                try:
                    self.wfile.write(bytes([byte]))
                except OSError:
                    return  # the client gave up
                if state.release.wait(0.2):
                    return

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep the test output clean

    return Handler


@contextlib.contextmanager
def _serve(tls: ssl.SSLContext | None = None) -> Iterator[TleServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state := TleServer(port=0)))
    httpd.daemon_threads = True
    state.port = int(httpd.server_address[1])
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        state.scheme = "https"
    # A short poll interval: shutdown() returns within it.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="tle-server", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10.0)


@pytest.fixture
def server() -> Iterator[TleServer]:
    """A threaded HTTP server on a free loopback port."""
    with _serve() as state:
        yield state


@pytest.fixture
def tls_server(tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[TleServer]:
    """The same server over HTTPS, its test CA trusted through SSL_CERT_FILE."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.server_crt, tls_files.server_key)
    # OpenSSL reads SSL_CERT_FILE when the refresher builds its default context.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca))
    with _serve(context) as state:
        yield state


def _refresher(
    tmp_path: Path, urls: list[str], clock: VirtualClock, **catalog: Any
) -> TleRefresher:
    config = CatalogConfig(urls=urls, cache_dir=tmp_path / "cache", **catalog)
    return TleRefresher(config, clock=clock)


async def test_200_caches_a_validated_copy_with_its_validators(
    server: TleServer, tmp_path: Path
) -> None:
    """A 200 with good content is written to the cache with its ETag; the catalog loads it."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0))
    [result] = await refresher.refresh()
    assert result.outcome == "updated"
    assert result.changed
    assert result.cache_path is not None
    assert result.cache_path.read_bytes() == SEED_TLE
    assert result.cache_path.suffix == ".tle"
    assert refresher.catalog_paths() == [result.cache_path]
    catalog = Catalog.from_files(refresher.cache_paths(), now=T0)
    assert len(catalog.entries) == result.entries > 0
    [status] = refresher.status()
    assert status.etag == '"v1"'
    assert status.last_success == T0
    assert status.newest_epoch is not None
    assert status.newest_epoch <= T0
    # No temporary file is left next to the copy.
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [result.cache_path.name, f"{source_slug(server.url)}.meta.json"]
    )


async def test_304_keeps_the_copy_and_counts_as_a_successful_fetch(
    server: TleServer, tmp_path: Path
) -> None:
    """The second fetch is conditional; 304 leaves the file alone and renews the fetch time."""
    clock = VirtualClock(T0)
    refresher = _refresher(tmp_path, [server.url], clock)
    [first] = await refresher.refresh()
    assert first.cache_path is not None
    mtime = first.cache_path.stat().st_mtime_ns
    await clock.advance(3600.0)
    [second] = await refresher.refresh()
    assert second.outcome == "not_modified"
    assert not second.changed
    assert server.requests[-1].get("If-None-Match") == '"v1"'
    assert server.requests[-1].get("If-Modified-Since") == server.reply.last_modified
    assert "If-None-Match" not in server.requests[0]
    assert first.cache_path.stat().st_mtime_ns == mtime
    assert refresher.status()[0].last_success == T0 + timedelta(hours=1)


async def test_state_survives_a_restart(server: TleServer, tmp_path: Path) -> None:
    """A new refresher over the same cache finds the copy, its fetch time and its ETag."""
    clock = VirtualClock(T0)
    [first] = await _refresher(tmp_path, [server.url], clock).refresh()
    again = _refresher(tmp_path, [server.url], clock)
    assert again.cache_paths() == [first.cache_path]
    assert again.status()[0].last_success == T0
    [result] = await again.refresh()
    assert result.outcome == "not_modified"
    assert server.requests[-1].get("If-None-Match") == '"v1"'


async def test_changed_content_replaces_the_copy(server: TleServer, tmp_path: Path) -> None:
    """New content with a new ETag replaces the cached copy."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0))
    await refresher.refresh()
    server.reply = Reply(body=SEED_JP, etag='"v2"')
    [result] = await refresher.refresh()
    assert result.outcome == "updated"
    assert result.cache_path is not None
    assert result.cache_path.read_bytes() == SEED_JP
    assert refresher.status()[0].etag == '"v2"'


@pytest.mark.parametrize("status", [404, 500])
async def test_http_error_keeps_the_last_good_copy_and_names_the_url(
    server: TleServer, tmp_path: Path, status: int
) -> None:
    """A 404/500 fails naming the URL and status; the previous copy stays in use."""
    clock = VirtualClock(T0)
    refresher = _refresher(tmp_path, [server.url], clock)
    [good] = await refresher.refresh()
    server.reply = Reply(status=status, body=b"nope", etag=None)
    await clock.advance(60.0)
    [result] = await refresher.refresh()
    assert result.outcome == "failed"
    assert result.error is not None
    assert server.url in result.error
    assert f"HTTP {status}" in result.error
    assert result.cache_path == good.cache_path
    assert good.cache_path is not None
    assert good.cache_path.read_bytes() == SEED_TLE
    assert refresher.status()[0].last_success == T0
    [alarm] = refresher.alarms(clock.now()).values()
    assert alarm is not None
    assert f"HTTP {status}" in alarm.message


async def test_timeout_fails_within_the_deadline(server: TleServer, tmp_path: Path) -> None:
    """A server that never answers: the fetch fails as a timeout, the copy is kept."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0), fetch_timeout_s=0.5)
    [good] = await refresher.refresh()
    server.reply = Reply(hold=True)
    [result] = await refresher.refresh()
    assert server.held.is_set()
    assert result.outcome == "failed"
    assert result.error is not None
    assert "timed out after 0.5 s" in result.error
    assert server.url in result.error
    assert result.cache_path == good.cache_path


@pytest.mark.parametrize("with_length", [True, False])
async def test_oversized_body_is_refused(
    server: TleServer, tmp_path: Path, with_length: bool
) -> None:
    """A body above max_bytes (announced or streamed) is refused; the copy is kept."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0), max_bytes=len(SEED_TLE))
    [good] = await refresher.refresh()
    server.reply = Reply(body=SEED_TLE + SEED_JP, etag='"big"', content_length=with_length)
    [result] = await refresher.refresh()
    assert result.outcome == "failed"
    assert result.error is not None
    assert f"max_bytes = {len(SEED_TLE)}" in result.error
    assert good.cache_path is not None
    assert good.cache_path.read_bytes() == SEED_TLE


async def test_garbage_is_refused_by_catalog_validation(server: TleServer, tmp_path: Path) -> None:
    """An HTML error page served with 200 holds no element set: refused, copy kept."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0))
    [good] = await refresher.refresh()
    server.reply = Reply(body=b"<html><body>No GP data found</body></html>\n", etag='"x"')
    [result] = await refresher.refresh()
    assert result.outcome == "failed"
    assert result.error is not None
    assert "no usable element sets" in result.error
    assert "kept the last good copy" in result.error
    assert good.cache_path is not None
    assert good.cache_path.read_bytes() == SEED_TLE
    assert refresher.status()[0].etag == '"v1"'


async def test_garbage_first_leaves_no_copy(server: TleServer, tmp_path: Path) -> None:
    """Garbage on the very first fetch: no cached copy and a warning alarm."""
    server.reply = Reply(body=b"1 garbage\n2 garbage\n", etag=None)
    clock = VirtualClock(T0)
    refresher = _refresher(tmp_path, [server.url], clock)
    [result] = await refresher.refresh()
    assert result.outcome == "failed"
    assert refresher.cache_paths() == []
    [alarm] = refresher.alarms(clock.now()).values()
    assert alarm is not None
    assert alarm.severity == "warning"
    assert "never fetched successfully" in alarm.message


async def test_connection_refused_names_the_url(tmp_path: Path) -> None:
    """Nothing listens on the port: the error names the URL."""
    url = f"http://127.0.0.1:{free_port()}/tle.txt"
    [result] = await _refresher(tmp_path, [url], VirtualClock(T0)).refresh()
    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.startswith(f"{url}: cannot fetch")


async def test_file_sources_copy_then_keep_the_last_good_copy(tmp_path: Path) -> None:
    """A path and a file:// URL: copied, unchanged on the next fetch, kept when spoilt."""
    source = tmp_path / "mine.tle"
    source.write_bytes(SEED_TLE)
    other = tmp_path / "other.txt"
    other.write_bytes(SEED_JP)
    refresher = _refresher(tmp_path, [str(source), other.as_uri()], VirtualClock(T0))
    first = await refresher.refresh()
    assert [r.outcome for r in first] == ["updated", "updated"]
    assert [r.outcome for r in await refresher.refresh()] == ["unchanged", "unchanged"]
    source.write_bytes(b"garbage\n")
    other.unlink()
    spoilt = await refresher.refresh()
    assert [r.outcome for r in spoilt] == ["failed", "failed"]
    assert spoilt[1].error is not None
    assert "cannot read" in spoilt[1].error
    assert [p.read_bytes() for p in refresher.cache_paths()] == [SEED_TLE, SEED_JP]


async def test_staleness_alarms_follow_fetch_age_and_epoch_age(
    server: TleServer, tmp_path: Path
) -> None:
    """Fresh: no alarm; beyond fetch_stale_after_h and stale_after_days: warnings saying so."""
    clock = VirtualClock(T0)
    refresher = _refresher(
        tmp_path, [server.url], clock, fetch_stale_after_h=12.0, stale_after_days=3.0
    )
    await refresher.refresh()
    alarm_id = f"tle-source-{source_slug(server.url)}"
    assert refresher.alarms(clock.now()) == {alarm_id: None}
    await clock.advance(13 * 3600.0)
    alarm = refresher.alarms(clock.now())[alarm_id]
    assert alarm is not None
    assert alarm.severity == "warning"
    assert "last successful fetch 13.0 h ago (limit 12 h)" in alarm.message
    assert "newest epoch" not in alarm.message
    await clock.advance(3 * 86400.0)
    alarm = refresher.alarms(clock.now())[alarm_id]
    assert alarm is not None
    assert "newest epoch" in alarm.message
    status = refresher.status()[0]
    assert status.fetch_age_s(clock.now()) == pytest.approx(13 * 3600.0 + 3 * 86400.0)


async def test_metadata_is_json_naming_the_source(server: TleServer, tmp_path: Path) -> None:
    """The sidecar file records the URL, validators and fetch time (read back on restart)."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0))
    await refresher.refresh()
    meta = json.loads((tmp_path / "cache" / f"{source_slug(server.url)}.meta.json").read_text())
    assert meta["url"] == server.url
    assert meta["etag"] == '"v1"'
    assert meta["last_success"] == T0.isoformat()


@pytest.mark.parametrize(
    ("raw", "exception"),
    [
        (b"GARBAGE\r\n\r\n", "BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", "LineTooLong"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + SEED_TLE[:100],
            "IncompleteRead",
        ),
    ],
)
async def test_malformed_http_fails_naming_the_url(
    server: TleServer, tmp_path: Path, raw: bytes, exception: str
) -> None:
    """A bad status line, an overlong header or a cut chunk: a failure, not an exception."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0))
    [good] = await refresher.refresh()
    server.reply = Reply(raw=raw)
    [result] = await refresher.refresh()
    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.startswith(f"{server.url}: cannot fetch: invalid HTTP response")
    assert exception in result.error
    assert result.cache_path == good.cache_path
    assert good.cache_path is not None
    assert good.cache_path.read_bytes() == SEED_TLE


async def test_a_dripping_server_fails_at_the_deadline(server: TleServer, tmp_path: Path) -> None:
    """One byte every 0.2 s never stretches the fetch much past fetch_timeout_s."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0), fetch_timeout_s=1.0)
    [good] = await refresher.refresh()
    server.reply = Reply(drip=True, etag='"drip"')
    # Real time on purpose: what is bounded is real network I/O (the io clock).
    started_s = refresher.io_clock.monotonic()
    [result] = await refresher.refresh()
    elapsed_s = refresher.io_clock.monotonic() - started_s
    assert result.outcome == "failed"
    assert result.error == f"{server.url}: timed out after 1 s"
    assert 0.9 <= elapsed_s < 2.0
    assert result.cache_path == good.cache_path


async def test_a_body_cut_short_of_its_length_is_refused(server: TleServer, tmp_path: Path) -> None:
    """Content-Length promised more than arrived: refused even when the cut is clean."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0))
    [good] = await refresher.refresh()
    cut = b"".join(SEED_JP.splitlines(keepends=True)[:6])  # two whole 3-line records
    # Validation alone would take the cut body: the length check is what refuses it.
    alone = Catalog.from_text(cut.decode(), source="cut", fmt="tle", now=T0)
    assert len(alone.entries) == 2
    assert not alone.errors
    head = f'HTTP/1.1 200 OK\r\nContent-Length: {len(SEED_JP)}\r\nETag: "cut"\r\n\r\n'
    server.reply = Reply(raw=head.encode() + cut)
    [result] = await refresher.refresh()
    assert result.outcome == "failed"
    assert result.error == f"{server.url}: body ended after {len(cut)} of {len(SEED_JP)} bytes"
    assert good.cache_path is not None
    assert good.cache_path.read_bytes() == SEED_TLE
    assert refresher.status()[0].etag == '"v1"'


async def test_http_redirects_are_followed(server: TleServer, tmp_path: Path) -> None:
    """A 302 to another http:// URL on the same server is followed and its content cached."""
    with _serve() as target:
        server.reply = Reply(status=302, body=b"", etag=None, location=target.url)
        [result] = await _refresher(tmp_path, [server.url], VirtualClock(T0)).refresh()
    assert result.outcome == "updated"
    assert result.cache_path is not None
    assert result.cache_path.read_bytes() == SEED_TLE
    assert len(target.requests) == 1


@pytest.mark.parametrize("location", ["ftp://127.0.0.1:1/x.tle", "file:///etc/hostname", "data:,x"])
async def test_redirects_away_from_http_are_refused(
    server: TleServer, tmp_path: Path, location: str
) -> None:
    """A 302 to ftp://, file:// or data: fails naming both URLs; the copy is kept."""
    refresher = _refresher(tmp_path, [server.url], VirtualClock(T0))
    [good] = await refresher.refresh()
    server.reply = Reply(status=302, body=b"", etag=None, location=location)
    [result] = await refresher.refresh()
    assert result.outcome == "failed"
    assert result.error == (
        f"{server.url}: redirect from {server.url} to {location} refused: "
        "only http:// and https:// redirects are followed"
    )
    assert result.cache_path == good.cache_path


async def test_https_downgrade_redirects_are_refused(
    tls_server: TleServer, server: TleServer, tmp_path: Path
) -> None:
    """HTTPS content is fetched; an https -> http redirect is refused, naming both URLs."""
    refresher = _refresher(tmp_path, [tls_server.url], VirtualClock(T0))
    [good] = await refresher.refresh()
    assert good.outcome == "updated"
    tls_server.reply = Reply(status=301, body=b"", etag=None, location=server.url)
    [result] = await refresher.refresh()
    assert result.outcome == "failed"
    assert result.error == (
        f"{tls_server.url}: redirect from {tls_server.url} to {server.url} refused: "
        "a redirect from https to http is refused"
    )
    assert server.requests == []
    assert result.cache_path == good.cache_path


@pytest.mark.parametrize(
    "name", ["../outside.tle", "../../../../etc/hostname", "/etc/hostname", "other.tle"]
)
async def test_a_tampered_meta_file_name_is_ignored(
    server: TleServer, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A sidecar naming a file outside the cache, or not this source's copy, is not trusted."""
    [good] = await _refresher(tmp_path, [server.url], VirtualClock(T0)).refresh()
    assert good.cache_path is not None
    (tmp_path / "outside.tle").write_bytes(SEED_JP)
    (tmp_path / "cache" / "other.tle").write_bytes(SEED_JP)
    meta_path = tmp_path / "cache" / f"{source_slug(server.url)}.meta.json"
    meta = json.loads(meta_path.read_text())
    meta["file"] = name
    meta_path.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="controller.orbit.refresh"):
        again = _refresher(tmp_path, [server.url], VirtualClock(T0))
    assert again.cache_paths() == []
    assert again.status()[0].last_success is None
    assert any(name in r.getMessage() and server.url in r.getMessage() for r in caplog.records)
    # Treated as never fetched: an unconditional GET that restores this source's own copy.
    [result] = await again.refresh()
    assert "If-None-Match" not in server.requests[-1]
    assert result.cache_path == good.cache_path
    assert (tmp_path / "outside.tle").read_bytes() == SEED_JP
