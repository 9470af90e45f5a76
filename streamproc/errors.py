"""The one exception tree of streamproc.

::

    StreamprocError                 root: catch this to catch everything of ours
    ├── ConfigError                 a setting, config key or file is wrong (names it)
    ├── StateError                  a detector snapshot cannot be encoded or restored
    │   └── CheckpointError         a checkpoint round could not be written (names partitions)
    ├── BrokerError                 the local Kafka broker cannot be fetched/started/stopped
    └── KafkaSetupError             topics or cluster do not match what the worker needs

Bad *input* is not an exception: the decoder and the engine return a
:class:`streamproc.events.Rejection` value with a reason code, so one bad
message never stops a stream. Exceptions are for the operator's mistakes and
the environment's failures; foreign exceptions are translated where they enter
(``raise ConfigError(...) from exc``).
"""

from __future__ import annotations


class StreamprocError(Exception):
    """Root of every exception streamproc raises on purpose."""


class ConfigError(StreamprocError):
    """A setting, configuration key or file is invalid; the message names it."""


class StateError(StreamprocError):
    """Detector state could not be encoded, or a snapshot could not be restored."""


class CheckpointError(StateError):
    """A checkpoint round failed for some partitions; the others were written."""


class BrokerError(StreamprocError):
    """The local Kafka broker could not be fetched, started, reached or stopped."""


class KafkaSetupError(StreamprocError):
    """The cluster does not match the worker's contract (e.g. partition counts)."""
