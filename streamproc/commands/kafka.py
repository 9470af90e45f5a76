"""``streamproc kafka up|down|status``: a local broker that outlives the command.

``up`` starts :class:`~streamproc.dev.localkafka.LocalKafka` detached and leaves its
record (``broker.json``: pid, ports, dirs) in the state dir; ``down`` and
``status`` find the broker through that record only, so they work from any later
shell. The state dir defaults to ``var/kafka`` (gitignored) under the current dir.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamproc.dev.localkafka import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    INFO_NAME,
    BrokerInfo,
    LocalKafka,
    is_broker,
    metadata_ready,
    remove_work_dir,
    stop_pid,
)
from streamproc.errors import BrokerError

DEFAULT_STATE_DIR = Path("var/kafka")


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kafka",
        help="run a local Apache Kafka broker (no Docker) for development",
        description="Start, stop or inspect a single-node KRaft broker run from Maven-fetched "
        "jars. See docs/kafka.md.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start the broker in the background")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="client port (default 9092)")
    up.add_argument("--controller-port", type=int, help="KRaft controller port (default port+1)")
    up.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="start-up bound, s")
    up.set_defaults(func=_up)
    down = actions.add_parser("down", help="stop the broker and delete its data")
    down.add_argument("--keep-logs", action="store_true", help="keep broker.log")
    down.set_defaults(func=_down)
    status = actions.add_parser("status", help="exit 0 if the broker answers, else 1")
    status.set_defaults(func=_status)
    for sub in (up, down, status):
        sub.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="(var/kafka)")


def _record(state_dir: Path) -> BrokerInfo | None:
    path = state_dir / INFO_NAME
    return BrokerInfo.load(path) if path.is_file() else None


def _alive(info: BrokerInfo) -> bool:
    return is_broker(info.pid, Path(info.work_dir))


def _up(args: argparse.Namespace) -> int:
    info = _record(args.state_dir)
    if info is not None and _alive(info):
        if not metadata_ready(info.bootstrap_servers):
            raise BrokerError(
                f"a broker (pid {info.pid}) is running but not answering at "
                f"{info.bootstrap_servers}; see {args.state_dir / 'broker.log'} "
                "or run `streamproc kafka down`"
            )
        print(f"Kafka already running at {info.bootstrap_servers} (pid {info.pid})")
        return 0
    remove_work_dir(args.state_dir)  # a stale record, or a start that was killed
    broker = LocalKafka(
        args.port,
        args.controller_port,
        timeout=args.timeout,
        work_dir=args.state_dir,
        detach=True,
    ).start()
    broker.info().save(args.state_dir / INFO_NAME)  # now with the start-up time
    print(
        f"Kafka {broker.version} up at {broker.bootstrap_servers} (pid {broker.pid}, "
        f"started in {broker.startup_seconds:.1f} s); log: {broker.log_path}"
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    info = _record(args.state_dir)
    if info is None:
        print(f"no broker recorded in {args.state_dir}")
        remove_work_dir(args.state_dir, keep_logs=args.keep_logs)
        return 0
    if _alive(info):
        stop_pid(info.pid)
        print(f"Kafka at {info.bootstrap_servers} (pid {info.pid}) stopped")
    else:
        print(f"Kafka (pid {info.pid}) was not running; removed its stale state")
    remove_work_dir(args.state_dir, keep_logs=args.keep_logs)
    return 0


def _status(args: argparse.Namespace) -> int:
    info = _record(args.state_dir)
    if info is None or not _alive(info):
        print("Kafka is not running")
        return 1
    if not metadata_ready(info.bootstrap_servers):
        print(f"Kafka (pid {info.pid}) is running but not answering at {info.bootstrap_servers}")
        return 1
    print(f"Kafka {info.version} running at {info.bootstrap_servers} (pid {info.pid})")
    return 0
