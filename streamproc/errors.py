"""The one exception tree of streamproc.

::

    StreamprocError                 root: catch this to catch everything of ours
    ├── ConfigError                 a setting, config key or file is wrong (names it)
    ├── StateError                  a detector snapshot cannot be encoded or restored
    │   └── CheckpointError         a checkpoint round could not be written (names partitions)
    ├── BrokerError                 the local Kafka broker cannot be fetched/started/stopped
    ├── KafkaSetupError             topics or cluster do not match what the worker needs
    └── KafkaConnectionError        the cluster cannot be reached (names kafka.bootstrap_servers)
        ├── KafkaAuthError          the cluster refuses our credentials (names kafka.sasl_*)
        └── KafkaTLSError           TLS fails: CA, client certificate (names kafka.ssl_*)

Bad *input* is not an exception: the decoder and the engine return a
:class:`streamproc.events.Rejection` value with a reason code, so one bad
message never stops a stream. Exceptions are for the operator's mistakes and
the environment's failures; foreign exceptions are translated where they enter
(``raise ConfigError(...) from exc``); aiokafka's and :mod:`ssl`'s in
:mod:`streamproc.kafka_errors`.
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


class KafkaConnectionError(StreamprocError):
    """Kafka cannot be reached or talked to; the message names the setting to check."""


class KafkaAuthError(KafkaConnectionError):
    """The cluster rejected the SASL credentials or an operation (ACLs); never retried."""


class KafkaTLSError(KafkaConnectionError):
    """The TLS handshake failed: an untrusted broker certificate or a refused client one."""
