"""deploy/prometheus/ is checked by promtool: config, rules, and the rules' unit tests."""

from __future__ import annotations

from tests.promtool import PROMETHEUS_DIR, promtool


def test_config_is_valid() -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_are_valid() -> None:
    result = promtool("check", "rules", str(PROMETHEUS_DIR / "rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_every_alert_fires_and_holds_back_as_its_tests_expect() -> None:
    result = promtool("test", "rules", str(PROMETHEUS_DIR / "rules_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_and_a_runbook() -> None:
    rules = (PROMETHEUS_DIR / "rules.yml").read_text(encoding="utf-8")
    tests = (PROMETHEUS_DIR / "rules_test.yml").read_text(encoding="utf-8")
    docs = (PROMETHEUS_DIR.parent.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    assert len(alerts) == 6
    for alert in alerts:
        assert f"alertname: {alert}" in tests, alert
        assert f"#### {alert}" in docs, alert
