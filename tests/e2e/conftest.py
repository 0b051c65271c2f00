"""Fixtures for the e2e tests: a real control plane (.ci/k8s-local.sh) per test session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
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
