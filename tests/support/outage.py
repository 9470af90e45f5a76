"""A broker outage on demand: stop the java process, keep its data, start it again.

Only the recovery tests need this, so it lives here rather than in the shipped
:class:`~streamproc.dev.localkafka.LocalKafka`.
"""

from __future__ import annotations

from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import terminate
from streamproc.errors import BrokerError


class HaltableKafka(LocalKafka):
    """A :class:`LocalKafka` that can be halted and resumed on the same ports and data."""

    def halt(self) -> None:
        """Stop the broker process but keep its data, as an outage would; see :meth:`resume`."""
        if self._proc is not None:
            terminate(self._proc)
            self._proc = None

    def resume(self) -> float:
        """Start a halted broker again on the same ports and data; returns its start-up time."""
        if self._proc is not None:
            raise BrokerError(f"the broker is running (pid {self._proc.pid})")
        java, jars = self._java_and_jars()
        self._launch(java, jars)
        return self._wait_ready()
