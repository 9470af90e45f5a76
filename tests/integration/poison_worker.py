"""The real worker runtime with a detector factory that raises for one model's streams.

``python tests/integration/poison_worker.py MODEL`` runs what ``streamproc worker`` runs
(settings from ``STREAMPROC_*``, topics ensured, :class:`~streamproc.worker.WorkerRuntime`)
with one difference: its engine is built here. The streams of MODEL get a marker detector
spec (an engine override; the factory is not told the model, the spec is how it tells), and
the factory raises for that spec, so every event of MODEL fails inside the engine.
tests/integration/test_poison.py starts it as a subprocess, like any worker.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from streamproc.detectors import DetectorSpec
from streamproc.engine import Engine
from streamproc.logs import setup_logging
from streamproc.settings import Override, Settings, load_settings
from streamproc.stream_detectors import default_factory
from streamproc.topics import ensure_topics
from streamproc.worker import WorkerRuntime

MARK = DetectorSpec(type="page_hinkley", params={"threshold": 12345.0})


def raising_factory(spec: DetectorSpec, standardized: bool) -> Any:
    if spec == MARK:
        raise RuntimeError("poisoned detector factory")
    return default_factory(spec, standardized)


def poisoned_engine(settings: Settings, model: str) -> Engine:
    overrides = (*settings.engine.overrides, Override(model=model, detectors=(MARK,)))
    engine_settings = settings.engine.model_copy(update={"overrides": overrides})
    return Engine(
        engine_settings, settings.limits, detector_factory=raising_factory, arrival=settings.arrival
    )


def main(argv: list[str]) -> int:
    [model] = argv
    settings = load_settings()
    setup_logging(settings.log)
    layout = asyncio.run(ensure_topics(settings))
    partitions = layout.partitions[settings.topics.features]
    engine = poisoned_engine(settings, model)
    return WorkerRuntime(settings, partitions=partitions, engine=engine).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
