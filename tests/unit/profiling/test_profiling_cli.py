"""``hadis profile``: options shared with the worker module, the subprocess hand-off, ``export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import yaml

from hadis.cli import profile_cmd
from hadis.cli.main import main
from hadis.errors import UserError
from hadis.profiles import load_profile, parse_profile
from hadis.profiling.latency_options import add_latency_arguments, to_argv


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_latency_arguments(p)
    return p.parse_args(list(argv))


def test_options_round_trip_through_argv() -> None:
    ns = parse(
        "--variant", "a=/m/a", "--variant", "b=org/model", "--unet", "b=/c.safetensors", "--device", "cuda:1",
        "--dtype", "float16", "--batches", "4,1,2", "--repeats", "3", "--warmup", "0", "--steps", "4",
        "--guidance-scale", "0", "--size", "512", "--prompt", "-a dash first", "--gpu-type", "H100",
        "--gpu-memory-gib", "80", "--out", "o.json", "--merge", "m.json", "--name", "n", "--fid", "a=21.5",
        "--discriminator", "clip", "head.pt", "--resume",
    )  # fmt: skip
    assert ns.batches == [1, 2, 4] and ns.variant == [("a", "/m/a"), ("b", "org/model")]
    assert parse(*to_argv(ns)) == ns
    minimal = parse("--variant", "a=x", "--gpu-type", "cpu", "--out", "o.json")
    assert parse(*to_argv(minimal)) == minimal


@pytest.mark.parametrize(
    "bad",
    [
        ["--variant", "noequals"],
        ["--batches", "0,1"],
        ["--batches", "x"],
        ["--repeats", "0"],
        ["--size", "8"],
    ],
)
def test_bad_options_are_refused(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse("--variant", "a=x", "--gpu-type", "cpu", "--out", "o.json", *bad)
    assert e.value.code == 2


def test_missing_extras_give_one_clear_error() -> None:
    with pytest.raises(UserError, match=r"needs torch, diffusers.*pip install 'hadis\[worker,diffusers\]'"):
        profile_cmd.run_module("x", [], check=lambda: ["torch", "diffusers"])


def test_subprocess_status_and_output_pass_through(capfd: pytest.CaptureFixture[str]) -> None:
    code = profile_cmd.run_module("this_module_does_not_exist_anywhere", [], check=lambda: [])
    assert code == 1 and "No module named" in capfd.readouterr().err
    assert profile_cmd.run_module("json.tool", ["--help"], check=lambda: []) == 0
    assert "json.tool" in capfd.readouterr().out
    assert sys.executable  # the module runs under this interpreter


def test_quality_passes_every_argument_to_its_module(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []

    def fake(module: str, argv: list[str]) -> int:
        calls.append((module, argv))
        return 7

    monkeypatch.setattr(profile_cmd, "run_module", fake)
    assert main(["profile", "quality", "--prompts", "p.txt", "--k", "2", "--help"]) == 7
    assert main(["profile", "quality"]) == 7
    assert calls == [
        ("hadis_worker.profiling.quality", ["--prompts", "p.txt", "--k", "2", "--help"]),
        ("hadis_worker.profiling.quality", []),
    ]


def test_all_checks_its_options_then_passes_them_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[str, list[str]]] = []

    def fake(module: str, argv: list[str]) -> int:
        calls.append((module, argv))
        return 0

    monkeypatch.setattr(profile_cmd, "run_module", fake)
    argv = ["--tiny", "--k", "1", "--out-dir", str(tmp_path / "demo")]
    assert main(["profile", "all", *argv]) == 0
    assert calls == [("hadis_worker.profiling.profile_all", argv)]
    with pytest.raises(SystemExit) as help_exit:  # --help is the options' own, printed here
        main(["profile", "all", "--help"])
    assert help_exit.value.code == 0 and "--inception-weights" in capsys.readouterr().out
    assert main(["profile", "all", "--tiny", "--prompts", "p.txt", "--out-dir", str(tmp_path)]) == 2
    assert "--prompts: --tiny builds its own" in capsys.readouterr().err and len(calls) == 1


def test_export_writes_a_config_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cm.yaml"
    assert (
        main(
            ["profile", "export", "hadis-paper-l40s", "--name", "paper", "--namespace", "ns", "-o", str(out)]
        )
        == 0
    )
    assert "configMap: {name: paper, key: profile.json}" in capsys.readouterr().err
    cm = yaml.safe_load(out.read_text())
    assert cm["metadata"] == {**cm["metadata"], "name": "paper", "namespace": "ns"}
    assert parse_profile(cm["data"]["profile.json"], "cm") == load_profile()
    assert main(["profile", "export", "hadis-paper-l40s", "--name", "paper"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {
        **cm,
        "metadata": {k: v for k, v in cm["metadata"].items() if k != "namespace"},
    }


def test_export_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "export", "hadis-paper-l40s", "--name", "Not_Valid"]) == 2
    assert "hadis profile: error: --name 'Not_Valid'" in capsys.readouterr().err
    assert main(["profile", "export", "/nonexistent/p.json", "--name", "x"]) == 2
    assert "cannot read profile" in capsys.readouterr().err
