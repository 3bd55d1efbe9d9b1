"""A status write the API server refuses is never silent (issue 11, item 6): it is
counted (releaseguard_status_write_errors_total), announced once by a Warning Event
StatusWriteFailed, retried every evaluation, and the guard's status catches up once the
server takes it again.

The refusal comes from a ValidatingAdmissionPolicy bound to this test's namespace only,
denying writes to releaseguards/status of a guard annotated e2e.releaseguard.dev/deny-status.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from objects import GROUP, PLURAL, VERSION, Objects

from conftest import Cluster, dns_label
from devcluster.launch import EVERY_EVALUATION, LOCAL_METRICS, operator_metrics_url, read_metrics
from waiting import wait_until

DENY = "e2e.releaseguard.dev/deny-status"
ERRORS = "releaseguard_status_write_errors_total"
PROPAGATION_TIMEOUT = 30.0


@pytest.fixture
def deny_status_writes(cluster: Cluster, namespace: str) -> Iterator[str]:
    name = dns_label("deny-status", 40)
    docs = [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["releaseguard.io"],
                            "apiVersions": ["*"],
                            "operations": ["UPDATE"],
                            "resources": ["releaseguards/status"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": f"!has(object.metadata.annotations) || "
                        f"!('{DENY}' in object.metadata.annotations)",
                        "message": "status writes denied by the e2e test",
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    ]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        yield name
    finally:
        for doc in docs:
            cluster.kubectl(
                "delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found", check=False
            )


def test_a_refused_status_write_is_counted_announced_once_and_retried(
    cluster, namespace, run_operator, deny_status_writes
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    spec = {
        "target": {"deployment": "app"},
        "intervalSeconds": 1,
        "metrics": [{"name": "up", "query": "vector(0)", "max": 1}],
    }
    # Wait until the policy is enforced: a status write of the annotated probe is denied.
    objs.create_guard("probe", spec, annotations={DENY: "true"})

    def probe_denied() -> bool:
        try:
            objs.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, "probe", {"status": {"message": "probe"}}
            )
        except ApiException as exc:
            return "status writes denied" in str(exc.body)
        return False

    wait_until(probe_denied, timeout=PROPAGATION_TIMEOUT, describe="the policy to deny")
    objs.create_guard("g", spec, annotations={DENY: "true"})
    operator = run_operator(namespace, *EVERY_EVALUATION, *LOCAL_METRICS)
    url = operator_metrics_url(operator.log_path)

    wait_until(
        lambda: read_metrics(url).get(ERRORS, 0) >= 5,
        timeout=30,
        describe=lambda: read_metrics(url),
    )
    events = objs.wait_event("g", "StatusWriteFailed")
    assert events[0]["type"] == "Warning"
    assert "status writes denied" in events[0]["message"]
    assert not objs.status("g").get("lastEvaluation")
    # Many failed writes, one Event for the run of failures.
    assert [e["reason"] for e in objs.events("g")].count("StatusWriteFailed") == 1

    objs.patch_guard("g", {"metadata": {"annotations": {DENY: None}}})

    wait_until(
        lambda: objs.status("g").get("lastEvaluation"),
        timeout=30,
        describe=lambda: objs.guard("g"),
    )
    assert operator.alive()
