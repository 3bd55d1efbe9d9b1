"""The operator's own alert rules (charts/releaseguard/files/alert-rules.yaml): valid for
Prometheus (`promtool check rules`), each rule's behaviour pinned by its unit test in
tests/alert_rules/ (`promtool test rules`), and every metric they use is one the operator
exports (adapters/metrics.py). promtool comes with Debian's prometheus package, which
`make cluster-up` installs; without it the promtool checks are skipped."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from devcluster.versions import helm_binary
from releaseguard.adapters import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "releaseguard" / "files" / "alert-rules.yaml"
RULE_TESTS = ROOT / "tests" / "alert_rules"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def _exported() -> set[str]:
    assert metrics.LEADER is not None  # the operator's metrics are registered on import
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


@needs_promtool
def test_promtool_accepts_the_rules():
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
@pytest.mark.parametrize("case", sorted(RULE_TESTS.glob("*.test.yaml")), ids=lambda p: p.stem)
def test_rule_unit_test_passes(case: Path):
    done = subprocess.run(
        [PROMTOOL, "test", "rules", case.name],
        cwd=RULE_TESTS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_has_a_unit_test():
    tested = {
        alert
        for case in RULE_TESTS.glob("*.test.yaml")
        for test in yaml.safe_load(case.read_text())["tests"]
        for check in test.get("alert_rule_test", [])
        if check.get("exp_alerts") and (alert := check["alertname"])
    }
    assert {r["alert"] for r in _rules()} <= tested


def test_the_rules_use_only_metrics_the_operator_exports():
    exported = _exported()
    used = {name for r in _rules() for name in re.findall(r"\b(releaseguard_[a-z_]+)", r["expr"])}
    assert used and used <= exported, used - exported


def test_the_issue_asks_for_these_alerts():
    alerts = {r["alert"] for r in _rules()}
    assert {
        "ReleaseGuardOperatorDown",
        "ReleaseGuardNoLeader",
        "ReleaseGuardEvaluationsFailing",
        "ReleaseGuardEvaluationsLate",
        "ReleaseGuardGuardInvalid",
        "ReleaseGuardGuardExhausted",
        "ReleaseGuardNotificationsFailing",
    } <= alerts


def _render(*args: str) -> list[dict]:
    binary = helm_binary()
    if not binary.exists():
        pytest.skip(f"helm not built at {binary}")
    done = subprocess.run(
        [str(binary), "template", "rg", str(ROOT / "charts" / "releaseguard"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_the_chart_renders_the_rules_as_a_prometheusrule_only_where_its_crd_exists():
    assert not [d for d in _render() if d["kind"] == "PrometheusRule"]
    with_crd = _render("--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
    (rule,) = [d for d in with_crd if d["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    off = _render(
        "--api-versions",
        "monitoring.coreos.com/v1/PrometheusRule",
        "--set",
        "alertRules.enabled=false",
    )
    assert not [d for d in off if d["kind"] == "PrometheusRule"]
