"""streamproc: streaming drift detection for ML models.

Producers send feature and outcome events to Kafka; a Faust worker keeps River
drift detectors per stream and publishes drift alerts. The pure core
(:mod:`streamproc.events`, :mod:`streamproc.engine`, :mod:`streamproc.alerts`)
has no I/O, so ``streamproc replay`` on a file gives exactly what the worker
gives in production.
"""

from __future__ import annotations

__version__ = "0.1.0"
