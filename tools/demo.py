"""`make demo`: the main job on the local cluster, with a live timeline.

It starts (in the background, left running) the traffic simulator and the operator,
deploys the checkout canary from examples/, applies examples/checkout-guard.yaml,
injects a fault into the canary, and prints what happens each second: the error rate
Prometheus sees, the guard's verdict and phase, the step taken, recovery and the time to
contain. The guard also tells people: a local webhook receiver (in this process) prints
each signed notification as it arrives, and the incident's alert is shown as the local
Alertmanager holds it. `make demo-down` stops it all. `make demo GITOPS=1` adds an act in
which a stand-in for Argo CD self-heal undoes the containment every 3 s
(Demo.gitops_fight).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import devcluster
from devcluster import launch, processes

ROOT = Path(__file__).resolve().parents[1]
NS = "releaseguard-demo"
STATE = ROOT / ".devcluster" / "demo.json"
ERROR_RATE = (
    f'sum(rate(http_requests_total{{namespace="{NS}",app="checkout",code="500"}}[5s]))'
    f' / sum(rate(http_requests_total{{namespace="{NS}",app="checkout"}}[5s]))'
)


HMAC_KEY = "demo-signing-key"


def say(text: str) -> None:
    print(text, flush=True)


class _Receiver(BaseHTTPRequestHandler):
    """The demo's webhook receiver: prints each notification and checks its signature."""

    def do_POST(self) -> None:
        body = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 1 << 20))
        self.send_response(200)
        self.end_headers()
        good = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(self.headers.get("X-ReleaseGuard-Signature", ""), good)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        action = doc.get("action") or {}
        what = (
            f" {action.get('id')} {action.get('before')} -> {action.get('after')}" if action else ""
        )
        say(
            f"  [webhook] {doc.get('moment', '?')}{what}"
            f" (signature {'valid' if signed else 'INVALID'}, key {doc.get('idempotencyKey', '?')})"
        )

    def log_message(self, *args: object) -> None:
        pass


class Demo:
    def __init__(self, info: devcluster.ClusterInfo) -> None:
        self.info = info
        self.env = dict(
            os.environ,
            KUBECONFIG=str(info.kubeconfig),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT / "tools"),
        )

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(self.info.kubectl), *args],
            input=stdin,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode:
            sys.exit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def get(self, *args: str) -> Any:
        out = self.kubectl("get", "-n", NS, "-o", "json", *args, check=False)
        return json.loads(out) if out else {}

    def query(self, promql: str) -> float | None:
        return launch.query_value(self.info.prometheus_url, promql)

    def wait(self, what: str, predicate: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        sys.exit(f"demo: timed out waiting for {what}")

    def fresh_namespace(self) -> None:
        if self.kubectl("get", "namespace", NS, "--ignore-not-found", "-o", "name"):
            say(f"removing the previous demo namespace {NS} ...")
            # A guard keeps a Kopf finalizer while no operator runs: release it.
            for name in self.kubectl("get", "rg", "-n", NS, "-o", "name").split():
                self.kubectl(
                    "patch",
                    "-n",
                    NS,
                    name,
                    "--type=merge",
                    "-p",
                    '{"metadata":{"finalizers":null}}',
                    check=False,
                )
            self.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s")
        self.kubectl("create", "namespace", NS)
        self.wait(
            "the default ServiceAccount",
            lambda: self.kubectl(
                "get", "sa", "default", "-n", NS, "--ignore-not-found", "-o", "name"
            ),
            30,
        )

    def start_receiver(self) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/hook"

    def add_notifications(self, hook: str) -> None:
        """spec.notify: a signed JSON webhook (its URL and key in a Secret the guard may
        use) and the operator's Alertmanager."""
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "ops-hooks",
                "namespace": NS,
                "labels": {"releaseguard.io/usable-by-guards": "true"},
            },
            "stringData": {"url": hook, "hmacKey": HMAC_KEY},
        }
        self.kubectl("apply", "-f", "-", check=True, stdin=json.dumps(secret))
        sinks: list[dict[str, Any]] = [
            {"webhook": {"urlSecretRef": {"name": "ops-hooks", "key": "url"}, "format": "JSON"}}
        ]
        if self.info.alertmanager_url:
            sinks.append({"alertmanager": {}})
        patch = json.dumps({"spec": {"notify": sinks}})
        self.kubectl("patch", "rg", "checkout", "-n", NS, "--type=merge", "-p", patch)
        where = " and Alertmanager" if self.info.alertmanager_url else ""
        say(f"notifications: signed webhook to {hook}{where} (spec.notify)\n")

    def alerts(self) -> list[dict[str, Any]]:
        url = f"{self.info.alertmanager_url}/api/v2/alerts?filter=alertname=ReleaseGuardIncident"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return list(json.loads(answer.read(1 << 20)))

    def show_alerts(self, when: str, wait: float = 0) -> None:
        """The incident's alert as Alertmanager holds it (waiting up to `wait` seconds for
        one: the operator posts it off the evaluation path)."""
        if not self.info.alertmanager_url:
            return
        deadline = time.monotonic() + wait
        alerts = self.alerts()
        while not alerts and time.monotonic() < deadline:
            time.sleep(0.5)
            alerts = self.alerts()
        say(f">>> Alertmanager {when}: {len(alerts)} ReleaseGuardIncident alert(s)")
        for alert in alerts:
            labels = alert.get("labels") or {}
            shown = ", ".join(f"{k}={labels[k]}" for k in sorted(labels))
            say(f"    {shown} ({(alert.get('status') or {}).get('state', '?')})")

    def start_background(self, hook: str) -> tuple[int, int]:
        logs = self.info.log_dir
        sim_log, operator_log = logs / "demo-trafficsim.log", logs / "demo-operator.log"
        sim = launch.spawn_trafficsim(self.info, NS, "checkout", "checkout", 200, sim_log, self.env)
        extra = ["--allowed-url", "^http://127\\.0\\.0\\.1:", "--log-format", "text"]
        if self.info.alertmanager_url:
            extra += ["--alertmanager-url", self.info.alertmanager_url]
        operator = launch.spawn_operator(self.info, NS, operator_log, self.env, *extra)
        STATE.write_text(json.dumps({"pids": [sim.pid, operator.pid]}))
        port = launch.trafficsim_port(sim_log)
        launch.wait_operator_ready(operator_log)
        return port, operator.pid

    def row(self, t0: float) -> dict[str, Any]:
        rg = self.get("rg", "checkout")
        status = rg.get("status") or {}
        last = status.get("lastEvaluation") or {}
        route = self.get("httproute", "checkout")
        weights = (
            {r["name"]: r.get("weight", 1) for r in route["spec"]["rules"][0]["backendRefs"]}
            if route
            else {}
        )
        error = self.query(ERROR_RATE)
        shown = "-" if error is None else f"{error:6.2%}"
        say(
            f"  t={time.monotonic() - t0:5.1f}s  error-rate={shown}"
            f"  v2-weight={weights.get('checkout-v2', '?'):>3}"
            f"  verdict={last.get('verdict', '-'):<12}"
            f" breaches={last.get('consecutiveBreaches', 0)}"
            f"  phase={status.get('phase', '-'):<10}"
            f" last-action={status.get('lastAction') or '-'}"
        )
        return {"status": status, "weights": weights}

    def run(self) -> None:
        self.fresh_namespace()
        say(f"deploying the checkout canary (v1 90%, v2 10%) into namespace {NS}")
        self.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "checkout-canary.yaml"))
        for dep in ("checkout-v1", "checkout-v2"):
            self.kubectl("rollout", "status", "-n", NS, f"deployment/{dep}", "--timeout=120s")
        hook = self.start_receiver()
        port, _ = self.start_background(hook)
        say(f"traffic simulator on 127.0.0.1:{port} (200 req/s), operator running")
        self.wait("traffic in Prometheus", lambda: self.query(ERROR_RATE) is not None, 60)
        git_rules = self.get("httproute", "checkout")["spec"]["rules"]  # "Git"'s version
        self.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "checkout-guard.yaml"))
        say("guard applied: examples/checkout-guard.yaml (error-rate max 1%, p99 max 250 ms)")
        self.add_notifications(hook)

        t0 = time.monotonic()
        healthy = 0
        while healthy < 3:
            row = self.row(t0)
            healthy += (row["status"].get("lastEvaluation") or {}).get("verdict") == "Healthy"
            time.sleep(1)
        say("\n>>> injecting a fault: canary v2 now fails 50% of requests")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/profiles/v2", data=b'{"errorRatio": 0.5}', method="PUT"
        )
        urllib.request.urlopen(req, timeout=5).read()
        fault = time.monotonic()
        contained_at = None
        deadline = fault + 120
        while time.monotonic() < deadline:
            row = self.row(t0)
            if contained_at is None and row["weights"].get("checkout-v2") == 0:
                contained_at = time.monotonic()
                took = contained_at - fault
                say(f">>> contained: canary weight is 0, {took:.1f}s after the fault")
                self.show_alerts("while the incident is open", wait=10)
            if (row["status"].get("incident") or {}).get("recoveredAt"):
                break
            time.sleep(1)
        if os.environ.get("GITOPS") == "1":
            self.gitops_fight(t0, git_rules)
        status = self.get("rg", "checkout").get("status") or {}
        incident = status.get("incident") or {}
        say("\nsummary")
        if contained_at is not None:
            say(f"  time to contain (fault live -> patch visible): {contained_at - fault:.1f}s")
        say(
            f"  operator's timeToContainSeconds (first breaching evaluation -> step): "
            f"{incident.get('timeToContainSeconds')}"
        )
        for action in status.get("actions") or []:
            say(
                f"  action {action['id']}: {action['type']} {action['target']} "
                f"{action['before']} -> {action['after']} ({action['reason']})"
            )
        say(f"  recovered at {incident.get('recoveredAt', 'not yet')}")
        self.show_alerts("now (resolved on recovery or re-arm)")
        plugin_path = f"{Path(sys.executable).parent}:{Path(self.info.kubectl).parent}"
        say("\nthe cluster, simulator and operator stay up. Look around with the plugin:")
        say(f"  export KUBECONFIG={self.info.kubeconfig} PATH={plugin_path}:$PATH")
        say(f"  kubectl releaseguard list -n {NS}")
        say(f"  kubectl releaseguard status checkout -n {NS} --watch")
        prom = self.info.prometheus_url
        say(f"  kubectl releaseguard check checkout -n {NS} --prometheus-url {prom}")
        say(f"  kubectl releaseguard rearm checkout -n {NS}")
        say(f"  kubectl releaseguard contain checkout -n {NS}")
        last_id = ((status.get("actions") or [{}])[-1]).get("id", "<action id>")
        say(f"  kubectl releaseguard undo checkout {last_id} -n {NS}   # after rearm")
        say(f"  logs: {self.info.log_dir}/demo-operator.log")
        say("stop everything with: make demo-down")
        say("\nthe incident, as `kubectl releaseguard timeline checkout` tells it:\n")
        timeline = subprocess.run(
            [str(self.info.kubectl), "releaseguard", "timeline", "checkout", "-n", NS],
            env=dict(self.env, PATH=f"{plugin_path}:{os.environ.get('PATH', '')}"),
            text=True,
            capture_output=True,
            timeout=60,
            check=False,
        )
        say(timeline.stdout + timeline.stderr)

    def gitops_fight(self, t0: float, git_rules: list[Any]) -> None:
        """`make demo GITOPS=1`: a reconciler undoes the containment. It is a stand-in for
        Argo CD self-heal, not Argo CD: every 3 s it patches the HTTPRoute back to the
        version it had before the guard, with its own field manager. The guard re-applies
        a bounded number of times (spec.onRevert.reapply, default 3, backing off), then
        escalates to its next step or stops, naming who undid it."""
        say(
            "\n>>> GitOps fight: a stand-in for Argo CD self-heal puts the HTTPRoute back to "
            "v2 10% every 3 s (kubectl patch --field-manager=argocd-demo)"
        )
        patch = json.dumps({"spec": {"rules": git_rules}})
        deadline, next_sync = time.monotonic() + 120, 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_sync:
                self.kubectl(
                    "patch", "httproute", "checkout", "-n", NS, "--type=merge",
                    "--field-manager=argocd-demo", "-p", patch,
                )  # fmt: skip
                next_sync = time.monotonic() + 3
            status = self.row(t0)["status"]
            actions = status.get("actions") or []
            escalated = [a for a in actions if a["type"] not in ("CanaryWeight", "GitOpsPause")]
            if status.get("phase") == "Exhausted" or escalated:
                why = status.get("message") or f"escalated to {escalated[-1]['id']}"
                say(f">>> the guard stopped fighting: {why}")
                break
            time.sleep(1)
        status = self.get("rg", "checkout").get("status") or {}
        writes = [a["id"] for a in status.get("actions") or [] if a["type"] == "CanaryWeight"]
        reverts = (status.get("incident") or {}).get("reverts", 0)
        say(f">>> reverts found: {reverts}; the guard's writes of the HTTPRoute: {writes}")


def stop() -> None:
    if STATE.exists():
        pids = json.loads(STATE.read_text()).get("pids", [])
        left = processes.stop_groups(pids)
        STATE.unlink()
        say(f"demo: stopped simulator and operator{'; still alive: ' + str(left) if left else ''}")


def main() -> None:
    if sys.argv[1:] == ["down"]:
        stop()
        return
    stop()
    Demo(devcluster.ensure_up(ROOT)).run()


if __name__ == "__main__":
    main()
