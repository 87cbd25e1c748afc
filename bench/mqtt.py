"""Benchmark: telemetry throughput and publish-to-subscriber latency over loopback MQTT.

For each broker (a Mosquitto started here on a free loopback port, and the embedded
amqtt broker running in this process, as the daemon runs it), the station's real
publisher (:class:`~controller.telemetry.mqtt.MqttPublisher`) sends through its outbox:

* ``burst qos0``: N pointing samples (QoS 0 stream) as fast as the publisher takes them;
* ``burst qos1``: N pass events (QoS 1), checked for loss by ``seq``;
* ``paced qos0`` / ``paced qos1``: samples/events at a fixed rate, for latency.

The subscriber is a separate process (so the numbers include a real process hop): a
minimal MQTT 3.1.1 client written here that only parses PUBLISH packets, so that what is
measured is the publisher and the broker, not a client library's per-message cost.
Latency is ``perf_counter`` at ``sink.send()`` to ``perf_counter`` when the packet's
bytes arrive at the subscriber (CLOCK_MONOTONIC, shared by both processes on Linux).

Each row also gives CPU time per message delivered, which a loaded machine skews far
less than rates and latencies: ``pub`` is this process from the first ``send()`` to the
flush after the last acknowledgement (encoding included, and for the embedded broker the
broker too), ``broker`` the Mosquitto process over the same span, ``sub`` the subscriber
process after its SUBACK. ``--inflight`` overrides ``mqtt.max_inflight``.

    .venv/bin/python bench/mqtt.py [--n 50000] [--rate 5000] [--seconds 3] [--inflight N]
                                   [--skip-embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import platform
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _mqtt_bench import sample_event, sample_pointing, spawn_subscriber  # noqa: E402

from controller.telemetry.broker import EmbeddedBroker  # noqa: E402
from controller.telemetry.config import MqttConfig  # noqa: E402
from controller.telemetry.mqtt import MqttPublisher  # noqa: E402
from controller.telemetry.payloads import Payload  # noqa: E402
from firmware_bridge.clock import SystemClock  # noqa: E402

STATION = "bench"
PREFIX = f"groundlink/{STATION}/"


# -- the subscriber process ---------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def _subscriber(port: int, topic: str, expected: int, idle_s: float) -> None:
    """Subscribe to ``topic`` (QoS 1), record arrival time and seq of each PUBLISH.

    A blocking socket and no event loop: the process does nothing else, and the less CPU
    it takes, the less it competes with the publisher and the broker it measures.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + _string(f"bench-sub-{os.getpid()}")
    sub = b"\x00\x01" + _string(topic) + b"\x01"
    sock.sendall(b"\x10" + _varint(len(body)) + body + b"\x82" + _varint(len(sub)) + sub)
    buf = bytearray()
    seqs: list[int] = []
    times: list[float] = []
    ready = False
    cpu_ready_s = 0.0
    while len(seqs) < expected:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            break
        if not chunk:
            break
        now = time.perf_counter()
        buf += chunk
        acks = bytearray()
        pos = 0
        while True:
            if len(buf) - pos < 2:
                break
            head = buf[pos]
            length, mult, i = 0, 1, pos + 1
            while i < len(buf):
                b = buf[i]
                length += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            else:
                break
            if len(buf) - i < length:
                break
            end = i + length
            kind = head >> 4
            if kind == 3:  # PUBLISH
                qos = (head >> 1) & 3
                tlen = (buf[i] << 8) | buf[i + 1]
                j = i + 2 + tlen
                if qos:
                    acks += b"\x40\x02" + bytes(buf[j : j + 2])
                    j += 2
                k = buf.find(b'"seq":', j, end)
                if k >= 0:
                    k += 6
                    e = buf.find(b",", k, end)
                    seqs.append(int(buf[k:e]))
                    times.append(now)
            elif kind == 9 and not ready:  # SUBACK
                ready = True
                cpu_ready_s = time.process_time()  # start-up (imports) is not counted
                sock.settimeout(idle_s)
                print("ready", flush=True)
            pos = end
        del buf[:pos]
        if acks:
            sock.sendall(acks)
    sock.close()
    cpu_s = time.process_time() - cpu_ready_s
    print(json.dumps({"seqs": seqs, "times": times, "cpu_s": cpu_s}), flush=True)


# -- brokers --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Mosquitto:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-mosquitto-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Mosquitto:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest stderr\nlog_type error\nlog_type information\nuser {getpass.getuser()}\n"
            "max_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\n"
        )
        self.proc = subprocess.Popen(
            [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if b" running" in line:
                break
        else:
            raise RuntimeError("mosquitto did not start")
        # Keep draining its log so a full pipe never blocks the broker.
        stderr = self.proc.stderr
        threading.Thread(target=lambda: stderr.read(), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- phases -----------------------------------------------------------------------------


@dataclass
class Result:
    """One phase's figures."""

    name: str
    sent: int
    received: int
    unique: int
    missing: int
    rate_msg_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    # CPU time per message delivered (µs): this process (publisher, encoding included;
    # for the embedded broker, the broker too), the Mosquitto process, the subscriber.
    pub_cpu_us: float
    broker_cpu_us: float | None
    sub_cpu_us: float


def _proc_cpu_s(pid: int | None) -> float | None:
    """CPU time (user + system) of process ``pid`` so far, from /proc; None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _phase(
    publisher: MqttPublisher,
    port: int,
    name: str,
    topic: str,
    make: Callable[[], Payload],
    n: int,
    rate: float | None,
    first: int,
    broker_pid: int | None,
) -> Result:
    """Send ``n`` messages (seq first+1 .. first+n on ``topic``) and measure them."""
    sub = await spawn_subscriber(__file__, port, topic, n)
    clock = SystemClock()
    t_send: list[float] = []
    payload = make()
    cpu0, broker0 = time.process_time(), _proc_cpu_s(broker_pid)
    t0 = time.perf_counter()
    if rate is None:
        for _ in range(n):
            t_send.append(time.perf_counter())
            publisher.send(payload)
    else:
        while len(t_send) < n:
            due = min(n, int((time.perf_counter() - t0) * rate) + 1)
            while len(t_send) < due:
                t_send.append(time.perf_counter())
                publisher.send(payload)
            await clock.sleep(0.001)
    out, _ = await asyncio.wait_for(sub.communicate(), 120)
    await asyncio.wait_for(publisher.flush(), 60)
    cpu1, broker1 = time.process_time(), _proc_cpu_s(broker_pid)
    data = json.loads(out.decode().strip().splitlines()[-1])
    seqs: list[int] = data["seqs"]
    times: list[float] = data["times"]
    latencies = [
        (t - t_send[s - first - 1]) * 1e3
        for s, t in zip(seqs, times, strict=True)
        if first < s <= first + n
    ]
    got = {s for s in seqs if first < s <= first + n}
    t_end = max(times) if times else t0
    lat = sorted(latencies) or [float("nan")]
    return Result(
        name=name,
        sent=n,
        received=len(seqs),
        unique=len(got),
        missing=n - len(got),
        rate_msg_s=len(got) / (t_end - t0) if t_end > t0 else 0.0,
        p50_ms=statistics.median(lat),
        p99_ms=lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        max_ms=lat[-1],
        pub_cpu_us=(cpu1 - cpu0) / max(1, len(got)) * 1e6,
        broker_cpu_us=(
            (broker1 - broker0) / max(1, len(got)) * 1e6
            if broker0 is not None and broker1 is not None
            else None
        ),
        sub_cpu_us=float(data["cpu_s"]) / max(1, len(got)) * 1e6,
    )


async def _run_broker(
    label: str,
    url: str,
    port: int,
    n: int,
    rate: float,
    seconds: float,
    *,
    broker_pid: int | None,
    inflight: int | None,
) -> list[Result]:
    cfg = MqttConfig(
        broker=url,
        outbox_events=max(100_000, 2 * n),
        outbox_stream_depth=max(100_000, 2 * n),
        reconnect_min_s=0.1,
        **({} if inflight is None else {"max_inflight": inflight}),
    )
    publisher = MqttPublisher(cfg, STATION, SystemClock())
    pointing, event = sample_pointing, sample_event
    pointing_topic = PREFIX + "antenna/a1/pointing"
    event_topic = PREFIX + "pass/event"
    sent_on = {pointing_topic: 0, event_topic: 0}  # seq of the last message per topic
    paced_n = int(rate * seconds)
    results = []
    async with publisher:
        await asyncio.wait_for(publisher.wait_connected(), 10)
        await asyncio.wait_for(publisher.flush(), 30)
        for name, topic, make, count, r in (
            ("burst qos0", pointing_topic, pointing, n, None),
            ("burst qos1", event_topic, event, n, None),
            ("paced qos0", pointing_topic, pointing, paced_n, rate),
            ("paced qos1", event_topic, event, paced_n, rate),
        ):
            res = await _phase(
                publisher,
                port,
                f"{label} {name}",
                topic,
                make,
                count,
                r,
                sent_on[topic],
                broker_pid,
            )
            sent_on[topic] += count
            results.append(res)
            print(_row(res), flush=True)
    return results


def _row(r: Result) -> str:
    return (
        f"{r.name:<24} sent {r.sent:>7} got {r.unique:>7} missing {r.missing:>5}  "
        f"{r.rate_msg_s:>9,.0f} msg/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  "
        f"max {r.max_ms:7.2f} ms  cpu/msg pub {r.pub_cpu_us:5.1f} "
        f"broker {'-' if r.broker_cpu_us is None else format(r.broker_cpu_us, '5.1f')} "
        f"sub {r.sub_cpu_us:5.1f} µs"
    )


async def _main(args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load} (other processes skew these figures); "
        f"N={args.n}, paced {args.rate:g} msg/s for {args.seconds:g} s, "
        f"max_inflight {args.inflight or MqttConfig().max_inflight}"
    )
    with _Mosquitto() as mosq:
        assert mosq.proc is not None
        await _run_broker(
            "mosquitto",
            f"mqtt://127.0.0.1:{mosq.port}",
            mosq.port,
            args.n,
            args.rate,
            args.seconds,
            broker_pid=mosq.proc.pid,
            inflight=args.inflight,
        )
    if not args.skip_embedded:
        async with EmbeddedBroker(port=0, ws_port=None) as broker:
            n = max(1000, args.n // 10)
            rate = min(args.rate, 1000.0)
            await _run_broker(
                "embedded",
                broker.url,
                broker.tcp_port,
                n,
                rate,
                args.seconds,
                broker_pid=None,  # in this process: its CPU is in the publisher's figure
                inflight=args.inflight,
            )


def main() -> None:
    """Run the benchmark (or, with --subscriber, one subscriber process)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--subscriber":
        port, topic, expected = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        _subscriber(port, topic, expected, idle_s=3.0)
        return
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="messages per burst phase")
    ap.add_argument("--rate", type=float, default=5000.0, help="paced phases: messages/s")
    ap.add_argument("--seconds", type=float, default=3.0, help="paced phases: duration")
    ap.add_argument(
        "--inflight", type=int, default=None, help="mqtt.max_inflight (default: the config's)"
    )
    ap.add_argument("--skip-embedded", action="store_true")
    asyncio.run(_main(ap.parse_args()))


if __name__ == "__main__":
    main()
