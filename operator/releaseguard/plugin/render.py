"""Rich renderables for the plugin's views: tables for people; colour only on a TTY
(rich decides, and honours NO_COLOR). Pure: no cluster access."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from releaseguard.domain.conditions import ConditionType
from releaseguard.plugin.checking import CheckReport
from releaseguard.plugin.timeline import Timeline
from releaseguard.plugin.views import ListRow, StatusView

PHASE_STYLE = {
    "Watching": "green",
    "Breaching": "bold red",
    "Contained": "yellow",
    "Exhausted": "bold red",
    "Invalid": "red",
    "Suspended": "dim",
    "Pending": "dim",
}
VERDICT_STYLE = {"Healthy": "green", "Pass": "green", "Breach": "red", "NoData": "yellow"}


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(
        *columns, title=title, title_justify="left", box=None, header_style="bold", pad_edge=False
    )
    return table


def _styled(text: str, styles: dict[str, str]) -> Text:
    return Text(text, style=styles.get(text, ""))


def _yes_no(ok: bool, yes: str = "yes", no: str = "no") -> Text:
    return Text(yes, style="green") if ok else Text(no, style="bold red")


def list_table(rows: Sequence[ListRow], all_namespaces: bool) -> RenderableType:
    if not rows:
        return Text("No releaseguards found.")
    columns = ["NAME", "TARGET", "PHASE", "VERDICT", "BREACHES", "LAST ACTION", "INCIDENT"]
    table = _table(*(["NAMESPACE"] if all_namespaces else []), *columns)
    for r in rows:
        cells: list[str | Text] = [r.namespace] if all_namespaces else []
        cells += [
            r.name,
            r.target,
            _styled(r.phase, PHASE_STYLE),
            _styled(r.verdict, VERDICT_STYLE),
            "-" if r.breaches is None else str(r.breaches),
            r.last_action,
            r.incident,
        ]
        table.add_row(*cells)
    return table


def status_panel(view: StatusView, now: datetime) -> RenderableType:
    parts: list[RenderableType] = [
        _status_head(view),
        Text(f"Time:      {now:%Y-%m-%d %H:%M:%S} UTC"),
        _conditions_table(view),
    ]
    if view.metrics:
        metrics = _table("METRIC", "VALUE", "BOUND", "VERDICT", "NOTE", title="\nLast evaluation")
        for m in view.metrics:
            metrics.add_row(m.name, m.value, m.bound, _styled(m.verdict, VERDICT_STYLE), m.message)
        parts.append(metrics)
    parts.append(_steps_table(view))
    parts.append(_incident_table(view) if view.incident else Text("\nIncident:  none"))
    if view.actions:
        actions = _table(
            "ID", "TYPE", "TARGET", "RESULT", "BEFORE → AFTER", "AGO", title="\nLast actions"
        )
        for a in view.actions:
            style = "red" if a.result == "Failed" else ""
            actions.add_row(a.id, a.type, a.target, Text(a.result, style=style), a.change, a.ago)
        parts.append(actions)
    tail = Text(f"\nKnown good: {view.known_good}")
    if view.known_bad:
        tail.append(f"\nKnown bad:  {'; '.join(view.known_bad)}")
    if view.notifications:
        tail.append(f"\nNotifications: {view.notifications}")
    parts.append(tail)
    return Group(*parts)


def _status_head(view: StatusView) -> Text:
    head = Text.assemble(
        ("Name:      ", "bold"),
        f"{view.name}   ",
        ("Namespace: ", "bold"),
        f"{view.namespace}   ",
        ("Target: ", "bold"),
        f"Deployment/{view.target}\n",
        ("Phase:     ", "bold"),
        Text(view.phase, style=PHASE_STYLE.get(view.phase, "")),
        f"   verdict {view.verdict}, breaches {view.breaches}, evaluated {view.evaluated}",
    )
    if view.message:
        head.append(f"\nMessage:   {view.message}")
    return head


def _conditions_table(view: StatusView) -> Table:
    conditions = _table("CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE", title="\nConditions")
    for c in view.conditions:
        ok = (c.status == "True") != (c.type == ConditionType.BREACHED)
        conditions.add_row(
            c.type, Text(c.status, style="green" if ok else "red"), c.reason, c.since, c.message
        )
    return conditions


def _steps_table(view: StatusView) -> Table:
    steps = _table("#", "STEP", "READY", "WHY", title="\nSteps (readiness)")
    for s in view.steps:
        steps.add_row(str(s.index), s.type, _yes_no(s.ready), s.why)
    if not view.steps:
        steps.add_row("-", "no steps: detection only", "", "")
    return steps


def _incident_table(view: StatusView) -> Table:
    incident = _table("", "", title="\nIncident")
    incident.show_header = False
    for label, value in view.incident.items():
        incident.add_row(Text(label, style="bold"), value)
    return incident


def timeline_table(timeline: Timeline, name: str) -> RenderableType:
    if timeline.incident is None or not timeline.entries:
        return Text(f"{name}: {timeline.note}")
    title = f"Incident {timeline.incident} of {name}; times relative to {timeline.origin_label}"
    if timeline.origin is not None:
        title += f" ({timeline.origin:%Y-%m-%d %H:%M:%S} UTC)"
    table = _table("T", "AT (UTC)", "WHAT", "DETAIL", title=title)
    for e in timeline.entries:
        what = Text(e.what, style="red" if e.warning else "")
        table.add_row(timeline.offset_of(e), f"{e.time:%H:%M:%S.%f}"[:-3], what, e.text)
    parts: list[RenderableType] = [table]
    if timeline.note and timeline.note != "closed":
        parts.append(Text(timeline.note, style="dim"))
    return Group(*parts)


def check_report(report: CheckReport) -> RenderableType:
    parts: list[RenderableType] = [
        Text(
            f"Checking {report.namespace}/{report.name} ({report.source}) against "
            f"{report.prometheus_url or 'no Prometheus'}"
        )
    ]
    if report.queries:
        queries = _table(
            "QUERY", "VALUE", "BOUND", "VERDICT", "OK", "NOTE", title="\nQueries (run now)"
        )
        for q in report.queries:
            queries.add_row(
                q.name, q.value, q.bound, _styled(q.verdict, VERDICT_STYLE), _yes_no(q.ok), q.note
            )
        parts.append(queries)
    if report.steps:
        steps = _table("#", "STEP", "OBJECT", "STATE", "OK", "WHY", title="\nSteps (readiness now)")
        for s in report.steps:
            steps.add_row(str(s.index), s.type, s.object, s.state, _yes_no(s.ok), s.why)
        parts.append(steps)
    for problem in report.problems:
        parts.append(Text(f"problem: {problem}", style="red"))
    for note in report.notes:
        parts.append(Text(f"note: {note}", style="dim"))
    verdict = (
        Text("\nOK: this guard would work (nothing was changed)", style="bold green")
        if report.ok
        else Text(
            "\nNOT OK: this guard would not work as written (nothing was changed)", style="bold red"
        )
    )
    parts.append(verdict)
    return Group(*parts)
