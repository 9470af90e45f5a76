"""The category quality benchmark's own functions on a tiny run."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from streamproc.settings import load_settings
from tests.unit import bench_scripts


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return bench_scripts.load("quality_categories")


def test_a_ten_point_share_change_is_found_in_time(bench: ModuleType) -> None:
    scenario = bench.SCENARIOS["cat-share+10pp"]
    runs = [bench.run(scenario, seed, 7_000, load_settings(environ={}).engine) for seed in (1, 2)]
    result = bench._change(scenario, runs)
    assert result["within_target"] == 2
    assert result["early"] == 0
    assert runs[0] == bench.run(scenario, 1, 7_000, load_settings(environ={}).engine)


def test_a_zipf_control_over_2000_values_is_quiet(bench: ModuleType) -> None:
    scenario = bench.SCENARIOS["cat-zipf-2000"]
    run = bench.run(scenario, 1, 20_000, load_settings(environ={}).engine)
    assert bench._control([run])["false_alarms"] == 0


def test_write_doc_replaces_only_its_section(bench: ModuleType, tmp_path: Path) -> None:
    doc = tmp_path / "quality.md"
    doc.write_text(f"# Q\n\n{bench.BEGIN}\nold\n{bench.END}\n\nProse.\n")
    bench.write_doc(doc, f"{bench.BEGIN}\nnew\n{bench.END}")
    assert doc.read_text() == f"# Q\n\n{bench.BEGIN}\nnew\n{bench.END}\n\nProse.\n"
