"""Fuzzing: schemathesis cases from the gateway's own OpenAPI document, over HTTP, against a real
``python -m hadis_gateway`` with API keys, in front of two emulated ``python -m hadis_worker``
processes (latencies × 0.001), so that valid requests go through the router and the cascade.

Every operation gets cases that fit the schema (positive) and, where it has inputs, cases that do
not (negative: wrong types, out-of-range numbers, missing fields, unknown sizes or models …). The
gateway must answer every one within a timeout, never with a 5xx, accept what the schema accepts
(2xx), refuse what it refuses (4xx) and answer as its schema says (status, content type, body).
The run prints the number of cases and the status codes seen. ``HADIS_FUZZ_SEED`` picks another
seed (default 0: the same cases every run).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.process_stack import ProcessStack, running_stack

pytestmark = pytest.mark.integration

LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"
KEY = "fuzz-key-0123456789"
#: cases per mode for the images endpoint, and for every other operation (those without inputs
#: have one distinct case and stop at it; GET /v1/models varies only its Authorization header)
EXAMPLES = {
    "POST /v1/images/generations": {GenerationMode.POSITIVE: 550, GenerationMode.NEGATIVE: 550},
    "*": {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 50},
}
MIN_CASES = 1000
CALL_TIMEOUT_S = 15.0  # far above any answer here (an image takes milliseconds): more is a hang
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessStack]:
    tmp = tmp_path_factory.mktemp("fuzz")
    keys = tmp / "api-keys"
    keys.write_text(f"# the fuzzer's key\n{KEY}\n")
    row = {"light": LIGHT, "heavy": HEAVY, "theta": 0.3, "tau": 0.2, "p": 0.44, "fid": 25.75}
    with running_stack(
        tmp,
        row,
        slo_s=30.0,
        time_scale=0.001,
        batch_size=4,
        gateway_env={"HADIS_API_KEYS_FILE": str(keys), "HADIS_QUEUE_CAPACITY": "64"},
        ready_timeout_s=120.0,
    ) as s:
        yield s


def credentials(case: Case) -> dict[str, str]:
    """The key, unless the case is about the ``Authorization`` header itself (negative mode breaks
    it or leaves it out): then the case's own header goes, and the answer must be a 401."""
    data = case.meta.phase.data if case.meta is not None else None
    if getattr(data, "parameter", None) == "Authorization":
        return {}
    return {"Authorization": f"Bearer {KEY}"}


Statuses = Counter[tuple[str, str, int]]  # (operation, mode, HTTP status) -> cases


def fuzz(operation: APIOperation, mode: GenerationMode, examples: int, statuses: Statuses) -> None:
    """Up to ``examples`` cases of ``operation`` in ``mode``, each sent and checked."""
    session = requests.Session()

    @seed(int(os.environ.get("HADIS_FUZZ_SEED", "0")))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        auth = credentials(case)
        try:
            response = case.call(session=session, headers=auth, timeout=CALL_TIMEOUT_S)
        except requests.Timeout:
            pytest.fail(f"no answer within {CALL_TIMEOUT_S} s: {case.as_curl_command()}")
        statuses[(operation.label, mode.value, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS, headers=auth)

    run()


def test_schema_fuzzing_finds_no_server_error(stack: ProcessStack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.gateway}/openapi.json")
    statuses: Statuses = Counter()
    seconds: dict[tuple[str, str], float] = {}
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        has_inputs = bool(operation.body) or any(True for _ in operation.iter_parameters())
        for mode, examples in EXAMPLES.get(operation.label, EXAMPLES["*"]).items():
            if mode is GenerationMode.NEGATIVE and not has_inputs:
                continue
            begun = time.monotonic()
            fuzz(operation, mode, examples, statuses)
            seconds[(operation.label, mode.value)] = time.monotonic() - begun
    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    print(f"\nfuzzed {total} cases in {elapsed:.1f} s")
    for (label, mode, status), count in sorted(statuses.items()):
        print(f"  {label:30} {mode:8} {status}: {count:4}   ({seconds[(label, mode)]:.1f} s for the mode)")
    server_errors = {k: v for k, v in statuses.items() if k[2] >= 500}
    assert not server_errors, server_errors
    assert total >= MIN_CASES, f"only {total} cases were generated"
    # the accepted cases went through the cascade to the workers, not just through validation
    served = sum(v for (op, _, status), v in statuses.items() if op.startswith("POST") and status == 200)
    metrics = httpx.get(f"{stack.gateway}/metrics", timeout=30).text
    images = _sum(metrics, "hadis_gateway_requests_total", ('outcome="ok"', 'outcome="escalated"'))
    assert images >= served >= 500, (images, served)
    for variant in (LIGHT, HEAVY):  # both workers made images (cascade, escalation or pinned)
        assert _sum(metrics, "hadis_gateway_requests_total", (f'variant="{variant}"',)) > 0, variant
    log = stack.logs["gateway"].read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def _sum(metrics: str, name: str, labels: tuple[str, ...] = ()) -> float:
    """The sum of ``name``'s samples whose labels contain one of ``labels`` (all samples if none)."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith((f"{name} ", f"{name}{{")) and (not labels or any(la in line for la in labels)):
            total += float(line.rsplit(" ", 1)[1])
    return total
