"""`kubectl-releaseguard`: the entry point. Parses kubectl-style flags, connects, runs a
subcommand. Exit codes: 0 ok, 1 failed (or, for check, the guard would not work),
2 usage error."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from releaseguard.plugin import cluster, commands

COMMANDS = {
    "list": commands.cmd_list,
    "status": commands.cmd_status,
    "timeline": commands.cmd_timeline,
    "check": commands.cmd_check,
    "contain": commands.cmd_contain,
    "rearm": commands.cmd_rearm,
    "undo": commands.cmd_undo,
}


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be > 0 and at most 3600 seconds")
    return value


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    """kubectl's flags, accepted before or after the subcommand (after wins)."""
    d = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--kubeconfig", default=d, help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument(
        "--context", default=d, help="kubeconfig context (default: the current one)"
    )
    parser.add_argument("-n", "--namespace", default=d, help="namespace (default: the context's)")
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json", "yaml"),
        default="table" if top else d,
        help="table for people (default), json or yaml for scripts",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl releaseguard",
        description="Read, check and steer ReleaseGuards.",
    )
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p, top=False)
        return p

    p = add("list", "the guards: target, phase, verdict, breaches, last action, incident age")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p = add("status", "conditions, step readiness, the open incident, the last actions")
    p.add_argument("name")
    p.add_argument("-w", "--watch", action="store_true", help="redraw in place until Ctrl-C")
    p.add_argument("--interval", type=_positive, default=1.0, help="--watch refresh seconds (1)")
    p = add("timeline", "an incident as one ordered list, times relative to detection")
    p.add_argument("name")
    p.add_argument("--incident", type=int, help="incident number (default: the latest)")
    p = add(
        "check",
        "run every query now and check each step's readiness; changes nothing. "
        "Exit 0: the guard would work; 1: it would not; 2: usage error",
    )
    p.add_argument("name", nargs="?")
    p.add_argument("-f", "--filename", help="a guard manifest, applied or not")
    p.add_argument(
        "--prometheus-url",
        default=os.environ.get("RELEASEGUARD_PROMETHEUS_URL"),
        help="Prometheus for guards without spec.prometheus.url, as the operator's flag "
        "(env RELEASEGUARD_PROMETHEUS_URL); overrides the guard's URL when given",
    )
    p.add_argument(
        "--allowed-url",
        action="append",
        metavar="REGEX",
        help="the operator's URL allow-list, checked before a bearer token is read "
        "(default: env RELEASEGUARD_ALLOWED_URLS, else ^https://)",
    )
    for name, what in (
        ("contain", "contain now (releaseguard.io/contain-now)"),
        ("rearm", "end the incident and watch again (releaseguard.io/rearm)"),
    ):
        p = add(name, f"{what}, then wait for the operator and print what happened")
        p.add_argument("name")
        p.add_argument("--timeout", type=_positive, default=30.0, help="seconds to wait (30)")
    p = add("undo", "write an action's `before` back (not Rollback or GitOpsPause)")
    p.add_argument("name")
    p.add_argument("action_id", metavar="ACTION_ID")
    p.add_argument(
        "--force",
        action="store_true",
        help="undo even in an open incident or over a later change of the object",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "all_namespaces", False) and args.namespace:
        parser.error("-A and -n do not go together")
    out = commands.console()
    err = commands.Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
    try:
        session = cluster.connect(args.kubeconfig, args.context, args.namespace)
        return COMMANDS[args.command](session, args, out)
    except commands.UsageError as exc:
        parser.print_usage(sys.stderr)
        err.print(f"error: {exc}", style="red", markup=False)
        return 2
    except cluster.PluginError as exc:
        err.print(f"error: {exc}", style="red", markup=False)
        return 1
    except ApiException as exc:
        err.print(f"error: {cluster.api_error(exc, 'API request')}", style="red", markup=False)
        return 1
    except (HTTPError, OSError) as exc:
        err.print(f"error: cannot reach the API server: {exc}", style="red", markup=False)
        return 1


def run() -> None:
    sys.exit(main())
