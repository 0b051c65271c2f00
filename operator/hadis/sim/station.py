"""One model variant: a FIFO queue and its workers, simulated batch by batch.

Workers batch dynamically: a worker that is free takes up to its batch size of the requests queued
at that moment (FIFO), without waiting for a full batch. When it starts a batch of k requests at
time t, a request whose t + L(k) is past its admission deadline is dropped instead of run, and the
rest run as a batch of k' ≤ k (latency L(k')). The slot of a dropped request is not refilled.

Speed: events are batches, not requests. Requests that arrive to an empty queue while a worker is
idle start at once as batches of one; :meth:`Station.run` handles long runs of those with numpy
(the *fast path*), and gives the same results as the batch-by-batch loop.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_FAST_MIN, _FAST_MAX = 32, 1 << 16
#: A fast-path attempt that serves fewer requests than this makes the next attempts back off.
_FAST_WORTH = 16


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


def _empty_float() -> FloatArray:
    return np.empty(0, dtype=np.float64)


@dataclass
class Station:
    """A variant's queue (sorted by enqueue time) and its worker groups."""

    name: str
    groups: list[WorkerGroup] = field(default_factory=list)
    q_ids: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    q_enq: FloatArray = field(default_factory=_empty_float)
    q_dl: FloatArray = field(default_factory=_empty_float)
    fast_path: bool = True
    record_batches: bool = False
    _chunk: int = _FAST_MIN
    _skip: int = 0  # slow-path batches before the next fast-path attempt
    _backoff: int = 0

    @property
    def replicas(self) -> int:
        return sum(len(g.free) for g in self.groups)

    @property
    def pending(self) -> int:
        return int(self.q_ids.size)

    def queued_at(self, t: float) -> int:
        """Requests waiting at time t (enqueued at or before t and not yet started)."""
        return int(np.searchsorted(self.q_enq, t, side="right"))

    def push(self, ids: IntArray, enq: FloatArray, deadline: FloatArray) -> None:
        """Add requests (any order) to the queue; the queue stays sorted by enqueue time (stable)."""
        if ids.size == 0:
            return
        all_enq = np.concatenate([self.q_enq, enq])
        order = np.argsort(all_enq, kind="stable")
        self.q_ids = np.concatenate([self.q_ids, ids])[order]
        self.q_enq = all_enq[order]
        self.q_dl = np.concatenate([self.q_dl, deadline])[order]

    def take_all(self) -> tuple[IntArray, FloatArray, FloatArray]:
        """Empty the queue (for re-dispatch) and return (ids, enqueue times, deadlines)."""
        out = (self.q_ids, self.q_enq, self.q_dl)
        self.q_ids, self.q_enq, self.q_dl = np.empty(0, dtype=np.int64), _empty_float(), _empty_float()
        return out

    def run(self, t_begin: float, t_end: float) -> PassResult:
        """Start every batch that can start in ``[t_begin, t_end)``; later work stays queued."""
        groups = [g for g in self.groups if g.free]
        n = self.pending
        start = np.empty(n)
        finish = np.empty(n)
        served = np.zeros(n, dtype=np.bool_)
        log: list[tuple[str, float, int, int]] = []
        h = 0
        if groups and n:
            h = self._loop(groups, t_begin, t_end, start, finish, served, log)
        res = PassResult(self.q_ids[:h], self.q_enq[:h], start[:h], finish[:h], served[:h], log)
        self.q_ids, self.q_enq, self.q_dl = self.q_ids[h:], self.q_enq[h:], self.q_dl[h:]
        return res

    def _loop(
        self,
        groups: list[WorkerGroup],
        t_begin: float,
        t_end: float,
        start: FloatArray,
        finish: FloatArray,
        served: npt.NDArray[np.bool_],
        log: list[tuple[str, float, int, int]],
    ) -> int:
        enq: list[float] = self.q_enq.tolist()
        dl: list[float] = self.q_dl.tolist()
        n = len(enq)
        b_h: list[int] = []
        b_k: list[int] = []
        b_t: list[float] = []
        b_f: list[float] = []
        drops: list[int] = []
        single = len(groups) == 1
        fast = self.fast_path and single
        g = groups[0]
        heap, lat, batch = g.free, g.lat, g.batch
        rec = self.record_batches
        h = 0
        while h < n:
            if not single:
                g = min(groups, key=lambda x: x.free[0])
                heap, lat, batch = g.free, g.lat, g.batch
            f = heap[0]
            e = enq[h]
            if fast and f <= e and e >= t_begin and self._try_fast():
                m = self._fast(g, h, t_end, start, finish, served, log)
                self._learn(m, len(heap))
                if m:
                    h += m
                    heap = g.free  # the fast path rebuilt the heap
                    continue
            t = e if e > f else f
            if t < t_begin:
                t = t_begin
            if t >= t_end:
                break
            top = h + batch
            hi = bisect_right(enq, t, h, top if top < n else n)
            k = hi - h
            fin = t + lat[k]
            if (dl[h] < fin) if k == 1 else (min(dl[h:hi]) < fin):  # admission: drop what cannot finish
                late = [i for i in range(h, hi) if dl[i] < fin]
                drops.extend(late)
                k_run = k - len(late)
                fin = t + lat[k_run]
            else:
                k_run = k
            b_h.append(h)
            b_k.append(k)
            b_t.append(t)
            b_f.append(fin)
            if k_run:
                heapq.heapreplace(heap, fin)
                g.busy_s += lat[k_run]
                g.batches += 1
                if rec:
                    log.append((g.pool, t, k_run, batch))
            h = hi
        if b_h:
            counts = np.asarray(b_k)
            # each batch covers queue positions [b_h, b_h + b_k)
            pos = np.repeat(np.asarray(b_h), counts) + _ramp(counts)
            start[pos] = np.repeat(np.asarray(b_t), counts)
            finish[pos] = np.repeat(np.asarray(b_f), counts)
            served[pos] = True
        if drops:
            served[np.asarray(drops)] = False
        return h

    def _try_fast(self) -> bool:
        if self._skip > 0:
            self._skip -= 1
            return False
        return True

    def _learn(self, m: int, workers: int) -> None:
        """Back off exponentially while fast-path attempts serve few requests (speed only).

        An attempt costs O(workers + chunk) in numpy; it pays off when it serves more requests
        than the batch loop would handle in that time.
        """
        if m >= _FAST_WORTH + workers // 8:
            self._backoff = 0
        else:
            self._backoff = min(1024, 2 * self._backoff + 1)
            self._skip = self._backoff

    def _fast(
        self,
        g: WorkerGroup,
        h: int,
        t_end: float,
        start: FloatArray,
        finish: FloatArray,
        served: npt.NDArray[np.bool_],
        log: list[tuple[str, float, int, int]],
    ) -> int:
        """Serve the longest run of requests from position h that each find an idle worker.

        Request i (enqueued at E_i, queue empty before it) starts at once as a batch of one iff
        fewer than c workers are busy at E_i: those still busy from before (free time > E_i) plus
        the earlier requests of the run still running (E_j + L(1) > E_i). Simultaneous arrivals
        would be batched together, so with batch size > 1 the run stops before a tie.
        """
        c = len(g.free)
        l1 = g.lat[1]
        hi = min(self.pending, h + self._chunk)
        e = self.q_enq[h:hi]
        cut = int(np.searchsorted(e, t_end, side="left"))
        e = e[:cut]
        if e.size == 0:
            return 0
        keep = self.q_dl[h : h + cut] >= e + l1
        ek = e[keep]
        free = np.sort(np.asarray(g.free))
        busy_before = c - np.searchsorted(free, e, side="right")
        kept_before: IntArray = np.cumsum(keep, dtype=np.int64) - keep
        done_before = np.searchsorted(ek, e - l1, side="right")
        ok = busy_before + kept_before - done_before < c
        if g.batch > 1 and e.size > 1:
            tie = np.zeros(e.size, dtype=np.bool_)
            same = e[1:] == e[:-1]
            tie[1:] |= same
            tie[:-1] |= same
            ok &= ~tie
        if g.batch > 1 and h + e.size < self.pending and self.q_enq[h + e.size] == e[-1]:
            ok[-1] = False  # tied with the first request after the chunk
        m = int(e.size) if bool(ok.all()) else int(np.argmin(ok))
        self._chunk = min(_FAST_MAX, self._chunk * 2) if m == hi - h else max(_FAST_MIN, 2 * m)
        if m == 0:
            return 0
        em, km = e[:m], keep[:m]
        start[h : h + m] = em
        finish[h : h + m] = em + l1
        served[h : h + m] = km
        runs = em[km] + l1
        n_run = int(runs.size)
        if n_run:
            both = np.concatenate([free, runs])
            g.free = np.sort(np.partition(both, both.size - c)[both.size - c :]).tolist()
            g.busy_s += n_run * l1
            g.batches += n_run
            if self.record_batches:
                log.extend((g.pool, float(t), 1, g.batch) for t in em[km])
        return m


def _ramp(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """0, 1, .., c0-1, 0, 1, .., c1-1, ... for run lengths ``counts``."""
    total = int(counts.sum())
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - offsets
