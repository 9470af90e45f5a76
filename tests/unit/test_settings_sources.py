"""Settings on pydantic-settings: nested arrival sections, their variables, the old names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streamproc.arrival.monitor import ArrivalMonitor
from streamproc.config_sources import DEPRECATED_ENV
from streamproc.errors import ConfigError
from streamproc.settings import ArrivalSettings, Settings, env_names, load_settings


def test_nested_keys_keep_their_variable_names() -> None:
    """The nested delimiter is ``_``: the names are those of the flat settings before."""
    names = env_names()
    assert names["STREAMPROC_ARRIVAL_RATE_BUCKET_SECONDS"] == ("arrival", "rate", "bucket_seconds")
    assert names["STREAMPROC_ARRIVAL_SILENCE_MIN_GAPS"] == ("arrival", "silence", "min_gaps")
    assert names["STREAMPROC_KAFKA_BOOTSTRAP_SERVERS"] == ("kafka", "bootstrap_servers")
    settings = load_settings(None, {"STREAMPROC_ARRIVAL_FRESHNESS_FACTOR": "3"})
    assert settings.arrival.freshness.factor == 3.0


@pytest.mark.parametrize("section", ["silence", "rate", "freshness"])
def test_the_old_switches_still_work_with_a_deprecation_line(
    section: str, caplog: pytest.LogCaptureFixture
) -> None:
    var = f"STREAMPROC_ARRIVAL_{section.upper()}"
    assert var in DEPRECATED_ENV and var not in env_names()
    with caplog.at_level(logging.WARNING):
        settings = load_settings(None, {var: "false"})
    assert getattr(settings.arrival, section).enabled is False
    assert f"{var} is deprecated: use {var}_ENABLED" in caplog.text


def test_a_bad_value_of_an_old_name_names_that_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"STREAMPROC_ARRIVAL_RATE": "maybe"})
    assert "environment variable STREAMPROC_ARRIVAL_RATE: arrival.rate.enabled:" in str(info.value)


def test_flat_keys_in_a_file_load_into_their_sections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "streamproc.yaml"
    path.write_text("arrival:\n  rate_bucket_seconds: 30\n  silence: false\n")
    with caplog.at_level(logging.WARNING):
        settings = load_settings(path, {})
    assert settings.arrival.rate.bucket_seconds == 30
    assert settings.arrival.silence.enabled is False
    deprecated = "arrival.rate_bucket_seconds is deprecated: use arrival.rate.bucket_seconds"
    assert deprecated in caplog.text
    assert settings == load_settings(
        None,
        {
            "STREAMPROC_ARRIVAL_RATE_BUCKET_SECONDS": "30",
            "STREAMPROC_ARRIVAL_SILENCE_ENABLED": "false",
        },
    )


def test_the_environment_wins_inside_a_nested_section(tmp_path: Path) -> None:
    path = tmp_path / "streamproc.yaml"
    path.write_text("arrival:\n  rate:\n    bucket_seconds: 30\n    threshold: 5\n")
    settings = load_settings(path, {"STREAMPROC_ARRIVAL_RATE_THRESHOLD": "7"})
    assert (settings.arrival.rate.bucket_seconds, settings.arrival.rate.threshold) == (30, 7)


def test_unknown_keys_of_a_nested_section_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "streamproc.yaml"
    path.write_text("arrival:\n  rate:\n    bucket_secs: 30\n")
    with pytest.raises(ConfigError, match=r"arrival\.rate\.bucket_secs"):
        load_settings(path, {})


def test_a_fixed_silence_window_is_per_model_only() -> None:
    with pytest.raises(ValueError, match="per model only"):
        ArrivalSettings(silence={"seconds": 60})  # type: ignore[arg-type]
    assert "STREAMPROC_ARRIVAL_SILENCE_SECONDS" not in env_names()


def test_base_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Settings()`` is a pydantic-settings ``BaseSettings`` with the same sources."""
    for var in env_names():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STREAMPROC_ARRIVAL_RATE_SLACK", "2")
    monkeypatch.setenv("STREAMPROC_TOPICS_PARTITIONS", "3")
    settings = Settings()
    assert (settings.arrival.rate.slack, settings.topics.partitions) == (2.0, 3)
    monkeypatch.setenv("STREAMPROC_NO_SUCH_THING", "1")
    with pytest.raises(ConfigError, match="unknown environment variable STREAMPROC_NO_SUCH_THING"):
        Settings()


def test_the_monitors_read_the_sections_as_they_are() -> None:
    """No copy into parameter records: the rate detector gets the settings object."""
    arrival = ArrivalSettings()
    monitor = ArrivalMonitor(arrival)
    assert monitor.rate_params is arrival.rate
    assert monitor.silence_params("any") is arrival.silence
