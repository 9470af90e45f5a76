"""River drift detectors: which ones exist, how they are built from config, and their parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from river import drift
from river.drift import binary

if TYPE_CHECKING:
    from streamproc.settings import DetectorSpec

CLASSES: dict[str, type[Any]] = {
    "adwin": drift.ADWIN,
    "page_hinkley": drift.PageHinkley,
    "kswin": drift.KSWIN,
    "ddm": binary.DDM,
    "eddm": binary.EDDM,
    "hddm_a": binary.HDDMA,
    "hddm_w": binary.HDDMW,
    "fhddm": binary.FHDDM,
}


def build(spec: DetectorSpec) -> Any:
    """A fresh River detector for ``spec``."""
    return CLASSES[spec.type](**spec.params)


def check_spec(spec: DetectorSpec) -> None:
    """Raise ValueError naming the parameter when River would refuse ``spec``."""
    try:
        build(spec)
    except TypeError as exc:
        raise ValueError(f"{spec.type}: {exc}") from exc
