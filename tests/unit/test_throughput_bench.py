"""bench/throughput on a tiny scale: its profile table names real code, its hot path runs.

The full benchmark takes minutes and a broker; these checks keep its pieces honest in
``make test``: a renamed function in the profile table fails here instead of moving its
samples to "other", and the hot-path child (``python -m bench.throughput.hotpath``) runs.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.throughput import profile
from bench.throughput.floor import Rate
from bench.throughput.hotpath import VARIANTS, hot_path_subprocess
from bench.throughput.phases import Latency
from bench.throughput.profile import COMPONENTS, Frame, parse_frame, profile_summary
from bench.throughput.report import Results, as_json
from bench.throughput.scaling import SideBySide
from bench.throughput.workload import engine_settings_json

ROOT = Path(__file__).resolve().parents[2]


def resolve(spec: str) -> object:
    module, _, qualname = spec.partition(":")
    target: object = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


@pytest.mark.parametrize("spec", [f for c in COMPONENTS for f in c.functions])
def test_every_profiled_function_exists(spec: str) -> None:
    assert callable(resolve(spec))


@pytest.mark.parametrize(
    "module", sorted({m for c in COMPONENTS for m in (*c.modules, *c.leaf_modules)})
)
def test_every_profiled_module_imports(module: str) -> None:
    importlib.import_module(module)


def test_the_inlined_adwin_call_is_found_in_stream_update() -> None:
    assert profile.INLINED_ADWIN, "Stream.update no longer calls self._helper: fix the table"


def test_frames_are_parsed_into_module_and_qualified_function() -> None:
    site = "/venv/lib/python3.11/site-packages/river/drift/adwin.py:88"
    assert parse_frame(f"ADWIN.update ({site})") == Frame("ADWIN.update", "river.drift.adwin", 88)
    assert parse_frame("decode (streamproc/events.py:180)") == Frame(
        "decode", "streamproc.events", 180
    )
    assert parse_frame("<module> (streamproc/__init__.py:1)").module == "streamproc"


def test_samples_go_to_the_first_matching_component(tmp_path: Path) -> None:
    [adwin_line] = sorted(profile.INLINED_ADWIN)[:1]
    loop = "Handle._run (asyncio/events.py:84)"
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "\n".join(
            [
                f"{loop};Pipeline.handle (streamproc/pipeline.py:280);"
                "decode (streamproc/events.py:180) 3",
                f"{loop};Engine.process (streamproc/engine.py:140);"
                f"Stream.update (streamproc/streams.py:{adwin_line}) 5",
                f"{loop};Engine.process (streamproc/engine.py:140);"
                "Stream.update (streamproc/streams.py:1) 1",
                "_run_module_as_main (<frozen runpy>:198);"
                "Consumer.run (faust/transport/consumer.py:9) 1",
            ]
        )
        + "\n"
    )
    assert dict(profile_summary(raw)) == {
        "River detector updates": 0.5,
        "decode (orjson, validation)": 0.3,
        "engine and streams (own code)": 0.1,
        "other": 0.1,  # Faust on the loop's own scheduling stack is not its work
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_hot_path_child_measures_each_variant(variant: str) -> None:
    result = hot_path_subprocess(2_000, engine_settings_json(), variant, None)
    assert result["events_per_s"] > 0


def test_the_benchmark_shows_its_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.throughput", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "--quick" in done.stdout
    assert "--json" in done.stdout


def test_json_holds_the_headline_figures_and_every_result() -> None:
    r = Results(events=100)
    r.floor, r.worker = Rate(1000, 0, 1.0, 1.0), Rate(800, 0, 1.0, 1.0)
    r.processes = SideBySide(Rate(800, 0, 1.0, 1.0), Rate(1200, 0, 1.0, 2.0))
    r.checkpoints = SideBySide(Rate(1000, 0, 1.0, 1.0), Rate(950, 0, 1.0, 1.0))
    r.latencies = [Latency(400.0, 10.0, latencies_ms=[10.0, 20.0], kinds=Counter(value=2))]
    figures = json.loads(json.dumps(as_json(r), default=str))
    assert figures["worker_to_floor"] == pytest.approx(0.8)
    assert figures["processes_2_speedup"] == pytest.approx(1.5)
    assert figures["checkpoint_cost"] == pytest.approx(0.05)
    assert figures["p99_ms_half_load"] == 20.0
    assert figures["floor_events_per_s"] == 1000 and figures["worker_events_per_s"] == 800
    assert figures["results"]["latencies"][0]["kinds"] == {"value": 2}
