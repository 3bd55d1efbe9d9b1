"""Which pod templates a Rollback must never restore, and the target a planned Rollback
keeps.

Pure: functions of the status and the target's current pod-template hash.

A Rollback used to compute its target from a fresh read at the moment of the write. When
someone else had changed the template first (a human's fix, a `kubectl rollout undo`, or
a 409 redo after such a write), "Previous" then meant the release that breached, and the
guard rolled the bad image back in. Two rules close that:

- The target is fixed when the step is planned: the service takes the target's
  pod-template hash from the readiness view the planner chose from, and the write (and
  every 409 redo) restores exactly that template, or fails saying why. It is kept in the
  action record (`after.podTemplateHash`, `after.revision`).
- The templates that breached are never a target. They are the template live when the
  incident opens, the one live while the breach was being counted (if it changed in
  between), and those of the previous incident (a human's re-arm or undo followed by a
  breach that goes on must not send the guard back to the release it contained), except
  a template that has since proved itself known-good. At most MAX_BREACHED are kept, in
  `status.incident.breachedTemplates`.
"""

from __future__ import annotations

from releaseguard.domain.models import GuardStatus
from releaseguard.domain.steps.rollback import planned_target as planned_target

MAX_BREACHED = 5


def breached_templates(status: GuardStatus, current_hash: str) -> list[str]:
    """The templates a Rollback must not restore, for the open incident or the one that
    would open now (newest first)."""
    incident = status.incident
    if incident is not None and not incident.closed and incident.breached_templates:
        return list(incident.breached_templates)
    hashes = [current_hash]
    last = status.last_evaluation
    if status.release is not None and last is not None and last.consecutive_breaches > 0:
        hashes.append(status.release.pod_template_hash)
    if incident is not None and incident.breached_templates:
        good = status.last_known_good.pod_template_hash if status.last_known_good else ""
        hashes.extend(h for h in incident.breached_templates if h != good)
    unique: list[str] = []
    for h in hashes:
        if h and h not in unique:
            unique.append(h)
    return unique[:MAX_BREACHED]
