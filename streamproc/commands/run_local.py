"""``streamproc run-local`` (``make run``): broker, worker, demo producer and alerts, on one screen.

Everything it starts is its own child: a local Kafka broker (:class:`LocalKafka`),
then ``streamproc worker``, ``streamproc demo`` and ``streamproc alerts
--follow`` as subprocesses. Ctrl-C (or ``--duration``) stops them all, the
broker last, and removes the broker's data.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import (
    child_env,
    free_ports,
    port_open,
    spawn,
    streamproc_command,
    terminate,
)

STOP_SECONDS = 15.0
DEMO_ARRIVAL = {
    "STREAMPROC_ARRIVAL_SILENCE_FLOOR_SECONDS": "10",
    "STREAMPROC_ARRIVAL_RATE_BUCKET_SECONDS": "5",
}
"""The demo lasts minutes, not days: short silence windows and rate buckets, so that its
silent and slowed-down models alert while one watches (docs/arrival.md)."""


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run-local",
        help="run broker, worker, demo producer and alerts together (make run)",
        description="Start a local Kafka broker, the worker, the demo producer and an alerts "
        "reader; print the demo's announcements and the alerts. Ctrl-C stops everything.",
    )
    parser.add_argument("--port", type=int, default=9092, help="broker port (default 9092)")
    parser.add_argument("--rate", type=float, default=60.0, help="demo events per second")
    parser.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    parser.add_argument(
        "--dir", type=Path, default=Path("var/run-local"), help="worker data and logs"
    )
    parser.set_defaults(func=_run)


def _pick_port(preferred: int) -> int:
    if not port_open(preferred) and not port_open(preferred + 1):
        return preferred
    return free_ports(1)[0]


def _child_env(bootstrap: str, workdir: Path) -> dict[str, str]:
    return child_env(
        {
            "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMPROC_WORKER_DATA_DIR": str(workdir / "worker"),
            "STREAMPROC_METRICS_PORT": str(free_ports(1)[0]),
            **DEMO_ARRIVAL,
        }
    )


def _spawn(
    args: list[str], env: Mapping[str, str], out: IO[bytes] | int, err: IO[bytes] | int
) -> subprocess.Popen[bytes]:
    # Own session: Ctrl-C reaches us only and we stop children in order; and they die
    # if we are killed.
    cmd = streamproc_command(*args)
    return spawn(cmd, env, out, err=err, own_session=True, die_with_parent=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait(children: Mapping[str, subprocess.Popen[bytes]], duration: float | None) -> str:
    """Block until Ctrl-C, the duration, or a child's unexpected exit; say which."""
    deadline = None if duration is None else time.monotonic() + duration
    tick = threading.Event()
    try:
        while not tick.wait(0.5):
            for name, child in children.items():
                if child.poll() is not None:
                    return f"{name} exited with code {child.returncode}"
            if deadline is not None and time.monotonic() >= deadline:
                return "duration reached"
    except KeyboardInterrupt:
        return "interrupted"
    return "stopped"


def _run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops everything, like Ctrl-C
    workdir: Path = args.dir
    workdir.mkdir(parents=True, exist_ok=True)
    port = _pick_port(args.port)
    print(f"run-local: starting Kafka on 127.0.0.1:{port} ...", flush=True)
    with LocalKafka(port, controller_port=free_ports(1)[0]) as kafka:
        print(
            f"run-local: Kafka {kafka.version} ready in {kafka.startup_seconds:.1f}s at "
            f"{kafka.bootstrap_servers}; worker log: {workdir / 'worker.log'}",
            flush=True,
        )
        env = _child_env(kafka.bootstrap_servers, workdir)
        with (workdir / "worker.log").open("wb") as worker_log:
            # The screen shows the demo's lines and the alerts (stdout); what clients log on
            # stderr (aiokafka's warnings while a fresh broker elects leaders) goes to the log.
            screen = sys.stdout.buffer.fileno()
            worker = _spawn(["worker"], env, worker_log, subprocess.STDOUT)
            demo = _spawn(["demo", "--rate", str(args.rate)], env, screen, worker_log)
            alerts = _spawn(["alerts", "--follow"], env, screen, worker_log)
            children = {"worker": worker, "demo": demo, "alerts": alerts}
            try:
                reason = _wait(children, args.duration)
            finally:
                for child in (demo, worker, alerts):
                    terminate(child, STOP_SECONDS)
        print(f"run-local: {reason}; stopping Kafka", flush=True)
    failed = worker.returncode not in (0, -signal.SIGTERM)
    return 1 if failed else 0
