"""Every example alert and log line in README.md and docs/alerts.md is a real run's output
(tests/support/docs_examples.py): the documents cannot drift from the code."""

from __future__ import annotations

import pytest

from tests.support import docs_examples


@pytest.fixture(scope="module")
def examples() -> dict[str, str]:
    return docs_examples.render()


@pytest.mark.parametrize("path", docs_examples.DOCUMENTS, ids=lambda p: p.name)
def test_the_examples_of_a_document_are_a_real_runs_output(
    path: object, examples: dict[str, str]
) -> None:
    found = docs_examples.blocks(path.read_text())  # type: ignore[attr-defined]
    assert found, f"{path}: no <!-- example: NAME --> block"
    for name, body in found.items():
        assert body == examples[name], f"{path}: example {name} is stale: make docs-examples"


def test_every_example_appears_in_a_document(examples: dict[str, str]) -> None:
    shown = set()
    for path in docs_examples.DOCUMENTS:
        shown |= set(docs_examples.blocks(path.read_text()))
    assert shown == set(examples)
