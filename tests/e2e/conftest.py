"""Fixtures for the e2e tests: a real control plane (.ci/k8s-local.sh) per test session, and the
one-node cluster whose pods run (.ci/k8s-cluster.sh) for the tests that need it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.k8s_cluster import SUMMARY, Cluster, running_cluster
from tests.k8s_local import ControlPlane, install_crd, running_control_plane


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager on loopback; fails (never skips) without them."""
    try:
        with running_control_plane() as cp:
            yield cp
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def hadis_crd(control_plane: ControlPlane) -> dict[str, Any]:
    """The committed CRD (crds/), installed and Established."""
    return install_crd(control_plane.api)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The one-node cluster with the project's images; fails (never skips) without its binaries or
    images, and fails at teardown when taking it down left anything on the host."""
    try:
        with running_cluster() as c:
            yield c
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The one-node cluster's timeline and figures, also when pytest runs quietly (-q)."""
    if SUMMARY:
        terminalreporter.section("one-node cluster")
        for line in SUMMARY:
            terminalreporter.write_line(line)
