"""Benchmark: what the operator costs with 1, 100 and 1000 guards on the local cluster.

For each N: a fresh namespace with one Deployment (kwok makes it Ready) and N guards at
intervalSeconds 10, each with one cheap metric the local Prometheus always answers with
one number (`vector(1)`, max 1e9, so Healthy) and no steps. One operator process for
that namespace. Once every guard has been evaluated and 2N evaluations have run
(warm-up), a fixed window (default 60 s) measures:

- operator CPU: utime+stime delta of the process (all its threads) / wall time => cores;
- operator memory: VmRSS at the end of the window, VmHWM (peak, start-up included);
- from the operator's own /metrics (read at both ends of the window): evaluations/s
  (compared with N / intervalSeconds), status writes/s (on change, else once per
  --status-heartbeat), and lateness: how long after its schedule each evaluation
  started, waiting for a free worker thread included (a histogram, so quantiles are
  reported as the bound of the bucket that holds them);
- kube-apiserver and etcd CPU over the same window (from /proc), and how busy the whole
  machine was (other people's tests included).

With --profile-n (default: the largest N), py-spy (pip install py-spy into the venv)
samples the operator (--gil: the thread holding the GIL, i.e. Python CPU) for a further
window after the measurement, and the top costs are printed.

Run: PYTHONPATH=tools .venv/bin/python tools/bench/scale.py [--guards 1 100 1000]
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

import devcluster
from devcluster import launch, processes

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from objects import GROUP, PLURAL, VERSION, Objects, deployment_available

from waiting import wait_until

INTERVAL = 10
WORKERS = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")
EVALUATIONS = "releaseguard_evaluations_total"
WRITES = "releaseguard_status_writes_total"
LATENESS = "releaseguard_evaluation_lateness_seconds"
TARGETS = {"cores": 0.3, "rss_mib": 250 * 1e6 / 2**20, "lateness_p99": 2.0}


def say(text: str = "") -> None:
    print(text, flush=True)


def cpu_seconds(pid: int) -> float | None:
    stat = processes.proc_stat(pid)
    return stat.cpu_ticks / CLK_TCK if stat else None


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class Result:
    guards: int
    start_seconds: float = 0.0
    window: float = 0.0
    cores: float = 0.0
    rss_mib: float = 0.0
    hwm_mib: float = 0.0
    evaluations: float = 0.0
    status_writes: float = 0.0
    # lateness histogram over the window: (upper bound in seconds, cumulative count)
    lateness: list[tuple[float, float]] = field(default_factory=list)
    apiserver_cores: float = 0.0
    etcd_cores: float = 0.0
    machine_cores: float = 0.0
    bench_cores: float = 0.0
    profile: list[str] = field(default_factory=list)

    @property
    def eval_rate(self) -> float:
        return self.evaluations / self.window if self.window else 0.0

    @property
    def write_rate(self) -> float:
        return self.status_writes / self.window if self.window else 0.0

    def late(self, q: float) -> float:
        """The upper bound of the histogram bucket holding the q-quantile of lateness."""
        total = self.lateness[-1][1] if self.lateness else 0.0
        if not total:
            return float("nan")
        return next(le for le, count in self.lateness if count >= q * total)


class Bench:
    def __init__(self, info: devcluster.ClusterInfo, window: float, profile_seconds: float) -> None:
        self.info = info
        self.window = window
        self.profile_seconds = profile_seconds
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(info.kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = WORKERS * 2
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.env = dict(
            os.environ,
            KUBECONFIG=str(info.kubeconfig),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT / "tools"),
        )

    # ------------------------------------------------------------ helpers

    def list_guards(self, ns: str) -> dict[str, Any]:
        response = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, _preload_content=False, _request_timeout=(3, 60)
        )
        return json.loads(response.data)

    def parallel(self, fn: Any, items: list[Any]) -> None:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for future in [pool.submit(fn, item) for item in items]:
                future.result()

    def create_guards(self, objs: Objects, n: int) -> None:
        """Deployment `app` (Available) and `n` healthy guards of it: one cheap query the
        local Prometheus always answers with one number, no steps."""
        objs.create_deployment("app", "registry.local/app:1")
        wait_until(
            lambda: deployment_available(objs.deployment("app")),
            timeout=120,
            describe="Deployment app available",
        )
        spec = {
            "target": {"deployment": "app"},
            "intervalSeconds": INTERVAL,
            "metrics": [{"name": "up", "query": "vector(1)", "max": 1e9}],
        }
        self.parallel(lambda i: objs.create_guard(f"g-{i:04d}", spec), list(range(n)))

    def create_namespace(self, n: int) -> str:
        ns = f"bench-scale-{n}-{uuid.uuid4().hex[:6]}"
        Objects(self.api, ns).create_namespace()
        return ns

    def cleanup(self, ns: str, pid: int | None) -> None:
        if pid is not None:
            processes.stop_groups([pid])
        try:
            names = [g["metadata"]["name"] for g in self.list_guards(ns)["items"]]

            def release(name: str) -> None:
                try:
                    self.custom.patch_namespaced_custom_object(
                        GROUP, VERSION, ns, PLURAL, name, {"metadata": {"finalizers": None}}
                    )
                except ApiException as exc:
                    if exc.status != 404:
                        raise

            self.parallel(release, names)
            self.core.delete_namespace(ns)
        except ApiException as exc:
            if exc.status != 404:
                say(f"  cleanup of namespace {ns} failed: {exc.status} {exc.reason}")

    # ------------------------------------------------------------ one N

    def run_one(self, n: int, profile: bool) -> Result:
        result = Result(n, window=self.window)
        ns = self.create_namespace(n)
        pid: int | None = None
        try:
            objs = Objects(self.api, ns)
            t0 = time.monotonic()
            self.create_guards(objs, n)
            say(f"  N={n}: {n} guards created in {time.monotonic() - t0:.1f}s ({WORKERS} workers)")

            log_path = self.info.log_dir / f"{ns}-operator.log"
            operator = launch.spawn_operator(
                self.info, ns, log_path, self.env, *launch.LOCAL_METRICS
            )
            pid = operator.pid
            started = time.monotonic()
            launch.wait_operator_ready(log_path)
            metrics_url = launch.operator_metrics_url(log_path)

            def all_evaluated() -> bool:
                items = self.list_guards(ns)["items"]
                return all((g.get("status") or {}).get("lastEvaluation") for g in items)

            def evaluations() -> float:
                return launch.read_metrics(metrics_url).get(EVALUATIONS, 0.0)

            deadline = 120 + n * 0.5
            wait_until(all_evaluated, timeout=deadline, interval=1, describe="evaluated")
            result.start_seconds = time.monotonic() - started
            say(f"  N={n}: every guard evaluated {result.start_seconds:.1f}s after start")
            wait_until(lambda: evaluations() >= 2 * n, timeout=deadline, interval=1)
            say(f"  N={n}: warm-up done ({2 * n} evaluations); measuring {self.window:g}s")

            api_pid = self.info.pids.get("kube-apiserver")
            etcd_pid = self.info.pids.get("etcd")
            m0 = launch.read_metrics(metrics_url)
            w0, c0 = time.time(), cpu_seconds(pid)
            a0 = cpu_seconds(api_pid) if api_pid else None
            e0 = cpu_seconds(etcd_pid) if etcd_pid else None
            busy0 = machine_busy()
            b0 = resource.getrusage(resource.RUSAGE_SELF)
            time.sleep(self.window)  # the measurement window itself, not a wait for a state
            w1, c1 = time.time(), cpu_seconds(pid)
            a1 = cpu_seconds(api_pid) if api_pid else None
            e1 = cpu_seconds(etcd_pid) if etcd_pid else None
            busy1 = machine_busy()
            b1 = resource.getrusage(resource.RUSAGE_SELF)
            m1 = launch.read_metrics(metrics_url)
            rss, hwm = processes.vm_kib(pid, "VmRSS"), processes.vm_kib(pid)
            wall = w1 - w0
            result.window = wall
            assert c0 is not None and c1 is not None, "the operator died"
            result.cores = (c1 - c0) / wall
            result.rss_mib = (rss or 0) / 1024
            result.hwm_mib = (hwm or 0) / 1024
            if a0 is not None and a1 is not None:
                result.apiserver_cores = (a1 - a0) / wall
            if e0 is not None and e1 is not None:
                result.etcd_cores = (e1 - e0) / wall
            result.bench_cores = (b1.ru_utime + b1.ru_stime - b0.ru_utime - b0.ru_stime) / wall
            ncpu = os.cpu_count() or 1
            result.machine_cores = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * ncpu
            result.evaluations = m1.get(EVALUATIONS, 0.0) - m0.get(EVALUATIONS, 0.0)
            result.status_writes = m1.get(WRITES, 0.0) - m0.get(WRITES, 0.0)
            result.lateness = lateness_histogram(m0, m1)

            if profile:
                result.profile = self.profile(pid, ns)
            os.killpg(pid, signal.SIGTERM)
            try:
                operator.wait(timeout=120)
            except subprocess.TimeoutExpired:
                say("  operator did not exit within 120s of SIGTERM")
        finally:
            self.cleanup(ns, pid)
        return result

    # ------------------------------------------------------------ profile

    def profile(self, pid: int, ns: str) -> list[str]:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            return ["py-spy not found: `.venv/bin/pip install py-spy` to profile"]
        out = self.info.log_dir / f"{ns}-operator.pyspy.txt"
        say(f"  profiling the operator with py-spy for {self.profile_seconds:g}s ...")
        run = subprocess.run(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                f"{self.profile_seconds:g}",
                "--rate",
                "100",
                "--format",
                "raw",
                "--nonblocking",
                "--gil",
                "--output",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=self.profile_seconds + 60,
            check=False,
        )
        if run.returncode or not out.exists():
            return [f"py-spy failed ({run.returncode}): {run.stderr.strip()[-300:]}"]
        return summarize_profile(out.read_text())


# Where a sample's time goes: the first category, in this order, with a frame anywhere on
# the sample's stack that matches. The operator's own I/O calls come first, so the client
# and JSON work they do (request building, SSL, json.loads) counts under the call.
CATEGORIES: list[tuple[str, str]] = [
    ("GET Deployment (Kube.deployment)", r"\bdeployment \(.*adapters/kube\.py"),
    ("LIST ReplicaSets (Kube.replica_sets)", r"\breplica_sets \(.*adapters/kube\.py"),
    ("status PATCH (Kube.patch_status)", r"\bpatch_status \(.*adapters/kube\.py"),
    ("target watches (adapters/targets.py)", r"\brun \(.*adapters/targets\.py"),
    ("Prometheus query (Prometheus.query)", r"\bquery \(.*adapters/prometheus\.py"),
    ("status -> JSON (wire: model_dump)", r"\bwire \(.*domain/models\.py"),
    ("pydantic validation (spec/status)", r"\bmodel_validate \("),
    ("evaluate/decide (domain)", r"releaseguard/domain/"),
    ("rest of GuardService.tick", r"releaseguard/service\.py"),
    ("Kopf: watch stream, event processing, daemons", r"kopf/"),
    ("asyncio / thread plumbing", r"asyncio/|concurrent/futures/|threading\.py"),
]


def summarize_profile(raw: str) -> list[str]:
    """Collapsed stacks (frame;frame;... count) -> share of samples per category and the
    top self-time functions."""
    total = 0
    by_category: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    by_frame: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        by_leaf[_short(frames[-1])] += count
        for frame in set(frames):
            by_frame[_short(frame)] += count
        category = "other"
        # innermost operator-level call wins: search from the leaf outwards
        for name, pattern in CATEGORIES:
            if any(re.search(pattern, f) for f in frames):
                category = name
                break
        by_category[category] += count
    if not total:
        return ["py-spy recorded no samples"]
    lines = [
        f"py-spy --gil: {total} samples at 100 Hz of the thread holding the GIL (= Python CPU; "
        "C work with the GIL released, such as TLS, is not in it)"
    ]
    lines.append("  share of samples by what the operator was doing:")
    for name, count in by_category.most_common():
        lines.append(f"    {count / total:6.1%}  {name}")
    lines.append("  top self time (leaf frames):")
    for name, count in by_leaf.most_common(12):
        lines.append(f"    {count / total:6.1%}  {name}")
    lines.append("  top inclusive time (any frame on the stack):")
    for name, count in by_frame.most_common(25):
        if "<module>" in name or "run (threading.py" in name or "_bootstrap" in name:
            continue
        lines.append(f"    {count / total:6.1%}  {name}")
    return lines


def _short(frame: str) -> str:
    """`fn (/long/path/site-packages/pkg/mod.py:12)` -> `fn (pkg/mod.py:12)`."""
    return re.sub(r"\(/.*?(site-packages/|lib/python3\.\d+/|operator/)", "(", frame)


def lateness_histogram(m0: dict[str, float], m1: dict[str, float]) -> list[tuple[float, float]]:
    """The operator's lateness histogram over a window: (le, cumulative count) by le."""
    buckets = []
    for key, value in m1.items():
        match = re.fullmatch(re.escape(LATENESS) + r'_bucket\{le="([^"]+)"\}', key)
        if match:
            buckets.append((float(match.group(1)), value - m0.get(key, 0.0)))
    return sorted(buckets)


def report(results: list[Result]) -> None:
    say()
    say(f"operator cost at intervalSeconds {INTERVAL} (1 query per guard, no steps):")
    say(
        f"{'guards':>6} {'cores':>6} {'RSS MiB':>8} {'peak MiB':>8} {'late p50':>8} "
        f"{'late p99':>8} {'evals/s':>8} {'expected':>8} {'writes/s':>8} "
        f"{'apiserver':>9} {'etcd':>5} {'bench':>5} {'machine':>7} {'start':>6}"
    )
    for r in results:
        say(
            f"{r.guards:6d} {r.cores:6.3f} {r.rss_mib:8.1f} {r.hwm_mib:8.1f} "
            f"{'<=' + format(r.late(0.5), 'g'):>7}s {'<=' + format(r.late(0.99), 'g'):>7}s "
            f"{r.eval_rate:8.2f} {r.guards / INTERVAL:8.2f} {r.write_rate:8.2f} "
            f"{r.apiserver_cores:9.3f} {r.etcd_cores:5.2f} {r.bench_cores:5.2f} "
            f"{r.machine_cores:5.2f}/2 "
            f"{r.start_seconds:5.1f}s"
        )
    say("  cores = operator utime+stime / wall over the window; apiserver/etcd likewise (cores);")
    say("  bench = this script; machine = all CPUs busy (cores, of 2), other people's tests")
    say("  included; late = how long after its schedule an evaluation started (the operator's")
    say("  releaseguard_evaluation_lateness_seconds histogram over the window: the bucket")
    say("  bound holding the quantile); evals/s and writes/s from its counters (status writes")
    say("  happen on change, else once per --status-heartbeat, default 60s);")
    say("  start = operator start -> every guard has a lastEvaluation.")
    big = max(results, key=lambda r: r.guards)
    say()
    say(
        f"targets at 1000 guards / 10s: <= {TARGETS['cores']} core, <= 250 MB "
        f"({TARGETS['rss_mib']:.0f} MiB) RSS, lateness p99 <= {TARGETS['lateness_p99']:g}s"
    )
    if big.guards != 1000:
        say(f"  (largest N measured is {big.guards}; the targets are for 1000)")
    p99 = big.late(0.99)
    for label, value, target, unit in (
        ("CPU", big.cores, TARGETS["cores"], " cores"),
        ("RSS", big.rss_mib, TARGETS["rss_mib"], " MiB"),
        ("lateness p99", p99, TARGETS["lateness_p99"], "s"),
    ):
        verdict = "met" if value <= target else "MISSED"
        say(f"  N={big.guards} {label}: {value:.3f}{unit} (target {target:.3g}{unit}) {verdict}")
    for r in results:
        if r.profile:
            say()
            say(f"where the operator's time goes at N={r.guards}:")
            for line in r.profile:
                say(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guards", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--window", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument(
        "--profile-n",
        type=int,
        default=None,
        help="profile the operator with py-spy at this N (default: the largest; 0: never)",
    )
    parser.add_argument("--profile-seconds", type=float, default=30.0)
    args = parser.parse_args()
    profile_n = max(args.guards) if args.profile_n is None else args.profile_n
    info = devcluster.ensure_up(ROOT)
    load = os.getloadavg()
    say(
        f"scale benchmark: guards {args.guards}, intervalSeconds {INTERVAL}, window "
        f"{args.window:g}s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"({os.cpu_count()} cores)"
    )
    bench = Bench(info, args.window, args.profile_seconds)
    results = []
    for n in args.guards:
        results.append(bench.run_one(n, profile=n == profile_n))
        load = os.getloadavg()
        say(f"  N={n} done; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    report(results)


if __name__ == "__main__":
    main()
