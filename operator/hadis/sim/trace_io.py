"""Reading and writing trace files (the only file I/O of hadis.sim besides the PNG plots).

Formats:

* ``arrival_ms,prompt_id`` lines (the HADIS artifact's traces); an optional header line.
* CSVs with a timestamp column (e.g. the Azure LLM inference trace, ``TIMESTAMP`` values like
  ``2023-11-16 18:15:46.6805900``); prompt ids are drawn uniformly with a seeded generator.
* A load-shape CSV with an ``invocations`` column (the Azure Functions 2019 hourly shape).

Every problem raises :class:`hadis.errors.InputFileError` naming ``file:line`` and the reason.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from importlib import resources
from pathlib import Path

import numpy as np

from hadis.errors import InputFileError
from hadis.sim.traces import DEFAULT_PROMPTS, FloatArray, IntArray, Trace, compress_to_qps


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise InputFileError(f"{path}: cannot read trace: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InputFileError(f"{path}: not a text file ({e.reason})") from None


def _sorted_trace(arrival: FloatArray, ids: IntArray, name: str, target_qps: float | None) -> Trace:
    order = np.argsort(arrival, kind="stable")
    arrival = arrival[order]
    if arrival.size:
        arrival = arrival - min(0.0, float(arrival[0]))
    trace = Trace(arrival, ids[order].astype(np.int64), name)
    return compress_to_qps(trace, target_qps) if target_qps is not None else trace


def parse_arrival_ms(
    text: str, source: str, *, target_qps: float | None = None, name: str | None = None
) -> Trace:
    """Parse ``arrival_ms,prompt_id`` lines (blank lines and one leading header are skipped)."""
    times: list[float] = []
    ids: list[int] = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if not times and parts[0].lower() in {"arrival_ms", "arrival", "time_ms"}:
            continue  # header
        if len(parts) != 2:
            raise InputFileError(f"{source}:{n}: expected 'arrival_ms,prompt_id', got {len(parts)} field(s)")
        try:
            ms = float(parts[0])
        except ValueError:
            raise InputFileError(f"{source}:{n}: arrival_ms {parts[0]!r} is not a number") from None
        try:
            pid = int(float(parts[1]))
        except ValueError:
            raise InputFileError(f"{source}:{n}: prompt_id {parts[1]!r} is not an integer") from None
        if not math.isfinite(ms) or ms < 0:
            raise InputFileError(f"{source}:{n}: arrival_ms must be finite and ≥ 0, got {parts[0]}")
        if pid < 0:
            raise InputFileError(f"{source}:{n}: prompt_id must be ≥ 0, got {pid}")
        times.append(ms / 1000.0)
        ids.append(pid)
    if not times:
        raise InputFileError(f"{source}: no requests (expected lines 'arrival_ms,prompt_id')")
    label = name or Path(source).stem or "trace"
    return _sorted_trace(np.array(times), np.array(ids, dtype=np.int64), label, target_qps)


def read_arrival_ms(path: str | Path, *, target_qps: float | None = None) -> Trace:
    """Read an ``arrival_ms,prompt_id`` trace file, optionally compressed to ``target_qps``."""
    p = Path(path)
    return parse_arrival_ms(_read_text(p), str(p), target_qps=target_qps)


def _parse_time(value: str) -> float:
    text = value.strip()
    try:
        return float(text)  # already seconds
    except ValueError:
        pass
    head, dot, frac = text.partition(".")
    stamp = datetime.fromisoformat(head)
    return stamp.timestamp() + (float("0." + frac) if dot and frac else 0.0)


def parse_timestamp_csv(
    text: str,
    source: str,
    rng: np.random.Generator,
    *,
    column: str = "TIMESTAMP",
    target_qps: float | None = None,
    n_prompts: int = DEFAULT_PROMPTS,
) -> Trace:
    """A CSV with a timestamp column: arrivals relative to the first timestamp, ids drawn uniformly.

    Timestamps are ISO date-times (any number of fractional digits) or plain seconds.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise InputFileError(f"{source}:1: empty file (expected a header with a {column!r} column)")
    names = [h.strip().lower() for h in header]
    if column.lower() not in names:
        raise InputFileError(f"{source}:1: no {column!r} column; the header has {header}")
    j = names.index(column.lower())
    times: list[float] = []
    for n, row in enumerate(reader, start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if j >= len(row):
            raise InputFileError(f"{source}:{n}: {len(row)} field(s), no {column!r} value")
        try:
            times.append(_parse_time(row[j]))
        except (ValueError, OverflowError):
            raise InputFileError(f"{source}:{n}: {column} {row[j]!r} is not a timestamp") from None
    if not times:
        raise InputFileError(f"{source}: no requests")
    arrival = np.array(times)
    arrival -= arrival.min()
    ids = rng.integers(0, n_prompts, size=arrival.size, dtype=np.int64)
    return _sorted_trace(arrival, ids, Path(source).stem or "trace", target_qps)


def read_timestamp_csv(
    path: str | Path,
    rng: np.random.Generator,
    *,
    column: str = "TIMESTAMP",
    target_qps: float | None = None,
    n_prompts: int = DEFAULT_PROMPTS,
) -> Trace:
    """Read a timestamp CSV trace (see :func:`parse_timestamp_csv`)."""
    p = Path(path)
    return parse_timestamp_csv(
        _read_text(p), str(p), rng, column=column, target_qps=target_qps, n_prompts=n_prompts
    )


def parse_shape_csv(text: str, source: str, *, column: str = "invocations") -> FloatArray:
    """The load-shape values of a CSV column (e.g. the Azure Functions hourly ``invocations``)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or column not in [h.strip() for h in header]:
        raise InputFileError(f"{source}:1: no {column!r} column; the header has {header}")
    j = [h.strip() for h in header].index(column)
    values: list[float] = []
    for n, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            v = float(row[j])
        except (ValueError, IndexError):
            raise InputFileError(f"{source}:{n}: {column} is not a number: {row}") from None
        if not math.isfinite(v) or v < 0:
            raise InputFileError(f"{source}:{n}: {column} must be finite and ≥ 0, got {v}")
        values.append(v)
    if not values:
        raise InputFileError(f"{source}: no {column} values")
    return np.array(values)


def read_shape_csv(path: str | Path, *, column: str = "invocations") -> FloatArray:
    p = Path(path)
    return parse_shape_csv(_read_text(p), str(p), column=column)


def write_arrival_ms(trace: Trace, path: str | Path) -> None:
    """Write ``arrival_ms,prompt_id`` lines (millisecond resolution, like the artifact's traces)."""
    out = io.StringIO()
    for t, pid in zip(trace.arrival_s.tolist(), trace.prompt_id.tolist(), strict=True):
        out.write(f"{t * 1000.0:.3f},{pid}\n")
    Path(path).write_text(out.getvalue())


#: The trace packaged with hadis (``hadis/data/traces``): the paper's E1 trace.
E1_TRACE = "hadis_e1_trace_10to64qps"


def load_packaged_trace(name: str = E1_TRACE) -> Trace:
    """A trace shipped inside the package, by name (no ``.txt``)."""
    res = resources.files("hadis") / "data" / "traces" / f"{name}.txt"
    if not res.is_file():
        raise InputFileError(f"unknown packaged trace {name!r}")
    return parse_arrival_ms(res.read_text(), f"packaged trace {name}", name=name)
