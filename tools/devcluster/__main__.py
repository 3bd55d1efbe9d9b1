"""Command line: ``python -m devcluster up|down|status|env`` (run from the repo root).

The Makefile's cluster-up/cluster-down/cluster-status targets call this. Every
failure is printed as one readable message (component, log path, log tail)
with exit status 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from devcluster.cluster import down, ensure_up, status
from devcluster.errors import DevclusterError
from devcluster.layout import Layout


def _up(root: Path) -> int:
    info = ensure_up(root)
    how = "reused running cluster" if info.reused else "started cluster (cold)"
    print(f"devcluster: {how} in {info.seconds:.2f}s")
    print(f"  kubeconfig:  {info.kubeconfig}")
    print(f"  apiserver:   {info.apiserver_url}")
    print(f"  prometheus:  {info.prometheus_url}")
    print(f"  alertmanager: {info.alertmanager_url or '(not installed)'}")
    print(f"  logs:        {info.log_dir}")
    print(f"  use it:      source {Layout.for_root(root).env_file}")
    return 0


def _down(root: Path) -> int:
    started = time.monotonic()
    stopped = down(root)
    took = time.monotonic() - started
    if stopped:
        print(f"devcluster: stopped {stopped} component(s) in {took:.2f}s")
    else:
        print("devcluster: nothing was running")
    return 0


def _status(root: Path) -> int:
    state, rows = status(root)
    if state is None:
        print("devcluster: not running (no state recorded)")
        return 1
    print(f"apiserver   {state.apiserver_url}")
    print(f"prometheus  {state.prometheus_url}")
    print(f"alertmanager {state.alertmanager_url or '(not running)'}")
    print(f"kubeconfig  {Layout.for_root(root).kubeconfig}")
    print(f"started     {time.ctime(state.started_at)} (cold start took {state.startup_seconds}s)")
    print(f"{'COMPONENT':<24} {'PID':>8}  {'STATE':<6} {'PEAK RSS':>9}  PORTS")
    total = 0
    for row in rows:
        ports = " ".join(f"{k}={v}" for k, v in row.ports.items()) or "-"
        rss = f"{row.peak_rss_kib / 1024:.0f} MiB" if row.peak_rss_kib else "-"
        total += row.peak_rss_kib or 0
        alive = "alive" if row.alive else "DEAD"
        print(f"{row.name:<24} {row.pid:>8}  {alive:<6} {rss:>9}  {ports}")
    print(f"{'total peak RSS':<24} {'':>8}  {'':<6} {total / 1024:>5.0f} MiB")
    return 0 if rows and all(row.alive for row in rows) else 1


def _env(root: Path) -> int:
    env_file = Layout.for_root(root).env_file
    if not env_file.is_file():
        print("devcluster: not running; run `make cluster-up` first", file=sys.stderr)
        return 1
    sys.stdout.write(env_file.read_text())
    return 0


COMMANDS = {"up": _up, "down": _down, "status": _status, "env": _env}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="repository root (default: cwd)"
    )
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args.root)
    except DevclusterError as error:
        print(f"devcluster {args.command} FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"devcluster {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
