"""The plugin's subcommands: read or write through `cluster`, decide and format with the
pure modules, print. Each returns the process exit code (0 ok, 1 failed, 2 usage)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

import releaseguard
from releaseguard.adapters.cluster import CONFLICT_RETRIES, conflict_pause
from releaseguard.domain.conditions import EventReason, EventType
from releaseguard.domain.guard import CONTAIN_NOW, REARM
from releaseguard.domain.models import KIND, GuardSpec, GuardStatus, KnownGood
from releaseguard.plugin import checking, cluster, render, timeline, undo, views
from releaseguard.plugin.cluster import PluginError, Session

if TYPE_CHECKING:
    from releaseguard.domain.observations import Observations

MAX_FILE_BYTES = 1 << 20  # a guard file is a few KiB; refuse anything absurd
POLL = 0.5  # seconds between reads while waiting for the operator


class UsageError(Exception):
    """Exit 2, like argparse."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def console() -> Console:
    # On a TTY rich sizes to the terminal and colours (unless NO_COLOR); piped output is
    # plain text, as wide as COLUMNS (default 200) so that tables do not wrap in scripts.
    # markup=False: cells hold cluster data, where "[checkout-v2]" is a field path, not
    # a rich style tag to swallow.
    if sys.stdout.isatty():
        return Console(highlight=False, markup=False)
    return Console(highlight=False, markup=False, width=int(os.environ.get("COLUMNS") or 200))


def emit(
    out: Console, args: argparse.Namespace, data: Any, table: Callable[[], RenderableType]
) -> None:
    if args.output == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif args.output == "yaml":
        sys.stdout.write(
            yaml.safe_dump(
                json.loads(json.dumps(data, default=str)), sort_keys=False, allow_unicode=True
            )
        )
    else:
        out.print(table())


# ------------------------------------------------------------ list, status, timeline


def cmd_list(s: Session, args: argparse.Namespace, out: Console) -> int:
    guards = cluster.list_guards(s, args.all_namespaces)
    rows = views.list_rows(guards, utcnow())
    data = [r.__dict__ for r in rows]
    emit(out, args, data, lambda: render.list_table(rows, args.all_namespaces))
    return 0


def cmd_status(s: Session, args: argparse.Namespace, out: Console) -> int:
    if not args.watch:
        guard = cluster.get_guard(s, args.name)
        now = utcnow()
        view = views.status_view(guard, now)
        emit(out, args, view.to_dict(), lambda: render.status_panel(view, now))
        return 0
    if args.output != "table":
        raise UsageError("--watch draws a table; for scripts use -o json without --watch")
    cluster.get_guard(s, args.name)  # fail now, not inside the live display
    try:
        with Live(console=out, auto_refresh=False, redirect_stdout=False) as live:
            while True:
                try:
                    now = utcnow()
                    panel: RenderableType = render.status_panel(
                        views.status_view(cluster.get_guard(s, args.name), now), now
                    )
                except (PluginError, OSError) as exc:
                    panel = Text(f"{exc} (retrying every {args.interval:g}s)", style="red")
                live.update(panel, refresh=True)
                time.sleep(args.interval)  # the refresh period of the display
    except KeyboardInterrupt:
        return 0


def cmd_timeline(s: Session, args: argparse.Namespace, out: Console) -> int:
    guard = cluster.get_guard(s, args.name)
    events = cluster.guard_events(s, guard)
    told = timeline.assemble(guard.get("status") or {}, events, args.incident)
    emit(out, args, told.to_dict(), lambda: render.timeline_table(told, args.name))
    return 0 if told.entries or args.incident is None else 1


# ------------------------------------------------------------ check


def _load_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from exc
    if len(text) > MAX_FILE_BYTES:
        raise UsageError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not YAML: {exc}") from exc
    guards = [d for d in docs if isinstance(d, dict) and d.get("kind") == KIND]
    if len(guards) != 1:
        raise UsageError(f"{path}: expected one {KIND} document, found {len(guards)}")
    return guards[0]


def _crd_schema(s: Session) -> tuple[dict[str, Any], str]:
    """The CRD's openAPIV3Schema: from crds/releaseguard.yaml next to the package (a
    source checkout), else the cluster's CRD."""
    path = Path(releaseguard.__file__).resolve().parents[2] / "crds" / "releaseguard.yaml"
    if path.is_file():
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
        return version["schema"]["openAPIV3Schema"], str(path)
    return cluster.crd_schema_from_cluster(s), f"CustomResourceDefinition {cluster.CRD_NAME}"


def _schema_problems(schema: Mapping[str, Any], guard: Mapping[str, Any]) -> list[str]:
    import jsonschema

    # OpenAPI v3 schemas are JSON Schema (draft 4 family) plus x-kubernetes-* keywords,
    # which a validator ignores; CEL rules are left to the server-side dry run.
    validator = jsonschema.Draft4Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(dict(guard)), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "(top level)"
        problems.append(f"schema: {where}: {views.short(error.message, 300)}")
    return problems[:20]


def _spec_problems(exc: ValidationError) -> list[str]:
    return [
        f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else str(e["msg"])
        for e in exc.errors()
    ]


def _known_good(status: Mapping[str, Any]) -> GuardStatus:
    """What step readiness needs of the status: the known-good revision (read alone, so a
    status with fields this version does not know still works)."""
    try:
        good = status.get("lastKnownGood")
        return GuardStatus(last_known_good=KnownGood.model_validate(good) if good else None)
    except ValidationError:
        return GuardStatus()


class _CheckEnds(Exception):
    """A problem already in the report that makes the rest of the check pointless."""


def cmd_check(s: Session, args: argparse.Namespace, out: Console) -> int:
    if bool(args.name) == bool(args.filename):
        raise UsageError("check needs a guard NAME or -f FILE (one of them)")
    if args.filename:
        guard, status, report = _check_file(s, args.filename)
    else:
        guard = cluster.get_guard(s, args.name)
        status = guard.get("status") or {}
        report = checking.CheckReport(s.namespace, args.name, "cluster", "")
    try:
        spec = GuardSpec.model_validate(guard.get("spec") or {})
    except ValidationError as exc:
        report.problems += _spec_problems(exc)
        return _report(out, args, report)
    url = args.prometheus_url or spec.prometheus.url
    if not url:
        raise UsageError(
            "no Prometheus URL: the guard names none (spec.prometheus.url), so it uses the "
            "operator's --prometheus-url; pass the same with --prometheus-url"
        )
    report.prometheus_url = url
    try:
        token = _bearer_token(s, args, spec, report)
    except _CheckEnds:
        return _report(out, args, report)
    report.queries = checking.query_checks(spec, _observe(spec, url, token))
    _check_steps(s, spec, status, report)
    if not spec.steps:
        report.notes.append("no steps: the guard detects and records, and changes nothing")
    return _report(out, args, report)


def _check_file(
    s: Session, filename: str
) -> tuple[Mapping[str, Any], Mapping[str, Any], checking.CheckReport]:
    """The guard of a manifest, checked against the CRD schema and a server-side dry run."""
    guard = _load_file(filename)
    ns = (guard.get("metadata") or {}).get("namespace") or s.namespace
    name = str((guard.get("metadata") or {}).get("name") or "?")
    report = checking.CheckReport(ns, name, filename, "")
    schema, where = _crd_schema(s)
    report.problems += _schema_problems(schema, guard)
    report.notes.append(f"validated against the schema of {where}")
    if problem := cluster.dry_run_create(s, ns, guard):
        report.problems.append(problem)
    else:
        report.notes.append("the API server accepts it (server-side dry run, nothing stored)")
    return guard, {}, report


def _bearer_token(
    s: Session, args: argparse.Namespace, spec: GuardSpec, report: checking.CheckReport
) -> str | None:
    """The guard's Prometheus bearer token, read as the operator reads it: the URL passes
    the allow-list before any Secret is read, and the Secret must be labelled usable by
    guards. Raises _CheckEnds after adding the problem to the report."""
    from releaseguard.adapters.kube import Missing, SecretNotLabelled
    from releaseguard.domain.allowlist import (
        DEFAULT_PATTERNS,
        AllowList,
        parse_patterns,
        url_problem,
    )

    ref = spec.prometheus.bearer_token_secret_ref
    if ref is None:
        return None
    patterns = args.allowed_url or parse_patterns(os.environ.get("RELEASEGUARD_ALLOWED_URLS"))
    allowed = AllowList.of(
        patterns if patterns is not None else DEFAULT_PATTERNS, [args.prometheus_url]
    )
    if problem := url_problem(report.prometheus_url, allowed):
        report.problems.append(f"URLNotAllowed: {problem}; the bearer token was not read")
        raise _CheckEnds
    try:
        return s.kube.secret_value(report.namespace, ref.name, ref.key)
    except (Missing, SecretNotLabelled) as exc:
        report.problems.append(f"{type(exc).__name__}: {exc}")
    except ApiException as exc:
        report.problems.append(str(cluster.api_error(exc, f"reading Secret {ref.name}")))
    raise _CheckEnds


def _observe(spec: GuardSpec, url: str, token: str | None) -> Observations:
    """Every query of the guard, side by side and within one timeoutSeconds in all, as
    the operator queries."""
    from releaseguard.adapters.prometheus import Prometheus
    from releaseguard.domain.observations import Observations

    queries = {f"m:{m.name}": m.query for m in spec.metrics}
    queries |= {f"b:{m.name}": m.baseline_query for m in spec.metrics if m.baseline_query}
    if spec.min_traffic is not None:
        queries["traffic"] = spec.min_traffic.query
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="promql") as pool:
        prometheus = Prometheus(url, spec.prometheus.timeout_seconds, token, executor=pool)
        try:
            answers = prometheus.query_many(queries)
        finally:
            prometheus.close()
    return Observations(
        metrics={m.name: answers[f"m:{m.name}"] for m in spec.metrics},
        baselines={m.name: answers[f"b:{m.name}"] for m in spec.metrics if m.baseline_query},
        traffic=answers.get("traffic"),
    )


def _check_steps(
    s: Session, spec: GuardSpec, status: Mapping[str, Any], report: checking.CheckReport
) -> None:
    from releaseguard.adapters import cluster as cluster_io
    from releaseguard.adapters.kube import Missing

    ns, kube = report.namespace, s.kube
    target = sets = None
    try:
        target, sets, _ = cluster_io.target(kube, ns, spec.target.deployment)
    except Missing as exc:
        report.problems.append(f"target: {exc} in namespace {ns}")
    except ApiException as exc:
        report.problems.append(str(cluster.api_error(exc, "reading the target")))
    try:
        seen = cluster_io.view_steps(kube, ns, spec, _known_good(status), target, sets)  # type: ignore[arg-type]
    except ApiException as exc:
        report.problems.append(str(cluster.api_error(exc, "reading the steps' objects")))
    else:
        report.steps = checking.step_checks(
            [v.readiness for v in seen], [v.object_ref for v in seen], status
        )


def _report(out: Console, args: argparse.Namespace, report: checking.CheckReport) -> int:
    emit(out, args, report.to_dict(), lambda: render.check_report(report))
    return report.exit_code


# ------------------------------------------------------------ contain, rearm


def _handled(
    s: Session, name: str, key: str, value: str, old_ids: set[Any]
) -> dict[str, Any] | None:
    """The guard once the operator handled `key=value` and finished acting on it."""
    guard = cluster.get_guard(s, name)
    if not views.annotation_settled(guard.get("status") or {}, key, value, old_ids):
        return None
    return guard


def _annotate_and_wait(s: Session, args: argparse.Namespace, out: Console, key: str) -> int:
    before = cluster.get_guard(s, args.name)
    old_status = before.get("status") or {}
    old_ids = {a.get("id") for a in old_status.get("actions") or []}
    value = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # fresh: each value is acted on once
    cluster.annotate(s, before, key, value)
    started = time.monotonic()
    deadline = started + args.timeout
    after = None
    while time.monotonic() < deadline:
        after = _handled(s, args.name, key, value, old_ids)
        if after is not None:
            break
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
    took = time.monotonic() - started
    data: dict[str, Any] = {"annotation": key, "value": value, "handled": after is not None}
    if after is None:
        data["message"] = (
            f"set {key}={value}, but the operator did not handle it within {args.timeout:g}s: "
            f"is it running and watching namespace {s.namespace}? It acts on the value once "
            "it sees it."
        )
        emit(out, args, data, lambda: Text(data["message"], style="red"))
        return 1
    status = after.get("status") or {}
    new = [a for a in status.get("actions") or [] if a.get("id") not in old_ids]
    incident = status.get("incident") or {}
    data |= {
        "seconds": round(took, 2),
        "phaseBefore": old_status.get("phase"),
        "phase": status.get("phase"),
        "incident": incident.get("number"),
        "incidentClosed": bool(incident.get("closed")),
        "newActions": new,
    }

    def table() -> RenderableType:
        lines = Text(
            f"{key}={value} handled after {took:.1f}s: phase "
            f"{data['phaseBefore'] or 'Pending'} → {data['phase']}"
        )
        if incident:
            state = "closed" if incident.get("closed") else "open"
            lines.append(f"\nincident {incident.get('number')}: {state}")
        for a in new:
            change = views.describe_change(a.get("before"), a.get("after"))
            what = f"{a.get('id')}: {a.get('type')} {a.get('target')}"
            lines.append(f"\naction {what}: {change} [{a.get('result')}]")
        if key == CONTAIN_NOW and not new:
            lines.append(f"\nno step was applied: {status.get('message') or 'see status'}")
        return lines

    emit(out, args, data, table)
    return 0


def cmd_contain(s: Session, args: argparse.Namespace, out: Console) -> int:
    return _annotate_and_wait(s, args, out, CONTAIN_NOW)


def cmd_rearm(s: Session, args: argparse.Namespace, out: Console) -> int:
    return _annotate_and_wait(s, args, out, REARM)


# ------------------------------------------------------------ undo


def cmd_undo(s: Session, args: argparse.Namespace, out: Console) -> int:
    guard = cluster.get_guard(s, args.name)
    status = guard.get("status") or {}
    actions = [a for a in status.get("actions") or [] if isinstance(a, dict)]
    action = next((a for a in actions if a.get("id") == args.action_id), None)
    if action is None:
        known = ", ".join(str(a.get("id")) for a in actions) or "none"
        raise PluginError(f"{args.name} has no action {args.action_id!r} (actions: {known})")
    if why := undo.refusal(action):
        raise PluginError(f"refused: {why}")
    incident = views.open_incident(status)
    if incident and views.in_incident(action, incident.get("number")) and not args.force:
        raise PluginError(
            f"refused: incident {incident.get('number')} is still open, and the operator "
            "would take the undo for a revert of its containment. Re-arm first "
            f"(kubectl releaseguard rearm {args.name}), then undo; or pass --force"
        )
    kind, name = undo.object_ref(action)
    ns = guard["metadata"]["namespace"]
    for attempt in range(CONFLICT_RETRIES):
        obj = cluster.read_object(s, ns, kind, name)
        result = undo.undo_change(action, obj, force=args.force)
        if isinstance(result, undo.Refused | undo.Drifted):
            raise PluginError(f"refused: {result.reason}")
        try:
            cluster.replace_object(s, ns, kind, result.new_object)
        except ApiException as exc:
            if exc.status == 409 and attempt + 1 < CONFLICT_RETRIES:
                time.sleep(conflict_pause(attempt))
                continue  # someone wrote in between: judge again on a fresh read
            raise cluster.api_error(exc, f"writing {kind}/{name}") from exc
        break
    change = views.describe_change(result.replaced, result.restored)
    message = f"{args.action_id} undone with kubectl releaseguard: {kind}/{name} {change}"
    try:
        cluster.post_event(s, guard, EventType.NORMAL, EventReason.ACTION_UNDONE, message)
    except PluginError as exc:
        # The write is done; say so, and that the record of it is missing.
        raise PluginError(f"{message}, but the Event recording it was not posted: {exc}") from exc
    data = {
        "action": args.action_id,
        "object": f"{kind}/{name}",
        "restored": result.restored,
        "replaced": result.replaced,
        "attempts": attempt + 1,
    }
    emit(out, args, data, lambda: Text(message + " (Event ActionUndone posted on the guard)"))
    return 0
