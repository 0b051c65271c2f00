"""One model variant: a FIFO queue and its workers, simulated batch by batch.

Workers batch dynamically: a worker that is free takes up to its batch size of the requests queued
at that moment (FIFO), without waiting for a full batch. When it starts a batch of k requests at
time t, a request whose t + L(k) is past its admission deadline is dropped instead of run, and the
rest run as a batch of k' ≤ k (latency L(k')). The slot of a dropped request is not refilled.

Speed: events are batches, not requests. The loop of one worker group (:meth:`Station._single`)
keeps its state in locals, takes a short branch for a batch of one and appends outcomes per queue
position (about 1 µs per batch). Requests that arrive to an empty queue while a worker is idle
start at once as batches of one; the *fast path* handles long runs of those with numpy and gives
the same results as the batch loop. An attempt costs O(workers) (reading the free times), so
attempts back off unless runs are long compared with the number of workers: at 1,024 GPUs near
saturation runs are short and the batch loop does nearly all the work.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hadis.sim.workers import PassOutcomes, PassResult, WorkerGroup

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_FAST_MIN, _FAST_MAX = 32, 1 << 16
#: A fast-path attempt that serves fewer requests than this makes the next attempts back off.
_FAST_WORTH = 16


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
        out = PassOutcomes([], [], [], [])
        h = 0
        if groups and self.pending:
            if len(groups) == 1:
                h = self._single(groups[0], t_begin, t_end, out)
            else:
                h = self._multi(groups, t_begin, t_end, out)
        served = np.ones(h, dtype=np.bool_)
        if out.drops:
            served[np.asarray(out.drops, dtype=np.int64)] = False
        start = np.fromiter(out.start, np.float64, h)
        finish = np.fromiter(out.finish, np.float64, h)
        res = PassResult(self.q_ids[:h], self.q_enq[:h], start, finish, served, out.log)
        self.q_ids, self.q_enq, self.q_dl = self.q_ids[h:], self.q_enq[h:], self.q_dl[h:]
        return res

    def _single(self, g: WorkerGroup, t_begin: float, t_end: float, out: PassOutcomes) -> int:
        """The batch loop for one worker group (the common case), with the fast path.

        Per batch: its start t (the first request's enqueue time or the earliest free worker,
        whichever is later), the requests queued by t (up to the batch size), admission, and the
        worker's new free time. Outcomes are appended per queue position. A batch of one (the
        next request is enqueued after t) takes the short branch.
        """
        enq: list[float] = self.q_enq.tolist()
        dl: list[float] = self.q_dl.tolist()
        n = len(enq)
        heap, lat, batch = g.free, g.lat, g.batch
        l1 = lat[1]
        rec, fast = self.record_batches, self.fast_path
        replace = heapq.heapreplace
        st, fi, drops, log = out.start, out.finish, out.drops, out.log
        put_st, put_fi = st.append, fi.append
        busy, batches, skip = g.busy_s, g.batches, self._skip
        h = 0
        while h < n:
            f = heap[0]
            e = enq[h]
            if f <= e:
                if fast and e >= t_begin:
                    if skip > 0:
                        skip -= 1
                    else:
                        g.busy_s, g.batches = busy, batches
                        m = self._fast(g, h, t_end, out)
                        self._learn(m, len(heap))
                        busy, batches, skip = g.busy_s, g.batches, self._skip
                        if m:
                            h += m
                            heap = g.free  # the fast path rebuilt the heap
                            continue
                t = e
            else:
                t = f
            if t < t_begin:
                t = t_begin
            if t >= t_end:
                break
            hi = h + 1  # enq[h] <= t
            if batch == 1 or hi == n or enq[hi] > t:  # a batch of one
                fin = t + l1
                put_st(t)
                if dl[h] < fin:  # admission: drop what cannot finish
                    drops.append(h)
                    put_fi(t + lat[0])
                else:
                    put_fi(fin)
                    replace(heap, fin)
                    busy += l1
                    batches += 1
                    if rec:
                        log.append((g.pool, t, 1, batch))
                h = hi
                continue
            if batch == 2:  # enq[h + 1] <= t: a full batch
                hi = h + 2
                fin = t + lat[2]
                late_any = dl[h] < fin or dl[hi - 1] < fin
            else:
                top = h + batch
                hi = bisect_right(enq, t, hi, top if top < n else n)
                fin = t + lat[hi - h]
                late_any = min(dl[h:hi]) < fin
            k = hi - h
            if late_any:
                late = [i for i in range(h, hi) if dl[i] < fin]
                drops.extend(late)
                k_run = k - len(late)
                fin = t + lat[k_run]
            else:
                k_run = k
            st.extend([t] * k)
            fi.extend([fin] * k)
            if k_run:
                replace(heap, fin)
                busy += lat[k_run]
                batches += 1
                if rec:
                    log.append((g.pool, t, k_run, batch))
            h = hi
        g.busy_s, g.batches, self._skip = busy, batches, skip
        return h

    def _multi(self, groups: list[WorkerGroup], t_begin: float, t_end: float, out: PassOutcomes) -> int:
        """The batch loop over several worker groups: each batch goes to the earliest free worker."""
        enq: list[float] = self.q_enq.tolist()
        dl: list[float] = self.q_dl.tolist()
        n = len(enq)
        h = 0
        while h < n:
            g = min(groups, key=lambda x: x.free[0])
            heap, lat, batch = g.free, g.lat, g.batch
            f = heap[0]
            e = enq[h]
            t = e if e > f else f
            if t < t_begin:
                t = t_begin
            if t >= t_end:
                break
            top = h + batch
            hi = bisect_right(enq, t, h, top if top < n else n)
            k = hi - h
            fin = t + lat[k]
            if min(dl[h:hi]) < fin:  # admission: drop what cannot finish
                late = [i for i in range(h, hi) if dl[i] < fin]
                out.drops.extend(late)
                k_run = k - len(late)
                fin = t + lat[k_run]
            else:
                k_run = k
            out.start.extend([t] * k)
            out.finish.extend([fin] * k)
            if k_run:
                heapq.heapreplace(heap, fin)
                g.busy_s += lat[k_run]
                g.batches += 1
                if self.record_batches:
                    out.log.append((g.pool, t, k_run, batch))
            h = hi
        return h

    def _learn(self, m: int, workers: int) -> None:
        """Back off exponentially while fast-path attempts serve few requests (speed only).

        An attempt costs O(workers + chunk) in numpy; it pays off when it serves more requests
        than the batch loop would handle in that time. Measured at 512 workers per variant (the
        24 h benchmark's busiest hour), a run has to be about twice as long as there are workers.
        """
        if m >= _FAST_WORTH + 2 * workers:
            self._backoff = 0
        else:
            self._backoff = min(1024, 2 * self._backoff + 1)
            self._skip = self._backoff

    def _fast(self, g: WorkerGroup, h: int, t_end: float, out: PassOutcomes) -> int:
        """Serve the longest run of requests from position h that each find an idle worker.

        Request i (enqueued at E_i, queue empty before it) starts at once as a batch of one iff
        fewer than c workers are busy at E_i: those still busy from before (free time > E_i) plus
        the earlier requests of the run still running (E_j + L(1) > E_i). Simultaneous arrivals
        would be batched together, so with batch size > 1 the run stops before a tie.

        Cost: O(c) to read the c workers' free times, then O(chunk) numpy; the heap is updated in
        place (as the batch loop would) for short runs and rebuilt for long ones.
        """
        heap = g.free
        c = len(heap)
        l1 = g.lat[1]
        hi = min(self.pending, h + self._chunk)
        e = self.q_enq[h:hi]
        cut = int(e.searchsorted(t_end))
        if cut == 0:
            return 0
        e = e[:cut]
        keep = self.q_dl[h : h + cut] >= e + l1
        all_kept = bool(keep.all())
        free = np.fromiter(heap, np.float64, c)
        free.sort()
        busy_before = c - free.searchsorted(e, side="right")
        if all_kept:
            ek, kept_before = e, np.arange(cut)
        else:
            ek, kept_before = e[keep], np.cumsum(keep, dtype=np.int64) - keep
        ok = busy_before + kept_before - ek.searchsorted(e - l1, side="right") < c
        if g.batch > 1 and cut > 1:
            same = e[1:] == e[:-1]
            if same.any():
                ok[1:] &= ~same
                ok[:-1] &= ~same
        if g.batch > 1 and h + cut < self.pending and self.q_enq[h + cut] == e[-1]:
            ok[-1] = False  # tied with the first request after the chunk
        bad = np.flatnonzero(~ok)
        m = int(bad[0]) if bad.size else cut
        self._chunk = min(_FAST_MAX, self._chunk * 2) if m == hi - h else max(_FAST_MIN, 2 * m)
        if m == 0:
            return 0
        em = e[:m]
        fins = em + l1
        out.start.extend(em.tolist())
        out.finish.extend(fins.tolist())
        km = keep[:m]
        if not all_kept and not km.all():
            out.drops.extend((h + np.flatnonzero(~km)).tolist())
            fins = fins[km]
        n_run = int(fins.size)
        if n_run:
            if 4 * n_run < c:  # each request takes the earliest free worker, as in the batch loop
                replace = heapq.heapreplace
                for x in fins.tolist():
                    replace(heap, x)
            else:  # the run's requests took the n_run earliest free times (all ≤ their starts)
                both = np.concatenate([free, fins])
                g.free = np.sort(np.partition(both, both.size - c)[both.size - c :]).tolist()
            g.busy_s += n_run * l1
            g.batches += n_run
            if self.record_batches:
                out.log.extend((g.pool, float(t), 1, g.batch) for t in em[km])
        return m
