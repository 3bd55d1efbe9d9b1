"""The ReleaseGuard API (v1alpha1) as pydantic models: spec, status and their parts.

Pure: no I/O, no Kubernetes or Prometheus imports. The CRD in crds/releaseguard.yaml
is the schema users see; tests/unit/test_crd_matches_models.py keeps the two in step.
Field names use the CRD's camelCase through aliases; Python code uses snake_case.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from releaseguard.domain.bounds import bounded

GROUP = "releaseguard.io"
VERSION = "v1alpha1"
PLURAL = "releaseguards"
KIND = "ReleaseGuard"


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are kept out."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, None left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def merge_patch(self) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) that makes the stored object equal `wire()`.

        A merge patch leaves keys it does not mention alone, so a field that became None
        (a new incident's containedAt, a reset healthySince) is sent as null, which
        removes the stored value. Lists are replaced whole, so inside them None is left
        out as in `wire()`.
        Free-text fields are cut to the CRD's maxLength (domain/bounds.py): one long
        message must not make the API server reject the whole write.
        """
        return _nulls_kept(bounded(self.model_dump(mode="json", by_alias=True)))


def _nulls_kept(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nulls_kept(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nones_dropped(v) for v in value]
    return value


def _nones_dropped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nones_dropped(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_nones_dropped(v) for v in value]
    return value


# ---------------------------------------------------------------- spec


class NoDataPolicy(StrEnum):
    HOLD = "Hold"
    BREACH = "Breach"


class StepType(StrEnum):
    FEATURE_FLAG = "FeatureFlag"
    CANARY_WEIGHT = "CanaryWeight"
    SCALE = "Scale"
    BLUE_GREEN = "BlueGreen"
    ROLLBACK = "Rollback"
    # Not a step of spec.steps: the action that pauses Argo CD's automated sync with the
    # first Applied step of an incident (spec.gitOps.argoCD, domain/gitops.py).
    GITOPS_PAUSE = "GitOpsPause"


SPEC_STEP_TYPES = tuple(t for t in StepType if t is not StepType.GITOPS_PAUSE)

DEFAULT_COSTS: dict[StepType, int] = {
    StepType.FEATURE_FLAG: 10,
    StepType.CANARY_WEIGHT: 20,
    StepType.SCALE: 30,
    StepType.BLUE_GREEN: 40,
    StepType.ROLLBACK: 50,
}


class RollbackTarget(StrEnum):
    LAST_KNOWN_GOOD = "LastKnownGood"
    PREVIOUS = "Previous"


class Target(_Model):
    deployment: Annotated[str, Field(min_length=1)]


class SecretKeyRef(_Model):
    name: str
    key: str


class PrometheusSpec(_Model):
    url: str | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    bearer_token_secret_ref: SecretKeyRef | None = None


class MinTraffic(_Model):
    query: str
    min: float


NonEmpty = Annotated[str, Field(min_length=1)]


class Metric(_Model):
    name: NonEmpty
    query: NonEmpty
    max: float | None = None
    min: float | None = None
    baseline_query: str | None = None
    max_ratio: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> Metric:
        if self.max is None and self.min is None and self.max_ratio is None:
            raise ValueError(f"metric {self.name!r} needs at least one of max, min, maxRatio")
        if self.max_ratio is not None and not self.baseline_query:
            raise ValueError(f"metric {self.name!r}: maxRatio needs baselineQuery")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(
                f"metric {self.name!r}: min must not be greater than max: no value could pass"
            )
        return self


class FeatureFlagStep(_Model):
    config_map: str
    key: str
    value: str


class CanaryWeightStep(_Model):
    http_route: str
    canary_backend: str
    weight: Annotated[int, Field(ge=0)] = 0


class ScaleStep(_Model):
    deployment: str
    replicas: Annotated[int, Field(ge=0)] = 0


class BlueGreenStep(_Model):
    service: str
    selector_key: str
    stable_value: str


class RollbackStep(_Model):
    to_revision: RollbackTarget = RollbackTarget.LAST_KNOWN_GOOD


def _field_of(step_type: StepType) -> str:
    # to_camel("FeatureFlag") gives "featureflag"; the spec field is "featureFlag".
    return step_type.value[0].lower() + step_type.value[1:]


class Step(_Model):
    type: StepType
    cost: Annotated[int, Field(ge=0)] | None = None
    feature_flag: FeatureFlagStep | None = None
    canary_weight: CanaryWeightStep | None = None
    scale: ScaleStep | None = None
    blue_green: BlueGreenStep | None = None
    rollback: RollbackStep | None = None

    @model_validator(mode="after")
    def _sub_object_matches_type(self) -> Step:
        if self.type is StepType.GITOPS_PAUSE:
            raise ValueError(
                "GitOpsPause is not a step: set spec.gitOps.argoCD and the guard pauses the "
                "Application with the first applied step"
            )
        subs = {
            StepType.FEATURE_FLAG: self.feature_flag,
            StepType.CANARY_WEIGHT: self.canary_weight,
            StepType.SCALE: self.scale,
            StepType.BLUE_GREEN: self.blue_green,
            StepType.ROLLBACK: self.rollback,
        }
        if self.type is StepType.ROLLBACK and self.rollback is None:
            object.__setattr__(self, "rollback", RollbackStep())
        elif subs[self.type] is None:
            raise ValueError(f"step of type {self.type} needs its {_field_of(self.type)} object")
        others = [t for t, sub in subs.items() if t is not self.type and sub is not None]
        if others:
            raise ValueError(f"step of type {self.type} must not carry {others[0]} settings")
        return self

    @property
    def effective_cost(self) -> int:
        return DEFAULT_COSTS[self.type] if self.cost is None else self.cost


class IrreversibleChanges(_Model):
    jobs: list[str] = []


class WebhookFormat(StrEnum):
    JSON = "JSON"
    SLACK = "Slack"


class WebhookSink(_Model):
    url_secret_ref: SecretKeyRef
    format: WebhookFormat = WebhookFormat.JSON


class AlertmanagerSink(_Model):
    url: str | None = None


class NotifySink(_Model):
    """One place to tell: exactly one of webhook, alertmanager (domain/notifications.py)."""

    webhook: WebhookSink | None = None
    alertmanager: AlertmanagerSink | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> NotifySink:
        if (self.webhook is None) == (self.alertmanager is None):
            raise ValueError("a notify entry needs exactly one of webhook, alertmanager")
        return self


MAX_SINKS = 10


class OnRevert(_Model):
    """What to do when someone undoes a step (domain/reverts.py)."""

    reapply: Annotated[int, Field(ge=0, le=10)] = 3


class ArgoCDApplication(_Model):
    application: NonEmpty
    namespace: NonEmpty


class GitOpsSpec(_Model):
    """Stop the GitOps reconciler that would undo containment."""

    flux: bool = False
    argo_cd: ArgoCDApplication | None = Field(default=None, alias="argoCD")


# A timeoutSeconds up to this is allowed whatever intervalSeconds (the default is 5).
MAX_TIMEOUT_ANY_INTERVAL = 5


class GuardSpec(_Model):
    target: Target
    metrics: Annotated[list[Metric], Field(min_length=1, max_length=20)]
    prometheus: PrometheusSpec = PrometheusSpec()
    interval_seconds: Annotated[int, Field(ge=1)] = 15
    # None: intervalSeconds (today's cadence). See domain/confirmation.py.
    confirm_interval_seconds: Annotated[int, Field(ge=1)] | None = None
    consecutive_breaches: Annotated[int, Field(ge=1)] = 2
    no_data: NoDataPolicy = NoDataPolicy.HOLD
    min_traffic: MinTraffic | None = None
    steps: list[Step] = []
    escalate_after_seconds: Annotated[int, Field(ge=0)] = 60
    known_good_after_seconds: Annotated[int, Field(ge=0)] = 60
    irreversible_changes: IrreversibleChanges = IrreversibleChanges()
    dry_run: bool = False
    suspend: bool = False
    on_revert: OnRevert = OnRevert()
    git_ops: GitOpsSpec = GitOpsSpec()
    notify: Annotated[list[NotifySink], Field(max_length=MAX_SINKS)] = []

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> GuardSpec:
        # As the CRD's CEL rule: one evaluation's queries end before the next is due, so
        # a guard cannot keep more queries in flight than it has metrics.
        timeout = self.prometheus.timeout_seconds
        if timeout > MAX_TIMEOUT_ANY_INTERVAL and timeout > self.interval_seconds:
            raise ValueError(
                "prometheus.timeoutSeconds must not exceed intervalSeconds (timeouts up to "
                f"{MAX_TIMEOUT_ANY_INTERVAL} are always allowed): a guard's queries must end "
                "before its next evaluation is due"
            )
        return self

    @model_validator(mode="after")
    def _metric_names_unique(self) -> GuardSpec:
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(dupes)}")
        return self


# ---------------------------------------------------------------- status


class Phase(StrEnum):
    PENDING = "Pending"
    WATCHING = "Watching"
    BREACHING = "Breaching"
    CONTAINED = "Contained"
    EXHAUSTED = "Exhausted"
    SUSPENDED = "Suspended"
    INVALID = "Invalid"


class Verdict(StrEnum):
    """The guard's verdict for one evaluation."""

    HEALTHY = "Healthy"
    BREACH = "Breach"
    NO_DATA = "NoData"
    INSUFFICIENT_TRAFFIC = "InsufficientTraffic"


class MetricVerdict(StrEnum):
    PASS = "Pass"
    BREACH = "Breach"
    NO_DATA = "NoData"


class ActionResult(StrEnum):
    APPLIED = "Applied"
    FAILED = "Failed"
    DRY_RUN = "DryRun"


class Condition(_Model):
    """metav1.Condition."""

    type: str
    status: str
    reason: str
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = None


class MetricEvaluation(_Model):
    name: str
    verdict: MetricVerdict
    value: float | None = None
    baseline: float | None = None
    max: float | None = None
    min: float | None = None
    max_ratio: float | None = None
    message: str = ""


class LastEvaluation(_Model):
    time: datetime
    verdict: Verdict
    consecutive_breaches: int = 0
    breaching_since: datetime | None = None
    traffic: float | None = None
    metrics: list[MetricEvaluation] = []


class StepReadiness(_Model):
    type: StepType
    index: int
    ready: bool
    reason: str = ""


class KnownGood(_Model):
    revision: str
    images: list[str] = []
    since: datetime
    pod_template_hash: str = ""


class ReleaseObservation(_Model):
    """The target's current revision, and since when it has been healthy (for lastKnownGood)."""

    revision: str
    images: list[str] = []
    pod_template_hash: str = ""
    healthy_since: datetime | None = None


class Revert(_Model):
    """A step of the incident found undone: who wrote what over it (domain/reverts.py)."""

    action: str  # the id of the action whose effect no longer holds
    object: str  # Kind/name
    field: str
    value: str
    manager: str
    time: datetime


class KnownBad(_Model):
    """A pod template this guard contained by Rollback: re-applying it is no new release."""

    hash: str
    images: list[str] = []
    incident: int
    rollbacks: int = 0


class Incident(_Model):
    number: int
    detected_at: datetime
    # Never repeats, unlike `number` after a status reset: see domain/identity.py.
    uid: str | None = None
    # Pod-template hashes that breached: never a Rollback target (domain/rollback_target.py).
    breached_templates: list[str] | None = None
    confirmed_at: datetime | None = None
    contained_at: datetime | None = None
    recovered_at: datetime | None = None
    time_to_contain_seconds: float | None = None
    reason: str = ""
    closed: bool = False
    reverts: int = 0
    reverted: list[Revert] = []


class ActionRecord(_Model):
    id: str
    type: StepType
    step_index: int
    target: str
    result: ActionResult
    time: datetime
    reason: str = ""
    message: str = ""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    patch: dict[str, Any] | None = None


MAX_ACTIONS = 50


class Moment(StrEnum):
    """What a guard tells its spec.notify sinks about (domain/notifications.py)."""

    INCIDENT_OPENED = "IncidentOpened"
    ACTION_APPLIED = "ActionApplied"
    ACTION_FAILED = "ActionFailed"
    ROLLBACK_REFUSED = "RollbackRefused"
    CONTAINMENT_REVERTED = "ContainmentReverted"
    EXHAUSTED = "Exhausted"
    RECOVERED = "Recovered"
    REARMED = "Rearmed"


class Evidence(_Model):
    name: str
    value: float | None = None
    bound: str = ""
    verdict: MetricVerdict = MetricVerdict.PASS


class OwedNotification(_Model):
    """A notification not yet delivered to every sink: the outbox entry, written with the
    transition that owes it, so that a crash between the two loses nothing."""

    key: str
    moment: Moment
    incident: int
    action_id: str = ""
    time: datetime
    phase: Phase
    message: str = ""
    evidence: list[Evidence] = []
    sinks: list[int] = []


class NotificationCounts(_Model):
    sent: int = 0
    failed: int = 0
    pending: int = 0
    last_error: str = ""


MAX_OUTBOX = 50


class GuardStatus(_Model):
    observed_generation: int | None = None
    phase: Phase = Phase.PENDING
    message: str = ""
    conditions: list[Condition] = []
    last_evaluation: LastEvaluation | None = None
    last_action: str | None = None
    readiness: list[StepReadiness] = []
    release: ReleaseObservation | None = None
    last_known_good: KnownGood | None = None
    incident: Incident | None = None
    actions: list[ActionRecord] = []
    handled_annotations: dict[str, str] = {}
    # Keys of the recorded moments whose Kubernetes Event was posted (domain/announce.py).
    announced: list[str] = []
    known_bad: list[KnownBad] = []
    notifications: NotificationCounts | None = None
    outbox: list[OwedNotification] = []
