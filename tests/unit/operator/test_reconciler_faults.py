"""The operator's cycle under faults, its I/O faked (tests/unit/test_operator_reconciler.py's
FakeCluster): a cascade ConfigMap overwritten with something that is not a cascade config is
rewritten with a higher generation and reported; an API server that does not answer is a Degraded
ApplyFailed that keeps the last allocation, not a crash."""

from __future__ import annotations

import json

import pytest
from tests.unit.test_operator_reconciler import Clock, FakeCluster, body, conditions, run
from urllib3.exceptions import MaxRetryError, NewConnectionError

from hadis.k8s.apply import ApplyError
from hadis.operator import reconciler as rec
from hadis.reconcile.pods import CONFIG_KEY


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    c = FakeCluster()
    c.install(monkeypatch)
    return c


def generation(cluster: FakeCluster) -> int:
    return int(json.loads((cluster.config_map or {})[CONFIG_KEY])["generation"])


@pytest.mark.parametrize(
    "garbage",
    [
        {CONFIG_KEY: '{"generation": '},  # not JSON
        {CONFIG_KEY: '{"generation": "x", "variants": []}'},  # the wrong shape
        {CONFIG_KEY: '{"generation": -5}'},  # a generation below the last one written
        {"other.json": "{}"},  # the key gone
    ],
    ids=["not-json", "wrong-shape", "negative-generation", "no-key"],
)
def test_a_corrupted_configmap_is_rewritten_with_a_higher_generation_and_reported(
    cluster: FakeCluster, garbage: dict[str, str]
) -> None:
    clock = Clock()
    r = rec.Reconciler(api=None, monotonic=clock)  # type: ignore[arg-type]
    cluster.qps = 12.0
    run(r, body())
    cluster.qps = 30.0  # a second decision, so the config generation is past 1
    clock.t += 10
    run(r, body(status=cluster.statuses[-1]))
    before = generation(cluster)
    assert before >= 2
    st = cluster.statuses[-1]
    cluster.config_map = dict(garbage)  # someone overwrote it
    n_events = len(cluster.events)
    clock.t += 10
    run(r, body(status=st))
    assert generation(cluster) > before  # the pods' watchers never see the count go back
    json.loads(cluster.config_map[CONFIG_KEY])  # type: ignore[index]
    new = [(t, reason) for t, reason, _ in cluster.events[n_events:]]
    assert ("Warning", "CascadeConfigRepaired") in new
    # repaired: the next cycle finds its own config and reports nothing more
    n_events = len(cluster.events)
    clock.t += 10
    run(r, body(status=cluster.statuses[-1]))
    assert not [e for e in cluster.events[n_events:] if e[1] == "CascadeConfigRepaired"]


def test_an_api_server_that_does_not_answer_is_degraded_not_a_crash(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    r = rec.Reconciler(api=None, monotonic=clock)  # type: ignore[arg-type]
    cluster.qps = 12.0
    run(r, body())
    st = cluster.statuses[-1]
    allocation = st["allocation"]

    def refused(api: object, objects: object) -> None:
        reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")  # type: ignore[arg-type]
        raise MaxRetryError(None, "/api/v1/namespaces/ns/configmaps", reason)  # type: ignore[arg-type]

    monkeypatch.setattr(rec, "apply_objects", refused)
    cluster.qps = 40.0
    clock.t += 10
    assert run(r, body(status=st))
    cond = conditions(cluster.statuses[-1])
    assert cond["Degraded"] == ("True", "ApplyFailed")
    assert cond["Ready"] == ("True", "Deployed")
    assert cluster.statuses[-1]["allocation"] == allocation  # the last one applied, kept
    assert any("did not answer" in m for _, reason, m in cluster.events if reason == "ApplyFailed")


def test_conflicts_that_outlast_the_retries_name_the_object(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    r = rec.Reconciler(api=None, monotonic=clock)  # type: ignore[arg-type]
    cluster.qps = 12.0
    run(r, body())

    def conflicting(api: object, objects: object) -> None:
        raise ApplyError(
            "Deployment/e1-sd35-large-l40s", 409, "Conflict", None, "still conflicting after 5 retries"
        )

    monkeypatch.setattr(rec, "apply_objects", conflicting)
    clock.t += 10
    run(r, body(status=cluster.statuses[-1]))
    deg = next(c for c in cluster.statuses[-1]["conditions"] if c["type"] == "Degraded")
    assert deg["reason"] == "ApplyFailed"
    assert "Deployment/e1-sd35-large-l40s" in deg["message"] and "still conflicting" in deg["message"]
