"""1. The hot path: ``Pipeline.handle`` over batches, in a child process per variant.

Each variant runs in its own process (``python -m bench.throughput.hotpath``) so that a
baseline commit's package can be timed beside this one; the child imports only the core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bench.throughput.workload import (
    BATCH,
    MODELS,
    engine_settings_json,
    in_memory_records,
    make_engine,
)
from streamproc.engine import Engine
from streamproc.pipeline import Pipeline
from streamproc.settings import EngineSettings, Limits, Settings

ROOT = Path(__file__).resolve().parents[2]
"""The checkout: bench/ is imported from here by the hot-path child."""


class NoOpDetector:
    """Stands in for every River detector: what is left is streamproc's own cost."""

    drift_detected = False

    def update(self, x: float) -> None:
        return None


VARIANTS = ("default", "no-arrival", "no-op-detectors")
"""Hot path variants: the worker's engine; without arrival monitoring (the code before it
had none); with no-op detectors (arrival on)."""


def hot_path(events: int, engine_json: str, variant: str, repeat: int = 3) -> dict[str, float]:
    """``Pipeline.handle`` on batches of 1,000 records, after a warm-up that creates every
    stream and ends every warm-up; best of ``repeat`` passes, CPU time of this process."""
    settings = Settings(engine=EngineSettings.model_validate_json(engine_json))
    records = in_memory_records(events, seed=7)
    warm = min(len(records) // 2, MODELS * 200)
    if variant == "no-op-detectors":
        engine = Engine(
            settings.engine,
            settings.limits,
            lambda spec, standardized: NoOpDetector(),
            arrival=settings.arrival,
        )
    else:
        engine = make_engine(settings, arrival=variant != "no-arrival")
    pipeline = Pipeline(engine, Limits())
    now = 1_700_000_000_000
    for i in range(0, warm, BATCH):
        pipeline.handle(records[i : min(i + BATCH, warm)], now)
    measured = records[warm:]
    best_cpu = best_wall = float("inf")
    done = updates = 0
    for _ in range(repeat):
        done = updates = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(measured), BATCH):
            out = pipeline.handle(measured[i : i + BATCH], now)
            done += sum(out.events.values())
            updates += out.updates
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return {
        "events_per_s": done / best_cpu,
        "updates_per_s": updates / best_cpu,
        "wall_events_per_s": done / best_wall,
        "updates_per_event": updates / done,
    }


def hot_path_subprocess(
    events: int, engine_json: str, variant: str, tree: Path | None
) -> dict[str, float]:
    # Run from an empty dir so that sys.path holds the baseline tree (if any) before this
    # checkout, which provides bench/ and, without a baseline, streamproc/.
    path = [str(tree)] if tree is not None else []
    env = dict(os.environ) | {"PYTHONPATH": os.pathsep.join([*path, str(ROOT)])}
    cmd = [sys.executable, "-m", "bench.throughput.hotpath", str(events), "--variant", variant]
    with tempfile.TemporaryDirectory(prefix="streamproc-hot-") as cwd:
        done = subprocess.run(
            cmd, input=engine_json, env=env, cwd=cwd, check=True, capture_output=True, text=True
        )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def export_tree(ref: str, into: Path) -> Path:
    """``git archive`` of ``ref``'s package (read-only: no checkout, no worktree)."""
    archive = into / "baseline.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", ref, "streamproc"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "baseline", filter="data")
    return into / "baseline"


@dataclass
class HotPath:
    runs: dict[str, list[dict[str, float]]]
    """Variant (or "baseline") -> one result per round."""
    baseline_ref: str | None = None

    def best(self, name: str) -> dict[str, float]:
        return max(self.runs[name], key=lambda r: r["events_per_s"])

    def ratio(self, a: str, b: str) -> tuple[float, float, float]:
        """Median, min and max over rounds of a's events/s over b's in the same round."""
        ratios = sorted(
            x["events_per_s"] / y["events_per_s"]
            for x, y in zip(self.runs[a], self.runs[b], strict=True)
        )
        return statistics.median(ratios), ratios[0], ratios[-1]


def measure_hot_path(events: int, baseline: str | None, tmp: Path, rounds: int) -> HotPath:
    """Each variant in its own process, back to back round by round, so that the machine's
    load changes hit them alike; compared round by round (the median of the ratios)."""
    engine_json = engine_settings_json()
    tree = export_tree(baseline, tmp) if baseline else None
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in tqdm(range(rounds), desc="hot path", unit="round", file=sys.stderr):
        for variant in VARIANTS:
            runs.setdefault(variant, []).append(
                hot_path_subprocess(events, engine_json, variant, None)
            )
            if tree is not None and variant == "no-arrival":
                runs.setdefault("baseline", []).append(
                    hot_path_subprocess(events, engine_json, "no-arrival", tree)
                )
    return HotPath(runs, baseline)


def main(argv: list[str] | None = None) -> int:
    """The child: time ``events`` records of the engine settings read from stdin."""
    parser = argparse.ArgumentParser(description="one hot-path measurement (JSON on stdout)")
    parser.add_argument("events", type=int)
    parser.add_argument("--variant", choices=VARIANTS, default="default")
    args = parser.parse_args(argv)
    print(json.dumps(hot_path(args.events, sys.stdin.read(), args.variant)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
