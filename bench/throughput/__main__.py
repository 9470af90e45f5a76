"""The command line: ``python -m bench.throughput [--quick] [--json FILE] ...``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.throughput import __doc__ as throughput_doc
from bench.throughput.floor import bench_env, floor, produce
from bench.throughput.hotpath import measure_hot_path
from bench.throughput.pacing import measure_pacing
from bench.throughput.phases import LOAD_FRACTIONS, framework_ceiling, latency, restart_worker
from bench.throughput.profile import profile_worker
from bench.throughput.recovery import measure_recovery
from bench.throughput.report import (
    RESULTS_BEGIN,
    RESULTS_END,
    Results,
    as_json,
    load,
    report,
    write_doc,
)
from bench.throughput.scaling import checkpoint_cost, processes_speedup
from bench.throughput.worker import Worker, wait_for_events
from bench.throughput.workload import OUTCOME_EVERY, log, workload
from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import free_ports
from streamproc.settings import load_settings
from streamproc.topics import ensure_topics


@dataclass(frozen=True)
class Plan:
    events: int
    hot_events: int
    hot_rounds: int
    template_events: int
    templates: int
    profile_seconds: float
    latency_seconds: float
    shift_period: float
    scrape_seconds: float
    pacing_seconds: float
    pacing_rounds: int
    scaling_events: int
    """Events each side-by-side run reads (the preload and (c)'s, as far as they go): long
    enough that two processes run together for ~10 s, the join excluded."""


BROKER_PROPERTIES = {"group.initial.rebalance.delay.ms": "3000"}
"""Kafka's default (the test broker sets 0): a new group waits 3 s for more members before
its first assignment, so the two processes of ``--processes 2`` join it together instead
of one taking every partition and the second's join forcing a rebalance ~6 s later."""

FULL = Plan(200_000, 20_000, 5, 4_000, 5, 20, 60, 10, 2.0, 3.0, 3, 600_000)
QUICK = Plan(20_000, 12_000, 1, 500, 2, 4, 15, 5, 1.0, 1.0, 1, 200_000)


async def broker_phases(
    plan: Plan, r: Results, tmp: Path, profile: bool, keep_profile: Path | None, scaling: bool
) -> None:
    port, controller = free_ports(2)
    kafka = LocalKafka(port, controller, timeout=120, properties=BROKER_PROPERTIES)
    log(f"starting a local broker on {kafka.bootstrap_servers}")
    await asyncio.to_thread(kafka.start)
    workers: list[Worker] = []
    try:
        r.kafka_version = kafka.version
        broker_pid = kafka.pid or 0
        env = bench_env(kafka, tmp, "bench")
        settings = load_settings(environ=env)
        log(f"broker up (Kafka {kafka.version}); creating topics")
        await ensure_topics(settings)
        total = plan.events + -(-plan.events // OUTCOME_EVERY)
        await produce(
            kafka.bootstrap_servers,
            settings,
            workload(plan.events, 1, int(time.time() * 1000) - 3_600_000),
            total,
        )

        log("preloaded; (a) floor")
        r.floor = await floor(kafka.bootstrap_servers, settings, total)
        log(f"(a) floor: {r.floor.events_per_s:,.0f} events/s")

        worker = Worker.start(env, tmp, "worker")
        workers.append(worker)
        run = await wait_for_events(worker, broker_pid, total, "(b) worker", plan.scrape_seconds)
        r.worker, r.worker_peak, r.cpu = run.rate(), run.peak(), run.cpu()
        r.worker_rss = worker.peak_rss()
        log(f"(b) worker: {r.worker.events_per_s:,.0f} events/s")
        await asyncio.to_thread(worker.stop)
        log("(b) worker stopped")

        if profile:
            r.profile = await profile_worker(kafka, tmp, plan.profile_seconds, keep_profile)
            log("profile done")

        r.ceiling = await framework_ceiling(kafka, tmp, total, plan.scrape_seconds)
        log(f"(b) without detectors: {r.ceiling.events_per_s:,.0f} events/s")

        worker, r.restart = await restart_worker(kafka, settings, tmp, env)
        workers.append(worker)
        log(f"restart: {r.restart.streams} streams restored in {r.restart.seconds:.2f} s")
        for phase, fraction in enumerate(LOAD_FRACTIONS):
            rate = r.worker.events_per_s * fraction
            log(f"(c) producing at {rate:,.0f} events/s for {plan.latency_seconds:.0f} s")
            lat = await latency(
                kafka,
                settings,
                worker,
                rate,
                plan.latency_seconds,
                plan.shift_period,
                phase,
                phase * plan.latency_seconds,
            )
            r.latencies.append(lat)
            log(f"(c) p99 {lat.quantile(0.99):,.0f} ms")
        await asyncio.to_thread(worker.stop)

        if scaling:
            # Last: by now the topics also hold (c)'s events, a longer backlog than the preload.
            events = max(
                total, min(plan.scaling_events, total + sum(x.produced for x in r.latencies))
            )
            r.processes = await processes_speedup(kafka, tmp, events, plan.scrape_seconds)
            log(f"two processes / one: x{r.processes.ratio:.2f}")
            r.checkpoints = await checkpoint_cost(kafka, tmp, events, plan.scrape_seconds)
            log(f"checkpoint cost: {1 - r.checkpoints.ratio:.1%}")
    finally:
        for w in workers:
            await asyncio.to_thread(w.stop)
        await asyncio.to_thread(kafka.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=throughput_doc.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small run (20,000 events)")
    parser.add_argument("--events", type=int, help="feature events to preload")
    parser.add_argument("--baseline", metavar="REF", help="also time this commit's hot path")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--output", type=Path, help="write the results into this Markdown file")
    parser.add_argument("--keep-profile", type=Path, help="save py-spy's raw samples here")
    parser.add_argument(
        "--skip",
        type=lambda text: set(text.split(",")),
        default=set(),
        help="comma-separated phases to skip while iterating: hot, recovery, broker, profile, "
        "scaling",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write the headline figures (floor_events_per_s, worker_events_per_s, "
        "worker_to_floor, processes_2_speedup, p99_ms_half_load, checkpoint_cost) and every "
        "result as JSON to FILE",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.events:
        plan = dataclasses.replace(plan, events=args.events)
    output = args.output or (None if args.quick else Path("docs/performance.md"))
    command = shlex.join(["python", "-m", "bench.throughput", *(argv or sys.argv[1:])])
    r = Results(events=plan.events, load_start=load())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="streamproc-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "hot" not in args.skip:
            r.hot = measure_hot_path(plan.hot_events, args.baseline, tmp, plan.hot_rounds)
            log(f"hot path: {r.hot.best('default')['events_per_s']:,.0f} events/s")
            half = r.hot.best("default")["events_per_s"] / 2
            r.pacing = measure_pacing(half, plan.pacing_seconds, plan.pacing_rounds)
            log(f"paced hot path: x{r.pacing.ratio:.2f} the CPU per event back to back")
        if "recovery" not in args.skip:
            log("recovery of 100,000 streams")
            r.recovery = measure_recovery(plan.template_events, plan.templates)
            log(f"recovery: {r.recovery.streams:,} streams in {r.recovery.seconds:.1f} s")
        if "broker" not in args.skip:
            profile = not args.no_profile and "profile" not in args.skip
            scaling = "scaling" not in args.skip
            asyncio.run(broker_phases(plan, r, tmp, profile, args.keep_profile, scaling))
    r.seconds = time.perf_counter() - started
    r.load_end = load()
    text = report(r, command)
    print(text.replace(RESULTS_BEGIN, "").replace(RESULTS_END, "").strip())
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(r), default=str, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    if output is not None:
        write_doc(output, text)
        print(f"\nwrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
