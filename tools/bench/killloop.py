"""Benchmark: exactly-once under SIGKILL. The operator is killed at random moments while
a guard climbs a 3-step ladder, again and again; nothing may be applied twice, lost, or
go unannounced.

Setup (a namespace of its own): a target Deployment `app`, a ConfigMap `flags`, an
HTTPRoute `route` (v1 90 / v2 10) and a Deployment `canary`; one guard with the ladder
FeatureFlag (cost 10) -> CanaryWeight (20) -> Scale canary to 0 (30), intervalSeconds 1,
consecutiveBreaches 1, escalateAfterSeconds 2, and a metric an exporter keeps breaching.

Each round: start the operator, SIGKILL it (its whole process group) after a random
0.2-4 s (before it is ready, mid-evaluation, between a step's write and the status
write: wherever it lands), start it again, until the incident has all three steps
Applied in status. Then one operator runs until every recorded moment is announced, the
guard is re-armed, the objects put back by hand, and the next round's breach begins.

Counted, from outside the operator:
- duplicate actions: a watch on the three objects sees every write; a write carries the
  guard's marker entry with the action id and its write time, so two writes of one
  action show as two times for one id (plus any id recorded twice in status);
- lost actions: a step of the incident not Applied in status, or its object not in the
  contained state, at the end of the round;
- lost action Events: a recorded action without exactly one StepApplied Event.

Run: PYTHONPATH=tools .venv/bin/python tools/bench/killloop.py [--kills 30] [--seed N]
Prints numbers; exits 1 if any count is not zero.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

import devcluster
from devcluster import launch, processes
from devcluster.exporter import Exporter
from releaseguard.domain.identity import MARKER, parse_markers

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from objects import GATEWAY, GROUP, PLURAL, VERSION, Objects

from waiting import wait_until

REARM = "releaseguard.io/rearm"
GUARD = "ladder"
STEPS: list[dict[str, Any]] = [
    {"type": "FeatureFlag", "featureFlag": {"configMap": "flags", "key": "f", "value": "off"}},
    {"type": "CanaryWeight", "canaryWeight": {"httpRoute": "route", "canaryBackend": "v2"}},
    {"type": "Scale", "scale": {"deployment": "canary", "replicas": 0}},
]
ROUND_TIMEOUT = 300.0


def say(text: str = "") -> None:
    print(text, flush=True)


def expected_ids(number: int) -> list[str]:
    return [f"{number}-{s['type'].lower()}-{i}" for i, s in enumerate(STEPS)]


class Writes:
    """Every marker entry of the guard seen on the watched objects: (id -> write times)."""

    def __init__(self, api: client.ApiClient, ns: str) -> None:
        self.api, self.ns = api, ns
        self.guard_uid = ""
        self.times: dict[str, set[str]] = defaultdict(set)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        core, apps, custom = (
            client.CoreV1Api(api),
            client.AppsV1Api(api),
            client.CustomObjectsApi(api),
        )
        self.lists = [
            (core.list_namespaced_config_map, (ns,)),
            (apps.list_namespaced_deployment, (ns,)),
            (custom.list_namespaced_custom_object, (*GATEWAY[:2], ns, GATEWAY[2])),
        ]
        self.threads = [
            threading.Thread(target=self._follow, args=(fn, args), daemon=True)
            for fn, args in self.lists
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stopping.set()

    def _note(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            obj = self.api.sanitize_for_serialization(obj)
        text = ((obj.get("metadata") or {}).get("annotations") or {}).get(MARKER)
        entry = parse_markers(text).get(self.guard_uid)
        if entry is not None:
            with self.lock:
                self.times[entry.id].add(entry.time.isoformat())

    def _follow(self, fn: Any, args: tuple[Any, ...]) -> None:
        version = ""
        while not self.stopping.is_set():
            try:
                if not version:
                    listed = fn(*args, _request_timeout=(3, 30))
                    items = listed["items"] if isinstance(listed, dict) else listed.items
                    for item in items:
                        self._note(item)
                    meta = listed["metadata"] if isinstance(listed, dict) else listed.metadata
                    version = (
                        meta["resourceVersion"] if isinstance(meta, dict) else meta.resource_version
                    )
                for event in watch.Watch().stream(
                    fn, *args, resource_version=version, timeout_seconds=10
                ):
                    self._note(event["object"])
                    obj = event["object"]
                    meta = obj["metadata"] if isinstance(obj, dict) else obj.metadata
                    version = (
                        meta["resourceVersion"] if isinstance(meta, dict) else meta.resource_version
                    )
                    if self.stopping.is_set():
                        return
            except ApiException as exc:
                if exc.status == 410:  # compacted: list again (a list sees the latest write)
                    version = ""
                    continue
                time.sleep(0.5)
            except Exception:  # a dropped connection: watch again from the last version
                time.sleep(0.5)

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {i: len(t) - 1 for i, t in self.times.items() if len(t) > 1}


class Bench:
    def __init__(self, info: devcluster.ClusterInfo, kills: int, seed: int) -> None:
        self.info = info
        self.min_kills = kills
        self.rng = random.Random(seed)
        self.seed = seed
        self.api = config.new_client_from_config(config_file=str(info.kubeconfig))
        self.ns = f"bench-kill-{uuid.uuid4().hex[:6]}"
        self.objs = Objects(self.api, self.ns)
        self.env = dict(
            os.environ,
            KUBECONFIG=str(info.kubeconfig),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT / "tools"),
        )
        self.exporter = Exporter(name=f"kill-{self.ns}")
        self.pids: list[int] = []
        self.procs: dict[int, Any] = {}
        self.kills = 0
        self.adopted = 0
        self.spawned = 0
        self.writes = Writes(self.api, self.ns)

    # ------------------------------------------------------------ helpers

    def status(self) -> dict[str, Any]:
        return self.objs.status(GUARD)

    def spawn(self) -> int:
        self.spawned += 1
        log = self.info.log_dir / f"{self.ns}-operator-{self.spawned}.log"
        proc = launch.spawn_operator(self.info, self.ns, log, self.env)
        self.pids.append(proc.pid)
        self.procs[proc.pid] = proc
        return proc.pid

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        self.procs.pop(pid).wait(timeout=10)
        self.kills += 1

    def set_metric(self, value: float) -> None:
        self.exporter.set("rg_kill_error_ratio", value, {"guard": self.ns})

    def metric_is(self, value: float) -> bool:
        got = launch.query_value(
            self.info.prometheus_url, f'max(rg_kill_error_ratio{{guard="{self.ns}"}})'
        )
        return got == value

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        self.objs.create_namespace()
        self.objs.create_deployment("app", "registry.local/app:1")
        self.objs.create_deployment("canary", "registry.local/app:2")
        self.objs.create_config_map("flags", {"f": "on"})
        self.objs.create_http_route("route", {"v1": 90, "v2": 10})
        devcluster.write_target(
            self.info.targets_dir, self.exporter.name, self.exporter.port, {"bench": self.ns}
        )
        self.set_metric(0.5)
        wait_until(lambda: self.metric_is(0.5), timeout=60, describe="the metric in Prometheus")
        guard = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ReleaseGuard",
            "metadata": {"name": GUARD},
            "spec": {
                "target": {"deployment": "app"},
                "intervalSeconds": 1,
                "consecutiveBreaches": 1,
                "escalateAfterSeconds": 2,
                "metrics": [
                    {
                        "name": "error-rate",
                        "query": f'max(rg_kill_error_ratio{{guard="{self.ns}"}})',
                        "max": 0.1,
                    }
                ],
                "steps": STEPS,
            },
        }
        created = self.objs.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, guard
        )
        self.writes.guard_uid = created["metadata"]["uid"]
        self.writes.start()

    def put_back(self) -> None:
        """The objects as before containment, by hand (the markers stay on them)."""
        cm = self.objs.config_map("flags")
        cm["data"]["f"] = "on"
        self.objs.core.replace_namespaced_config_map("flags", self.ns, cm)
        route = self.objs.http_route("route")
        for ref in route["spec"]["rules"][0]["backendRefs"]:
            ref["weight"] = 10 if ref["name"] == "v2" else 90
        self.objs.custom.replace_namespaced_custom_object(
            *GATEWAY[:2], self.ns, GATEWAY[2], "route", route
        )
        self.objs.patch_deployment("canary", {"spec": {"replicas": 1}})

    # ------------------------------------------------------------ rounds

    def complete(self, number: int) -> bool:
        st = self.status()
        applied = {a["id"] for a in st.get("actions") or [] if a["result"] == "Applied"}
        return (st.get("incident") or {}).get("number") == number and set(
            expected_ids(number)
        ) <= applied

    def kill_until_contained(self, number: int, pid: int | None) -> int:
        """Kill at random points until incident `number` has every step Applied."""
        deadline = time.monotonic() + ROUND_TIMEOUT
        kills = 0
        while True:
            if pid is None:
                pid = self.spawn()
            time.sleep(self.rng.uniform(0.2, 4.0))
            self.kill(pid)
            pid = None
            kills += 1
            if self.complete(number):
                return kills
            if time.monotonic() > deadline:
                raise RuntimeError(f"incident {number} not contained within {ROUND_TIMEOUT:g}s")

    def settle(self, number: int) -> int:
        """One operator, left running until the incident's moments are all announced."""
        pid = self.spawn()
        wait_until(
            lambda: (
                sum(
                    1
                    for key in self.status().get("announced") or []
                    if "/action/" in key and key.rsplit("/", 1)[-1] in expected_ids(number)
                )
                == len(STEPS)
            ),
            timeout=120,
            describe=lambda: f"all actions announced: {self.status().get('announced')}",
        )
        return pid

    def rearm(self, pid: int, number: int) -> None:
        self.set_metric(0.0)
        wait_until(lambda: self.metric_is(0.0), timeout=60, describe="metric healthy")
        value = f"kill-{number}-{uuid.uuid4().hex[:6]}"
        self.objs.annotate_guard(GUARD, REARM, value)
        wait_until(
            lambda: (
                (st := self.status()).get("handledAnnotations", {}).get(REARM) == value
                and st.get("phase") == "Watching"
            ),
            timeout=60,
            describe="re-armed",
        )
        self.put_back()
        self.set_metric(0.5)

    def check(self, number: int) -> tuple[int, int, list[str]]:
        """(lost actions, lost action Events, problems) for incident `number`."""
        st = self.status()
        applied = [a["id"] for a in st.get("actions") or [] if a["result"] == "Applied"]
        problems = []
        lost = [i for i in expected_ids(number) if i not in applied]
        state = (
            self.objs.config_map("flags")["data"]["f"] == "off",
            {
                r["name"]: r["weight"]
                for r in self.objs.http_route("route")["spec"]["rules"][0]["backendRefs"]
            }.get("v2")
            == 0,
            self.objs.deployment("canary")["spec"]["replicas"] == 0,
        )
        for ok, action in zip(state, expected_ids(number), strict=True):
            if not ok and action not in lost:
                lost.append(action)
                problems.append(f"{action}: recorded but its object is not contained")
        events = [e for e in self.objs.events(GUARD) if e["reason"] == "StepApplied"]
        lost_events = 0
        for action in expected_ids(number):
            mine = [e for e in events if e["message"].startswith(f"{action} ")]
            if len(mine) != 1 or (mine[0].get("count") or 1) != 1:
                lost_events += 1 if not mine else 0
                problems.append(f"{action}: {len(mine)} StepApplied Event(s)")
        return len(lost), lost_events, problems

    def run(self, min_rounds: int) -> int:
        load = os.getloadavg()
        say(
            f"SIGKILL loop: >= {self.min_kills} kills over >= {min_rounds} rounds, seed {self.seed}"
        )
        say("ladder FeatureFlag -> CanaryWeight -> Scale, intervalSeconds 1, escalate 2 s")
        say(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
        self.setup()
        say()
        say(f"{'round':>5} {'incident':>8} {'kills':>5} {'duration':>8}  lost  lost-events")
        pid: int | None = None
        number = 0
        total_lost = total_lost_events = 0
        problems: list[str] = []
        rounds = 0
        while rounds < min_rounds or self.kills < self.min_kills:
            rounds += 1
            number += 1
            started = time.monotonic()
            kills = self.kill_until_contained(number, pid)
            pid = self.settle(number)
            lost, lost_events, found = self.check(number)
            self.adopted += sum(
                1
                for a in self.status().get("actions") or []
                if a["id"] in expected_ids(number) and "marker" in (a.get("message") or "")
            )
            total_lost += lost
            total_lost_events += lost_events
            problems += found
            say(
                f"{rounds:5d} {number:8d} {kills:5d} {time.monotonic() - started:7.1f}s "
                f"{lost:5d} {lost_events:12d}"
            )
            if rounds < min_rounds or self.kills < self.min_kills:
                self.rearm(pid, number)
        processes.stop_groups([pid] if pid else [])
        time.sleep(1)  # the watches deliver the last writes
        self.writes.stop()
        st = self.status()
        ids = [a["id"] for a in st.get("actions") or []]
        in_status = len(ids) - len(set(ids))
        written_twice = self.writes.duplicates()
        duplicates = in_status + sum(written_twice.values())
        confirmed = [e for e in self.objs.events(GUARD) if e["reason"] == "BreachConfirmed"]
        adopted = self.adopted
        every = {i for n in range(1, number + 1) for i in expected_ids(n)}
        with self.writes.lock:
            watched = len(every & set(self.writes.times))
        load = os.getloadavg()
        say()
        say(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        say(
            f"SIGKILL loop: {self.kills} kills over {rounds} incidents ({3 * rounds} actions): "
            f"{duplicates} duplicate actions, {total_lost} lost actions, "
            f"{total_lost_events} lost action Events; "
            f"BreachConfirmed Events {len(confirmed)} for {rounds} incidents"
        )
        say(
            f"  {adopted} of {3 * rounds} actions were adopted from their marker (a kill fell "
            f"between the step's write and the status write); the watch saw the writes of "
            f"{watched} of {len(every)} actions"
        )
        for problem in problems:
            say(f"  {problem}")
        for action, extra in written_twice.items():
            say(f"  {action} written {extra + 1} times")
        bad = duplicates or total_lost or total_lost_events or problems or watched != len(every)
        return 1 if bad else 0

    def cleanup(self) -> None:
        self.writes.stop()
        left = processes.stop_groups(self.pids)
        if left:
            say(f"still alive after SIGKILL: {left}")
        (self.info.targets_dir / f"{self.exporter.name}.json").unlink(missing_ok=True)
        self.exporter.close()
        try:  # guards hold no finalizer: the namespace goes with them
            client.CoreV1Api(self.api).delete_namespace(self.ns)
        except ApiException as exc:
            if exc.status != 404:
                say(f"cleanup of namespace {self.ns} failed: {exc.status} {exc.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="at least this many (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="at least this many (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    info = devcluster.ensure_up(ROOT)
    bench = Bench(info, args.kills, seed)
    try:
        code = bench.run(args.rounds)
    finally:
        bench.cleanup()
    sys.exit(code)


if __name__ == "__main__":
    main()
