"""Child processes of the dev tooling, the tests and the benchmarks, in one place.

Launching (``streamproc`` subcommands, or any command with its output in a log),
the environment a child gets (``STREAMPROC_*`` scrubbed, then set on purpose),
stopping by PID, free ports, and waiting for a condition with a deadline instead of
a fixed sleep. ``run-local``, the integration tests and ``bench/throughput`` all use
these; nothing in the runtime core imports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

ENV_PREFIX = "STREAMPROC_"
STOP_TIMEOUT = 20.0
"""Seconds a SIGTERM'd child gets before SIGKILL."""
LOG_TAIL_LINES = 40
POLL_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1


class Timeout(AssertionError):
    """A condition :func:`wait_until` waited for did not come true in time."""


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    interval: float = POLL_SECONDS,
    alive: Callable[[], str | None] = lambda: None,
) -> float:
    """Poll ``condition`` until true; return the seconds it took.

    ``alive`` returns why waiting is pointless (a child died) or None; its answer, or the
    deadline, raise :class:`Timeout` naming ``what``. The wait between polls is an
    ``Event`` wait, not a sleep, so the loop stays responsive to Ctrl-C.
    """
    started = time.monotonic()
    deadline = started + timeout
    pause = threading.Event()
    while True:
        if condition():
            return time.monotonic() - started
        dead = alive()
        if dead is not None:
            raise Timeout(f"gave up waiting for {what}: {dead}")
        if time.monotonic() >= deadline:
            raise Timeout(f"{what} did not happen within {timeout:g} s")
        pause.wait(interval)


async def wait_until_async(
    condition: Callable[[], bool],
    within: float,
    what: str,
    *,
    interval: float = POLL_SECONDS,
    alive: Callable[[], str | None] = lambda: None,
) -> float:
    """:func:`wait_until` for a coroutine: the event loop runs while it waits.

    ``condition`` is called in a thread (a blocking scrape must not stall the loop).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        if await asyncio.to_thread(condition):
            return loop.time() - started
        dead = alive()
        if dead is not None:
            raise Timeout(f"gave up waiting for {what}: {dead}")
        if loop.time() - started >= within:
            raise Timeout(f"{what} did not happen within {within:g} s")
        await asyncio.sleep(interval)


def exited(proc: subprocess.Popen[bytes], name: str = "the child") -> Callable[[], str | None]:
    """An ``alive`` check for the waits: why waiting on ``proc`` is pointless, or None."""

    def check() -> str | None:
        code = proc.poll()
        return None if code is None else f"{name} exited with code {code}"

    return check


def child_env(
    overrides: Mapping[str, str] = {}, base: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """``base`` without any ``STREAMPROC_*`` variable, then ``overrides``.

    A child's settings come only from what its caller chose, never from the shell that
    happened to run the tests (a stray ``STREAMPROC_KAFKA_BOOTSTRAP_SERVERS``).
    """
    env = {k: v for k, v in base.items() if not k.startswith(ENV_PREFIX)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def streamproc_command(*args: str) -> list[str]:
    """``python -m streamproc ARGS`` with this interpreter: the same install as the caller."""
    return [sys.executable, "-m", "streamproc", *args]


def spawn(
    cmd: Sequence[str],
    env: Mapping[str, str],
    out: IO[bytes] | int,
    *,
    err: IO[bytes] | int = subprocess.STDOUT,
    own_session: bool = False,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with stdout to ``out`` and stderr to ``err`` (default: ``out`` too).

    ``own_session`` keeps Ctrl-C in a terminal from reaching the child (its parent
    stops it, in order); ``die_with_parent`` SIGKILLs it if the parent dies.
    """
    return subprocess.Popen(
        list(cmd),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        start_new_session=own_session,
        # Only prctl runs between fork and exec; nothing that could deadlock.
        preexec_fn=parent_death_signal() if die_with_parent else None,  # noqa: PLW1509
    )


def parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn that SIGKILLs the child when this process dies, on Linux.

    The kernel sends it when the *thread* that forked exits, so it is armed only
    from the main thread; elsewhere the atexit guard has to do.
    """
    on_linux = sys.platform.startswith("linux")
    if not on_linux or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child only calls it
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return arm


def launch(
    cmd: list[str],
    log: Path,
    *,
    die_with_parent: bool,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, appending its output to ``log``."""
    with log.open("ab") as out:
        return spawn(
            cmd,
            os.environ if env is None else env,
            out,
            own_session=True,
            die_with_parent=die_with_parent,
        )


def terminate(
    proc: subprocess.Popen[bytes],
    timeout: float = STOP_TIMEOUT,
    sig: signal.Signals = signal.SIGTERM,
) -> int:
    """Send ``sig`` to our child, SIGKILL it if it is still there after ``timeout``;
    returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
    return proc.returncode


def pid_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a dead child not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def free_ports(count: int = 1) -> list[int]:
    """Distinct ports the OS has just handed out; all are held until all are chosen."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def port_open(port: int, timeout: float = 1.0) -> bool:
    """A quiet TCP check, so the Metadata probe only runs once something listens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(lines: list[str], count: int = LOG_TAIL_LINES) -> str:
    return "\n".join(lines[-count:])


def log_tail(path: Path, count: int = LOG_TAIL_LINES) -> str:
    """The end of a log, for error messages that explain themselves."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return tail(text.splitlines(), count)
