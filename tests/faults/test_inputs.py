"""Bad inputs under the running daemon (issue 8, scenarios 10-13).

Already proven elsewhere, not repeated here:

* scenario 12, a config that does not validate exits 78 at start:
  ``tests/daemon/test_run_cmd.py::test_run_with_a_bad_config_exits_78``; a reload of a
  broken file keeps the old config with an alarm:
  ``tests/daemon/test_lifecycle.py::test_sighup_with_a_bad_config_keeps_the_old_one_and_raises_an_alarm``.
  Added here: the device-level mistakes (inverted limits, unknown driver, missing device,
  bad URL), each at start and on reload.
* scenario 13, a second daemon on the same devices:
  ``tests/daemon/test_lifecycle.py::test_a_second_instance_on_the_same_devices_fails_fast``
  (in-process, nothing started) and
  ``tests/daemon/test_run_cmd.py::test_second_instance_exits_75_naming_the_device_then_sigterm_exits_0``
  (real processes).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from controller.daemon import EXIT_CONFIG
from controller.run_cmd import run_daemon
from firmware_bridge.clock import VirtualClock
from tests.faults.conftest import (
    PREFIX,
    ROOT,
    MosquittoBroker,
    Subscriber,
    drive,
    faults_config_text,
    free_port,
    make_daemon,
    start_daemon,
    stop_daemon,
    tracking,
    write_config,
)

_ANT1_ROTATOR = 'driver = "gs232b"\nsimulated = true'
BAD_DEVICES = {
    "inverted limits": (
        ("az_min_deg = 0.0\naz_max_deg = 450.0", "az_min_deg = 450.0\naz_max_deg = 0.0"),
        "az_min_deg",
    ),
    "unknown driver": (
        (_ANT1_ROTATOR, _ANT1_ROTATOR.replace("gs232b", "gs999")),
        "'gs999'",
    ),
    "missing device": (
        (_ANT1_ROTATOR, _ANT1_ROTATOR.replace("simulated = true", "simulated = false")),
        "antennas[0].rotator.url is empty",
    ),
    "bad URL": (
        (
            _ANT1_ROTATOR,
            _ANT1_ROTATOR.replace("simulated = true", 'simulated = false\nurl = "usb://ttyUSB0"'),
        ),
        "'usb://ttyUSB0'",
    ),
}


def bad_config_text(case: str) -> str:
    """The test config with one device mistake."""
    (old, new), _ = BAD_DEVICES[case]
    text = faults_config_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("case", sorted(BAD_DEVICES))
def test_device_config_mistake_exits_78_naming_the_reason(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scenario 12 at start: exit 78, the reason on stderr, no lock file taken."""
    path = write_config(tmp_path, bad_config_text(case))
    run_dir = tmp_path / "run"
    monkeypatch.setenv("GROUNDLINK_RUN_DIR", str(run_dir))
    code = run_daemon(path, f"mqtt://127.0.0.1:{free_port()}")
    assert code == EXIT_CONFIG
    err = capsys.readouterr().err
    assert BAD_DEVICES[case][1] in err, err
    assert not list(run_dir.glob("*.lock"))


async def test_device_config_mistakes_are_rejected_on_reload_and_the_old_config_kept(
    tmp_path: Path, clock: VirtualClock, mosquitto: MosquittoBroker
) -> None:
    """Scenario 12 on SIGHUP: each mistake is a config-rejected alarm naming it; the running
    config stays; the station keeps tracking."""
    path = write_config(tmp_path)
    daemon = make_daemon(path, clock, tmp_path, mosquitto.url)
    task = await start_daemon(daemon, clock)
    running = daemon.config
    for case in sorted(BAD_DEVICES):
        path.write_text(bad_config_text(case))
        daemon.alarms.clear("config-rejected")
        daemon.request_reload()
        await drive(
            clock,
            task,
            condition=lambda: "config-rejected" in daemon.alarms.active,
            step_s=0.5,
            limit_s=30,
        )
        message = daemon.alarms.active["config-rejected"].message
        assert BAD_DEVICES[case][1] in message, (case, message)
        assert daemon.config is running
    await drive(clock, task, condition=lambda: any(o.status == "executed" for o in daemon.outcomes))
    assert await stop_daemon(daemon, clock, task) == 0


def _checksum(line: str) -> str:
    """A TLE line with its modulo-10 checksum recomputed (digits count, '-' counts 1)."""
    body = line[:68]
    total = sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in body)
    return body + str(total % 10)


async def test_bad_element_sets_are_reported_and_the_rest_scheduled(
    tmp_path: Path, clock: VirtualClock, mosquitto: MosquittoBroker
) -> None:
    """Scenario 11 (checksums, truncation, stale epoch, decayed): the bad sets are dropped and named
    in an alarm, the stale one raises the staleness alarm, everything else is planned."""
    tle_dir = tmp_path / "tle"
    tle_dir.mkdir()
    good = (ROOT / "seeds" / "tle" / "eu_constellation.tle").read_text()
    (tle_dir / "eu_constellation.tle").write_text(good)
    jp = (ROOT / "seeds" / "tle" / "jp_groups.tle").read_text().splitlines()
    name, l1, l2 = jp[0:3]
    bad_sum = l1[:68] + str((int(l1[68]) + 1) % 10)
    stale_l1 = _checksum(jp[7][:18] + "26200.00000000" + jp[7][32:])  # 129 days old
    # Ten days before the test at 16.3 rev/day with a huge drag term: sgp4 propagates at
    # the epoch but the orbit has decayed by now.
    decayed_l1 = _checksum(
        jp[10][:18] + "26320.00000000" + jp[10][32:53] + " 50000-0" + jp[10][61:]
    )
    decayed_l2 = _checksum(jp[11][:52] + "16.30000000" + jp[11][63:])
    broken = [
        f"{name} BAD-CHECKSUM", bad_sum, l2,
        f"{jp[3]} TRUNCATED", jp[4][:40], jp[5],
        f"{jp[6]} STALE", stale_l1, jp[8],
        f"{jp[9]} DECAYED", decayed_l1, decayed_l2,
    ]  # fmt: skip
    (tle_dir / "mixed.tle").write_text("\n".join(broken) + "\n")
    text = faults_config_text().replace(
        f'"{ROOT}/seeds/tle/eu_constellation.tle", "{ROOT}/seeds/tle/jp_groups.tle"',
        f'"{tle_dir}/eu_constellation.tle", "{tle_dir}/mixed.tle"',
    )
    assert str(tle_dir) in text
    daemon = make_daemon(write_config(tmp_path, text), clock, tmp_path, mosquitto.url)
    task = await start_daemon(daemon, clock)
    assert daemon.catalog is not None
    errors = daemon.alarms.active["catalog-errors"].message
    assert errors.startswith("3 element sets dropped"), errors
    assert "mixed.tle" in errors
    known = {e.norad_id for e in daemon.catalog.entries}
    assert int(jp[7][2:7]) in known  # the stale one is still usable, but flagged
    assert int(l1[2:7]) not in known
    decayed = [e for e in daemon.catalog.errors if "DECAYED" in (e.name or "")]
    assert len(decayed) == 1, daemon.catalog.errors
    assert "sgp4" in decayed[0].reason, decayed[0].reason
    assert "tle-stale" in daemon.alarms.active
    assert "plan-failed" not in daemon.alarms.active, daemon.alarms.active.get("plan-failed")
    assert daemon.schedule is not None
    assert daemon.schedule.tracks
    # 81301 is configured (weight, frequencies) but no longer in the files: named, not fatal.
    assert "81301" in daemon.alarms.active["satellites-missing"].message
    await drive(clock, task, condition=lambda: any(o.status == "executed" for o in daemon.outcomes))
    assert await stop_daemon(daemon, clock, task) == 0


async def test_bad_commands_each_get_a_precise_reply_and_tracking_goes_on(
    tmp_path: Path, clock: VirtualClock, mosquitto: MosquittoBroker
) -> None:
    """Scenario 10: a command retained on the broker, then mid-pass a flood of 300 pings,
    malformed JSON, a wrong type, an oversized payload, a stale command and an unknown verb:
    each gets one reply saying why; the track is executed and no command took effect."""
    # A command left retained on the broker reaches the daemon with the retain flag only
    # when it subscribes (live ones are forwarded without it): leave one there first.
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as early:
        body = json.dumps({"request_id": "r1", "ts": clock.now().isoformat()})
        await early.publish(PREFIX + "cmd/pause", body, qos=1, retain=True)
    daemon = make_daemon(write_config(tmp_path), clock, tmp_path, mosquitto.url)
    async with Subscriber(mosquitto.port, [PREFIX + "reply/#"]) as replies:
        task = await start_daemon(daemon, clock)
        publisher = daemon.publisher
        assert publisher is not None
        await drive(clock, task, condition=lambda: publisher.stats.connects > 0, step_s=0.1)
        await drive(clock, task, condition=lambda: bool(replies.messages), step_s=0.1)
        retained = replies.messages[0].json()
    assert retained["request_id"] == "r1"
    assert retained["error"]["code"] == "retained"
    await drive(clock, task, condition=tracking(daemon, "ant1"), step_s=1.0)
    job = daemon.antennas["ant1"].current
    assert job is not None
    now = clock.now()
    fresh = now.isoformat()
    bad: dict[str, tuple[str, bytes, bool, str]] = {
        "malformed": ("pause", b'{"request_id": "m1", "ts": ', False, "malformed"),
        "wrong type": (
            "point",
            json.dumps(
                {"request_id": "w1", "ts": fresh, "antenna": "ant1", "az_deg": "ten", "el_deg": 5}
            ).encode(),
            False,
            "invalid",
        ),
        "oversized": (
            "ping",
            json.dumps({"request_id": "o1", "ts": fresh, "echo": "x" * 8000}).encode(),
            False,
            "too_large",
        ),
        "stale": (
            "pause",
            json.dumps({"request_id": "s1", "ts": (now - timedelta(hours=1)).isoformat()}).encode(),
            False,
            "stale",
        ),
        "unknown verb": (
            "selfdestruct",
            json.dumps({"request_id": "u1", "ts": fresh}).encode(),
            False,
            "unknown_verb",
        ),
    }
    flood = [f"f{i}" for i in range(300)]
    async with (
        Subscriber(mosquitto.port, [PREFIX + "reply/#"]) as replies,
        aiomqtt.Client("127.0.0.1", mosquitto.port) as operator,
    ):
        for flood_id in flood:
            body = json.dumps({"request_id": flood_id, "ts": fresh})
            await operator.publish(PREFIX + "cmd/ping", body, qos=1)
        for verb, payload, retain, _ in bad.values():
            await operator.publish(PREFIX + f"cmd/{verb}", payload, qos=1, retain=retain)
        wanted = len(flood) + len(bad)

        def answered() -> bool:
            return len(replies.messages) >= wanted

        await drive(clock, task, condition=answered, step_s=0.05, limit_s=120)
        await replies.wait_for(lambda ms: len(ms) >= wanted)
        bodies = [m.json() for m in replies.messages]
    by_id: dict[str | None, list[dict[str, Any]]] = {}
    for body in bodies:
        by_id.setdefault(body.get("request_id"), []).append(body)
    for flood_id in flood:
        assert len(by_id.get(flood_id, [])) == 1, flood_id
        reply = by_id[flood_id][0]
        assert reply["ok"] or reply["error"]["code"] == "busy"
    for case, (verb, _, _, code) in bad.items():
        # Neither an unparsable nor an oversized payload is read: no request_id to echo.
        rid: str | None = None if code in ("malformed", "too_large") else f"{case[0]}1"
        mine = [b for b in by_id.get(rid, []) if rid is not None or b["verb"] == verb]
        assert len(mine) == 1, (case, by_id.get(rid))
        error = mine[0]["error"]
        assert not mine[0]["ok"]
        assert error["code"] == code, (case, error)
        assert error["message"]
    assert not daemon.paused
    await drive(clock, task, condition=lambda: daemon.antennas["ant1"].current is not job)
    ends = [o for o in daemon.outcomes if (o.antenna, o.start) == ("ant1", job.aos)]
    assert [o.status for o in ends] == ["executed"]
    assert await stop_daemon(daemon, clock, task) == 0
