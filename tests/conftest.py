import os
import sys
from pathlib import Path

import pytest

from tests.tiny_models_fixture import tiny_models  # noqa: F401  (session fixture, builds on first use)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHARED_DATA = Path(
    os.environ.get("HADIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: tests must pass without it."""
    if not (SHARED_DATA / "hadis-l40s" / "variants.json").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def paper_profile():  # type: ignore[no-untyped-def]
    from hadis.profiles import load_profile

    return load_profile()


@pytest.fixture(scope="session")
def prometheus_session():  # type: ignore[no-untyped-def]
    """One real Prometheus for the session (targets via ``add_targets``); fails, never skips, without it."""
    from tests.prometheus_local import running_prometheus

    try:
        with running_prometheus() as prom:
            yield prom
    except RuntimeError as e:  # PrometheusMissing included
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def start_prometheus():  # type: ignore[no-untyped-def]
    """``start_prometheus(targets=(), **kw)`` starts a real Prometheus, stopped after the test."""
    from contextlib import ExitStack

    from tests.prometheus_local import running_prometheus

    with ExitStack() as stack:

        def start(targets=(), **kw):  # type: ignore[no-untyped-def]
            try:
                return stack.enter_context(running_prometheus(targets, **kw))
            except RuntimeError as e:
                pytest.fail(str(e), pytrace=False)

        yield start
