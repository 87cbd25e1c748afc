"""`groundlink sim serve`: endpoints on the first stdout line, Hamlib can talk, SIGTERM exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "groundlink"


def test_sim_serve_pty_answers_rotctl_and_stops_on_sigterm() -> None:
    """The served GS-232B twin answers Hamlib's rotctl; SIGTERM ends the server with 0."""
    proc = subprocess.Popen(
        [str(BIN), "sim", "serve", "--rotator", "gs232b", "--radio", "ic9700", "--pty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoints = json.loads(proc.stdout.readline())
        assert set(endpoints) == {"rotator", "radio"}
        assert all(os.path.exists(p) for p in endpoints.values())
        out = subprocess.run(
            ["rotctl", "-m", "603", "-r", endpoints["rotator"], "-s", "9600", "p"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        az, el = (float(x) for x in out.stdout.split())
        assert (az, el) == (0.0, 0.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_sim_serve_rejects_unknown_device() -> None:
    """An unknown twin name is a usage error naming the allowed ones."""
    out = subprocess.run(
        [str(BIN), "sim", "serve", "--rotator", "nope", "--pty"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "gs232b" in out.stderr


def test_sim_serve_control_applies_faults_from_stdin() -> None:
    """Fault commands on stdin are applied and answered; a bad one is refused, not fatal."""
    proc = subprocess.Popen(
        [str(BIN), "sim", "serve", "--rotator", "gs232b", "--pty", "--control"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        endpoints = json.loads(proc.stdout.readline())
        answers = []
        for line in ("stall rotator az", "frobnicate rotator", "drop radio 2", "late rotator x"):
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            answers.append(json.loads(proc.stdout.readline()))
        assert answers[0] == {"ok": True, "applied": "stall rotator az"}
        assert answers[1]["ok"] is False
        assert "unknown command" in answers[1]["error"]
        assert answers[2]["ok"] is False
        assert "no 'radio'" in answers[2]["error"]
        assert answers[3]["ok"] is False
        assert "SECONDS" in answers[3]["error"]
        # Dropped replies: Hamlib's rotctl gets no answer (it fails), the server lives on.
        proc.stdin.write("drop rotator\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["ok"] is True
        out = subprocess.run(
            ["rotctl", "-m", "603", "-r", endpoints["rotator"], "-s", "9600", "p"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode != 0
        proc.stdin.write("clear rotator\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["ok"] is True
        out = subprocess.run(
            ["rotctl", "-m", "603", "-r", endpoints["rotator"], "-s", "9600", "p"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert len(out.stdout.split()) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
