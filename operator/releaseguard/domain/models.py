"""The ReleaseGuard API (v1alpha1) as pydantic models: spec, status and their parts.

Pure: no I/O, no Kubernetes or Prometheus imports. The CRD in crds/releaseguard.yaml,
the schema users see, is generated from these models by `make crd` (releaseguard/crd.py,
whose docstring says where each part is declared: a field's docstring is its `kubectl
explain` text; `Kube(...)` in its Annotated adds what only the API server checks).
Field names use the CRD's camelCase through aliases; Python code uses snake_case.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from releaseguard.domain import steps
from releaseguard.domain.apibase import ApiModel
from releaseguard.domain.apibase import Blocker as Blocker
from releaseguard.domain.apibase import StepType as StepType
from releaseguard.domain.apibase import data_key as _data_key
from releaseguard.domain.crdschema import (
    LABEL_VALUE,
    Kube,
    dns1123_name,
    http_url,
    matches,
    rule,
)
from releaseguard.domain.steps.blue_green import BlueGreenStep as BlueGreenStep
from releaseguard.domain.steps.canary_weight import CanaryWeightStep as CanaryWeightStep
from releaseguard.domain.steps.feature_flag import FeatureFlagStep as FeatureFlagStep
from releaseguard.domain.steps.rollback import RollbackStep as RollbackStep
from releaseguard.domain.steps.rollback import RollbackTarget as RollbackTarget
from releaseguard.domain.steps.scale import ScaleStep as ScaleStep

GROUP = "releaseguard.io"
VERSION = "v1alpha1"
PLURAL = "releaseguards"
KIND = "ReleaseGuard"
SHORT_NAMES = ("rg",)
CATEGORIES = ("releaseguard",)
# The CRD (crds/releaseguard.yaml) is generated from this module by releaseguard/crd.py
# (`make crd`), which documents where each part of it is declared.
RESOURCE_DESCRIPTION = """A ReleaseGuard watches one release (a Deployment) through Prometheus
queries and, when the release breaches its metrics for long enough, contains it with the
cheapest applicable step: flip a feature flag, move canary weight, scale a canary down,
switch a blue/green Service back, or roll the Deployment back. Every object it names lives
in the guard's own namespace. The guard never undoes its own steps: un-containing is a human
decision (annotate releaseguard.io/rearm to watch again)."""
# kubectl get's columns: name, type, JSON path, description, priority (1: only with -o wide).
PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {
        "name": "Target",
        "type": "string",
        "description": "The Deployment under watch (spec.target.deployment).",
        "jsonPath": ".spec.target.deployment",
    },
    {
        "name": "Phase",
        "type": "string",
        "description": (
            "Pending, Watching, Breaching, Contained, Exhausted, Suspended or Invalid."
        ),
        "jsonPath": ".status.phase",
    },
    {
        "name": "Verdict",
        "type": "string",
        "description": (
            "Verdict of the last evaluation (Healthy, Breach, NoData, InsufficientTraffic)."
        ),
        "jsonPath": ".status.lastEvaluation.verdict",
    },
    {
        "name": "Last Action",
        "type": "string",
        "description": "A one-line summary of the newest containment action.",
        "jsonPath": ".status.lastAction",
    },
    {
        "name": "Breaches",
        "type": "integer",
        "priority": 1,
        "description": "Breaching evaluations in a row, as of the last evaluation.",
        "jsonPath": ".status.lastEvaluation.consecutiveBreaches",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


# The base of every model here (domain/apibase.py; the step kinds' settings use it too).
# BaseModel is named again so that linters see a pydantic model (RUF012).
class _Model(ApiModel, BaseModel):
    pass


# ---------------------------------------------------------------- spec


class NoDataPolicy(StrEnum):
    HOLD = "Hold"
    BREACH = "Breach"


# The step kinds (domain/steps/) declare their settings, default cost and rules.
SPEC_STEP_TYPES = tuple(steps.KINDS)

DEFAULT_COSTS: dict[StepType, int] = {t: k.default_cost for t, k in steps.KINDS.items()}


class Target(_Model):
    deployment: Annotated[
        str, Field(min_length=1), Kube(max_length=253, rules=[dns1123_name("a Deployment's")])
    ]
    """Name of the Deployment under watch, in the guard's namespace. A new revision of it (a
    new release) re-arms the guard; Rollback steps act on it."""


class SecretKeyRef(_Model):
    name: Annotated[str, Kube(min_length=1, max_length=253, rules=[dns1123_name("a Secret's")])]
    """Name of the Secret, in the guard's namespace."""
    key: Annotated[str, _data_key("Secret")]
    """Key in the Secret's data that holds the token (bearerTokenSecretRef) or the URL (a
    webhook's urlSecretRef)."""


def _base_url(field: str, example: str) -> Kube:
    """The CRD's bounds of the base URL of an HTTP API the operator calls."""
    return Kube(min_length=1, max_length=2048, rules=[http_url(field, example)])


class PrometheusSpec(_Model):
    url: Annotated[
        str | None, _base_url("prometheus.url", "http://prometheus.monitoring.svc:9090")
    ] = None
    """Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring.svc:9090.
    Defaults to the operator's --prometheus-url. Must match the operator's allow-list
    (--allowed-url) or the guard is Invalid (URLNotAllowed); redirects are not followed."""
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    """Wall-clock deadline of all the queries of one evaluation, in seconds (1-60, default 5;
    at most intervalSeconds when over 5). A query with no complete answer by then counts as
    no data (see noData), as does an answer over 256 KiB or not in the Prometheus API's
    shape."""
    bearer_token_secret_ref: SecretKeyRef | None = None
    """Optional bearer token for Prometheus, read from a key of a Secret in the guard's
    namespace. The Secret must carry the label releaseguard.io/usable-by-guards: "true"
    (else the guard is Invalid, SecretNotLabelled), and with the chart's admission policy
    the guard's author must be allowed to get it."""


class MinTraffic(_Model):
    query: Annotated[str, Kube(min_length=1, max_length=8192)]
    """PromQL returning ONE number, the release's current traffic, e.g.
    sum(rate(http_requests_total{app="checkout",version="v2"}[1m]))."""
    min: float
    """Below this value (in the query's unit, e.g. requests/s) the guard does not judge."""


NonEmpty = Annotated[str, Field(min_length=1)]


class Metric(_Model):
    """One health signal and its bounds. It needs at least one of max, min and maxRatio; it
    breaches when any bound it has is crossed."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                rule(
                    "has(self.max) || has(self.min) || has(self.maxRatio)",
                    "metric needs at least one bound: set max, min or maxRatio",
                ),
                rule(
                    "!has(self.maxRatio) || has(self.baselineQuery)",
                    "maxRatio needs baselineQuery: the ratio compares query with baselineQuery",
                ),
                rule(
                    "!has(self.min) || !has(self.max) || self.min <= self.max",
                    "min must not be greater than max: no value could pass",
                ),
            ]
        }
    )

    name: Annotated[
        NonEmpty,
        Kube(
            max_length=63,
            rules=[
                matches(
                    LABEL_VALUE,
                    (
                        "metric name must be letters, digits, '-', '_' or '.', "
                        "starting and ending with a letter or digit"
                    ),
                )
            ],
        ),
    ]
    """Name of the metric, unique in this guard (1-63 letters, digits, '-', '_' or '.'). It
    appears in status.lastEvaluation and in action reasons."""
    query: Annotated[NonEmpty, Kube(max_length=8192)]
    """PromQL returning ONE number for the release under watch, e.g. its error ratio. An empty
    result, NaN or a failed query is "no data" (see spec.noData)."""
    max: float | None = None
    """Upper bound. The metric breaches when its value is greater than max."""
    min: float | None = None
    """Lower bound. The metric breaches when its value is less than min (for business metrics
    such as a conversion rate). Must not exceed max."""
    baseline_query: Annotated[str | None, Kube(min_length=1, max_length=8192)] = None
    """PromQL for the same signal on the stable release (e.g. version="v1"). Required with
    maxRatio."""
    max_ratio: Annotated[float, Field(gt=0)] | None = None
    """Relative bound, greater than 0. The metric breaches when value > baseline * maxRatio
    (1.5 = 50% worse than the baseline). When the baseline has no data this bound is
    skipped, not breached. Needs baselineQuery."""

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


class Step(_Model):
    """One containment step. Set type and the matching settings object, nothing else."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                rule(
                    "self.type != 'GitOpsPause'",
                    (
                        "GitOpsPause is not a step: set spec.gitOps.argoCD and "
                        "the guard pauses the Application with the first applied "
                        "step"
                    ),
                ),
                *steps.cel_rules(),
            ]
        }
    )

    type: StepType
    """The kind of step: FeatureFlag (set a ConfigMap key), CanaryWeight (move HTTPRoute weight
    off the canary), Scale (scale a Deployment), BlueGreen (point a Service selector at the
    stable colour) or Rollback (like kubectl rollout undo on the target)."""
    cost: Annotated[int, Field(ge=0)] | None = None
    """Overrides the default cost of this step (FeatureFlag 10, CanaryWeight 20, Scale 30,
    BlueGreen 40, Rollback 50). Lower is tried first. Minimum 0."""
    feature_flag: FeatureFlagStep | None = None
    """For type FeatureFlag: set a key of a ConfigMap to a value (e.g. turn the new code path
    off)."""
    canary_weight: CanaryWeightStep | None = None
    """For type CanaryWeight: set the weight of the canary backend in a Gateway API HTTPRoute;
    the weight taken off goes to the other backends of the same rule."""
    scale: ScaleStep | None = None
    """For type Scale: scale a Deployment (a canary without a mesh, or a secondary integration
    or queue consumer) to a replica count."""
    blue_green: BlueGreenStep | None = None
    """For type BlueGreen: point a Service's selector back at the stable colour."""
    rollback: RollbackStep | None = None
    """For type Rollback (optional there): like kubectl rollout undo on the target Deployment.
    Not applicable once an irreversible change happened (see irreversibleChanges)."""

    @model_validator(mode="after")
    def _sub_object_matches_type(self) -> Step:
        if self.type is StepType.GITOPS_PAUSE:
            raise ValueError(
                "GitOpsPause is not a step: set spec.gitOps.argoCD and the guard pauses the "
                "Application with the first applied step"
            )
        subs = {t: getattr(self, k.field) for t, k in steps.KINDS.items()}
        kind = steps.KINDS[self.type]
        if subs[self.type] is None and kind.needs is None:  # optional settings: defaults
            object.__setattr__(self, kind.field, kind.settings_model())
        elif subs[self.type] is None:
            raise ValueError(f"step of type {self.type} needs its {kind.spec_field} object")
        others = [t for t, sub in subs.items() if t is not self.type and sub is not None]
        if others:
            raise ValueError(f"step of type {self.type} must not carry {others[0]} settings")
        return self

    @property
    def effective_cost(self) -> int:
        return DEFAULT_COSTS[self.type] if self.cost is None else self.cost


class IrreversibleChanges(_Model):
    jobs: Annotated[
        list[
            Annotated[
                str,
                Kube(
                    description="Name of a Job in the guard's namespace.",
                    min_length=1,
                    max_length=63,
                    rules=[dns1123_name("a Job's")],
                ),
            ]
        ],
        Kube(max_items=50, extra={"x-kubernetes-list-type": "set"}),
    ] = []
    """Names of Jobs (e.g. schema migrations), in the guard's namespace. One of them succeeding
    since the target's current revision appeared counts as an irreversible change. At most
    50."""


class WebhookFormat(StrEnum):
    JSON = "JSON"
    SLACK = "Slack"


class WebhookSink(_Model):
    url_secret_ref: SecretKeyRef
    """The Secret key holding the URL (a Secret in the guard's namespace with the label
    releaseguard.io/usable-by-guards: "true", else the guard is Invalid, SecretNotLabelled).
    The URL must match the operator's allow-list (--allowed-url), else URLNotAllowed. The
    same Secret's key hmacKey, if present, signs JSON bodies."""
    format: WebhookFormat = WebhookFormat.JSON
    """JSON (default): the notification as a JSON document. Slack: a Slack incoming-webhook
    message ({"text": ...}), unsigned."""


class AlertmanagerSink(_Model):
    url: Annotated[
        str | None, _base_url("alertmanager.url", "http://alertmanager.monitoring:9093")
    ] = None
    """Base URL of the Alertmanager, e.g. http://alertmanager.monitoring:9093. Defaults to the
    operator's --alertmanager-url. Must match the operator's allow-list (--allowed-url),
    else URLNotAllowed."""


# One place to tell: exactly one of webhook, alertmanager (domain/notifications.py).
class NotifySink(_Model):
    """One sink; exactly one of webhook, alertmanager."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                rule(
                    "has(self.webhook) != has(self.alertmanager)",
                    "a notify entry needs exactly one of webhook, alertmanager",
                ),
            ]
        }
    )

    webhook: WebhookSink | None = None
    """An HTTP POST per notification. JSON bodies carry the idempotency key <guard
    uid>/<incident>/<moment>/<action id> (also in the Idempotency-Key header) and, when the
    Secret has a key hmacKey, the header X-ReleaseGuard-Signature: sha256=<hex HMAC-SHA256
    of the body>."""
    alertmanager: AlertmanagerSink | None = None
    """One alert ReleaseGuardIncident per open incident (labels namespace, guard, target,
    severity, phase), re-posted while it is open and resolved on recovery or re-arm."""

    @model_validator(mode="after")
    def _one_kind(self) -> NotifySink:
        if (self.webhook is None) == (self.alertmanager is None):
            raise ValueError("a notify entry needs exactly one of webhook, alertmanager")
        return self


MAX_SINKS = 10


class OnRevert(_Model):
    """What to do when someone undoes a step (domain/reverts.py)."""

    reapply: Annotated[int, Field(ge=0, le=10)] = 3
    """How many times per incident an undone step is applied again, waiting intervalSeconds x
    2^n before the n-th time. Past it the step counts as failed and the guard escalates.
    Default 3; 0 = never re-apply; at most 10."""


class ArgoCDApplication(_Model):
    application: Annotated[NonEmpty, Kube(max_length=253)]
    """The Application's name."""
    namespace: Annotated[NonEmpty, Kube(max_length=63)]
    """The Application's namespace (often argocd)."""


class GitOpsSpec(_Model):
    """Stop the GitOps reconciler that would undo containment."""

    flux: bool = False
    """true: every object a step changes also gets the annotation
    kustomize.toolkit.fluxcd.io/reconcile: disabled in the same write, so Flux stops
    applying it. Default false."""
    argo_cd: ArgoCDApplication | None = Field(default=None, alias="argoCD")
    """The Argo CD Application that deploys the target. With the first applied step of an
    incident the guard removes its spec.syncPolicy.automated (an action of type GitOpsPause
    whose before keeps the old value, so a human can restore it). The one object outside the
    guard's namespace a guard may name; the operator needs --argocd-cross-namespace to reach
    another namespace."""


# A timeoutSeconds up to this is allowed whatever intervalSeconds (the default is 5).
MAX_TIMEOUT_ANY_INTERVAL = 5


class GuardSpec(_Model):
    """What to watch, what counts as a bad release and how to contain it. Durations are whole
    seconds in fields ending in Seconds."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                rule(
                    (
                        "!has(self.prometheus) || "
                        "!has(self.prometheus.timeoutSeconds) || "
                        "self.prometheus.timeoutSeconds <= 5 || "
                        "self.prometheus.timeoutSeconds <= self.intervalSeconds"
                    ),
                    (
                        "prometheus.timeoutSeconds must not exceed "
                        "intervalSeconds (timeouts up to 5 are always allowed): a"
                        " guard's queries must end before its next evaluation is "
                        "due"
                    ),
                ),
            ]
        }
    )

    target: Target
    """The release under watch."""
    metrics: Annotated[
        Annotated[list[Metric], Field(min_length=1, max_length=20)],
        Kube(
            rules=[
                rule(
                    "self.all(m, self.exists_one(n, n.name == m.name))",
                    "metric names must be unique",
                )
            ]
        ),
    ]
    """The health signals of the release, 1 to 20, with unique names. Each query must return
    ONE number. An evaluation breaches when any metric breaches."""
    prometheus: PrometheusSpec = PrometheusSpec()
    """Where and how to query Prometheus. Optional: without url the operator's --prometheus-url
    (RELEASEGUARD_PROMETHEUS_URL) is used."""
    interval_seconds: Annotated[int, Field(ge=1)] = 15
    """Evaluation period in seconds: every metric is queried this often. Default 15, minimum 1."""
    # None: intervalSeconds (today's cadence). See domain/confirmation.py.
    confirm_interval_seconds: Annotated[int, Field(ge=1)] | None = None
    """Delay before the next evaluation while a breach is being counted: after a breaching
    evaluation that does not yet confirm the breach (consecutiveBreaches not reached, no
    incident open), the next evaluation runs this many seconds later instead of
    intervalSeconds, until the breach is confirmed or an evaluation is not a breach. Healthy
    guards keep intervalSeconds. Default: intervalSeconds; minimum 1. Set it to at least the
    scrape interval of the queried series: a confirmation on the same samples adds no
    evidence (the guard posts a Warning Event StaleConfirmation when a confirming evaluation
    gets exactly the previous answers)."""
    consecutive_breaches: Annotated[int, Field(ge=1)] = 2
    """How many breaching evaluations in a row confirm a breach and start containment. Default
    2, minimum 1 (1 acts on the first breaching evaluation)."""
    no_data: NoDataPolicy = NoDataPolicy.HOLD
    """What an empty, NaN or failed query means. Hold (default) neither counts it as a breach
    nor resets the count; Breach treats it as a breaching evaluation (use it when silence
    itself is a symptom)."""
    min_traffic: MinTraffic | None = None
    """Optional traffic floor. When the query returns less than min (or no series, or NaN) the
    evaluation is InsufficientTraffic: the breach count is held and nothing acts, so a
    handful of requests cannot trigger a rollback."""
    steps: Annotated[list[Step], Kube(max_items=20)] = []
    """Containment candidates (at most 20). On a confirmed breach the operator applies the
    cheapest APPLICABLE step (its objects exist, it would change something, its
    preconditions hold); a step is taken at most once per incident. Default costs, cheapest
    first: FeatureFlag 10, CanaryWeight 20, Scale 30, BlueGreen 40, Rollback 50; ties go to
    list order. Each step carries the settings object named after its type (rollback's is
    optional)."""
    escalate_after_seconds: Annotated[int, Field(ge=0)] = 60
    """Seconds the breach may persist after a step before the next cheapest applicable step is
    taken. Default 60, minimum 0."""
    known_good_after_seconds: Annotated[int, Field(ge=0)] = 60
    """Seconds a revision must evaluate healthy before it becomes the last known good revision
    that Rollback restores. Default 60, minimum 0."""
    irreversible_changes: IrreversibleChanges = IrreversibleChanges()
    """Changes that a version rollback cannot undo (version restore is not state restore). Once
    any holds, Rollback is not applicable. The annotation releaseguard.io/irreversible:
    "true" on the target Deployment holds too."""
    dry_run: bool = False
    """true: evaluate, plan and record what would have been done (actions with result DryRun)
    but patch nothing. Default false."""
    suspend: bool = False
    """true: no evaluation at all; the phase is Suspended. Default false."""
    on_revert: OnRevert = OnRevert()
    """What to do when someone (a GitOps reconciler, kubectl apply, a pipeline) undoes a
    containment step during an incident."""
    git_ops: GitOpsSpec = GitOpsSpec()
    notify: Annotated[list[NotifySink], Field(max_length=MAX_SINKS)] = []
    """Where to tell people about an incident: IncidentOpened, ActionApplied, ActionFailed,
    RollbackRefused, ContainmentReverted, Exhausted, Recovered and Rearmed. Delivery is
    queued and retried for 10 minutes and never delays containment; what is owed is kept in
    status.outbox until sent. At most 10."""

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
    """A metav1.Condition."""

    type: Annotated[str, Kube(max_length=316)]
    """Condition type, e.g. Ready or RollbackReady."""
    status: Annotated[str, Kube(extra={"enum": ["True", "False", "Unknown"]})]
    """True, False or Unknown."""
    reason: Annotated[str, Kube(max_length=1024)]
    """A CamelCase reason for the last transition, e.g. KnownGoodRevision."""
    message: Annotated[str, Kube(max_length=32768)] = ""
    """Human-readable detail, e.g. "revision 7 (checkout:1.41)"."""
    last_transition_time: datetime
    """When status last changed."""
    observed_generation: Annotated[int | None, Kube(extra={"minimum": 0})] = None
    """The metadata.generation the condition was set for."""


class MetricEvaluation(_Model):
    """The result of one metric."""

    name: str
    """The metric's name from spec.metrics."""
    verdict: MetricVerdict
    """Pass, Breach or NoData."""
    value: float | None = None
    """The query's value (absent when there was no data)."""
    baseline: float | None = None
    """The baselineQuery's value, for maxRatio metrics."""
    max: float | None = None
    """The max bound checked."""
    min: float | None = None
    """The min bound checked."""
    max_ratio: float | None = None
    """The maxRatio bound checked."""
    message: Annotated[str, Kube(max_length=1024)] = ""
    """Why the metric breached or had no data."""


class LastEvaluation(_Model):
    time: datetime
    """When the evaluation ran."""
    verdict: Verdict
    """Healthy, Breach (some metric breached), NoData (a query had no data and noData is Hold)
    or InsufficientTraffic (below spec.minTraffic; nothing acts)."""
    consecutive_breaches: int = 0
    """Breaching evaluations in a row so far; a breach is confirmed at
    spec.consecutiveBreaches."""
    breaching_since: datetime | None = None
    """Time of the first evaluation of the current run of breaching evaluations, if any."""
    traffic: float | None = None
    """Value of the spec.minTraffic query, when set and available."""
    metrics: list[MetricEvaluation] = []
    """Per-metric results of this evaluation."""


class StepReadiness(_Model):
    """Readiness of one step."""

    type: StepType
    """The step's type."""
    index: int
    """The step's position in spec.steps, from 0."""
    ready: bool
    """True when the step is applicable now."""
    reason: Annotated[str, Kube(max_length=1024)] = ""
    """Why the step is not ready (or what it would do)."""
    code: Blocker | None = None  # set when not ready
    """Why the step is not ready, for programs (reason says it for people): AlreadySet,
    NoBackend, NoReadyPods, StateChanged (rollback refused), AtKnownGood, AtPlanned,
    NoKnownGood, NoPreviousRevision, Breached, RevisionGone, Missing, Yielded,
    NothingToPause or Unusable. Absent when the step is ready."""


class KnownGood(_Model):
    revision: str
    """The Deployment revision."""
    images: list[Annotated[str, Kube(description="A container image.")]] = []
    """The container images of that revision."""
    since: datetime
    """Since when the revision has been healthy."""
    pod_template_hash: str = ""
    """The pod-template-hash label of that revision's ReplicaSet."""


class ReleaseObservation(_Model):
    """The target's current revision, and since when it has been healthy (for lastKnownGood)."""

    revision: str
    """The Deployment revision (deployment.kubernetes.io/revision)."""
    images: list[Annotated[str, Kube(description="A container image.")]] = []
    """The container images of that revision."""
    pod_template_hash: str = ""
    """The pod-template-hash label of that revision's ReplicaSet."""
    healthy_since: datetime | None = None
    """Start of the current healthy streak, if any."""


# A step of the incident found undone: who wrote what over it (domain/reverts.py).
class Revert(_Model):
    """One step found undone, and who wrote over it."""

    action: str  # the id of the action whose effect no longer holds
    """The id of the action whose effect no longer held."""
    object: str  # Kind/name
    """The object, as Kind/name."""
    field: str
    """The field found changed, e.g. spec.replicas."""
    value: Annotated[str, Kube(max_length=1024)]
    """The value found in that field."""
    manager: str
    """The field manager that wrote it (from managedFields)."""
    time: datetime
    """When the guard found it."""


# A pod template this guard contained by Rollback: re-applying it is no new release.
class KnownBad(_Model):
    """One known-bad pod template."""

    hash: str
    """Its pod-template-hash."""
    images: list[Annotated[str, Kube(description="A container image.")]] = []
    """Its container images."""
    incident: int
    """The incident that first rolled it back."""
    rollbacks: int = 0
    """How many times this guard rolled it back (at most onRevert.reapply + 1)."""


class Incident(_Model):
    number: int
    """Incident counter for this guard, from 1."""
    detected_at: datetime
    """Time of the first breaching evaluation."""
    # Never repeats, unlike `number` after a status reset: see domain/identity.py.
    uid: Annotated[str | None, Kube(max_length=64)] = None
    """The incident's identity, which never repeats (unlike number after a status reset): its
    opening time in UTC. Action markers on objects carry it; a marker of another incident is
    never taken as applied."""
    # Pod-template hashes that breached: never a Rollback target (domain/rollback_target.py).
    breached_templates: Annotated[
        list[Annotated[str, Kube(description="A pod-template-hash label value.", max_length=64)]]
        | None,
        Kube(max_items=5),
    ] = None
    """Pod-template hashes of the target that were live while the breach was measured (this
    incident's and the previous incident's, at most 5). Rollback never restores one of them."""
    confirmed_at: datetime | None = None
    """Time the breach was confirmed (consecutiveBreaches reached)."""
    contained_at: datetime | None = None
    """Time the first step was applied."""
    recovered_at: datetime | None = None
    """Time of the first healthy evaluation after containment."""
    time_to_contain_seconds: float | None = None
    """Seconds from detectedAt to containedAt."""
    reason: Annotated[str, Kube(max_length=1024)] = ""
    """What breached, e.g. "error-rate 0.31 > 0.05 for 2 evaluations"."""
    closed: bool = False
    """True once the incident ended (re-armed or a new release)."""
    reverts: int = 0
    """How many times a step of this incident was found undone."""
    reverted: Annotated[list[Revert], Kube(max_items=20)] = []
    """The reverts of this incident, oldest first (at most 20 kept)."""


class ActionRecord(_Model):
    """One action taken (or, in dryRun, planned) by the guard."""

    id: str
    """Stable id, e.g. 3-canaryweight-1; a restarted operator never applies the same action
    twice."""
    # The incident the action belongs to (None: a record written before this field,
    # or none); read this, never the id's prefix.
    incident: int | None = None
    """The number of the incident the action belongs to."""
    type: StepType
    """The step's type."""
    step_index: int
    """The step's position in spec.steps, from 0."""
    target: str
    """The object acted on, as Kind/name, e.g. HTTPRoute/checkout."""
    result: ActionResult
    """Applied, Failed or DryRun."""
    time: datetime
    """When the action was taken."""
    reason: Annotated[str, Kube(max_length=1024)] = ""
    """Why, e.g. "error-rate 0.31 > 0.05 for 2 evaluations"."""
    message: Annotated[str, Kube(max_length=1024)] = ""
    """Detail, e.g. the error of a Failed action."""
    before: dict[str, Any] = {}
    """The relevant state before the action (e.g. backend weights)."""
    after: dict[str, Any] = {}
    """The relevant state after the action."""
    patch: dict[str, Any] | None = None
    """The patch sent to the target object, if any."""


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
    """One metric's value and bound."""

    name: str
    """The metric's name."""
    value: float | None = None
    """Its value (absent when there was no data)."""
    bound: str = ""
    """Its bound, e.g. "max 0.05"."""
    verdict: MetricVerdict = MetricVerdict.PASS
    """Pass, Breach or NoData."""


# A notification not yet delivered to every sink: the outbox entry, written with the
# transition that owes it, so that a crash between the two loses nothing.
class OwedNotification(_Model):
    """One notification owed."""

    key: str
    """<incident>/<moment>/<action id>; the guard's uid in front makes the idempotency key."""
    moment: Moment
    """What happened."""
    incident: int
    """The incident's number."""
    action_id: str = ""
    """The action's id, for ActionApplied and ActionFailed."""
    time: datetime
    """When it happened; delivery is retried until 10 minutes after."""
    phase: Phase
    """The guard's phase then."""
    message: Annotated[str, Kube(max_length=1024)] = ""
    """One line saying what happened."""
    evidence: Annotated[list[Evidence], Kube(max_items=20)] = []
    """The metrics of the evaluation then."""
    sinks: list[Annotated[int, Kube(description="A position in spec.notify, from 0.")]] = []
    """Positions in spec.notify still owed this notification."""


class NotificationCounts(_Model):
    sent: int = 0
    """Notifications a sink accepted."""
    failed: int = 0
    """Notifications given up on (refused, or not accepted within 10 minutes)."""
    pending: int = 0
    """Notifications owed to a sink and not yet delivered."""
    last_error: Annotated[str, Kube(max_length=1024)] = ""
    """The newest delivery failure."""


MAX_OUTBOX = 50


class GuardStatus(_Model):
    """Observed state, written by the operator. Do not edit."""

    observed_generation: int | None = None
    """The metadata.generation of the spec this status reflects."""
    phase: Phase = Phase.PENDING
    """Pending: not evaluated yet. Watching: evaluating, no confirmed breach. Breaching: breach
    confirmed, no step applied yet (or dryRun). Contained: a step was applied in the current
    incident (stays so after recovery until re-armed). Exhausted: breach confirmed and no
    applicable step left. Suspended: spec.suspend is true. Invalid: the spec cannot work at
    run time; see message and conditions."""
    message: Annotated[str, Kube(max_length=4096)] = ""
    """Human-readable detail on the phase, e.g. which object is missing when Invalid."""
    conditions: Annotated[
        list[Condition],
        Kube(extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
    ] = []
    """Standard conditions: Ready, MetricsAvailable, Breached, Contained, RollbackReady."""
    last_evaluation: LastEvaluation | None = None
    """The most recent evaluation of the metrics as written: at once when the verdict, the
    breach count or any other status field changes, and otherwise once per the operator's
    --status-heartbeat (default 60 s), so a steady guard's values and time may be up to a
    heartbeat old."""
    last_action: Annotated[str | None, Kube(max_length=1024)] = None
    """A one-line summary of the newest action (shown by kubectl get)."""
    readiness: list[StepReadiness] = []
    """Whether each step in spec.steps could be used right now, and why not ("rollback without
    preparation is theater")."""
    release: ReleaseObservation | None = None
    """The target Deployment's current revision, and since when it has been healthy."""
    last_known_good: KnownGood | None = None
    """The newest revision that stayed healthy for spec.knownGoodAfterSeconds; what Rollback
    restores."""
    incident: Incident | None = None
    """The current or last incident."""
    actions: Annotated[list[ActionRecord], Kube(max_items=50)] = []
    """Containment actions, newest last; at most 50 are kept."""
    handled_annotations: dict[
        str, Annotated[str, Kube(description="The annotation's last handled value.")]
    ] = {}
    """The last value acted on for each manual-control annotation (releaseguard.io/contain-now,
    releaseguard.io/rearm); each new value is acted on once."""
    # Keys of the recorded moments whose Kubernetes Event was posted (domain/announce.py).
    announced: Annotated[
        list[
            Annotated[
                str,
                Kube(
                    description="A moment's key, e.g. <incident uid>/action/<action id>.",
                    max_length=160,
                ),
            ]
        ],
        Kube(max_items=100),
    ] = []
    """Keys of the recorded moments (an incident opening, an action) whose Kubernetes Event has
    been posted, newest last (at most 100). A restarted operator posts the Events of what is
    recorded and not listed here, once."""
    known_bad: Annotated[list[KnownBad], Kube(max_items=10)] = []
    """Pod templates this guard contained by Rollback, newest first (at most 10). Re-applying
    one is not a new release: it does not re-arm the guard."""
    notifications: NotificationCounts | None = None
    """Delivery of spec.notify, counted per notification and sink."""
    outbox: Annotated[list[OwedNotification], Kube(max_items=50)] = []
    """Notifications owed and not yet delivered to every sink, written with the transition that
    owes them so that a restart or a failover loses none. At most 50."""
