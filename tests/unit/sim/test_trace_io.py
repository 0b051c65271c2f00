"""Trace files: the artifact's `arrival_ms,prompt_id` format, timestamp CSVs, shapes, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hadis.errors import InputFileError, UserError
from hadis.sim.trace_io import (
    load_packaged_trace,
    parse_shape_csv,
    read_arrival_ms,
    read_shape_csv,
    read_timestamp_csv,
    write_arrival_ms,
)
from hadis.sim.traces import poisson_trace


def test_arrival_ms_roundtrip(tmp_path: Path) -> None:
    t = poisson_trace(30.0, 20.0, np.random.default_rng(0))
    path = tmp_path / "t.txt"
    write_arrival_ms(t, path)
    back = read_arrival_ms(path)
    assert len(back) == len(t) and np.array_equal(back.prompt_id, t.prompt_id)
    assert np.allclose(back.arrival_s, t.arrival_s, atol=1e-6)
    assert back.name == "t"


def test_arrival_ms_header_blank_lines_and_compression(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("arrival_ms,prompt_id\n0,1\n\n500,2\n1500.5,3\n")
    t = read_arrival_ms(path)
    assert t.arrival_s.tolist() == [0.0, 0.5, 1.5005] and t.prompt_id.tolist() == [1, 2, 3]
    fast = read_arrival_ms(path, target_qps=30.0)
    assert fast.mean_qps == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("0,1\n10,2\nabc,3\n", 3, "arrival_ms 'abc' is not a number"),
        ("0,1\n10\n", 2, "expected 'arrival_ms,prompt_id'"),
        ("0,1\n10,x\n", 2, "prompt_id 'x' is not an integer"),
        ("0,1\n-5,2\n", 2, "must be finite and ≥ 0"),
        ("0,1\n5,-2\n", 2, "prompt_id must be ≥ 0"),
    ],
)
def test_malformed_arrival_file_names_file_line_and_reason(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputFileError) as err:
        read_arrival_ms(path)
    assert f"{path}:{line}:" in str(err.value) and reason in str(err.value)
    assert isinstance(err.value, UserError)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read trace"):
        read_arrival_ms(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(InputFileError, match="no requests"):
        read_arrival_ms(tmp_path / "empty.txt")


def test_timestamp_csv_like_the_azure_llm_trace(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.9951690,396,109\n"
        "2023-11-16 18:15:51.2224670,879,55\n"
    )
    t = read_timestamp_csv(path, np.random.default_rng(0))
    assert t.arrival_s == pytest.approx([0.0, 4.314579, 4.541877], abs=1e-6)
    assert t.prompt_id.min() >= 0 and t.prompt_id.max() < 5000
    again = read_timestamp_csv(path, np.random.default_rng(0))
    assert np.array_equal(again.prompt_id, t.prompt_id)
    c = read_timestamp_csv(path, np.random.default_rng(0), target_qps=3.0)
    assert c.mean_qps == pytest.approx(3.0)


def test_timestamp_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("time,tokens\n1,2\n")
    with pytest.raises(InputFileError, match=rf"{path}:1: no 'TIMESTAMP' column"):
        read_timestamp_csv(path, np.random.default_rng(0))
    path.write_text("TIMESTAMP,tokens\n2023-11-16 18:15:46.68,2\nyesterday,3\n")
    with pytest.raises(InputFileError, match=rf"{path}:3: TIMESTAMP 'yesterday' is not a timestamp"):
        read_timestamp_csv(path, np.random.default_rng(0))


def test_shape_csv(tmp_path: Path) -> None:
    path = tmp_path / "shape.csv"
    path.write_text(",hour,invocations\n0,0,549911.96\n1,1,543402.08\n")
    assert read_shape_csv(path).tolist() == [549911.96, 543402.08]
    with pytest.raises(InputFileError, match=r"s\.csv:3: invocations is not a number"):
        parse_shape_csv("hour,invocations\n0,1\n1,lots\n", "s.csv")
    with pytest.raises(InputFileError, match="no 'invocations' column"):
        parse_shape_csv("hour,calls\n0,1\n", "s.csv")


def test_packaged_e1_trace() -> None:
    t = load_packaged_trace()
    assert len(t) == 12270 and 340 <= t.duration_s <= 352
    assert t.name == "hadis_e1_trace_10to64qps"
    with pytest.raises(InputFileError, match="unknown packaged trace"):
        load_packaged_trace("nope")
