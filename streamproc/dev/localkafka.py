"""A real single-node Apache Kafka broker (KRaft, broker+controller), run without Docker.

The integration tests and ``make run`` need the broker the worker meets in
production, not a fake: aiokafka negotiates protocol versions that Kafka 4.x
accepts or rejects, and topic creation, rebalances and ordering are the broker's
behaviour. The machines have a JDK and Maven but no Docker, so Maven lays the
jars pinned in ``streamproc/dev/pom.xml`` into a cache outside git and the broker
runs as a plain ``java`` process that we start, watch and stop by its PID.

Lifecycle of :class:`LocalKafka`: find ``java`` (and ``mvn`` when the jars are
not cached yet) -> fetch jars once -> write ``server.properties`` -> format a
fresh data dir -> launch java -> poll a Metadata request until it answers ->
... -> SIGTERM (SIGKILL after a bound) -> remove everything it made.
See docs/kafka.md.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from streamproc.dev.jars import (
    JAVA_HINT,
    MAVEN_HINT,
    Which,
    default_cache_root,
    default_pom,
    ensure_jars,
    find_tool,
    pom_version,
)
from streamproc.dev.processes import (
    POLL_SECONDS,
    STOP_TIMEOUT,
    launch,
    log_tail,
    pid_running,
    port_open,
    tail,
    terminate,
)
from streamproc.errors import BrokerError

DEFAULT_PORT = 9092
DEFAULT_TIMEOUT = 60.0
HEAP = "-Xmx512m"
LOG_NAME = "broker.log"
INFO_NAME = "broker.json"
TEMP_PREFIX = "streamproc-kafka-"
_WORK_DIR_ENTRIES = frozenset(
    {"data", "server.properties", "log4j2.properties", LOG_NAME, INFO_NAME}
)

_PROBE_SECONDS = 5.0
_TOOL_TIMEOUT = 120.0
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_PASSWORD = re.compile(r"(password=)[^,\]\s]*")

LOG4J2_PROPERTIES = """\
# Console only: the broker's stdout/stderr already go to broker.log.
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
"""


# --- configuration and storage ------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """An extra client listener on 127.0.0.1, e.g. ``SASL_SSL`` for the security tests.

    The PLAINTEXT and CONTROLLER listeners stay: the broker talks to itself and the
    readiness probe asks over them, so a TLS or SASL mistake cannot hide as a slow start.
    """

    name: str
    """Listener name; its settings go in ``listener.name.<name lower-case>.*`` properties."""
    protocol: str
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    port: int


def server_properties(
    port: int,
    controller_port: int,
    data_dir: Path,
    listeners: Sequence[Listener] = (),
    extra: Mapping[str, str] | None = None,
) -> str:
    """Combined broker+controller with a static voter list, replication factors of 1;
    ``listeners`` are added to the plaintext ones and ``extra`` properties win."""
    bound = "".join(f",{x.name}://127.0.0.1:{x.port}" for x in listeners)
    protocols = "".join(f",{x.name}:{x.protocol}" for x in listeners)
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
        + bound,
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}{bound}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" + protocols,
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        # Topics must be created on purpose, so the worker's own creation is exercised.
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        **(extra or {}),
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def _require_free(port: int) -> None:
    """Fail with the port's name instead of a bind error deep in the broker log."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM does
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise BrokerError(
                f"port {port} is in use ({exc.strerror}); is a broker already running? "
                "(streamproc kafka status)"
            ) from exc


# --- processes ----------------------------------------------------------------------


def wait_ready(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float, log: Path
) -> float:
    """Seconds until ``ready()``; a dead process or the deadline raise with the log tail."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if proc.poll() is not None:
            raise BrokerError(
                f"the broker exited with code {proc.returncode} during start-up; "
                f"end of {log}:\n{log_tail(log)}"
            )
        if ready():
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise BrokerError(
                f"the broker did not answer a Metadata request within {timeout:g} s; "
                f"end of {log}:\n{log_tail(log)}"
            )
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=POLL_SECONDS)  # returns at once if the broker dies


def is_broker(pid: int, work_dir: Path) -> bool:
    """Whether ``pid`` is the broker of ``work_dir``, so a reused PID is never signalled."""
    if not pid_running(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no procfs: a running recorded PID is the best we know
    props = str(work_dir / "server.properties").encode()
    return b"kafka.Kafka" in args and props in args


def stop_pid(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """Stop a broker that is not our child (``streamproc kafka down``) by its PID."""
    for sig, bound in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if not pid_running(pid):
                return
            time.sleep(POLL_SECONDS)  # not our child: there is nothing to wait on
    raise BrokerError(f"the broker (pid {pid}) survived SIGKILL")


def remove_work_dir(work_dir: Path, *, keep_logs: bool = False) -> None:
    """Delete what a broker left (data, properties); with ``keep_logs`` keep the log.

    Refuses a dir holding anything else, so a mistyped ``--state-dir`` deletes nothing.
    """
    if not work_dir.exists():
        return
    foreign = sorted(e.name for e in work_dir.iterdir() if e.name not in _WORK_DIR_ENTRIES)
    if foreign:
        raise BrokerError(f"not removing {work_dir}: it holds files no broker made: {foreign}")
    if not keep_logs:
        shutil.rmtree(work_dir, ignore_errors=True)
        return
    for entry in work_dir.glob("*"):
        if entry.name == LOG_NAME:
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def sweep_orphans(tmp: Path) -> None:
    """Remove temp work dirs whose broker died with a SIGKILLed parent (nothing else could)."""
    for info_path in tmp.glob(f"{TEMP_PREFIX}*/{INFO_NAME}"):
        with contextlib.suppress(BrokerError, OSError):
            info = BrokerInfo.load(info_path)
            if not is_broker(info.pid, Path(info.work_dir)):
                remove_work_dir(info_path.parent)


# --- readiness ----------------------------------------------------------------------


def metadata_ready(bootstrap_servers: str, timeout: float = _PROBE_SECONDS) -> bool:
    """Whether a real client's Metadata request lists a broker (blocks; no running loop)."""
    return asyncio.run(_metadata_ready(bootstrap_servers, timeout))


async def _metadata_ready(bootstrap_servers: str, request_timeout: float) -> bool:
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        client_id="streamproc-localkafka",
        request_timeout_ms=int(request_timeout * 1000),
    )
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()


# --- the broker ---------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerInfo:
    """Enough about a running broker for another process to find and stop it."""

    pid: int
    """The java process; stopping uses it, after :func:`is_broker` checks it."""
    port: int
    """The PLAINTEXT listener on 127.0.0.1 that clients bootstrap from."""
    controller_port: int
    """The KRaft controller listener."""
    work_dir: str
    """Data dir, properties and ``broker.log``; removed when the broker is stopped."""
    version: str
    """The Kafka version pinned in the pom."""
    startup_seconds: float | None = None
    """Seconds from launching java to the first answered Metadata request."""

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> BrokerInfo:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise BrokerError(f"cannot read broker state {path}: {exc}") from exc


class LocalKafka:
    """One broker on 127.0.0.1, owned by this object: started, awaited, stopped, removed.

    ``work_dir`` (default: a fresh temp dir) holds the data dir, the properties and
    ``broker.log``; it is created here and deleted by :meth:`stop`. ``detach=True``
    lets the broker outlive this process (``streamproc kafka up``); otherwise it is
    killed with it (PR_SET_PDEATHSIG on Linux, an atexit guard everywhere).
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        controller_port: int | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        work_dir: Path | None = None,
        cache_root: Path | None = None,
        pom: Path | None = None,
        keep_logs: bool = False,
        detach: bool = False,
        which: Which = shutil.which,
        listeners: Sequence[Listener] = (),
        properties: Mapping[str, str] | None = None,
        format_args: Sequence[str] = (),
    ) -> None:
        self.port = port
        self.controller_port = port + 1 if controller_port is None else controller_port
        if self.port == self.controller_port:
            raise ValueError("port and controller_port must differ")
        self.timeout = timeout
        self.keep_logs = keep_logs
        self.detach = detach
        self.startup_seconds: float | None = None
        self.version: str | None = None
        self._work_dir = work_dir.resolve() if work_dir is not None else None
        self._cache_root = cache_root or default_cache_root()
        self._pom = pom
        self._which = which
        self._proc: subprocess.Popen[bytes] | None = None
        self.listeners = tuple(listeners)
        """Extra client listeners (TLS, SASL) beside the PLAINTEXT one."""
        self._properties = dict(properties or {})
        self._format_args = tuple(format_args)
        """Extra ``StorageTool format`` arguments, e.g. ``--add-scram`` users."""

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def work_dir(self) -> Path:
        if self._work_dir is None:
            raise BrokerError("the broker has not been started")
        return self._work_dir

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.work_dir / LOG_NAME

    def info(self) -> BrokerInfo:
        if self.pid is None or self.version is None:
            raise BrokerError("the broker has not been started")
        return BrokerInfo(
            self.pid,
            self.port,
            self.controller_port,
            str(self.work_dir),
            self.version,
            self.startup_seconds,
        )

    def start(self) -> LocalKafka:
        """Fetch, configure, format and launch; return once Metadata is answered."""
        if self._proc is not None:
            raise BrokerError(f"the broker is already running (pid {self._proc.pid})")
        _require_no_running_loop()
        java, jars = self._java_and_jars()
        for port in (self.port, self.controller_port, *(x.port for x in self.listeners)):
            _require_free(port)
        self._make_work_dir()
        try:
            self._format(java, jars)
            self._launch(java, jars)
            self.startup_seconds = self._wait_ready()
        except BaseException:  # also Ctrl-C: never leave a half-started broker behind
            self.stop()
            raise
        return self

    def stop(self, *, keep_logs: bool | None = None) -> None:
        """Stop the broker by its PID and delete what :meth:`start` made; idempotent."""
        atexit.unregister(self.stop)
        if self._proc is not None:
            terminate(self._proc)
            self._proc = None
        if self._work_dir is not None and self._work_dir.exists():
            keep = self.keep_logs if keep_logs is None else keep_logs
            remove_work_dir(self._work_dir, keep_logs=keep)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _java_and_jars(self) -> tuple[str, Path]:
        """``java`` on PATH and the jar dir (fetched on first use); sets :attr:`version`."""
        java = find_tool("java", JAVA_HINT, self._which)
        pom = self._pom or default_pom()
        self.version = pom_version(pom)
        jars = ensure_jars(pom, self._cache_root, lambda: find_tool("mvn", MAVEN_HINT, self._which))
        return java, jars

    def _make_work_dir(self) -> None:
        if self._work_dir is None:
            sweep_orphans(Path(tempfile.gettempdir()))
            self._work_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        elif self._work_dir.exists() and any(self._work_dir.iterdir()):
            raise BrokerError(f"{self._work_dir} is not empty; the broker needs a fresh dir")
        self._work_dir.mkdir(parents=True, exist_ok=True)
        props = server_properties(
            self.port, self.controller_port, self.data_dir, self.listeners, self._properties
        )
        (self._work_dir / "server.properties").write_text(props)
        (self._work_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)

    def _java(self, java: str, jars: Path, *args: str) -> list[str]:
        log4j = f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}"
        return [java, HEAP, log4j, "-cp", f"{jars}/*", *args]

    def _format(self, java: str, jars: Path) -> None:
        """A fresh data dir, always: an unformatted one makes KRaft refuse to start."""
        cluster_id = self._tool(self._java(java, jars, "kafka.tools.StorageTool", "random-uuid"))
        cluster_id = cluster_id.strip().splitlines()[-1] if cluster_id.strip() else ""
        if not _CLUSTER_ID.match(cluster_id):
            raise BrokerError(f"StorageTool random-uuid printed no cluster id: {cluster_id!r}")
        props = str(self.work_dir / "server.properties")
        fmt = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", props]
        fmt += self._format_args
        self._tool(self._java(java, jars, *fmt))

    def _tool(self, cmd: list[str]) -> str:
        """Run a short-lived Kafka tool; its output goes to the log, stdout is returned."""
        # After java, heap, log4j, -cp, classpath; SCRAM passwords (--add-scram) masked.
        what = _PASSWORD.sub(r"\1***", " ".join(cmd[5:]))
        try:
            done = subprocess.run(
                cmd, check=False, capture_output=True, text=True, timeout=_TOOL_TIMEOUT
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"{what} did not finish within {exc.timeout:.0f} s") from exc
        with self.log_path.open("a") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            output = tail((done.stdout + done.stderr).splitlines())
            raise BrokerError(f"{what} failed with code {done.returncode}:\n{output}")
        return done.stdout

    def _launch(self, java: str, jars: Path) -> None:
        cmd = self._java(java, jars, "kafka.Kafka", str(self.work_dir / "server.properties"))
        self._proc = launch(cmd, self.log_path, die_with_parent=not self.detach)
        if not self.detach:
            atexit.register(self.stop)
        self.info().save(self.work_dir / INFO_NAME)  # findable even if we die while waiting

    def _wait_ready(self) -> float:
        assert self._proc is not None

        def ready() -> bool:
            return port_open(self.port) and metadata_ready(self.bootstrap_servers)

        return wait_ready(self._proc, ready, self.timeout, self.log_path)


def _require_no_running_loop() -> None:
    """start() blocks and runs its own event loop for the Metadata probe."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise BrokerError(
        "LocalKafka.start() blocks; call it outside a running event loop "
        "(from a sync fixture, or via asyncio.to_thread)"
    )
