"""Settings that would fail later (in Kafka, a timer, a checkpoint) are refused at start-up.

Each refusal is a :class:`ConfigError` whose message names the key (and the
variable, for the environment), shown by ``check-config`` and ``worker`` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import BaseModel

from streamproc.cli import main
from streamproc.errors import ConfigError
from streamproc.settings import Settings, env_names, load_settings

TOO_BIG = str(2**31)


def refused(environ: Mapping[str, str], path: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ)
    return str(info.value)


def config(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "streamproc.yaml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in env_names():
        monkeypatch.delenv(var, raising=False)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("command", [["check-config"], ["worker", "--config"]])
def test_a_file_not_in_utf8_is_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = config(
        tmp_path, "kafka:\n  group_id: g\ntopics:\n  features: caf\xe9\n".encode("latin-1")
    )
    assert main([*command, str(path)]) == 2
    err = capsys.readouterr().err
    assert "topics.features: not UTF-8 (byte 0xe9 at line 4, column 16)" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("command", [["check-config"], ["worker", "--config"]])
def test_a_yaml_value_python_cannot_build_is_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = config(tmp_path, f"topics:\n  features: f\n  partitions: {'9' * 5000}\n")
    assert main([*command, str(path)]) == 2
    assert "topics.partitions: cannot read the value" in capsys.readouterr().err


def test_the_key_is_found_in_a_file_of_nested_aliases(tmp_path: Path) -> None:
    """Finding the key looks at each node once, so aliases of aliases cannot blow it up."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    text = "\n".join([*lines, "topics:", "  partitions: 2026-02-30", ""])
    assert "topics.partitions: cannot read the value" in refused({}, config(tmp_path, text))


@pytest.mark.parametrize(
    ("var", "value", "key"),
    [
        ("STREAMPROC_TOPICS_PARTITIONS", TOO_BIG, "topics.partitions"),
        ("STREAMPROC_TOPICS_PARTITIONS", "9" * 30, "topics.partitions"),
        ("STREAMPROC_TOPICS_REPLICATION_FACTOR", "32768", "topics.replication_factor"),
        ("STREAMPROC_WORKER_CHECKPOINT_EVENTS", TOO_BIG, "worker.checkpoint_events"),
        ("STREAMPROC_LIMITS_MAX_MESSAGE_BYTES", TOO_BIG, "limits.max_message_bytes"),
        ("STREAMPROC_WORKER_SESSION_TIMEOUT_SECONDS", "3000000", "worker.session_timeout_seconds"),
        ("STREAMPROC_ARRIVAL_SILENCE_CEILING_SECONDS", "1e20", "arrival.silence.ceiling_seconds"),
    ],
)
def test_a_number_too_large_for_its_field_is_refused(var: str, value: str, key: str) -> None:
    message = refused({var: value})
    assert f"environment variable {var}: {key}:" in message


def numeric_fields(model: type[BaseModel] = Settings, path: str = "") -> list[str]:
    """Dotted keys of every number setting, in nested sections too (``arrival.rate.slack``)."""
    out = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out += numeric_fields(sub, f"{path}{name}.")
        elif any(t in str(sub) for t in ("int", "float")) and "tuple" not in str(sub):
            out.append(f"{path}{name}")
    return out


def test_every_number_setting_has_a_ceiling() -> None:
    """Also the ones added later: a field without its own ceiling gets 2**31 - 1."""
    open_ended, variables = [], {".".join(k): var for var, k in env_names().items()}
    keys = numeric_fields()
    assert "arrival.rate.threshold" in keys and "topics.partitions" in keys
    for key in keys:
        if key not in variables:
            assert key == "arrival.silence.seconds"  # file only: per model (checked below)
            continue
        try:
            load_settings(None, {variables[key]: TOO_BIG})
        except ConfigError as exc:
            assert key in str(exc)
        else:
            open_ended.append(variables[key])
    assert not open_ended


DETECTOR = (
    "engine:\n  detectors:\n    value:\n"
    "      - type: {type}\n        params: {{{param}: {value}}}\n"
)


@pytest.mark.parametrize(
    ("type_", "param", "value"),
    [
        ("kswin", "window_size", str(2**62)),
        ("page_hinkley", "min_instances", str(2**40)),
        ("fhddm", "sliding_window_size", str(2**40)),
    ],
)
def test_detector_parameters_are_bounded(
    tmp_path: Path, type_: str, param: str, value: str
) -> None:
    text = DETECTOR.format(type=type_, param=param, value=value)
    assert "engine.detectors.value.0.params" in refused({}, config(tmp_path, text))


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("STREAMPROC_WORKER_CHECKPOINT_INTERVAL_SECONDS", "inf"),
        ("STREAMPROC_WORKER_SHUTDOWN_TIMEOUT_SECONDS", "Infinity"),
        ("STREAMPROC_ARRIVAL_TICK_SECONDS", "inf"),
        ("STREAMPROC_ARRIVAL_MAX_FUTURE_SECONDS", "inf"),
        ("STREAMPROC_ARRIVAL_SILENCE_MEMORY_SECONDS", "inf"),
        ("STREAMPROC_ARRIVAL_RATE_THRESHOLD", "inf"),
    ],
)
def test_non_finite_intervals_are_refused(var: str, value: str) -> None:
    key = env_names()[var]
    assert f"environment variable {var}: {'.'.join(key)}:" in refused({var: value})


def test_non_finite_values_in_a_file_are_refused_naming_the_key(tmp_path: Path) -> None:
    text = "arrival:\n  overrides:\n    - model: m\n      silence_seconds: .inf\n"
    assert "arrival.overrides.0.silence_seconds" in refused({}, config(tmp_path, text))


@pytest.mark.parametrize("name", ["", "a b", "a/b", ".", "..", "x" * 250, "tópico", "a\nb"])
@pytest.mark.parametrize("key", ["features", "outcomes", "alerts", "dead_letters", "checkpoints"])
def test_topic_names_kafka_would_refuse_are_refused(name: str, key: str) -> None:
    var = f"STREAMPROC_TOPICS_{key.upper()}"
    message = refused({var: name})
    assert f"environment variable {var}: topics.{key}:" in message
    assert "not a topic name Kafka accepts" in message


def test_names_kafka_accepts_still_load() -> None:
    """The refusals above are about the names, not the keys: legal names pass."""
    settings = load_settings(None, {"STREAMPROC_TOPICS_ALERTS": "x" * 249})
    assert settings.topics.alerts == "x" * 249
    settings = load_settings(None, {"STREAMPROC_TOPICS_FEATURES": "ml.features_v2-A"})
    assert settings.topics.features == "ml.features_v2-A"
    with pytest.raises(ConfigError, match="not a topic name"):
        load_settings(None, {"STREAMPROC_TOPICS_FEATURES": ".."})


def test_a_group_id_that_makes_a_bad_checkpoint_topic_is_refused() -> None:
    message = refused({"STREAMPROC_KAFKA_GROUP_ID": "drift monitor"})
    assert "kafka.group_id" in message and "set topics.checkpoints" in message
    ok = {"STREAMPROC_KAFKA_GROUP_ID": "drift monitor", "STREAMPROC_TOPICS_CHECKPOINTS": "c"}
    assert load_settings(None, ok).checkpoint_topic == "c"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("features", "alerts"),
        ("outcomes", "alerts"),
        ("features", "dead_letters"),
        ("outcomes", "dead_letters"),
        ("features", "checkpoints"),
        ("alerts", "dead_letters"),
        ("alerts", "checkpoints"),
        ("dead_letters", "checkpoints"),
        ("features", "outcomes"),
    ],
)
def test_topics_that_would_feed_back_into_each_other_are_refused(first: str, second: str) -> None:
    environ = {
        f"STREAMPROC_TOPICS_{first.upper()}": "shared",
        f"STREAMPROC_TOPICS_{second.upper()}": "shared",
    }
    message = refused(environ)
    assert f"topics.{first}" in message and f"topics.{second}" in message
    assert "same topic" in message


def test_the_default_checkpoint_topic_counts_too() -> None:
    message = refused(
        {"STREAMPROC_KAFKA_GROUP_ID": "g", "STREAMPROC_TOPICS_ALERTS": "g-checkpoints"}
    )
    assert "topics.alerts" in message and "topics.checkpoints" in message


def test_names_kafka_would_treat_as_one_are_refused() -> None:
    message = refused({"STREAMPROC_TOPICS_FEATURES": "ml.x", "STREAMPROC_TOPICS_OUTCOMES": "ml_x"})
    assert "topics.features" in message and "topics.outcomes" in message
    assert "collide" in message


@pytest.mark.usefixtures("clean_env")
def test_the_worker_refuses_a_dead_letter_loop_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(
        tmp_path, "kafka:\n  bootstrap_servers: 192.0.2.1:1\ntopics:\n  dead_letters: features\n"
    )
    assert main(["worker", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("streamproc worker: invalid configuration:")
    assert "topics.dead_letters 'features' is the same topic as topics.features" in err
