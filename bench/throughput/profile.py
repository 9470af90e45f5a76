"""5. Where the worker's CPU goes: py-spy samples grouped by component."""

from __future__ import annotations

import asyncio
import dis
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.throughput.floor import bench_env
from bench.throughput.worker import Worker
from bench.throughput.workload import log
from streamproc import streams
from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import exited, wait_until_async


@dataclass(frozen=True)
class Frame:
    """One frame of a py-spy stack, as ``function (path/to/module.py:line)``."""

    function: str
    """The qualified name py-spy gives (``Engine.process``, ``decode``)."""
    module: str
    """Dotted, from the file path relative to its sys.path entry (``streamproc.engine``)."""
    line: int


_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
_SYS_PATH_ENDS = re.compile(r"^.*/(?:site-packages|dist-packages|python3\.\d+)/")


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text)
    if match is None:
        return Frame(text, "", 0)
    path = _SYS_PATH_ENDS.sub("", match["path"]).removesuffix(".py").removesuffix("/__init__")
    return Frame(match["function"], path.replace("/", "."), int(match["line"] or 0))


def in_module(frame: Frame, prefixes: tuple[str, ...]) -> bool:
    """Whether the frame's module is one of ``prefixes`` or inside one (a package)."""
    return any(frame.module == p or frame.module.startswith(p + ".") for p in prefixes)


@dataclass(frozen=True)
class Component:
    """A concern the worker's CPU goes to, named by modules and qualified functions.

    Functions are ``module:qualname`` (tests/unit/test_throughput_profile.py imports each
    one, so a rename fails a test instead of silently moving samples to "other").
    """

    name: str
    modules: tuple[str, ...] = ()
    """A frame anywhere in the stack in one of these modules (or their submodules)."""
    functions: tuple[str, ...] = ()
    """A frame anywhere in the stack running one of these functions."""
    leaf_modules: tuple[str, ...] = ()
    """The innermost frame in one of these modules."""
    leaf_lines: tuple[tuple[str, frozenset[int]], ...] = ()
    """The innermost frame is this function at one of these lines."""
    work_only: bool = False
    """Look only at the frames a loop callback, task or thread runs (see :func:`work`)."""
    catch_all: bool = False

    def matches(self, stack: list[Frame]) -> bool:
        if self.catch_all:
            return True
        frames = work(stack) if self.work_only else stack
        leaf = stack[-1] if stack else None
        return (
            any(in_module(f, self.modules) for f in frames)
            or any(f"{f.module}:{f.function}" in self.functions for f in frames)
            or (leaf is not None and in_module(leaf, self.leaf_modules))
            or any(
                leaf is not None and f"{leaf.module}:{leaf.function}" == fn and leaf.line in lines
                for fn, lines in self.leaf_lines
            )
        )


def work(stack: list[Frame]) -> list[Frame]:
    """What a loop callback, a task or a thread runs: the frames below the event loop's
    ``Handle._run``; all of them for other threads and for a task's coroutine (py-spy roots
    those at the coroutine, C-level ``Task.__step`` has no frame); none for the loop's own
    scheduling (a main-thread stack that never reaches a callback)."""
    for i, frame in enumerate(stack):
        if frame.module == "asyncio.events" and frame.function == "Handle._run":
            return stack[i + 1 :]
    if stack and stack[0].function in ("_run_module_as_main", "<module>"):
        return []
    return stack


def native_call_lines(function: Callable[..., object], attribute: str) -> frozenset[int]:
    """Lines of ``function`` that call a method of ``self.<attribute>``, from its bytecode.

    ``Stream.update`` calls ADWIN's Rust core directly (``det._helper.update``): those
    samples are River's although no River frame is on the stack, and only the line tells.
    """
    code = getattr(function, "__code__", None)
    if code is None:
        return frozenset()
    return frozenset(
        ins.positions.lineno
        for ins in dis.get_instructions(code)
        if ins.opname in ("LOAD_ATTR", "LOAD_METHOD")
        and ins.argval == attribute
        and ins.positions is not None
        and ins.positions.lineno is not None
    )


INLINED_ADWIN = native_call_lines(streams.Stream.update, "_helper")

COMPONENTS: tuple[Component, ...] = (
    Component("threads waiting in select/poll (counted as busy)", leaf_modules=("selectors",)),
    Component("checkpoints (snapshot, encode)", functions=("streamproc.ledger:Ledger.rounds",)),
    Component(
        "River detector updates",
        modules=("river",),
        leaf_lines=(("streamproc.streams:Stream.update", INLINED_ADWIN),),
    ),
    Component("decode (orjson, validation)", functions=("streamproc.events:decode",)),
    Component("arrival monitoring", modules=("streamproc.arrival",)),
    Component("engine and streams (own code)", functions=("streamproc.engine:Engine.process",)),
    Component("pipeline bookkeeping", functions=("streamproc.pipeline:Pipeline.handle",)),
    Component("Record conversion (app)", functions=("streamproc.app:StreamprocApp._records",)),
    Component("metrics hooks per batch", functions=("streamproc.worker:WorkerRuntime._on_output",)),
    Component("alert and dead-letter sends", functions=("streamproc.app:StreamprocApp._process",)),
    Component("/metrics exposition and gauges", modules=("prometheus_client",)),
    Component("aiokafka (fetch, parse, produce)", modules=("aiokafka",)),
    Component(
        "Faust and mode (streams, buffers, acks, consumer thread)",
        modules=("faust", "mode"),
        work_only=True,
    ),
    Component("asyncio (loop, tasks, futures, queues)", modules=("asyncio",)),
    Component("other", catch_all=True),
)
"""First match wins: a sample is attributed to the innermost concern listed first."""


def profile_summary(raw: Path) -> list[tuple[str, float]]:
    """Shares of py-spy's raw samples (``frame;frame;... count`` lines) by component."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [parse_frame(text) for text in stack.split(";")]
        total += int(n)
        component = next(c for c in COMPONENTS if c.matches(frames))
        counts[component.name] += int(n)
    return [(c.name, counts[c.name] / total) for c in COMPONENTS if total and counts[c.name]]


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


async def profile_worker(
    kafka: LocalKafka, tmp: Path, seconds: float, keep: Path | None
) -> list[tuple[str, float]] | None:
    spy = py_spy()
    if spy is None:
        log("py-spy not installed (pip install -e '.[dev]'): no worker profile")
        return None
    worker = Worker.start(bench_env(kafka, tmp, "bench-profile"), tmp, "worker-profile")
    try:
        await wait_until_async(
            lambda: worker.metrics()["events"] > 0,
            120.0,
            "the profiled worker's first event",
            interval=0.1,
            alive=exited(worker.proc, "the worker"),
        )
        raw = tmp / "profile.txt"
        cmd = [spy, "record", "--nonblocking", "-r", "100", "-d", str(int(seconds)), "-f", "raw"]
        cmd += ["-o", str(raw), "--pid", str(worker.proc.pid)]
        log(f"profile: py-spy on the worker for {seconds:.0f} s")
        await asyncio.to_thread(subprocess.run, cmd, check=True, capture_output=True)
        if keep is not None:
            shutil.copyfile(raw, keep)
        return profile_summary(raw)
    finally:
        worker.stop()
