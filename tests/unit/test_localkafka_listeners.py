"""LocalKafka's extra listeners, properties and format arguments (the secured test broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.dev.localkafka import Listener, LocalKafka, server_properties
from streamproc.errors import BrokerError


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_extra_listeners_are_bound_advertised_and_mapped() -> None:
    listeners = (Listener("SASL_SSL", "SASL_SSL", 9094), Listener("SSL", "SSL", 9095))
    props = _props(server_properties(9092, 9093, Path("/data"), listeners))
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,"
        "SASL_SSL://127.0.0.1:9094,SSL://127.0.0.1:9095"
    )
    assert props["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9094,SSL://127.0.0.1:9095"
    )
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"  # the broker talks plaintext


def test_extra_properties_are_added_and_win() -> None:
    extra = {"sasl.enabled.mechanisms": "SCRAM-SHA-512", "num.partitions": "3"}
    props = _props(server_properties(9092, 9093, Path("/data"), extra=extra))
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["num.partitions"] == "3"


def test_without_extras_the_broker_is_plaintext_only() -> None:
    props = _props(server_properties(9092, 9093, Path("/data")))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert "sasl.enabled.mechanisms" not in props


def test_a_failed_tool_masks_scram_passwords(tmp_path: Path) -> None:
    broker = LocalKafka(work_dir=tmp_path)
    broker._work_dir = tmp_path
    secret = "s3cret-pass"
    cmd = ["false", "-Xmx1m", "-Dx", "-cp", "jars", "kafka.tools.StorageTool", "format"]
    cmd += ["--add-scram", f"SCRAM-SHA-512=[name=u,password={secret}]"]
    with pytest.raises(BrokerError) as caught:
        broker._tool(cmd)
    assert secret not in str(caught.value)
    assert "password=***" in str(caught.value)
