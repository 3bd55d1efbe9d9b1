"""What a step kind is: the one definition each kind module (domain/steps/*.py) gives.

A kind declares its settings model (the sub-object of a step, e.g. spec.steps[].scale),
its default cost, the CEL rule that a step of its type carries its settings, the object
it names, the change it makes to that object (or why it cannot), what else decides
whether it is ready, what "still holds" means once applied (revert checks) and which
field it claims (overlap checks). The rest of the operator asks the registry
(domain/steps/__init__.py) instead of switching on the step type, the way Flagger's
router factory hands out one router per mesh behind one interface.

Pure: functions of the settings and plain object dicts. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from releaseguard.domain.apibase import ApiModel, StepType
from releaseguard.domain.changes import Change, NotApplicable, Obj

if TYPE_CHECKING:
    from releaseguard.domain.models import KnownGood

MAX_VALUE_CHARS = 200  # a found value goes into Events and status: bounded

S = TypeVar("S", bound=ApiModel)


@dataclass(frozen=True)
class Surroundings:
    """What, besides the object itself, decides whether a step applies."""

    replica_sets: Sequence[Obj] = ()  # Rollback: the target's ReplicaSets
    ready_pods: int = 0  # BlueGreen: Ready pods of the stable colour
    succeeded_jobs: Sequence[str] = ()  # Rollback: declared Jobs that succeeded since


@dataclass(frozen=True)
class Context:
    """What a change may depend on besides the object: its surroundings, the guard's
    known-good revision, the templates that breached (given the current one) and, for a
    step being applied, the target fixed when it was planned."""

    around: Surroundings = Surroundings()
    known_good: KnownGood | None = None
    breached: Callable[[str], Collection[str]] = field(default=lambda _current: ())
    pinned_hash: str | None = None


@dataclass(frozen=True)
class Undone:
    """What an object shows where a step's effect should be."""

    field: str  # as a human reads it: spec.replicas
    value: str  # what was found there
    path: tuple[str, ...]  # the same field in managedFields' fieldsV1 notation


@dataclass(frozen=True, order=True)
class Claim:
    object: str  # Kind/name, in the guard's namespace
    field: str


def put(target: dict[str, Any], key: str, value: object) -> None:
    """Write a `before` value back: None means the field did not exist before."""
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def text(value: object) -> str:
    """A value found in an object, bounded for Events and status."""
    return str(value)[:MAX_VALUE_CHARS]


class StepKind(Generic[S]):
    """One step kind. Subclasses set the class attributes and implement the methods;
    `settings` is the step's sub-object, `target` the guard's spec.target.deployment."""

    type: ClassVar[StepType]
    settings_model: ClassVar[type[ApiModel]]
    field: ClassVar[str]  # the Step attribute holding the settings, e.g. "feature_flag"
    default_cost: ClassVar[int]
    # The CEL message when a step of this type lacks its settings; None: they are optional.
    needs: ClassVar[str | None] = None
    # Why an Applied step of this kind must not be undone by writing its `before` back
    # (kubectl releaseguard undo), or None when it may.
    undo_refused: ClassVar[str | None] = None
    # True: the kind changes the guard's target, read with its ReplicaSets and the Jobs
    # that succeeded since its rollout started (Surroundings); False: the object it names.
    on_target: ClassVar[bool] = False

    @property
    def spec_field(self) -> str:
        """The settings' name in the spec: featureFlag (to_camel would give featureflag)."""
        return self.type.value[0].lower() + self.type.value[1:]

    def object_of(self, settings: S, target: str) -> tuple[str, str]:
        """The kind and name of the object the step writes (in the guard's namespace)."""
        raise NotImplementedError

    def change(self, settings: S, obj: Obj, ctx: Context) -> Change | NotApplicable:
        """What the step would write to `obj` now, or why it cannot."""
        raise NotImplementedError

    def ready_pods_selector(self, settings: S, obj: Obj) -> dict[str, str] | None:
        """Readiness beyond the object: the pods that must be Ready for the step to
        apply (Surroundings.ready_pods counts them), or None when none must."""
        return None

    def undone(self, settings: S, after: Mapping[str, Any], obj: Obj) -> Undone | None:
        """None while the effect of the step (its record's `after`) holds in `obj`."""
        raise NotImplementedError

    def claim(self, settings: S, target: str) -> Claim:
        """The object and field the step writes, for overlap checks between guards."""
        raise NotImplementedError

    def write_back(self, before: Mapping[str, Any], obj: Obj, new: Obj) -> dict[str, Any] | str:
        """Undo (kubectl releaseguard undo): write the record's `before` into `new`, a
        copy of `obj`; return what `obj` holds there now (compared with the record's
        `after`), or why it cannot be written back."""
        raise NotImplementedError

    def pinned(self, change: Change) -> str | None:
        """What the write (and each 409 redo) must keep as planned, or None."""
        return None
