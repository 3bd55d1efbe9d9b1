"""`kubectl releaseguard` run as a user runs it: the cluster's kubectl finds the
`kubectl-releaseguard` executable installed in .venv/bin on PATH, with KUBECONFIG set,
against guards that a real operator manages and a real Prometheus answers for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from objects import Objects, condition
from test_containment import spec

from waiting import wait_until

VENV_BIN = Path(sys.executable).parent
PLUGIN_TIMEOUT = 60.0


def plugin_env(cluster: Any) -> dict[str, str]:
    path = os.pathsep.join(
        [str(VENV_BIN), str(Path(cluster.info.kubectl).parent), os.environ["PATH"]]
    )
    return {
        **os.environ,
        "PATH": path,
        "KUBECONFIG": str(cluster.kubeconfig),
        "COLUMNS": "250",
        "RELEASEGUARD_PROMETHEUS_URL": "",
    }


def rg(
    cluster: Any, *args: str, timeout: float = PLUGIN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """`kubectl releaseguard ARGS` as a user types it."""
    return subprocess.run(
        ["kubectl", "releaseguard", *args],
        env=plugin_env(cluster),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


SCALE = {"type": "Scale", "scale": {"deployment": "consumer", "replicas": 0}}


def scale_guard(cluster: Any, namespace: str, exporter: Any, error: float) -> tuple[Objects, str]:
    """Target `app`, a `consumer` Deployment with 2 replicas, guard `g` with one Scale step;
    its metric reads `error` (0.5 breaches)."""
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment("consumer", "registry.local/consumer:1", replicas=2)
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", error, {"guard": namespace})
    objs.create_guard("g", spec(query, [SCALE]))
    return objs, query


def wait_status(objs: Objects, predicate: Any, what: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (s := objs.status("g")) and predicate(s) and s,
        timeout=timeout,
        describe=lambda: f"{what}; status: {json.dumps(objs.status('g'))[-2000:]}",
    )


def wait_prometheus_sees(prometheus: Any, query: str, value: float) -> None:
    prometheus.wait_for(query, lambda r: r and float(r[0]["value"][1]) == value)


# ------------------------------------------------------------------ list, status, timeline


def test_list_status_timeline_and_undo_tell_a_scale_incident(
    cluster, namespace, exporter, prometheus, run_operator
):
    objs, query = scale_guard(cluster, namespace, exporter, 0.5)
    run_operator(namespace)
    wait_status(objs, lambda s: s.get("phase") == "Contained", "Contained")
    objs.wait_event("g", "StepApplied")

    table = ok(rg(cluster, "list", "-n", namespace))
    assert "\x1b[" not in table, "no colour when not on a terminal"
    (line,) = [row for row in table.splitlines() if row.startswith("g ")]
    for cell in ("app", "Contained", "Breach", "Scale Applied", "#1 open"):
        assert cell in line, table
    everywhere = ok(rg(cluster, "list", "-A"))
    assert any(r.startswith(namespace) and " g " in r for r in everywhere.splitlines())
    (row,) = json.loads(ok(rg(cluster, "list", "-n", namespace, "-o", "json")))
    assert (row["name"], row["phase"], row["breaches"]) == ("g", "Contained", row["breaches"])
    assert row["breaches"] >= 1

    shown = ok(rg(cluster, "status", "g", "-n", namespace))
    for text in ("Conditions", "Contained", "Steps (readiness)", "Incident", "1-scale-0"):
        assert text in shown, shown
    assert "replicas: 2 → 0" in shown
    view = yaml.safe_load(ok(rg(cluster, "status", "g", "-n", namespace, "-o", "yaml")))
    assert view["phase"] == "Contained"
    (step,) = view["steps"]
    # Applied: the consumer is at 0 already, so the step would change nothing now.
    assert step["ready"] is False and "already has 0 replicas" in step["why"]
    assert view["actions"][0]["change"] == "replicas: 2 → 0"
    assert view["incident"]["state"] == "open"

    told = json.loads(ok(rg(cluster, "timeline", "g", "-n", namespace, "-o", "json")))
    whats = [e["what"] for e in told["entries"]]
    assert whats[:2] == ["detected", "confirmed"], whats
    assert whats.index("action") < whats.index("contained"), whats
    offsets = [e["offsetSeconds"] for e in told["entries"]]
    assert offsets[0] == 0 and offsets == sorted(offsets)
    assert "StepApplied" not in whats, "an Event that repeats an action must be merged"
    text = ok(rg(cluster, "timeline", "g", "-n", namespace))
    assert "+0.0s" in text and "1-scale-0 Scale Deployment/consumer: replicas: 2 → 0" in text

    # Undo inside the open incident is refused: the operator would take it for a revert.
    refused = rg(cluster, "undo", "g", "1-scale-0", "-n", namespace)
    assert refused.returncode == 1 and "Re-arm first" in refused.stderr, refused.stderr
    assert objs.deployment("consumer")["spec"]["replicas"] == 0

    # The recommended order: healthy again, re-arm, then undo.
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    wait_prometheus_sees(prometheus, query, 0.0)
    rearmed = json.loads(ok(rg(cluster, "rearm", "g", "-n", namespace, "-o", "json")))
    assert rearmed["handled"] and rearmed["incidentClosed"], rearmed
    assert rearmed["phase"] == "Watching"

    undone = ok(rg(cluster, "undo", "g", "1-scale-0", "-n", namespace))
    assert "replicas: 0 → 2" in undone, undone
    assert objs.deployment("consumer")["spec"]["replicas"] == 2
    marker = objs.deployment("consumer")["metadata"].get("annotations") or {}
    assert "releaseguard.io/action" not in marker
    (event,) = objs.wait_event("g", "ActionUndone")
    assert event["message"].startswith("1-scale-0 undone") and "replicas: 0 → 2" in event["message"]
    # The same undo again would overwrite nothing the action wrote: refused.
    again = rg(cluster, "undo", "g", "1-scale-0", "-n", namespace)
    assert again.returncode == 1 and "no longer holds" in again.stderr, again.stderr

    told = json.loads(
        ok(rg(cluster, "timeline", "g", "--incident", "1", "-n", namespace, "-o", "json"))
    )
    whats = [e["what"] for e in told["entries"]]
    assert "Rearmed" in whats and whats[-1] == "ActionUndone", whats
    missing = rg(cluster, "timeline", "g", "--incident", "7", "-n", namespace)
    assert missing.returncode == 1


def test_undo_refuses_a_rollback_and_says_what_to_do(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    objs.create_guard("g", spec(query, [{"type": "Rollback"}], knownGoodAfterSeconds=2))
    run_operator(namespace)
    wait_until(
        lambda: condition(objs.status("g"), "RollbackReady").get("status") == "True",
        timeout=60,
        describe=lambda: objs.status("g").get("conditions"),
    )
    objs.set_image("app", "registry.local/app:2")
    wait_status(objs, lambda s: (s.get("release") or {}).get("revision") == "2", "revision 2")
    exporter.set("rg_error_ratio", 0.5, {"guard": namespace})
    status = wait_status(objs, lambda s: s.get("phase") == "Contained", "Contained")
    (action,) = status["actions"]
    assert action["type"] == "Rollback"
    template = objs.deployment("app")["spec"]["template"]

    refused = rg(cluster, "undo", "g", action["id"], "-n", namespace, "--force")
    assert refused.returncode == 1
    assert "redeploy the release that breached" in refused.stderr, refused.stderr
    assert "deploy a fixed revision" in refused.stderr
    assert objs.deployment("app")["spec"]["template"] == template
    assert not [e for e in objs.events("g") if e["reason"] == "ActionUndone"]


# ------------------------------------------------------------------ check


def test_check_exit_codes_good_bad_query_missing_object_and_usage(cluster, namespace, exporter):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment("consumer", "registry.local/consumer:1", replicas=2)
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", 0.02, {"guard": namespace})
    prometheus_url = cluster.info.prometheus_url
    objs.create_guard("good", spec(query, [SCALE]))
    objs.create_guard("badql", spec("sum(rate(x[1m]", [SCALE]))
    objs.create_guard("several", spec("rg_error_ratio", [SCALE]))
    missing_step = {"type": "Scale", "scale": {"deployment": "nope", "replicas": 0}}
    objs.create_guard("missing", spec(query, [missing_step]))
    before = objs.deployment("consumer")["metadata"]["generation"]

    def check(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return rg(
            cluster, "check", name, "-n", namespace, "--prometheus-url", prometheus_url, *extra
        )

    # The exporter's series reaches Prometheus a few seconds after it is registered.
    good = wait_until(
        lambda: (r := check("good")).returncode == 0 and "0.02" in r.stdout and r,
        timeout=30,
        describe=lambda: check("good").stdout,
    )
    assert "error-rate" in good.stdout and "0.02" in good.stdout and "≤ 0.1" in good.stdout
    assert "OK: this guard would work" in good.stdout
    report = json.loads(check("good", "-o", "json").stdout)
    assert report["exitCode"] == 0 and report["steps"][0]["state"] == "ready"
    assert report["queries"][0]["verdict"] == "Pass"

    bad = check("badql")
    assert bad.returncode == 1 and "Prometheus rejected the query" in bad.stdout, bad.stdout
    several = check("several")
    assert several.returncode == 1 and "series" in several.stdout, several.stdout
    missing = check("missing")
    assert missing.returncode == 1, missing.stdout
    assert "Deployment nope not found" in missing.stdout and "not ready" in missing.stdout

    usage = rg(cluster, "check", "-n", namespace)
    assert usage.returncode == 2 and "NAME or -f" in usage.stderr
    no_url = rg(cluster, "check", "good", "-n", namespace)
    assert no_url.returncode == 2 and "--prometheus-url" in no_url.stderr
    absent = check("absent")
    assert absent.returncode == 1 and "not found" in absent.stderr
    # check changed nothing.
    consumer = objs.deployment("consumer")
    assert consumer["metadata"]["generation"] == before and consumer["spec"]["replicas"] == 2
    assert not objs.status("good")


def test_check_a_file_never_applied(cluster, namespace, exporter, tmp_path):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment("consumer", "registry.local/consumer:1", replicas=2)
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    manifest = {
        "apiVersion": "releaseguard.io/v1alpha1",
        "kind": "ReleaseGuard",
        "metadata": {"name": "fresh"},
        "spec": spec(query, [SCALE, {"type": "Rollback"}]),
    }
    good = tmp_path / "guard.yaml"
    good.write_text(yaml.safe_dump(manifest))
    url = cluster.info.prometheus_url

    def check(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return rg(
            cluster, "check", "-f", str(path), "-n", namespace, "--prometheus-url", url, *extra
        )

    result = wait_until(
        lambda: (r := check(good)).returncode == 0 and r,
        timeout=30,
        describe=lambda: (r := check(good)).stdout + r.stderr,
    )
    assert "server-side dry run" in result.stdout
    # Rollback cannot be ready before the guard has watched: pending, not a failure.
    assert "pending" in result.stdout
    assert not objs.exists(lambda n: objs.guard(n), "fresh"), "a dry run must store nothing"

    # A typo the schema catches locally, and a CEL rule only the API server knows.
    broken = json.loads(json.dumps(manifest))
    broken["spec"]["intervalSeconds"] = "often"
    broken["spec"]["metrics"][0].pop("max")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(broken))
    failed = check(bad, "-o", "json")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    problems = json.loads(failed.stdout)["problems"]
    assert any(p.startswith("schema: spec.intervalSeconds") for p in problems), problems
    assert any("server-side dry run: 422" in p for p in problems), problems

    not_a_guard = tmp_path / "cm.yaml"
    not_a_guard.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert check(not_a_guard).returncode == 2
    assert check(tmp_path / "absent.yaml").returncode == 2


def test_check_applies_the_allow_list_and_secret_label_before_using_a_token(
    cluster, namespace, exporter
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    url = cluster.info.prometheus_url
    ref = {"name": "prom-token", "key": "token"}
    body = spec(query, [], prometheus={"url": url, "bearerTokenSecretRef": ref})
    objs.create_guard("g", body)
    secret = {"metadata": {"name": "prom-token"}, "stringData": {"token": "t0ken"}}
    objs.core.create_namespaced_secret(namespace, secret)
    allowed = ["--allowed-url", "^http://127\\.0\\.0\\.1:"]

    # The default allow-list (^https://) refuses the plain-HTTP URL before the Secret is read.
    refused = rg(cluster, "check", "g", "-n", namespace, "-o", "json")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (problem,) = json.loads(refused.stdout)["problems"]
    assert problem.startswith("URLNotAllowed") and "was not read" in problem
    unlabelled = rg(cluster, "check", "g", "-n", namespace, "-o", "json", *allowed)
    assert unlabelled.returncode == 1
    assert json.loads(unlabelled.stdout)["problems"][0].startswith("SecretNotLabelled")

    objs.core.patch_namespaced_secret(
        "prom-token",
        namespace,
        {"metadata": {"labels": {"releaseguard.io/usable-by-guards": "true"}}},
    )
    works = wait_until(
        lambda: (
            (r := rg(cluster, "check", "g", "-n", namespace, *allowed)).returncode == 0
            and "Pass" in r.stdout
            and r
        ),
        timeout=30,
        describe=lambda: rg(cluster, "check", "g", "-n", namespace, *allowed).stdout,
    )
    assert "no steps: the guard detects and records" in works.stdout


def test_kubeconfig_context_and_its_namespace_are_honoured(cluster, namespace, exporter, tmp_path):
    scale_guard(cluster, namespace, exporter, 0.0)
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    original = config["current-context"]
    base = next(c for c in config["contexts"] if c["name"] == original)
    config["contexts"].append(
        {"name": "on-call", "context": {**base["context"], "namespace": namespace}}
    )
    config["current-context"] = "on-call"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    env = {**plugin_env(cluster), "KUBECONFIG": str(kubeconfig)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "releaseguard", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=PLUGIN_TIMEOUT,
            check=False,
        )

    # The current context's namespace, without -n.
    assert json.loads(ok(run("list", "-o", "json")))[0]["name"] == "g"
    assert "Phase:" in ok(run("status", "g"))
    # --context picks another context, and with it that context's namespace (none: default).
    other = run("status", "g", "--context", original)
    assert other.returncode == 1 and "not found in namespace default" in other.stderr
    assert "Phase:" in ok(run("status", "g", "--context", original, "-n", namespace))
    assert run("list", "--context", "nope").returncode == 1


# ------------------------------------------------------------------ contain


def test_contain_acts_within_seconds_and_prints_the_action(
    cluster, namespace, exporter, run_operator
):
    objs, _ = scale_guard(cluster, namespace, exporter, 0.0)
    run_operator(namespace)
    wait_status(
        objs,
        lambda s: (
            s.get("phase") == "Watching"
            and (s.get("lastEvaluation") or {}).get("verdict") == "Healthy"
        ),
        "Watching and Healthy",
    )
    started = time.monotonic()
    result = rg(cluster, "contain", "g", "-n", namespace, "--timeout", "20")
    took = time.monotonic() - started
    out = ok(result)
    assert "releaseguard.io/contain-now=" in out and "handled after" in out
    assert "action 1-scale-0: Scale Deployment/consumer: replicas: 2 → 0 [Applied]" in out, out
    assert took < 10, f"contain took {took:.1f}s"
    assert objs.deployment("consumer")["spec"]["replicas"] == 0
    print(f"contain: {took:.2f}s from command start to the printed action")


def test_contain_without_an_operator_says_so(cluster, namespace, exporter):
    scale_guard(cluster, namespace, exporter, 0.0)
    result = rg(cluster, "contain", "g", "-n", namespace, "--timeout", "2")
    assert result.returncode == 1
    assert "did not handle it within 2s" in result.stdout, result.stdout


# ------------------------------------------------------------------ status --watch


@pytest.fixture
def tmux(tmp_path: Path):
    """A private tmux server (its own socket), killed afterwards."""
    binary = shutil.which("tmux")
    if binary is None:
        if os.environ.get("CI"):
            raise AssertionError("tmux is missing: make prometheus installs it")
        pytest.skip("tmux is missing: `make prometheus` installs it")
    socket = str(tmp_path / "tmux.sock")

    def run(*args: str) -> str:
        done = subprocess.run(
            [binary, "-S", socket, *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout

    yield run
    subprocess.run(
        [binary, "-S", socket, "kill-server"], capture_output=True, timeout=10, check=False
    )


def test_status_watch_redraws_in_place_when_the_phase_changes(
    cluster, namespace, exporter, run_operator, tmux
):
    objs, _ = scale_guard(cluster, namespace, exporter, 0.0)
    run_operator(namespace)
    wait_status(objs, lambda s: s.get("phase") == "Watching", "Watching")
    env = plugin_env(cluster)
    command = " ".join(
        [
            # The pane's size, not the test process's COLUMNS/LINES, if it has them.
            "env -u COLUMNS -u LINES",
            f"PATH={env['PATH']} KUBECONFIG={env['KUBECONFIG']} TERM=xterm-256color",
            f"kubectl releaseguard status g -n {namespace} --watch",
        ]
    )
    session = f"watch-{uuid.uuid4().hex[:8]}"
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "60", command)

    def pane() -> str:
        return tmux("capture-pane", "-p", "-t", session)

    def phase_lines() -> list[str]:
        return [line for line in pane().splitlines() if line.startswith("Phase:")]

    wait_until(
        lambda: any("Watching" in line for line in phase_lines()),
        timeout=30,
        describe=lambda: f"the watch to draw phase Watching; pane:\n{pane()}",
    )
    exporter.set("rg_error_ratio", 0.5, {"guard": namespace})
    wait_until(
        lambda: any("Contained" in line for line in phase_lines()),
        timeout=60,
        describe=lambda: f"the watch to redraw with phase Contained; pane:\n{pane()}",
    )
    # Redrawn in place: one status on screen, not a second one printed below the first.
    assert len(phase_lines()) == 1, pane()
    assert "1-scale-0" in pane()
    assert "\x1b[" in tmux("capture-pane", "-e", "-p", "-t", session), "colour on a terminal"
    tmux("send-keys", "-t", session, "C-c")
    wait_until(lambda: _gone(tmux, session), timeout=10, describe="the watch to exit on Ctrl-C")


def _gone(tmux: Any, session: str) -> bool:
    try:
        tmux("has-session", "-t", session)
    except subprocess.CalledProcessError:
        return True
    return False
