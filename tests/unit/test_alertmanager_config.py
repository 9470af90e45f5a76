"""The compose stack's Alertmanager configuration is one Alertmanager accepts (amtool)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.amtool import ALERTMANAGER_DIR, amtool

CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"


def test_alertmanager_config_passes_amtool() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_config_fails_amtool(tmp_path: Path) -> None:
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(CONFIG.read_text().replace("receiver: team-chat", "receiver: nobody"))
    result = amtool("check-config", str(broken))
    assert result.returncode != 0
    assert "nobody" in result.stdout + result.stderr


def test_route_tree_sends_by_severity_and_mutes_streams_under_a_model_alert() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    by_severity = {
        m.split("=")[1].strip().strip('"'): r["receiver"]
        for r in config["route"]["routes"]
        for m in r["matchers"]
        if m.startswith("severity")
    }
    assert by_severity == {"critical": "on-call-pager", "warning": "on-call-pager", "info": "null"}
    [inhibit] = config["inhibit_rules"]
    assert inhibit["equal"] == ["model"]


def test_amtool_routes_a_critical_drift_alert_to_the_pager() -> None:
    labels = ["alertname=StreamprocDrift", "model=m", "severity=critical"]
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "on-call-pager"
