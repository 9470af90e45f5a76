"""``streamproc check-config``: the reference in docs matches the settings; errors name keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.cli import main
from streamproc.commands.config import reference
from streamproc.settings import env_names

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_docs_embed_the_current_reference() -> None:
    text = DOC.read_text()
    embedded = text.split("<!-- reference:start -->\n", 1)[1].split("<!-- reference:end -->")[0]
    assert embedded.strip() == reference().strip(), (
        "docs/configuration.md is out of date: regenerate it with "
        "`streamproc check-config --reference`"
    )


def test_every_environment_variable_is_documented() -> None:
    text = reference()
    missing = [var for var in env_names() if var != "STREAMPROC_CONFIG" and var not in text]
    assert not missing


def test_check_config_prints_masked_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "streamproc.yaml"
    config.write_text(
        "kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl_username: u\n"
        "  sasl_password: hunter2\n"
    )
    for var in env_names():
        monkeypatch.delenv(var, raising=False)
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "sasl_username: u" in out


def test_check_config_names_the_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "streamproc.yaml"
    config.write_text(
        "engine:\n  detectors:\n    value:\n      - type: adwin\n        params: {delt: 1}\n"
    )
    for var in env_names():
        monkeypatch.delenv(var, raising=False)
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "engine.detectors.value.0.params" in err
    assert "delt" in err
