"""Benchmark of the operator's reaction time to a load step (prints figures; not a test).

Issue 4's target: from a load step (e.g. 10 → 60 QPS) to updated Deployment replicas in
**≤ one allocation interval + 10 s**.

Setup (everything real except the gateway):

* the project's control plane (etcd + kube-apiserver + kube-controller-manager 1.20, ``make
  k8s-local``) and the HadisService CRD;
* Debian's Prometheus scraping, every second, a fake gateway endpoint whose
  ``hadis_gateway_arrivals_total`` counter grows at the rate the benchmark sets;
* the operator as deployed: ``kopf run -m hadis.operator --standalone --namespace NS``;
* the emulated E1 example (16 L40S, four variants, the HADIS MILP) with ``--interval`` seconds,
  ``rateWindow`` 10 s and ``ewmaAlpha`` ``--alpha``.

Each step waits until the estimate has settled at the current rate (status.demandQps within 10 %
of rate × over-provisioning and the replicas unchanged over an interval), waits a random part of
an interval (so that steps land anywhere in the operator's cycle), switches the counter's rate,
and polls the API server every 0.1 s for (a) the first change of a worker Deployment's replicas
and (b) the status reporting the new allocation (lastAllocationTime). Steps alternate between
``--low`` and ``--high`` QPS. Printed: each step's times, p50 and max of both, and the solver
time of each new allocation (status.allocation.solveTimeS).

``python bench/bench_operator_reaction.py [--interval 10] [--steps 4] [--low 10] [--high 60]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402
from tests.k8s_local import create_namespace, install_crd, running_control_plane  # noqa: E402
from tests.operator_local import ArrivalCounter, running_operator, serving_arrivals  # noqa: E402
from tests.prometheus_local import Target, running_prometheus  # noqa: E402

NS, NAME = "bench-operator", "e1"
GROUP, VERSION, PLURAL = "hadis.io", "v1alpha1", "hadisservices"
POLL_S = 0.1
TARGET_SLACK_S = 10.0


def service(interval: float, alpha: float, prometheus_url: str) -> dict[str, Any]:
    body = cast(dict[str, Any], yaml.safe_load((ROOT / "examples" / "local-emulated.yaml").read_text()))
    body["metadata"] = {"name": NAME, "namespace": NS}
    body["spec"]["allocation"] |= {"intervalSeconds": interval, "ewmaAlpha": alpha}
    body["spec"]["metrics"] = {"prometheusUrl": prometheus_url, "rateWindow": "10s", "timeoutSeconds": 2}
    return body


class Cluster:
    def __init__(self, api: client.ApiClient) -> None:
        self.crs = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)

    def svc(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.crs.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME))

    def replicas(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.apps.list_namespaced_deployment(NS).items:
            meta = d.metadata
            if meta is not None and "hadis.io/variant" in (meta.labels or {}) and d.spec is not None:
                out[str(meta.name)] = int(d.spec.replicas or 0)
        return out


def wait_steady(cl: Cluster, qps: float, op: float, interval: float) -> dict[str, int]:
    """Replicas once the estimate is within 10 % of ``qps`` × ``op`` and they held for an interval."""
    deadline = time.monotonic() + 30 * interval + 60
    want = qps * op
    while time.monotonic() < deadline:
        st = cl.svc().get("status") or {}
        demand = float(st.get("demandQps") or 0.0)
        if abs(demand - want) <= 0.1 * want:
            before = cl.replicas()
            time.sleep(interval + 1)
            if cl.replicas() == before:
                return before
        time.sleep(0.5)
    raise SystemExit(f"the estimate did not settle at {want:.1f} QPS")


def step(
    cl: Cluster, arrivals: ArrivalCounter, to_qps: float, over: float, timeout_s: float
) -> dict[str, Any]:
    """Switch the rate to ``to_qps``; the times until the operator reacted to it.

    The reaction is the first new allocation (lastAllocationTime) in a status that shows the new
    load (demandQps moved ≥ 5 % of the way to the new rate × over-provisioning; at a steady load
    it moves far less); its replicas change is the first one seen from 2 s before that status on (a
    cycle applies the objects, then writes the status). Replica
    changes before that are counted apart: re-decisions at the old load that a step followed."""
    before = cl.replicas()
    st0 = cl.svc().get("status") or {}
    alloc_time, demand0 = st0.get("lastAllocationTime"), float(st0.get("demandQps") or 0.0)
    gap = to_qps * over - demand0
    t0 = time.monotonic()
    arrivals.set_rate(to_qps)
    changes: list[float] = []
    last = before
    t_status: float | None = None
    while time.monotonic() - t0 < timeout_s:
        now = time.monotonic() - t0
        reps = cl.replicas()
        if reps != last:
            changes.append(now)
            last = reps
        st = cl.svc().get("status") or {}
        moved = (float(st.get("demandQps") or 0.0) - demand0) / gap >= 0.05 if gap else True
        if not moved:
            alloc_time = st.get("lastAllocationTime")  # a re-decision at the old load
        elif t_status is None and st.get("lastAllocationTime") != alloc_time:
            t_status = now
        if t_status is not None and any(c >= t_status - 2.0 for c in changes):
            break
        time.sleep(POLL_S)
    t_replicas = None
    if t_status is not None:
        near = [c for c in changes if c >= t_status - 2.0]
        t_replicas = min(near) if near else None
    early = len([c for c in changes if t_replicas is None or c < t_replicas])
    st = cl.svc().get("status") or {}
    return {
        "replicas_s": t_replicas,
        "status_s": t_status,
        "early": early,
        "solve_s": float((st.get("allocation") or {}).get("solveTimeS") or 0.0),
        "before": before,
        "after": cl.replicas(),
    }


def fmt(x: float | None) -> str:
    return "  --  " if x is None else f"{x:6.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=10.0, help="spec.allocation.intervalSeconds")
    ap.add_argument("--alpha", type=float, default=0.5, help="spec.allocation.ewmaAlpha")
    ap.add_argument("--steps", type=int, default=4, help="load steps (alternating up and down)")
    ap.add_argument("--low", type=float, default=10.0, help="QPS before an up-step")
    ap.add_argument("--high", type=float, default=60.0, help="QPS after an up-step")
    args = ap.parse_args()
    interval = args.interval
    target = interval + TARGET_SLACK_S
    print(f"operator reaction: interval {interval:g} s, ewmaAlpha {args.alpha:g}, rateWindow 10 s, ")
    print(f"  1 s scrapes, {args.low:g} <-> {args.high:g} QPS; target: replicas within {target:g} s")
    arrivals = ArrivalCounter(rate=args.low)
    workdir = Path(tempfile.mkdtemp(prefix="hadis-bench-operator-"))
    t_setup = time.monotonic()
    with (
        running_control_plane() as cp,
        serving_arrivals(arrivals) as address,
        running_prometheus([Target.of(address, namespace=NS, app_kubernetes_io_instance=NAME)]) as prom,
    ):
        install_crd(cp.api)
        create_namespace(cp.api, NS)
        with running_operator(cp.kubeconfig, NS, workdir / "operator.log") as op:
            print(f"  setup (control plane, Prometheus, operator): {time.monotonic() - t_setup:.1f} s")
            cl = Cluster(cp.api)
            body = service(interval, args.alpha, prom.url)
            cl.crs.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
            over = float(body["spec"]["allocation"]["overProvisioning"])
            rows = []
            current = args.low
            rng = random.Random(4)
            for i in range(args.steps):
                wait_steady(cl, current, over, interval)
                time.sleep(rng.uniform(0, interval))  # the step lands anywhere in the cycle
                to = args.high if current == args.low else args.low
                r = step(cl, arrivals, to, over, timeout_s=4 * interval + 30)
                r["from"], r["to"] = current, to
                rows.append(r)
                current = to
                print(
                    f"  step {i + 1}: {r['from']:4g} -> {r['to']:4g} QPS: replicas changed after "
                    f"{fmt(r['replicas_s'])} s, status after {fmt(r['status_s'])} s, "
                    f"solve {r['solve_s'] * 1000:.0f} ms"
                    + (f" ({r['early']} earlier re-decision(s) at the old load)" if r["early"] else "")
                )
            if not op.alive():
                print(op.log_tail())
                return 1
    rep = [r["replicas_s"] for r in rows if r["replicas_s"] is not None]
    sta = [r["status_s"] for r in rows if r["status_s"] is not None]
    solve = [r["solve_s"] * 1000 for r in rows]
    for what, xs, unit in (("replicas", rep, "s"), ("status", sta, "s"), ("solver", solve, "ms")):
        if xs:
            print(f"  {what + ':':9} p50 {statistics.median(xs):.2f} {unit}, max {max(xs):.2f} {unit}")
        else:
            print(f"  {what + ':':9} no change seen")
    missed = len(rows) - len(rep)
    verdict = "met" if rep and not missed and max(rep) <= target else "NOT met"
    print(f"  target (replicas within interval + {TARGET_SLACK_S:g} s = {target:g} s): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
