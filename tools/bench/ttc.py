"""Benchmark: time to contain a bad canary, end to end, on the local cluster.

The canary setup of examples/ (checkout v1 90% / v2 10% behind an HTTPRoute, the
traffic simulator at 200 req/s following the route, examples/checkout-guard.yaml with a
CanaryWeight step) in a namespace of its own, with its own simulator and operator
processes. Flags change the guard (--interval, --breaches, --confirm-interval, --window:
the rate() window of every query) and the scrape interval (--scrape: other than 1 s, a
private Prometheus scrapes the simulator at that interval, and the guard queries it).
Each trial: reset (route back to 90/10 by hand, fault cleared, error rate back
to 0 in Prometheus, guard re-armed and Watching with a Healthy evaluation), inject the
fault (v2 fails 50% of requests) at a chosen phase of the guard's evaluation cycle
(trials sweep the phase evenly over intervalSeconds, as faults arriving at random moments
would), watch the HTTPRoute (a Kubernetes watch) until the canary weight is 0.

    TTC = t_visible - t_fault, and from the guard's status (same machine clock, UTC):
    first breach = incident.detectedAt - t_fault   (fault live -> first breaching evaluation)
    confirmation = incident.confirmedAt - incident.detectedAt
    detection    = incident.confirmedAt - t_fault  (first breach + confirmation)
    decision     = action.time - incident.confirmedAt
    patch        = t_visible - action.time

Run: PYTHONPATH=tools .venv/bin/python tools/bench/ttc.py [--trials 20] [--interval 10]
     [--breaches 2] [--confirm-interval 2] [--window 5s] [--scrape 1]
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

import devcluster
from devcluster import launch, processes

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from objects import GATEWAY, GROUP, PLURAL, VERSION, Objects, deployment_available

from waiting import wait_until

REARM = "releaseguard.io/rearm"
ROUTE, CANARY, STABLE = "checkout", "checkout-v2", "checkout-v1"
FAULT = {"errorRatio": 0.5}
TRIAL_TIMEOUT = 90.0


def say(text: str = "") -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class Settings:
    """What one run measures: the guard's cadence, its queries' window, the scrape."""

    interval: int = 2
    breaches: int = 2
    confirm: int | None = None  # spec.confirmIntervalSeconds; None: not set
    window: str = "5s"  # the rate() window of every query of the guard
    scrape: float = 1.0  # Prometheus scrape interval; 1: the cluster's own Prometheus
    # spec.notify with a webhook whose port nobody listens on: delivery must not slow TTC.
    dead_webhook: bool = False

    def describe(self) -> str:
        confirm = "unset" if self.confirm is None else f"{self.confirm}"
        return (
            f"intervalSeconds {self.interval}, consecutiveBreaches {self.breaches}, "
            f"confirmIntervalSeconds {confirm}, rate window [{self.window}], "
            f"scrape {self.scrape:g}s" + (", dead webhook" if self.dead_webhook else "")
        )


def error_rate_query(ns: str, window: str) -> str:
    return (
        f'sum(rate(http_requests_total{{namespace="{ns}",app="checkout",code="500"}}[{window}]))'
        f' / sum(rate(http_requests_total{{namespace="{ns}",app="checkout"}}[{window}]))'
    )


def guard_for(text: str, ns: str, settings: Settings) -> dict[str, Any]:
    """examples/checkout-guard.yaml for namespace `ns`, with `settings` applied."""
    guard = yaml.safe_load(
        text.replace("releaseguard-demo", ns).replace("[5s]", f"[{settings.window}]")
    )
    spec = guard["spec"]
    spec["intervalSeconds"] = settings.interval
    spec["consecutiveBreaches"] = settings.breaches
    if settings.confirm is not None:
        spec["confirmIntervalSeconds"] = settings.confirm
    return guard


def ts(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def pct(data: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(data)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


class PrivatePrometheus:
    """Debian's Prometheus scraping one target at a chosen interval (the cluster's scrapes
    every 1 s for everyone, so it cannot be slowed for one benchmark)."""

    def __init__(self, workdir: Path, target_port: int, ns: str, scrape: float) -> None:
        self.workdir = workdir
        self.port = processes.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config_file = workdir / "prometheus.yml"
        config_file.write_text(
            json.dumps(
                {
                    "global": {
                        "scrape_interval": f"{scrape:g}s",
                        "scrape_timeout": f"{min(scrape, 1.0):g}s",
                    },
                    "scrape_configs": [
                        {
                            "job_name": "trafficsim",
                            "static_configs": [
                                {
                                    "targets": [f"127.0.0.1:{target_port}"],
                                    "labels": {"namespace": ns},
                                }
                            ],
                        }
                    ],
                }
            )
        )
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.proc = processes.spawn(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            workdir / "prometheus.log",
        )
        wait_until(
            lambda: launch.query_value(self.url, "vector(1)") == 1.0,
            timeout=60,
            describe=f"private Prometheus on {self.url} (log {workdir / 'prometheus.log'})",
        )


class Bench:
    def __init__(
        self,
        info: devcluster.ClusterInfo,
        trials: int,
        rate: float,
        settings: Settings,
        new_guard_each_trial: bool = False,
    ) -> None:
        self.info = info
        self.trials = trials
        self.rate = rate
        self.settings = settings
        self.new_guard_each_trial = new_guard_each_trial
        self.guard_names = ["checkout"]
        self.prometheus_url = info.prometheus_url
        self.api = config.new_client_from_config(config_file=str(info.kubeconfig))
        self.ns = f"bench-ttc-{uuid.uuid4().hex[:6]}"
        self.objs = Objects(self.api, self.ns)
        self.env = dict(
            os.environ,
            KUBECONFIG=str(info.kubeconfig),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT / "tools"),
        )
        self.pids: list[int] = []
        text = (ROOT / "examples" / "checkout-guard.yaml").read_text()
        self.guard = guard_for(text, self.ns, settings)
        self.interval = float(settings.interval)
        self.error_rate = error_rate_query(self.ns, settings.window)
        self.sim_port = 0
        self.operator_log = info.log_dir / f"{self.ns}-operator.log"
        self.sim_log = info.log_dir / f"{self.ns}-trafficsim.log"

    # ------------------------------------------------------------ helpers

    def kubectl(self, *args: str) -> str:
        return subprocess.run(
            [str(self.info.kubectl), *args],
            env=self.env,
            text=True,
            capture_output=True,
            timeout=120,
            check=True,
        ).stdout

    def query(self, promql: str) -> float | None:
        return launch.query_value(self.prometheus_url, promql)

    def put_profile(self, body: dict[str, float]) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.sim_port}/profiles/v2",
            data=json.dumps(body).encode(),
            method="PUT",
        )
        urllib.request.urlopen(req, timeout=5).read()

    def weights(self, route: dict[str, Any]) -> dict[str, int]:
        return {r["name"]: r.get("weight", 1) for r in route["spec"]["rules"][0]["backendRefs"]}

    @property
    def guard_name(self) -> str:
        return self.guard_names[-1]

    def status(self) -> dict[str, Any]:
        return self.objs.status(self.guard_name)

    def replace_guard(self, trial: int) -> None:
        """A new guard for this trial, the previous one deleted. A guard's evaluations keep
        one offset to the scrapes (its daemon starts at a random point of its interval),
        and that offset moves the data delay by up to a scrape interval: one guard for
        all trials measures one offset, a guard per trial samples them."""
        self.objs.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, self.guard_name
        )
        self.guard_names.append(f"checkout-{trial}")
        body = {**self.guard, "metadata": {**self.guard["metadata"], "name": self.guard_name}}
        self.objs.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        self.objs.create_namespace()
        self.kubectl("apply", "-n", self.ns, "-f", str(ROOT / "examples" / "checkout-canary.yaml"))
        for dep in (STABLE, CANARY):
            wait_until(
                lambda d=dep: deployment_available(self.objs.deployment(d)),
                # The cluster is shared: a controller-manager busy with another run's
                # thousands of Deployments can take minutes to get to ours.
                timeout=600,
                describe=f"Deployment {dep} available",
            )
        sim = launch.spawn_trafficsim(
            self.info, self.ns, "checkout", ROUTE, self.rate, self.sim_log, self.env
        )
        self.pids.append(sim.pid)
        self.sim_port = launch.trafficsim_port(self.sim_log)
        if self.settings.scrape != 1.0:
            private = PrivatePrometheus(
                self.info.log_dir / f"{self.ns}-prometheus",
                self.sim_port,
                self.ns,
                self.settings.scrape,
            )
            self.pids.append(private.proc.pid)
            self.prometheus_url = private.url
            self.guard["spec"]["prometheus"] = {"url": private.url}
        # Every evaluation written: trials read the tick phase and the re-armed Healthy
        # evaluation from status. Detection does not depend on it: a breach is a change,
        # written at once under any heartbeat.
        # The private Prometheus is plain http on loopback: outside the default allow-list.
        operator = launch.spawn_operator(
            self.info,
            self.ns,
            self.operator_log,
            self.env,
            *("--status-heartbeat", "0", "--allowed-url", r"^http://127\.0\.0\.1:[0-9]+(/|$)"),
        )
        self.pids.append(operator.pid)
        launch.wait_operator_ready(self.operator_log)
        wait_until(
            lambda: self.query(self.error_rate) is not None,
            timeout=60,
            describe="the simulator's traffic in Prometheus",
        )
        if self.settings.dead_webhook:
            self.notify_dead_webhook()
        self.objs.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, self.guard
        )

    def notify_dead_webhook(self) -> None:
        """spec.notify to a loopback port nobody listens on (connections refused, retried)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = base64.b64encode(f"http://127.0.0.1:{port}/hook".encode()).decode()
        client.CoreV1Api(self.api).create_namespaced_secret(
            self.ns,
            {
                "metadata": {
                    "name": "dead-hook",
                    "labels": {"releaseguard.io/usable-by-guards": "true"},
                },
                "data": {"url": url},
            },
        )
        self.guard["spec"]["notify"] = [
            {"webhook": {"urlSecretRef": {"name": "dead-hook", "key": "url"}}}
        ]

    # ------------------------------------------------------------ one trial

    def reset(self, trial: int) -> None:
        self.put_profile({"errorRatio": 0.0})
        route = self.objs.http_route(ROUTE)
        if self.weights(route).get(CANARY) != 10:
            for ref in route["spec"]["rules"][0]["backendRefs"]:
                ref["weight"] = 10 if ref["name"] == CANARY else 90
            self.objs.custom.replace_namespaced_custom_object(
                *GATEWAY[:2], self.ns, GATEWAY[2], ROUTE, route
            )
        # Errors must have left the rate window before re-arming, or the guard would
        # (rightly) breach again on the previous trial's fault.
        wait_until(
            lambda: self.query(self.error_rate) == 0.0,
            timeout=120,
            describe="error rate back to 0",
        )
        if self.new_guard_each_trial and trial > 1:
            self.replace_guard(trial)
        value = f"ttc-{trial}-{uuid.uuid4().hex[:6]}"
        self.objs.annotate_guard(self.guard_name, REARM, value)
        armed_at = time.time()

        def ready() -> bool:
            st = self.status()
            last = st.get("lastEvaluation") or {}
            return (
                (st.get("handledAnnotations") or {}).get(REARM) == value
                and st.get("phase") == "Watching"
                and last.get("verdict") == "Healthy"
                and (ts(last.get("time")) or 0) > armed_at
                and self.weights(self.objs.http_route(ROUTE)).get(CANARY) == 10
                and self.query(self.error_rate) == 0.0
            )

        wait_until(
            ready,
            timeout=60 + 2 * self.interval,
            interval=0.2,
            describe="guard re-armed, Watching, Healthy",
        )

    def wait_visible(self, deadline: float) -> float | None:
        """Watch the HTTPRoute; the wall-clock time the canary weight is first seen at 0."""
        custom = self.objs.custom
        route = self.objs.http_route(ROUTE)
        if self.weights(route).get(CANARY) == 0:
            return time.time()
        rv = route["metadata"]["resourceVersion"]
        w = watch.Watch()
        while time.time() < deadline:
            try:
                for event in w.stream(
                    custom.list_namespaced_custom_object,
                    *GATEWAY[:2],
                    self.ns,
                    GATEWAY[2],
                    field_selector=f"metadata.name={ROUTE}",
                    resource_version=rv,
                    timeout_seconds=max(1, int(deadline - time.time())),
                    _request_timeout=(3, deadline - time.time() + 5),
                ):
                    seen = time.time()
                    obj = event["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED") and (
                        self.weights(obj).get(CANARY) == 0
                    ):
                        w.stop()
                        return seen
            except ApiException as exc:
                if exc.status != 410:
                    raise
                rv = self.objs.http_route(ROUTE)["metadata"]["resourceVersion"]
        return None

    def inject_at_phase(self, phase: float) -> float:
        """Inject the fault `phase` seconds after a tick of the guard; the injection time.

        Without this the fault would always land just after the evaluation that `reset`
        waited for, so every trial would see the same evaluation alignment. Trials sweep
        the phase evenly over the interval instead, which is what a fault arriving at a
        random moment sees. This schedules the injection; it is not a wait for a state.
        """
        last = ts((self.status().get("lastEvaluation") or {}).get("time")) or time.time()
        at = last + phase
        while at < time.time() + 0.05:
            at += self.interval
        time.sleep(at - time.time())
        self.put_profile(FAULT)
        return time.time()  # the simulator serves the faulty profile from its next tick

    def trial(self, trial: int) -> dict[str, Any]:
        self.reset(trial)
        before = self.status()
        number_before = (before.get("incident") or {}).get("number", 0)
        phase = self.interval * ((trial - 1) % self.trials) / self.trials
        t_fault = self.inject_at_phase(phase)
        t_visible = self.wait_visible(t_fault + TRIAL_TIMEOUT)
        if t_visible is None:
            return {"trial": trial, "error": f"not contained within {TRIAL_TIMEOUT:g}s"}

        def recorded() -> dict[str, Any] | None:
            st = self.status()
            inc = st.get("incident") or {}
            acts = st.get("actions") or []
            current = inc.get("number", 0) > number_before
            if current and acts and acts[-1]["id"].startswith(f"{inc['number']}-"):
                return st
            return None

        st = wait_until(recorded, timeout=30, describe="the action in the guard's status")
        inc, action = st["incident"], st["actions"][-1]
        detected, confirmed = ts(inc["detectedAt"]), ts(inc["confirmedAt"])
        acted = ts(action["time"])
        assert detected and confirmed and acted
        return {
            "trial": trial,
            "phase": phase,
            "incident": inc["number"],
            "action": f"{action['id']} {action['result']}",
            "ttc": t_visible - t_fault,
            "first_breach": detected - t_fault,
            "confirmation": confirmed - detected,
            "detection": confirmed - t_fault,
            "decision": acted - confirmed,
            "patch": t_visible - acted,
            "operator_ttc": inc.get("timeToContainSeconds"),
        }

    # ------------------------------------------------------------ run

    def run(self) -> list[dict[str, Any]]:
        load = os.getloadavg()
        say(f"time to contain: {self.trials} fault injections, namespace {self.ns}")
        say(f"settings: {self.settings.describe()}; error-rate max 1%")
        if self.new_guard_each_trial:
            say("          a new guard per trial: each its own evaluation offset to the scrapes")
        say(
            f"          simulator {self.rate:g} req/s following HTTPRoute {ROUTE} "
            f"(v1 90 / v2 10, 0.25s ticks); fault = v2 errorRatio 0.5 (=> ~5% overall)"
        )
        say("          step: CanaryWeight checkout-v2 -> 0 (examples/checkout-guard.yaml)")
        say(
            "          phase = when the fault went live, in seconds after a guard evaluation "
            "(swept evenly over the interval)"
        )
        say(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
        self.setup()
        rows = []
        say()
        say(
            f"{'trial':>5} {'phase':>5} {'incident':>8}  {'TTC':>6} {'1st breach':>10} "
            f"{'confirm':>7} {'detection':>9} "
            f"{'decision':>8} {'patch':>6} {'op ttc':>6}  action"
        )
        for i in range(1, self.trials + 1):
            row = self.trial(i)
            rows.append(row)
            if "error" in row:
                say(f"{i:5d}  {row['error']}")
                continue
            say(
                f"{i:5d} {row['phase']:4.1f}s {row['incident']:8d}  {row['ttc']:5.2f}s "
                f"{row['first_breach']:9.2f}s {row['confirmation']:6.2f}s "
                f"{row['detection']:8.2f}s {row['decision']:7.3f}s {row['patch']:5.3f}s "
                f"{row['operator_ttc']:5.2f}s  {row['action']}"
            )
        load = os.getloadavg()
        say(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        stale = [
            e
            for name in self.guard_names
            for e in self.objs.events(name)
            if e.get("reason") == "StaleConfirmation"
        ]
        say(f"StaleConfirmation warnings posted: {len(stale)}")
        for event in stale:
            when = event.get("lastTimestamp") or event.get("eventTime")
            say(f"  {when}: {event.get('message')}")
        return rows

    def cleanup(self) -> None:
        left = processes.stop_groups(self.pids)
        if left:
            say(f"still alive after SIGKILL: {left}")
        try:  # guards hold no finalizer: the namespace goes with them
            client.CoreV1Api(self.api).delete_namespace(self.ns)
        except ApiException as exc:
            if exc.status != 404:
                say(f"cleanup of namespace {self.ns} failed: {exc.status} {exc.reason}")


def summarize(rows: list[dict[str, Any]], settings: Settings) -> None:
    ok = [r for r in rows if "error" not in r]
    interval = float(settings.interval)
    confirm = float(settings.confirm or settings.interval)
    say()
    say(f"summary over {len(ok)} contained trials ({len(rows) - len(ok)} not contained):")
    if not ok:
        return
    for key, label in (
        ("ttc", "TTC (fault live -> weight 0 visible)"),
        ("first_breach", "fault -> first breaching evaluation"),
        ("confirmation", "first breach -> breach confirmed"),
        ("detection", "detection (fault -> breach confirmed)"),
        ("decision", "decision (confirmed -> step written)"),
        ("patch", "patch (step written -> visible)"),
    ):
        data = [r[key] for r in ok]
        say(
            f"  {label:40s} median {statistics.median(data):6.3f}s  p95 {pct(data, 0.95):6.3f}s"
            f"  min {min(data):6.3f}s  max {max(data):6.3f}s"
        )
    ttc = [r["ttc"] for r in ok]
    med, p95 = statistics.median(ttc), pct(ttc, 0.95)
    say()
    say(
        f"target: TTC median <= 10s and p95 <= 15s -> median {med:.2f}s "
        f"({'met' if med <= 10 else 'MISSED'}), p95 {p95:.2f}s ({'met' if p95 <= 15 else 'MISSED'})"
    )
    detection = statistics.median([r["detection"] for r in ok])
    first = [r["first_breach"] for r in ok]
    confirmation = statistics.median([r["confirmation"] for r in ok])
    # The data delay D (scrape + the window's ratio crossing 1%): every evaluation at
    # least D after the fault breaches, every earlier one does not. So D <= the shortest
    # fault -> first breach, and D > (first breach - interval) whenever that earlier
    # evaluation came after the fault.
    # With a scrape much shorter than the interval D is nearly constant within a run;
    # with a long one it depends on where the fault falls between two scrapes, and the
    # bounds can cross.
    upper = min(first)
    lower = max([f - interval for f in first if f - interval >= 0] or [0.0])
    bounds = (
        f"here {lower:.2f}s < D <= {upper:.2f}s"
        if lower <= upper
        else f"here D varies from trial to trial ({upper:.2f}s to over {lower:.2f}s) with where "
        "the fault falls between two scrapes"
    )
    extra = settings.breaches - 1
    say(
        f"what limits it: detection is {detection / med:.0%} of the median TTC.\n"
        f"  - data delay D: an evaluation breaches only once the fault is D old, {bounds}: "
        f"the error ratio over the [{settings.window}] window "
        "crosses 1% once 1/5 of the window holds faulty traffic (5% steady state), and that "
        f"shows after the next {settings.scrape:g}s scrape;\n"
        f"  - evaluation alignment: the first evaluation after that comes 0-{interval:g}s later "
        f"(fault -> first breaching evaluation: median {statistics.median(first):.2f}s, "
        f"{min(first):.2f}-{max(first):.2f}s over the swept phases);\n"
        f"  - confirmation: {extra} more breaching evaluation(s), {confirm:g}s apart "
        f"(first breach -> confirmed: median {confirmation:.2f}s);\n"
        "  - decision (queries, target and step reads, the PUT): median "
        f"{statistics.median([r['decision'] for r in ok]) * 1000:.0f} ms; patch visible to a "
        f"watch: median {statistics.median([r['patch'] for r in ok]) * 1000:.0f} ms.\n"
        f"  So TTC ~= D + U(0, {interval:g}s) + {extra} x {confirm:g}s + ~0.05s."
    )
    say()
    say(
        f"TTC [{settings.describe()}]: median {med:.2f}s, p95 {p95:.2f}s "
        f"over {len(ok)} trials; first breach median {statistics.median(first):.2f}s, "
        f"confirmation median {confirmation:.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="fault injections (default 20)")
    parser.add_argument("--rate", type=float, default=200.0, help="simulator req/s (default 200)")
    parser.add_argument("--interval", type=int, default=2, help="intervalSeconds (default 2)")
    parser.add_argument("--breaches", type=int, default=2, help="consecutiveBreaches (default 2)")
    parser.add_argument(
        "--confirm-interval",
        type=int,
        default=None,
        help="confirmIntervalSeconds (default: not set, i.e. intervalSeconds)",
    )
    parser.add_argument(
        "--window", default="5s", help="rate() window of the guard's queries (default 5s)"
    )
    parser.add_argument(
        "--scrape",
        type=float,
        default=1.0,
        help="scrape interval in seconds (default 1: the cluster's Prometheus; "
        "else a private Prometheus)",
    )
    parser.add_argument(
        "--new-guard-each-trial",
        action="store_true",
        help="a fresh guard per trial, so that trials sample the guard's evaluation offset "
        "to the scrapes instead of keeping one",
    )
    parser.add_argument(
        "--dead-webhook",
        choices=("off", "on", "both"),
        default="off",
        help="give the guard a spec.notify webhook that refuses connections: on, or both "
        "(without, then with, in one run) to show delivery does not slow containment",
    )
    args = parser.parse_args()
    info = devcluster.ensure_up(ROOT)
    dead = {"off": [False], "on": [True], "both": [False, True]}[args.dead_webhook]
    results = []
    for dead_webhook in dead:
        settings = Settings(
            interval=args.interval,
            breaches=args.breaches,
            confirm=args.confirm_interval,
            window=args.window,
            scrape=args.scrape,
            dead_webhook=dead_webhook,
        )
        bench = Bench(info, args.trials, args.rate, settings, args.new_guard_each_trial)
        try:
            rows = bench.run()
        finally:
            bench.cleanup()
        results.append((rows, settings))
    for rows, settings in results:
        summarize(rows, settings)


if __name__ == "__main__":
    main()
