"""Is data arriving? Per model: silence, event rate and freshness (docs/arrival.md).

- :mod:`~streamproc.arrival.silence`: a model that was sending stopped (a timer);
- :mod:`~streamproc.arrival.rate`: its events per event-time bucket changed sharply;
- :mod:`~streamproc.arrival.freshness`: its events arrive much later than usual;
- :mod:`~streamproc.arrival.monitor`: the three, per model, as the engine uses them;
- :mod:`~streamproc.arrival.alerting`: their alerts, in the drift alerts' record.

Like the drift engine, all of it is pure: the clock is an argument, never read.
"""

from __future__ import annotations

from streamproc.arrival.monitor import ArrivalClock, ArrivalMonitor, ModelArrival

__all__ = ["ArrivalClock", "ArrivalMonitor", "ModelArrival"]
