"""LocalKafka without a broker: tool lookup, jar cache, configuration, process handling."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamproc.dev.jars import MARKER, default_cache_root, default_pom, ensure_jars, pom_version
from streamproc.dev.localkafka import (
    LOG_NAME,
    TEMP_PREFIX,
    BrokerInfo,
    LocalKafka,
    is_broker,
    remove_work_dir,
    server_properties,
    sweep_orphans,
    wait_ready,
)
from streamproc.dev.processes import free_ports, launch, log_tail, pid_running, terminate
from streamproc.errors import BrokerError

POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <properties><kafka.version>{version}</kafka.version></properties>
</project>
"""


def only(*names: str) -> Callable[[str], str | None]:
    """A ``which`` that finds just these tools."""
    return lambda name: f"/usr/bin/{name}" if name in names else None


def no_maven() -> str:
    raise AssertionError("Maven must not be needed here")


@pytest.fixture
def pom(tmp_path: Path) -> Path:
    path = tmp_path / "pom.xml"
    path.write_text(POM.format(version="9.9.9"))
    return path


def cached(root: Path, pom: Path) -> Path:
    """A jar cache that looks complete for ``pom``."""
    jars = root / f"kafka-{pom_version(pom)}"
    jars.mkdir(parents=True)
    (jars / MARKER).write_text(hashlib.sha256(pom.read_bytes()).hexdigest())
    return jars


def fake_maven(tmp_path: Path, script: str) -> str:
    """A stand-in ``mvn`` for the cache logic; the broker itself is never faked."""
    path = tmp_path / "mvn"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    path.chmod(0o755)
    return str(path)


# --- tools --------------------------------------------------------------------------


def test_missing_java_says_to_install_a_jdk(tmp_path: Path) -> None:
    broker = LocalKafka(cache_root=tmp_path, which=only("mvn"))

    with pytest.raises(BrokerError, match=r"java not found: install a JDK 17\+.*openjdk-17"):
        broker.start()


def test_missing_maven_says_to_install_maven_when_jars_are_not_cached(tmp_path: Path) -> None:
    broker = LocalKafka(cache_root=tmp_path / "cache", which=only("java"))

    with pytest.raises(BrokerError, match=r"mvn not found: .*apt-get install maven"):
        broker.start()
    assert not (tmp_path / "cache").exists()


def test_cached_jars_need_no_maven(tmp_path: Path, pom: Path) -> None:
    jars = cached(tmp_path, pom)

    assert ensure_jars(pom, tmp_path, no_maven) == jars


# --- jar cache ----------------------------------------------------------------------


def test_fetch_publishes_the_jars_with_a_marker(tmp_path: Path, pom: Path) -> None:
    mvn = fake_maven(
        tmp_path,
        """\
        for arg; do case $arg in -DoutputDirectory=*) out=${arg#*=};; esac; done
        touch "$out/kafka_2.13-9.9.9.jar"
        """,
    )
    root = tmp_path / "cache"

    jars = ensure_jars(pom, root, lambda: mvn)

    assert jars == root / "kafka-9.9.9"
    assert sorted(p.name for p in jars.iterdir()) == [MARKER, "kafka_2.13-9.9.9.jar"]
    assert [p.name for p in root.iterdir()] == ["kafka-9.9.9"]  # no staging dir left


def test_changed_pom_refetches(tmp_path: Path, pom: Path) -> None:
    old = cached(tmp_path, pom)
    (old / "stale.jar").touch()
    pom.write_text(pom.read_text() + "<!-- log4j bumped -->\n")
    mvn = fake_maven(tmp_path, "exit 0\n")

    jars = ensure_jars(pom, tmp_path, lambda: mvn)

    assert not (jars / "stale.jar").exists()
    assert (jars / MARKER).read_text() == hashlib.sha256(pom.read_bytes()).hexdigest()


def test_failed_fetch_shows_maven_output_and_leaves_no_cache(tmp_path: Path, pom: Path) -> None:
    mvn = fake_maven(tmp_path, "echo 'Could not resolve dependencies' >&2\nexit 1\n")
    root = tmp_path / "cache"

    with pytest.raises(BrokerError, match="Could not resolve dependencies"):
        ensure_jars(pom, root, lambda: mvn)
    assert list(root.iterdir()) == []


def test_pom_version_and_its_errors(tmp_path: Path, pom: Path) -> None:
    assert pom_version(pom) == "9.9.9"
    assert pom_version(default_pom()).split(".")[0] == "4"  # the repo pins a 4.x broker
    pom.write_text("<project/>")
    with pytest.raises(BrokerError, match=r"kafka\.version"):
        pom_version(pom)
    with pytest.raises(BrokerError, match="cannot read"):
        pom_version(tmp_path / "absent.xml")


def test_cache_root_follows_xdg() -> None:
    assert default_cache_root({"XDG_CACHE_HOME": "/c"}) == Path("/c/streamproc")
    assert default_cache_root({}) == Path.home() / ".cache" / "streamproc"


# --- configuration ------------------------------------------------------------------


def test_server_properties() -> None:
    text = server_properties(19092, 19093, Path("/d/data"))
    props = dict(line.split("=", 1) for line in text.splitlines())

    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == "/d/data"
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_controller_port_defaults_to_the_next_port() -> None:
    assert LocalKafka(19092).controller_port == 19093
    with pytest.raises(ValueError, match="differ"):
        LocalKafka(19092, 19092)


def test_free_ports_are_distinct() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3


def test_a_busy_port_is_named_before_anything_starts(tmp_path: Path, pom: Path) -> None:
    cached(tmp_path, pom)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        broker = LocalKafka(
            port, free_ports()[0], cache_root=tmp_path, pom=pom, work_dir=tmp_path / "w",
            which=only("java", "mvn"),
        )  # fmt: skip

        with pytest.raises(BrokerError, match=f"port {port} is in use"):
            broker.start()
    assert not (tmp_path / "w").exists()


async def test_start_refuses_to_block_a_running_event_loop() -> None:
    with pytest.raises(BrokerError, match="outside a running event loop"):
        LocalKafka().start()


def test_broker_info_round_trips(tmp_path: Path) -> None:
    info = BrokerInfo(42, 19092, 19093, "/w", "4.1.2", 3.5)
    info.save(tmp_path / "broker.json")

    assert BrokerInfo.load(tmp_path / "broker.json") == info
    assert info.bootstrap_servers == "127.0.0.1:19092"
    (tmp_path / "broker.json").write_text("{")
    with pytest.raises(BrokerError, match="cannot read broker state"):
        BrokerInfo.load(tmp_path / "broker.json")


# --- processes ----------------------------------------------------------------------


def test_exit_during_start_up_raises_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / LOG_NAME
    proc = launch(["sh", "-c", "echo 'bind failed'; exit 3"], log, die_with_parent=True)

    with pytest.raises(BrokerError, match=r"(?s)exited with code 3.*bind failed"):
        wait_ready(proc, lambda: False, timeout=30, log=log)


def test_no_answer_within_the_timeout_raises_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / LOG_NAME
    proc = launch(["sh", "-c", "echo 'still starting'; exec sleep 60"], log, die_with_parent=True)
    try:
        with pytest.raises(BrokerError, match=r"(?s)within 0\.3 s.*still starting"):
            wait_ready(proc, lambda: False, timeout=0.3, log=log)
    finally:
        terminate(proc)
    assert proc.returncode == -signal.SIGTERM


def test_ready_returns_the_seconds_it_took(tmp_path: Path) -> None:
    answers = iter([False, False, True])
    proc = launch(["sleep", "60"], tmp_path / LOG_NAME, die_with_parent=True)
    try:
        seconds = wait_ready(proc, lambda: next(answers), timeout=30, log=tmp_path / LOG_NAME)
    finally:
        terminate(proc)
    assert 0 < seconds < 30


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_launched_process_dies_with_its_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / LOG_NAME)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert pid_running(child)

    parent.kill()
    parent.communicate()

    assert _gone_soon(child)


PARENT = """\
import sys, time
from pathlib import Path
from streamproc.dev.processes import launch
proc = launch(["sleep", "60"], Path(sys.argv[1]), die_with_parent=True)
print(proc.pid, flush=True)
time.sleep(60)
"""


def _gone_soon(pid: int, seconds: float = 5.0) -> bool:
    """Not our child (init reaps the orphan), so there is no event to wait on: poll."""
    deadline = time.monotonic() + seconds
    while pid_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_pid_checks() -> None:
    assert pid_running(os.getpid())
    assert not is_broker(os.getpid(), Path("/w"))  # running, but not a broker
    reaped = subprocess.Popen(["true"])
    reaped.wait()
    assert not pid_running(reaped.pid)


def test_log_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / LOG_NAME
    log.write_text("".join(f"line {i}\n" for i in range(100)))

    tail = log_tail(log).splitlines()

    assert tail[0] == "line 60" and tail[-1] == "line 99" and len(tail) == 40
    assert "no log" in log_tail(tmp_path / "absent.log")


def test_remove_work_dir_can_keep_the_log(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "server.properties").touch()
    (tmp_path / LOG_NAME).touch()

    remove_work_dir(tmp_path, keep_logs=True)

    assert [p.name for p in tmp_path.iterdir()] == [LOG_NAME]
    remove_work_dir(tmp_path)
    assert not tmp_path.exists()


def test_remove_work_dir_refuses_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").touch()

    with pytest.raises(BrokerError, match=r"not removing .*thesis\.tex"):
        remove_work_dir(tmp_path)
    assert (tmp_path / "thesis.tex").exists()


def test_sweep_removes_only_dirs_of_dead_brokers(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan, starting = tmp_path / f"{TEMP_PREFIX}orphan", tmp_path / f"{TEMP_PREFIX}starting"
    for work_dir in (orphan, starting):
        (work_dir / "data").mkdir(parents=True)
    BrokerInfo(dead.pid, 1, 2, str(orphan), "4.1.2").save(orphan / "broker.json")

    sweep_orphans(tmp_path)

    assert not orphan.exists()
    assert starting.exists()  # no record yet: a broker may be formatting there
