"""Throughput, latency, state size and recovery of the worker, against the raw-client floor.

Everything runs on a local broker started for the run (free ports, removed at the end):

1. hot path: ``Pipeline.handle`` over batches of 1,000 records, in process, CPU time; also
   with no-op detectors (River's share); with ``--baseline REF`` also that commit's code,
   round by round, for a before/after ratio;
1b. paced: the latency phase's events through the same ``Pipeline`` in per-partition
   batches every 10 ms at half the hot path's rate, against the same back to back (the
   CPU a live worker's idle gaps cost, without Kafka);
2. recovery: 100,000 streams (2,500 models x 20 features x value and missing-rate streams)
   written as the worker writes checkpoints, then read and restored through
   ``Pipeline.restore``;
3. preload: N feature events of 20 numeric features over 50 models plus outcomes at 10%,
   keyed by model, on 8 partitions;
4. (a) floor: a plain aiokafka ``getmany`` loop feeding the same ``Pipeline``/``Engine``;
5. (b) worker: a real ``streamproc worker`` subprocess (default settings, checkpoints on),
   its steady rate read from its ``/metrics``, its CPU and peak RSS from ``/proc``;
6. profile: a second worker on the same backlog under ``py-spy`` (CPU by component), and a
   third with no detectors configured (what the framework around them costs);
7. restart: worker (b)'s group restarted, its recovery log lines (state bytes, seconds);
8. (c) latency: production at 50% and 25% of (b)'s rate with staggered mean shifts; event
   time to alert consumption, matched by the alert's ``event_id``;
9. side by side, last, each a fresh group over the same first 600,000 events of the
   topics (the preload and (c)'s): ``--processes 1`` then ``--processes 2``
   (``processes_2_speedup``), and checkpoints effectively off then as configured by
   default (``checkpoint_cost`` = 1 - default / off).

    python -m bench.throughput --baseline 0137015  # full run, ~8 min; docs/performance.md
    python -m bench.throughput --quick             # smoke run (20,000 events); prints only
    python -m bench.throughput --quick --json F    # also the headline figures as JSON
"""
