"""The quality benchmark's own functions on a tiny run: a 1 sigma shift is found, noise is not."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.unit import bench_scripts


@pytest.fixture(scope="module")
def quality() -> ModuleType:
    return bench_scripts.load("quality")


def test_one_sigma_shift_is_detected_on_the_value_stream(quality: ModuleType) -> None:
    scenario = quality.SCENARIOS["shift+1"]
    run = quality.run(scenario, seed=1, events=quality.HISTORY + 1_000)
    result = quality.summarize_change(scenario, [run])
    assert result.detected == 1
    assert result.quantile(0.5) <= quality.SHIFT_TARGET
    assert result.early == 0
    assert result.wrong == 0


def test_stationary_gaussian_control_raises_no_alert(quality: ModuleType) -> None:
    scenario = quality.SCENARIOS["gauss-1"]
    result = quality.summarize_control(scenario, [quality.run(scenario, seed=1, events=20_000)])
    assert result.events == 20_000
    assert sum(result.false_alarms.values()) == 0
    assert result.ok


def test_runs_are_deterministic(quality: ModuleType) -> None:
    scenario = quality.SCENARIOS["errors-5to15%"]
    first = quality.run(scenario, seed=3, events=quality.HISTORY + 1_000)
    assert first == quality.run(scenario, seed=3, events=quality.HISTORY + 1_000)
    assert first.hits, "the error-rate jump must be detected for the comparison to mean anything"


def test_write_doc_replaces_only_the_generated_section(quality: ModuleType, tmp_path: Path) -> None:
    doc = tmp_path / "quality.md"
    doc.write_text(f"# Title\n\n{quality.RESULTS_BEGIN}\nold\n{quality.RESULTS_END}\n\nProse.\n")
    quality.write_doc(doc, f"{quality.RESULTS_BEGIN}\nnew\n{quality.RESULTS_END}")
    assert doc.read_text() == (
        f"# Title\n\n{quality.RESULTS_BEGIN}\nnew\n{quality.RESULTS_END}\n\nProse.\n"
    )


def test_write_doc_appends_its_section_to_a_doc_without_one(
    quality: ModuleType, tmp_path: Path
) -> None:
    doc = tmp_path / "quality.md"
    section = f"{quality.RESULTS_BEGIN}\nnew\n{quality.RESULTS_END}"
    quality.write_doc(doc, section)
    assert doc.read_text() == f"# Detection quality\n\n{section}\n"
    doc.write_text("# Title\n\nProse.\n")
    quality.write_doc(doc, section)
    assert doc.read_text() == f"# Title\n\nProse.\n\n# Detection quality\n\n{section}\n"


def test_resolutions_are_not_counted_as_alarms(quality: ModuleType) -> None:
    """A shift's alert resolves within the run (span 2 x cooldown): still one hit, not two."""
    scenario = quality.SCENARIOS["shift+1"]
    settings = quality.default_settings().model_copy(update={"cooldown_events": 200})
    run = quality.run(scenario, seed=1, events=quality.HISTORY + 3_000, settings=settings)
    assert [h.kind for h in run.hits].count(quality.StreamKind.VALUE) == 1
