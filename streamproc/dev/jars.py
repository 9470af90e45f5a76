"""The Kafka jars: pinned by the pom shipped beside this module, fetched once by Maven.

The pom is package data (``streamproc/dev/pom.xml``), so ``streamproc kafka up`` works
from an installed wheel as from a checkout; only ``java`` and, on first use, ``mvn``
must be on PATH, and their absence is an error that says what to install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

from streamproc.dev.processes import tail
from streamproc.errors import BrokerError

MARKER = ".complete"
"""Written last into a jar cache; holds the pom's digest so a changed pom refetches."""
JAVA_HINT = "install a JDK 17+, e.g. apt-get install openjdk-17-jdk-headless"
MAVEN_HINT = "install Apache Maven, e.g. apt-get install maven"
Which = Callable[[str], str | None]
_MAVEN_TIMEOUT = 900.0


def find_tool(name: str, hint: str, which: Which = shutil.which) -> str:
    """Path of ``name`` on PATH; the error says what to install, not just what is missing."""
    path = which(name)
    if path is None:
        raise BrokerError(f"{name} not found: {hint}")
    return path


def default_pom() -> Path:
    """The pom shipped with the package (package data), in a checkout and in a wheel."""
    pom = Path(__file__).resolve().with_name("pom.xml")
    if not pom.is_file():
        raise BrokerError(f"{pom} not found: this streamproc install lacks its package data")
    return pom


def pom_version(pom: Path) -> str:
    """The pinned Kafka version (``<kafka.version>``), which names the jar cache."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise BrokerError(f"cannot read the Kafka pom {pom}: {exc}") from exc
    version = root.findtext("{*}properties/{*}kafka.version")
    if not version:
        raise BrokerError(f"{pom} has no <properties><kafka.version>")
    return version.strip()


def default_cache_root(env: Mapping[str, str] = os.environ) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/streamproc``: jars are large and must stay out of git."""
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamproc"


def ensure_jars(pom: Path, cache_root: Path, mvn: Callable[[], str]) -> Path:
    """The jar dir for ``pom``, fetched on first use; ``mvn`` is looked up only then."""
    target = cache_root / f"kafka-{pom_version(pom)}"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if _is_complete(target, digest):
        return target
    mvn_path = mvn()
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_root))
    try:
        _fetch(mvn_path, pom, staging)
        (staging / MARKER).write_text(digest)
        _publish(staging, target, digest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _is_complete(jars: Path, digest: str) -> bool:
    marker = jars / MARKER
    return marker.is_file() and marker.read_text().strip() == digest


def _fetch(mvn: str, pom: Path, into: Path) -> None:
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"]
    cmd.append(f"-DoutputDirectory={into}")
    try:
        done = subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=_MAVEN_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"Maven did not fetch the Kafka jars within {exc.timeout:.0f} s") from exc
    if done.returncode != 0:
        output = tail((done.stdout + done.stderr).splitlines())
        raise BrokerError(f"Maven could not fetch the Kafka jars ({' '.join(cmd)}):\n{output}")


def _publish(staging: Path, target: Path, digest: str) -> None:
    """Rename into place so no reader ever sees a half-fetched cache."""
    if _is_complete(target, digest):  # a concurrent fetch finished first; it may be in use
        return
    if target.exists():  # fetched for an older pom, or by hand
        stale = target.with_name(f".{target.name}-stale-{uuid.uuid4().hex[:8]}")
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError as exc:  # a concurrent fetch won the race; theirs is as good
        if not _is_complete(target, digest):
            raise BrokerError(f"cannot move the fetched jars to {target}: {exc}") from exc
