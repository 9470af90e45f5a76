"""bench/throughput on a tiny scale: its profile table names real code, its hot path runs.

The full benchmark takes minutes and a broker; these checks keep its pieces honest in
``make test``: a renamed function in the profile table fails here instead of moving its
samples to "other", and the hot-path child (``python -m bench.throughput.hotpath``) runs.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.throughput import profile
from bench.throughput.floor import Rate
from bench.throughput.hotpath import VARIANTS, hot_path_subprocess
from bench.throughput.pacing import measure_pacing, ticks
from bench.throughput.phases import Latency, schedule, shifted_events, stamped
from bench.throughput.profile import COMPONENTS, Frame, parse_frame, profile_summary
from bench.throughput.report import Results, as_json, report
from bench.throughput.scaling import SideBySide
from bench.throughput.worker import Run, Sample, Scheduled, parse_schedstat, scheduled
from bench.throughput.workload import engine_settings_json, feature_body

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
    assert "timed" not in figures["results"]["latencies"][0]


def test_schedstat_gives_seconds_on_a_cpu_and_waiting_for_one() -> None:
    assert parse_schedstat("2500000000 7500000000 1234\n") == Scheduled(2.5, 7.5)
    assert Scheduled(3.0, 9.0) - Scheduled(1.0, 1.5) == Scheduled(2.0, 7.5)


def test_the_run_queue_time_of_this_process_is_read() -> None:
    now = scheduled(os.getpid())
    assert now.ran > 0 and now.waited >= 0


def test_the_report_says_when_the_worker_waited_for_a_cpu_more_than_it_ran() -> None:
    r = Results(events=100)
    starved = Latency(400.0, 10.0, latencies_ms=[900.0], worker_cores=0.2, worker_waiting=0.7)
    starved.bench_cores = 0.1
    r.latencies = [starved]
    text = report(r, "python -m bench.throughput")
    assert "0.20 / 0.70 / 0.10" in text
    assert "waited for a CPU longer than it ran" in text
    r.latencies = [Latency(400.0, 10.0, latencies_ms=[9.0], worker_cores=0.7, worker_waiting=0.1)]
    assert "waited for a CPU longer" not in report(r, "python -m bench.throughput")


def test_the_latency_schedule_is_encoded_before_the_clock_and_stamped_after() -> None:
    planned = schedule(rate=100.0, seconds=0.5, period=5.0, seed=3, since=0.0)
    assert len(planned) == 50
    due, event_id, key, body = planned[7]
    expected = next(e for e in shifted_events(100.0, 0.5, 5.0, 3, 0.0) if e[2] == event_id)
    assert (due, key) == (expected[0], expected[1].encode())
    assert stamped(body, 1_700_000_000_123) == feature_body(
        expected[1], event_id, 1_700_000_000_123, expected[3]
    )


def test_the_report_splits_off_what_came_after_the_batch_was_taken_up() -> None:
    r = Results(events=100)
    r.latencies = [Latency(400.0, 10.0, latencies_ms=[900.0, 950.0], delivery_ms=[12.0, 30.0])]
    assert "after the worker took up the batch (`detected_at`) p50 / p99 | 12 / 30 ms" in (
        report(r, "python -m bench.throughput")
    )


def test_a_model_alert_resent_when_streams_join_is_not_timed_again() -> None:
    lat = Latency(400.0, 10.0)
    due = {"e1": 1_000, "e9": 6_000}
    model_alert = {"alert_id": "m", "event_id": "e1", "stream": {"kind": "model"}}
    lat.take(model_alert | {"detected_at": 1_020}, 1_040.0, due)
    stream_alert = {"alert_id": "s", "event_id": "e9", "stream": {"kind": "value"}}
    lat.take(stream_alert | {"detected_at": 6_010}, 6_030.0, due)
    lat.take(model_alert | {"detected_at": 6_010}, 6_030.0, due)
    lat.take({"alert_id": "x", "event_id": "other", "stream": {"kind": "value"}}, 6_040.0, due)
    assert lat.alerts == 4
    assert lat.latencies_ms == [40.0, 30.0]
    assert lat.kinds == Counter(value=1, model=1)


def test_paced_ticks_hold_one_batch_per_partition_in_offset_order() -> None:
    rounds = ticks(rate=2_000, seconds=0.1, tick_s=0.01)
    assert len(rounds) == 10
    seen: dict[int, int] = {}
    for batches in rounds:
        partitions = [batch[0].partition for batch in batches]
        assert len(partitions) == len(set(partitions))
        for batch in batches:
            assert {r.partition for r in batch} == {batch[0].partition}
            for record in batch:
                assert record.offset == seen.get(record.partition, -1) + 1
                seen[record.partition] = record.offset
    assert sum(seen.values()) + len(seen) == 200


def test_the_paced_hot_path_is_measured_side_by_side_and_reported() -> None:
    pacing = measure_pacing(rate=5_000, seconds=0.03, repeats=2)
    assert len(pacing.paced_us) == len(pacing.back_to_back_us) == 2
    assert min(pacing.paced_us + pacing.back_to_back_us) > 0
    r = Results(events=100, pacing=pacing)
    assert "paced like live traffic" in report(r, "python -m bench.throughput")
    assert as_json(r)["results"]["pacing"]["rate"] == 5_000


def test_a_runs_rate_counts_only_while_every_process_consumes() -> None:
    def sample(at: float, events: float, consuming: float) -> Sample:
        return Sample(at, events, 0.0, at, 0.0, 0.0, consuming)

    samples = [sample(0, 0, 0), sample(1, 100, 1), sample(2, 300, 2), sample(3, 700, 2)]
    samples.append(sample(4, 1_000, 2))
    assert Run(samples, 1_000, processes=2).rate().events_per_s == 400
    assert Run(samples, 1_000, processes=1).rate().events_per_s == 300
    short = Run([sample(0, 0, 0), sample(1, 1_000, 2)], 1_000, processes=2)
    assert short.rate().events_per_s == 1_000
