"""Spec files: the shipped examples validate and fit the default profile; errors name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadis.errors import InputFileError
from hadis.policy.demand import DemandEstimate
from hadis.policy.inputs import UnusableSpecError, build_decision_input, check_spec_against_profile
from hadis.policy.pareto import build_pareto_table
from hadis.specs import load_spec, parse_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))
#: examples on a profile of their own (checked against it where it is built: test_local_diffusers_env.py)
OWN_PROFILE = {"local-tiny-diffusers.yaml"}


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.name not in OWN_PROFILE], ids=lambda p: p.name)
def test_examples_validate_and_fit_the_default_profile(path: Path, paper_profile) -> None:  # type: ignore[no-untyped-def]
    svc = load_spec(path)
    check_spec_against_profile(svc.spec, paper_profile)
    inp = build_decision_input(svc.spec, paper_profile, build_pareto_table(paper_profile.sweep), 10.0)
    assert inp.total_gpus == sum(p.count for p in svc.spec.gpu_pools) and inp.slo_s == svc.spec.slo_seconds


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"local-emulated.yaml", "cluster-l40s.yaml"}


def test_spec_file_errors_name_file_and_field(tmp_path: Path) -> None:
    text = EXAMPLES[0].read_text().replace("sloSeconds:", "sloSecs:")
    with pytest.raises(InputFileError) as e:
        parse_spec(text, "s.yaml")
    assert "s.yaml" in str(e.value) and "spec.sloSecs" in str(e.value)
    with pytest.raises(InputFileError, match="not valid YAML"):
        parse_spec("a: [", "s.yaml")
    with pytest.raises(InputFileError, match="expected a HadisService object"):
        parse_spec("- 1", "s.yaml")
    with pytest.raises(InputFileError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (("- name: sd35-large\n", "- name: sd99\n"), "spec.variants[3].name: 'sd99' is not in profile"),
        (("gpuType: L40S", "gpuType: H100"), "spec.gpuPools[0].gpuType: 'H100'"),
        (("count: 16", "count: 0"), "spec.gpuPools: the budget has no GPU"),
    ],
)
def test_unusable_specs_name_the_field(paper_profile, patch: tuple[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    svc = parse_spec(EXAMPLES[1].read_text().replace(*patch), "s.yaml")
    with pytest.raises(UnusableSpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_spec_against_profile(svc.spec, paper_profile)


def test_demand_estimate_is_an_ewma_times_over_provisioning() -> None:
    d = DemandEstimate(alpha=0.5, over_provisioning=1.1)
    assert d.demand_qps == 0.0
    d = d.observe(10).observe(20)
    assert d.smoothed_qps == pytest.approx(15.0) and d.demand_qps == pytest.approx(16.5)
    with pytest.raises(ValueError, match="ewmaAlpha"):
        DemandEstimate(alpha=0, over_provisioning=1.0)
    with pytest.raises(ValueError, match="≥ 0"):
        d.observe(float("nan"))
