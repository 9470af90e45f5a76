"""Reading a worker's ``/metrics`` as a scraper would: prometheus-client's own parser.

Tests and benchmarks ask a running worker what it counted (events accepted, internal
errors, detector updates). Parsing the exposition with the library that wrote it, not
with string splits, keeps those reads right when labels gain a comma or a quote.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

SCRAPE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Sample:
    """One line of the exposition."""

    name: str
    """The sample's name, with its suffix (``streamproc_events_total``)."""
    labels: Mapping[str, str]
    """Its labels, unescaped."""
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample of a text exposition."""
    return [
        Sample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def scrape(port: int, host: str = "127.0.0.1", timeout: float = SCRAPE_TIMEOUT) -> list[Sample]:
    """The samples a worker serves on ``port``; raises ``OSError`` if it does not answer."""
    url = f"http://{host}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return parse(response.read().decode())


def matching(samples: Iterable[Sample], name: str, **labels: str) -> list[Sample]:
    """The samples called ``name`` whose labels include ``labels``."""
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def total(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum over :func:`matching` samples (0 when there is none)."""
    return sum(s.value for s in matching(samples, name, **labels))


def scraped_total(port: int, name: str, **labels: str) -> float:
    """:func:`total` of a live worker, 0 while it does not answer yet (still starting)."""
    try:
        return total(scrape(port), name, **labels)
    except OSError:
        return 0.0
