"""What the operator writes and serves, with its default settings: a steady guard's
status is written once per heartbeat (not every evaluation), a breach and a step at once;
its own /metrics count evaluations, status writes and actions."""

from __future__ import annotations

from typing import Any

from objects import Objects

from devcluster.launch import LOCAL_METRICS, operator_metrics_url, read_metrics
from e2e.operator_metrics import EVALUATIONS, wait_evaluations
from waiting import wait_until

WRITES = "releaseguard_status_writes_total"


def test_steady_status_waits_for_the_heartbeat_but_a_breach_and_a_step_do_not(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"new-flow": "true"})
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    spec: dict[str, Any] = {
        "target": {"deployment": "app"},
        "intervalSeconds": 1,
        "consecutiveBreaches": 2,
        "metrics": [{"name": "error-rate", "query": query, "max": 0.1}],
        "steps": [
            {
                "type": "FeatureFlag",
                "featureFlag": {"configMap": "flags", "key": "new-flow", "value": "false"},
            }
        ],
    }
    objs.create_guard("g", spec)
    operator = run_operator(namespace, *LOCAL_METRICS)
    url = operator_metrics_url(operator.log_path)
    wait_until(
        lambda: (objs.status("g").get("lastEvaluation") or {}).get("verdict") == "Healthy",
        timeout=60,
        describe=lambda: objs.status("g"),
    )
    wait_evaluations(url, 3)  # past start-up: the first evaluations settle the release

    before = objs.guard("g")
    writes = read_metrics(url)[WRITES]
    after = wait_evaluations(url, 5)
    assert after[WRITES] == writes, "a steady evaluation was written before the heartbeat"
    assert objs.guard("g")["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    exporter.set("rg_error_ratio", 0.9, {"guard": namespace})
    # Well inside the 60 s heartbeat: a new verdict and each breach count are changes.
    wait_until(
        lambda: objs.status("g").get("phase") == "Contained",
        timeout=20,
        describe=lambda: objs.status("g"),
    )
    assert objs.config_map("flags")["data"]["new-flow"] == "false"
    metrics = read_metrics(url)
    assert metrics['releaseguard_actions_total{result="Applied",type="FeatureFlag"}'] == 1
    # Breach 1, then breach 2 confirmed and the step applied in the same evaluation.
    assert metrics[WRITES] >= writes + 2
    assert metrics.get("releaseguard_evaluation_errors_total", 0.0) == 0
    assert metrics["releaseguard_evaluation_lateness_seconds_count"] >= metrics[EVALUATIONS] - 1
