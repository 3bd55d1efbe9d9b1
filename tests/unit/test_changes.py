"""What each step would change in one Kubernetes object, or why it cannot."""

import copy

import pytest

from releaseguard.domain.changes import (
    Change,
    NotApplicable,
    current_replica_set,
    images_of,
    irreversible_reason,
)
from releaseguard.domain.models import (
    Blocker,
    BlueGreenStep,
    CanaryWeightStep,
    FeatureFlagStep,
    KnownGood,
    RollbackStep,
    RollbackTarget,
    ScaleStep,
)
from releaseguard.domain.steps.blue_green import blue_green_change
from releaseguard.domain.steps.canary_weight import canary_weight_change, redistribute
from releaseguard.domain.steps.feature_flag import feature_flag_change
from releaseguard.domain.steps.rollback import rollback_change
from releaseguard.domain.steps.scale import scale_change
from unit.builders import (
    T0,
    backend,
    config_map,
    deployment,
    http_route,
    pod_template,
    replica_set,
    service,
)

FLAG = FeatureFlagStep(config_map="checkout-flags", key="new-flow", value="false")
CANARY = CanaryWeightStep(http_route="checkout", canary_backend="checkout-v2", weight=0)
SCALE = ScaleStep(deployment="checkout-v2", replicas=0)
BLUE = BlueGreenStep(service="checkout", selector_key="color", stable_value="blue")


def unchanged_input(fn, *args):
    """Call fn and check it did not modify its object arguments."""
    before = copy.deepcopy(args)
    result = fn(*args)
    assert args == before, "the input object was modified"
    return result


# ---------------------------------------------------------------- feature flag


@pytest.mark.parametrize(
    ("data", "old"),
    [
        pytest.param({"new-flow": "true", "other": "x"}, "true", id="flag-on"),
        pytest.param({"other": "x"}, None, id="flag-missing"),
        pytest.param(None, None, id="no-data-at-all"),
        pytest.param({"new-flow": "False"}, "False", id="case-differs"),
    ],
)
def test_feature_flag_sets_the_key(data, old):
    cm = config_map(data)

    change = unchanged_input(feature_flag_change, FLAG, cm)

    assert isinstance(change, Change)
    expected = config_map({**(data or {}), "new-flow": "false"})
    assert change.new_object == expected
    assert change.patch == {"data": {"new-flow": "false"}}
    assert change.before == {"new-flow": old}
    assert change.after == {"new-flow": "false"}


def test_feature_flag_already_set_is_not_applicable():
    result = feature_flag_change(FLAG, config_map({"new-flow": "false"}))

    assert result == NotApplicable("flag new-flow is already 'false'", Blocker.ALREADY_SET)


# ---------------------------------------------------------------- scale


@pytest.mark.parametrize(
    ("replicas", "target", "old"),
    [
        pytest.param(3, 0, 3, id="scale-to-zero"),
        pytest.param(None, 0, 1, id="unset-replicas-default-to-one"),
        pytest.param(0, 2, 0, id="scale-up"),
    ],
)
def test_scale_sets_replicas(replicas, target, old):
    d = deployment(name="checkout-v2", replicas=replicas)
    step = ScaleStep(deployment="checkout-v2", replicas=target)

    change = unchanged_input(scale_change, step, d)

    assert isinstance(change, Change)
    expected = deployment(name="checkout-v2", replicas=target)
    assert change.new_object == expected
    assert change.patch == {"spec": {"replicas": target}}
    assert (change.before, change.after) == ({"replicas": old}, {"replicas": target})


@pytest.mark.parametrize(
    ("replicas", "target"),
    [pytest.param(0, 0, id="already-zero"), pytest.param(None, 1, id="unset-is-already-one")],
)
def test_scale_already_there_is_not_applicable(replicas, target):
    d = deployment(name="checkout-v2", replicas=replicas)

    result = scale_change(ScaleStep(deployment="checkout-v2", replicas=target), d)

    assert result == NotApplicable(
        f"Deployment checkout-v2 already has {target} replicas", Blocker.ALREADY_SET
    )


# ---------------------------------------------------------------- blue-green


def test_blue_green_points_the_selector_at_the_stable_colour():
    svc = service({"app": "checkout", "color": "green"})

    change = unchanged_input(blue_green_change, BLUE, svc, 3)

    assert isinstance(change, Change)
    assert change.new_object == service({"app": "checkout", "color": "blue"})
    assert change.patch == {"spec": {"selector": {"color": "blue"}}}
    assert (change.before, change.after) == ({"color": "green"}, {"color": "blue"})


def test_blue_green_adds_the_key_when_the_selector_lacks_it():
    change = blue_green_change(BLUE, service({"app": "checkout"}), 1)

    assert isinstance(change, Change)
    assert change.new_object["spec"]["selector"] == {"app": "checkout", "color": "blue"}
    assert change.before == {"color": None}


@pytest.mark.parametrize(
    ("selector", "ready_pods", "reason"),
    [
        pytest.param(
            {"color": "blue"},
            3,
            "Service checkout already selects color=blue",
            id="already-stable",
        ),
        pytest.param(
            {"color": "blue"},
            0,
            "Service checkout already selects color=blue",
            id="already-stable-wins-over-no-pods",
        ),
        pytest.param(
            {"color": "green"},
            0,
            "the stable colour color=blue has no Ready pods",
            id="stable-colour-has-no-ready-pods",
        ),
    ],
)
def test_blue_green_not_applicable(selector, ready_pods, reason):
    result = blue_green_change(BLUE, service(selector), ready_pods)
    assert isinstance(result, NotApplicable) and result.reason == reason
    code = Blocker.NO_READY_PODS if "no Ready pods" in reason else Blocker.ALREADY_SET
    assert result.code is code


# ---------------------------------------------------------------- canary weight


@pytest.mark.parametrize(
    ("weights", "canary", "target", "expected"),
    [
        pytest.param({"v1": 90, "v2": 10}, "v2", 0, {"v1": 100, "v2": 0}, id="two-to-zero"),
        pytest.param({"v1": 50, "v2": 50}, "v2", 20, {"v1": 80, "v2": 20}, id="two-partial"),
        pytest.param(
            {"a": 60, "b": 30, "v2": 10}, "v2", 0, {"a": 67, "b": 33, "v2": 0}, id="three-largest"
        ),
        pytest.param(
            {"a": 60, "v2": 30, "c": 10}, "v2", 0, {"a": 86, "v2": 0, "c": 14}, id="canary-middle"
        ),
        pytest.param(
            {"a": 1, "b": 1, "c": 1, "v2": 1},
            "v2",
            0,
            {"a": 1, "b": 1, "c": 2, "v2": 0},
            id="ties-broken-deterministically",
        ),
        pytest.param({"v1": 0, "v2": 100}, "v2", 0, {"v1": 100, "v2": 0}, id="others-all-zero"),
        pytest.param({"v1": 90, "v2": 10}, "v2", 100, {"v1": 0, "v2": 100}, id="all-to-canary"),
        pytest.param({"v2": 100}, "v2", 0, {"v2": 0}, id="canary-alone"),
    ],
)
def test_redistribute_keeps_whole_numbers_in_proportion(weights, canary, target, expected):
    result = redistribute(weights, canary, target)

    assert result == expected
    assert list(result) == list(weights)


@pytest.mark.parametrize(
    ("weights", "target"),
    [
        ({"a": 60, "b": 30, "v2": 10}, 0),
        ({"a": 7, "b": 3, "c": 1, "v2": 89}, 5),
        ({"a": 33, "b": 33, "c": 33, "v2": 1}, 0),
        ({"a": 1, "b": 2, "v2": 3}, 1),
    ],
    ids=["60-30-10", "uneven", "thirds", "small"],
)
def test_redistribute_keeps_the_total(weights, target):
    result = redistribute(weights, "v2", target)

    assert sum(result.values()) == sum(weights.values())
    assert result["v2"] == target


def test_canary_weight_moves_weight_off_the_canary():
    route = http_route([backend("checkout-v1", 90), backend("checkout-v2", 10)])

    change = unchanged_input(canary_weight_change, CANARY, route)

    assert isinstance(change, Change)
    expected = http_route([backend("checkout-v1", 100), backend("checkout-v2", 0)])
    assert change.new_object == expected
    assert change.patch == {"spec": {"rules": expected["spec"]["rules"]}}
    assert change.before == {"checkout-v1": 90, "checkout-v2": 10}
    assert change.after == {"checkout-v1": 100, "checkout-v2": 0}


def test_canary_weight_with_three_backends_is_proportional():
    route = http_route([backend("a", 60), backend("b", 30), backend("checkout-v2", 10)])

    change = canary_weight_change(CANARY, route)

    assert isinstance(change, Change)
    assert change.after == {"a": 67, "b": 33, "checkout-v2": 0}


def test_canary_weight_counts_an_unset_weight_as_one():
    route = http_route([backend("checkout-v1"), backend("checkout-v2")])

    change = canary_weight_change(CANARY, route)

    assert isinstance(change, Change)
    assert change.before == {"checkout-v1": 1, "checkout-v2": 1}
    assert change.after == {"checkout-v1": 2, "checkout-v2": 0}
    assert change.new_object == http_route([backend("checkout-v1", 2), backend("checkout-v2", 0)])


def test_canary_weight_changes_every_rule_that_names_the_canary():
    route = http_route(
        [backend("checkout-v1", 90), backend("checkout-v2", 10)],
        [backend("static", 1)],
        [backend("checkout-v1", 50), backend("checkout-v2", 50)],
    )

    change = canary_weight_change(CANARY, route)

    assert isinstance(change, Change)
    rules = change.new_object["spec"]["rules"]
    assert rules[0]["backendRefs"] == [backend("checkout-v1", 100), backend("checkout-v2", 0)]
    assert rules[1]["backendRefs"] == [backend("static", 1)]
    assert rules[2]["backendRefs"] == [backend("checkout-v1", 100), backend("checkout-v2", 0)]
    assert change.after == {
        "rules[0].checkout-v1": 100,
        "rules[0].checkout-v2": 0,
        "rules[2].checkout-v1": 100,
        "rules[2].checkout-v2": 0,
    }


def test_canary_weight_leaves_a_rule_already_at_the_weight_alone():
    route = http_route(
        [backend("checkout-v1", 100), backend("checkout-v2", 0)],
        [backend("checkout-v1", 80), backend("checkout-v2", 20)],
    )

    change = canary_weight_change(CANARY, route)

    assert isinstance(change, Change)
    assert change.before == {"rules[1].checkout-v1": 80, "rules[1].checkout-v2": 20}


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        pytest.param(
            http_route([backend("checkout-v1", 100), backend("checkout-v2", 0)]),
            "backend checkout-v2 already has weight 0",
            id="already-at-weight",
        ),
        pytest.param(
            http_route([backend("checkout-v1", 100)]),
            "HTTPRoute checkout has no backendRef named checkout-v2",
            id="no-such-backend",
        ),
        pytest.param(
            {"metadata": {"name": "checkout"}, "spec": {}},
            "HTTPRoute checkout has no backendRef named checkout-v2",
            id="no-rules",
        ),
    ],
)
def test_canary_weight_not_applicable(route, reason):
    result = canary_weight_change(CANARY, route)
    assert isinstance(result, NotApplicable) and result.reason == reason
    code = Blocker.NO_BACKEND if "no backendRef" in reason else Blocker.ALREADY_SET
    assert result.code is code


# ---------------------------------------------------------------- rollback

# Revision 1 (hash "good", 1.40), 2 (hash "prev", 1.41) and the current 3 (hash "bad", 1.42).
SETS = [
    replica_set(1, "good", "checkout:1.40"),
    replica_set(3, "bad", "checkout:1.42"),
    replica_set(2, "prev", "checkout:1.41"),
]
KNOWN_GOOD = KnownGood(revision="1", images=["checkout:1.40"], since=T0, pod_template_hash="good")
TO_KNOWN_GOOD = RollbackStep(to_revision=RollbackTarget.LAST_KNOWN_GOOD)
TO_PREVIOUS = RollbackStep(to_revision=RollbackTarget.PREVIOUS)


@pytest.mark.parametrize(
    ("step", "image", "revision", "template_hash"),
    [
        pytest.param(TO_KNOWN_GOOD, "checkout:1.40", "1", "good", id="last-known-good"),
        pytest.param(TO_PREVIOUS, "checkout:1.41", "2", "prev", id="previous-is-highest-older"),
    ],
)
def test_rollback_restores_the_replica_set_template_without_its_hash(
    step, image, revision, template_hash
):
    d = deployment(revision=3, image="checkout:1.42")

    change = unchanged_input(rollback_change, step, d, SETS, KNOWN_GOOD, None)

    assert isinstance(change, Change)
    restored = pod_template(image)  # no pod-template-hash label
    assert change.new_object == {**d, "spec": {**d["spec"], "template": restored}}
    assert change.patch == {"spec": {"template": restored}}
    assert change.before == {"revision": "3", "images": ["checkout:1.42"], "podTemplateHash": "bad"}
    assert change.after == {
        "revision": revision,
        "images": [image],
        "podTemplateHash": template_hash,
    }


def test_rollback_does_not_touch_the_replica_set_it_copies():
    sets = copy.deepcopy(SETS)

    rollback_change(TO_KNOWN_GOOD, deployment(revision=3), sets, KNOWN_GOOD, None)

    assert sets == SETS


def test_rollback_to_previous_ignores_newer_and_unnumbered_sets():
    sets = [
        replica_set(1, "one", "checkout:1.0"),
        replica_set(4, "four", "checkout:4.0"),
        replica_set(0, "zero", "checkout:0.0"),
        replica_set(5, "five", "checkout:5.0"),
    ]

    change = rollback_change(TO_PREVIOUS, deployment(revision=4), sets, None, None)

    assert isinstance(change, Change)
    assert change.after["revision"] == "1"


@pytest.mark.parametrize(
    ("step", "d", "sets", "known_good", "irreversible", "reason", "code"),
    [
        pytest.param(
            TO_KNOWN_GOOD,
            deployment(revision=3),
            SETS,
            KNOWN_GOOD,
            "Job checkout-migrate-v2 succeeded: state changed",
            "rollback refused: Job checkout-migrate-v2 succeeded: state changed",
            Blocker.STATE_CHANGED,
            id="irreversible",
        ),
        pytest.param(
            TO_PREVIOUS,
            deployment(revision=3),
            SETS,
            KNOWN_GOOD,
            "the Deployment carries releaseguard.io/irreversible=true: state changed",
            "rollback refused: the Deployment carries releaseguard.io/irreversible=true: "
            "state changed",
            Blocker.STATE_CHANGED,
            id="irreversible-previous-too",
        ),
        pytest.param(
            TO_KNOWN_GOOD,
            deployment(revision=3),
            SETS,
            None,
            None,
            "no known-good revision recorded yet",
            Blocker.NO_KNOWN_GOOD,
            id="no-known-good",
        ),
        pytest.param(
            TO_KNOWN_GOOD,
            deployment(revision=3),
            [s for s in SETS if s["metadata"]["name"] != "checkout-good"],
            KNOWN_GOOD,
            None,
            "the ReplicaSet of known-good revision 1 is gone "
            "(check the Deployment's revisionHistoryLimit)",
            Blocker.REVISION_GONE,
            id="known-good-replica-set-gone",
        ),
        pytest.param(
            TO_KNOWN_GOOD,
            deployment(revision=1),
            SETS,
            KNOWN_GOOD,
            None,
            "checkout already runs the known-good revision 1",
            Blocker.AT_KNOWN_GOOD,
            id="already-at-known-good",
        ),
        pytest.param(
            TO_PREVIOUS,
            deployment(revision=1),
            SETS,
            None,
            None,
            "checkout has no previous revision (revisionHistoryLimit may be 0)",
            Blocker.NO_PREVIOUS,
            id="no-previous-revision",
        ),
    ],
)
def test_rollback_not_applicable(step, d, sets, known_good, irreversible, reason, code):
    result = rollback_change(step, d, sets, known_good, irreversible)
    assert result == NotApplicable(reason, code)


def test_current_replica_set_is_the_one_with_the_deployments_revision():
    assert current_replica_set(deployment(revision=2), SETS) is SETS[2]
    assert current_replica_set(deployment(revision=9), SETS) is None


def test_images_of_lists_every_container():
    template = {"spec": {"containers": [{"image": "a:1"}, {"image": "b:2"}]}}

    assert images_of(template) == ["a:1", "b:2"]


@pytest.mark.parametrize(
    ("annotations", "jobs", "reason"),
    [
        pytest.param({}, [], None, id="nothing-happened"),
        pytest.param({"releaseguard.io/irreversible": "false"}, [], None, id="annotation-false"),
        pytest.param(
            {"releaseguard.io/irreversible": "true"},
            [],
            "the Deployment carries releaseguard.io/irreversible=true: state changed",
            id="annotation-true",
        ),
        pytest.param(
            {},
            ["checkout-migrate-v2"],
            "Job checkout-migrate-v2 succeeded: state changed",
            id="job-succeeded",
        ),
        pytest.param(
            {},
            ["migrate", "backfill"],
            "Job migrate, backfill succeeded: state changed",
            id="jobs-succeeded",
        ),
    ],
)
def test_irreversible_reason(annotations, jobs, reason):
    assert irreversible_reason(deployment(annotations=annotations), jobs) == reason
