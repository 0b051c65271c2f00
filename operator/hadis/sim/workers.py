"""The pieces of a station: worker groups, a pass's result and its per-position outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class WorkerGroup:
    """The workers of one variant on one GPU pool."""

    pool: str
    batch: int
    lat: list[float]  # lat[k]: latency of a batch of k requests on this pool's GPU, lat[0] = 0
    free: list[float]  # a heap of the workers' free times
    busy_s: float = 0.0
    batches: int = 0

    def resize(self, replicas: int, now: float, ready: float) -> None:
        """Keep ``replicas`` workers: remove idle ones first, then those busy the longest.

        A removed worker finishes its in-flight batch (already accounted); new workers are free
        from ``ready`` (``now`` + model load time).
        """
        free = sorted(self.free)
        if replicas < len(free):
            idle = [f for f in free if f <= now]
            busy = [f for f in free if f > now]
            drop = len(free) - replicas
            idle_drop = min(drop, len(idle))
            idle = idle[idle_drop:]
            busy = busy[: len(busy) - (drop - idle_drop)]
            free = idle + busy
        else:
            free += [ready] * (replicas - len(free))
        self.free = sorted(free)


@dataclass
class PassResult:
    """What one pass of a station consumed from its queue (positions in queue order)."""

    ids: IntArray
    enq: FloatArray
    start: FloatArray  # batch start (or drop time)
    finish: FloatArray
    served: npt.NDArray[np.bool_]  # False: dropped at admission
    batch_log: list[tuple[str, float, int, int]] = field(default_factory=list)  # (pool, start, k, batch)


@dataclass
class PassOutcomes:
    """A pass's outcomes per queue position (start, finish), dropped positions and batch log."""

    start: list[float]
    finish: list[float]
    drops: list[int]
    log: list[tuple[str, float, int, int]]
