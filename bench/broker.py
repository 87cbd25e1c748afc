"""Benchmark: CPU per message of the embedded MQTT broker, groundlink's own against amqtt.

Each broker runs as the daemon runs it, in its own child process
(``EmbeddedBroker(isolated=True, engine=...)``), so its CPU time is read alone: the sum of
the on-CPU nanoseconds of the child's threads (``/proc/<pid>/task/*/schedstat``) over a
phase. The station's real publisher (:class:`~controller.telemetry.mqtt.MqttPublisher`,
in this process) sends a burst of N messages per phase:

* ``qos0``: pointing samples (the QoS 0 telemetry stream), ``qos1``: pass events (QoS 1);
* ``no sub``: nobody subscribes (the daemon's 24 h benchmark), ``1 sub``: one subscriber
  process (a minimal blocking-socket client with a QoS 1 subscription, so deliveries are
  at the publish QoS) that must receive all N messages;
* ``paced``: a raw-socket publisher process sends ``--rate`` messages per second for
  ``--seconds``, one packet per send() (as a station at 1,000x real time publishes, each
  control loop as it runs), no subscriber. Here the broker's wake-ups and system calls
  per read weigh more than its work per packet.

A phase ends when the publisher has everything acknowledged after a final QoS 1 event
on another topic (the broker handles one connection's packets in order, so by then it
has handled all of them) and, with a subscriber, when that subscriber has all N; the
broker's CPU time is read once it has been idle for 0.3 s (amqtt finishes work in tasks
of its own after it has acknowledged, and that counts). Each phase runs
``--repeat`` times; the medians are printed with the amqtt/native ratio.

    .venv/bin/python bench/broker.py [--n 20000] [--n-amqtt 5000] [--repeat 3]
                                     [--rate 5000] [--seconds 2] [--skip-amqtt]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _mqtt_bench import sample_event, sample_pointing, spawn_subscriber  # noqa: E402

from controller.telemetry.broker import BrokerEngine, EmbeddedBroker  # noqa: E402
from controller.telemetry.config import MqttConfig  # noqa: E402
from controller.telemetry.mqtt import MqttPublisher  # noqa: E402
from controller.telemetry.payloads import Event, Payload  # noqa: E402
from firmware_bridge.clock import SystemClock  # noqa: E402

STATION = "bench"
PREFIX = f"groundlink/{STATION}/"
POINTING_TOPIC = PREFIX + "antenna/a1/pointing"
EVENT_TOPIC = PREFIX + "pass/event"


def _cpu_ns(pid: int) -> int:
    """On-CPU nanoseconds of all threads of process ``pid`` so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


# -- the subscriber process ---------------------------------------------------------


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def _subscriber(port: int, topic: str, expected: int, idle_s: float) -> None:
    """Subscribe to ``topic`` at QoS 1, acknowledge and count PUBLISH packets, print the count.

    A blocking socket and no event loop, so that it takes little of the machine.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + _string(f"bench-sub-{os.getpid()}")
    sub = b"\x00\x01" + _string(topic) + b"\x01"
    sock.sendall(bytes((0x10, len(body))) + body + bytes((0x82, len(sub))) + sub)
    buf = bytearray()
    got = 0
    ready = False
    while got < expected:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
        acks = bytearray()
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            head = buf[pos]
            length, shift, i = 0, 0, pos + 1
            while i < n:
                b = buf[i]
                length |= (b & 0x7F) << shift
                shift += 7
                i += 1
                if not b & 0x80:
                    break
            else:
                break
            if n - i < length:
                break
            if head >> 4 == 3:
                got += 1
                if (head >> 1) & 3:
                    j = i + 2 + ((buf[i] << 8) | buf[i + 1])
                    acks += b"\x40\x02" + buf[j : j + 2]
            elif head >> 4 == 9 and not ready:
                ready = True
                sock.settimeout(idle_s)
                print("ready", flush=True)
            pos = i + length
        del buf[:pos]
        if acks:
            sock.sendall(acks)
    sock.close()
    print(json.dumps({"got": got}), flush=True)


# -- phases ---------------------------------------------------------------------------


async def _phase(
    publisher: MqttPublisher,
    port: int,
    broker_pid: int,
    make: Callable[[], Payload],
    topic: str,
    n: int,
    with_subscriber: bool,
) -> tuple[float, int]:
    """(broker CPU µs per message, messages the subscriber got or -1) for one burst."""
    sub = None
    if with_subscriber:
        sub = await spawn_subscriber(__file__, port, topic, n)
    payload = make()
    # QoS 1 on a topic of its own (``event``), so the subscriber does not count it.
    sentinel = Event(kind="bench_end", message="end of phase")
    cpu0 = _cpu_ns(broker_pid)
    for _ in range(n):
        publisher.send(payload)
    publisher.send(sentinel)
    await asyncio.wait_for(publisher.flush(), 600)
    got = -1
    if sub is not None:
        out, _ = await asyncio.wait_for(sub.communicate(), 600)
        got = int(json.loads(out.decode().strip().splitlines()[-1])["got"])
    cpu1 = await _quiet_cpu_ns(broker_pid)
    return (cpu1 - cpu0) / 1e3 / n, got


async def _quiet_cpu_ns(pid: int) -> int:
    """The broker's CPU time once it has stopped working (work it had queued included)."""
    clock = SystemClock()
    last = _cpu_ns(pid)
    while True:
        await clock.sleep(0.3)  # an idle broker uses well under 1 ms in this span
        now = _cpu_ns(pid)
        if now - last < 1_000_000:
            return now
        last = now


PHASES = ("qos0 no sub", "qos1 no sub", "qos0 1 sub", "qos1 1 sub")
PACED = ("qos0 paced", "qos1 paced")


def _paced_publisher(port: int, n: int, rate: float, qos: int) -> None:
    """Send ``n`` PUBLISH packets at ``rate`` per second, one per send(), then wait for a
    PINGRESP: the pattern of a station whose control loops each publish as they run."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the station's client
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + _string(f"bench-paced-{os.getpid()}")
    sock.sendall(bytes((0x10, len(body))) + body)
    sock.recv(4)  # CONNACK
    payload = b'{"ts":"2026-11-26T06:00:00+00:00","seq":1,"az_deg":123.4}' * 5
    packets = []
    for i in range(n):
        head = _string(POINTING_TOPIC) + (struct.pack("!H", i % 65535 + 1) if qos else b"")
        packet_body = head + payload
        length = len(packet_body)
        packets.append(bytes((0x30 | qos << 1, length & 0x7F | 0x80, length >> 7)) + packet_body)
    sock.setblocking(False)
    t0 = time.perf_counter()
    for i, packet in enumerate(packets):
        sock.send(packet)
        if qos:
            with contextlib.suppress(BlockingIOError):
                sock.recv(1 << 20)  # PUBACKs: keep the socket drained
        due = t0 + (i + 1) / rate
        while time.perf_counter() < due:
            pass  # a busy wait: a sleep would oversleep by more than the interval
    sock.setblocking(True)
    sock.sendall(b"\xc0\x00")
    while not sock.recv(1 << 20).endswith(b"\xd0\x00"):
        pass
    sock.close()


async def _paced_phase(port: int, broker_pid: int, n: int, rate: float, qos: int) -> float:
    """Broker CPU µs per message for one paced publisher process."""
    cpu0 = _cpu_ns(broker_pid)
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--paced", str(port), str(n), str(rate), str(qos)
    )
    if await asyncio.wait_for(child.wait(), 600) != 0:
        raise RuntimeError("paced publisher failed")
    cpu1 = await _quiet_cpu_ns(broker_pid)
    return (cpu1 - cpu0) / 1e3 / n


async def _run_engine(
    engine: BrokerEngine, n: int, repeat: int, rate: float, paced_n: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in PHASES + PACED}
    async with EmbeddedBroker(port=0, ws_port=None, isolated=True, engine=engine) as broker:
        assert broker.pid is not None
        cfg = MqttConfig(
            broker=broker.url,
            outbox_events=max(100_000, 2 * n),
            outbox_stream_depth=max(100_000, 2 * n),
            reconnect_min_s=0.1,
        )

        pointing, event = sample_pointing, sample_event

        async with MqttPublisher(cfg, STATION, SystemClock()) as publisher:
            await asyncio.wait_for(publisher.wait_connected(), 10)
            await asyncio.wait_for(publisher.flush(), 30)
            for _ in range(repeat):
                for name in PHASES:
                    qos1 = name.startswith("qos1")
                    us, got = await _phase(
                        publisher,
                        broker.tcp_port,
                        broker.pid,
                        event if qos1 else pointing,
                        EVENT_TOPIC if qos1 else POINTING_TOPIC,
                        n,
                        name.endswith("1 sub"),
                    )
                    if got not in (-1, n):
                        print(f"  {engine} {name}: subscriber got {got} of {n}", flush=True)
                    results[name].append(us)
                    print(f"  {engine:<6} {name:<12} {us:8.1f} µs/msg (N={n})", flush=True)
                for qos, name in enumerate(PACED):
                    us = await _paced_phase(broker.tcp_port, broker.pid, paced_n, rate, qos)
                    results[name].append(us)
                    print(f"  {engine:<6} {name:<12} {us:8.1f} µs/msg (N={paced_n})", flush=True)
    return results


async def _main(args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load}; broker CPU per message published (child process, "
        f"schedstat); N native {args.n}, amqtt {args.n_amqtt}; {args.repeat} runs each",
        flush=True,
    )
    paced_n = int(args.rate * args.seconds)
    native = await _run_engine("native", args.n, args.repeat, args.rate, paced_n)
    amqtt = (
        await _run_engine("amqtt", args.n_amqtt, args.repeat, args.rate, paced_n)
        if not args.skip_amqtt
        else {}
    )
    print(f"\n{'phase':<12} {'native µs/msg':>14} {'amqtt µs/msg':>13} {'ratio':>7}  (medians)")
    for name in PHASES + PACED:
        ours = statistics.median(native[name])
        line = f"{name:<12} {ours:14.2f}"
        if amqtt:
            theirs = statistics.median(amqtt[name])
            line += f" {theirs:13.1f} {theirs / ours:6.1f}x"
        print(line)


def main() -> None:
    """Run the benchmark (or, with --subscriber, one subscriber process)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--subscriber":
        port, topic, expected = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        _subscriber(port, topic, expected, idle_s=10.0)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--paced":
        _paced_publisher(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="messages per phase, native broker")
    ap.add_argument("--n-amqtt", type=int, default=5_000, help="messages per phase, amqtt")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each phase")
    ap.add_argument("--rate", type=float, default=5000.0, help="paced phases: messages/s")
    ap.add_argument("--seconds", type=float, default=2.0, help="paced phases: duration")
    ap.add_argument("--skip-amqtt", action="store_true")
    asyncio.run(_main(ap.parse_args()))


if __name__ == "__main__":
    main()
