"""The HADIS overview dashboard: traffic, SLO, latency, quality, allocation, cascade, queues, solver.

Which series belong to one HadisService follows the control loop's own queries
(:mod:`hadis.observe.promql`): gateway and worker series carry the scrape's ``namespace`` and the
pod label ``app.kubernetes.io/instance`` (``app_kubernetes_io_instance``); the operator's own
series carry ``namespace`` and ``service`` as metric labels (``hadis.operator.metrics``). Every
matcher is a regex, so with the ``All`` value (``.*``) a Prometheus without those labels (one
local stack, ``hadis up``) still shows data.

``scripts/build_dashboard.py`` writes :func:`dashboard_text` to ``charts/hadis/dashboards/hadis.json``.
"""

from __future__ import annotations

from typing import Any

from hadis.dashboards.grafana import Panel, Target, Variable, dashboard, to_json
from hadis.observe.promql import DEFAULT_MATCHERS

DASHBOARD_FILE = "hadis.json"
UID = "hadis-overview"
NS_LABEL = DEFAULT_MATCHERS.namespace_label
SVC_LABEL = DEFAULT_MATCHERS.service_label
W = "$__rate_interval"
#: gateway and worker series (labels from the scrape)
SEL = f'{NS_LABEL}=~"$namespace", {SVC_LABEL}=~"$service"'
#: the operator's series (labels set by the operator itself)
OP = 'namespace=~"$namespace", service=~"$service"'
#: solves happen once per allocation interval (50 s by default): a window holding several
SOLVE_WINDOW = "5m"


def _rate(metric: str, by: str = "", extra: str = "", window: str = W) -> str:
    agg = f"sum by ({by}) " if by else "sum"
    return f"{agg}(rate({metric}{{{SEL}{extra}}}[{window}]))"


def _quantile(q: float) -> Target:
    buckets = f"sum by (le) (rate(hadis_gateway_request_latency_seconds_bucket{{{SEL}}}[{W}]))"
    return Target(f"histogram_quantile({q:g}, {buckets})", f"p{round(q * 100)}")


ANSWERED = _rate("hadis_gateway_requests_total")


def panels() -> list[Panel]:
    solve = f"hadis_operator_solve_seconds_{{}}{{{{{OP}}}}}[{SOLVE_WINDOW}]"
    return [
        Panel(
            "Request rate",
            "Images asked for (arrivals, 429s included), images answered by outcome, and the demand "
            "the current allocation provisions for (EWMA × over-provisioning).",
            (
                Target(_rate("hadis_gateway_arrivals_total"), "arrivals"),
                Target(_rate("hadis_gateway_requests_total", "outcome"), "answered: {{outcome}}"),
                Target(f"sum by (service) (hadis_operator_demand_qps{{{OP}}})", "provisioned: {{service}}"),
            ),
            unit="reqps",
        ),
        Panel(
            "SLO violation ratio",
            "Share of answered images that came after the SLO or not at all (errors, deadline drops). "
            "Refused requests (429) are in 'Drops and 429s'.",
            (Target(f"{_rate('hadis_gateway_slo_violations_total')} / {ANSWERED}", "late or failed"),),
            unit="percentunit",
            extra_defaults={"min": 0, "max": 1},
        ),
        Panel(
            "Latency (arrival to answer)",
            "Quantiles of the gateway's per-image latency histogram, over every outcome.",
            (_quantile(0.5), _quantile(0.95), _quantile(0.99)),
            unit="s",
        ),
        Panel(
            "Expected FID of the chosen configuration",
            "The FID the policy expects from its allocation (the chosen table row, or the variant mix); "
            "lower is better.",
            (Target(f"hadis_operator_expected_fid{{{OP}}}", "{{namespace}}/{{service}}"),),
            unit="none",
            decimals=2,
        ),
        Panel(
            "GPUs per variant",
            "Worker replicas (one GPU each) the operator allocated per variant, the endpoints the "
            "gateway dispatches to, and the GPUs the allocation uses in total.",
            (
                Target(
                    f"sum by (variant) (hadis_operator_variant_replicas{{{OP}}})", "allocated: {{variant}}"
                ),
                Target(f"max by (variant) (hadis_gateway_endpoints{{{SEL}}})", "serving: {{variant}}"),
                Target(f"sum(hadis_operator_gpus{{{OP}}})", "GPUs used"),
            ),
            unit="none",
            decimals=0,
        ),
        Panel(
            "Batch sizes",
            "The batch size the operator allocated per variant, and the mean size of the batches "
            "the workers actually ran (dynamic batching takes what is queued, up to the limit).",
            (
                Target(
                    f"max by (variant) (hadis_operator_variant_batch_size_requests{{{OP}}})",
                    "allocated: {{variant}}",
                ),
                Target(
                    f"{_rate('hadis_worker_batch_size_requests_sum', 'variant')}"
                    f" / {_rate('hadis_worker_batch_size_requests_count', 'variant')}",
                    "mean run: {{variant}}",
                ),
            ),
            unit="none",
        ),
        Panel(
            "Router-hard and escalation fractions",
            "Observed: share of answered images the router sent straight to the heavy model (θ), and "
            "share of the others the discriminator escalated (τ). Chosen: the θ and τ of the row "
            "the policy picked.",
            (
                Target(f"{_rate('hadis_gateway_router_hard_total')} / {ANSWERED}", "router → heavy"),
                Target(
                    f"{_rate('hadis_gateway_escalations_total')}"
                    f" / ({ANSWERED} - {_rate('hadis_gateway_router_hard_total')})",
                    "escalated",
                ),
                Target(f"hadis_operator_theta_ratio{{{OP}}}", "θ chosen: {{service}}"),
                Target(f"hadis_operator_tau_ratio{{{OP}}}", "τ chosen: {{service}}"),
            ),
            unit="percentunit",
            extra_defaults={"min": 0, "max": 1},
        ),
        Panel(
            "Queue lengths",
            "Requests the gateways have outstanding per variant (waiting or generating), those still "
            "waiting at the gateway for an idle replica, and those queued inside the workers.",
            (
                Target(
                    f"sum by (variant) (hadis_gateway_queue_length_requests{{{SEL}}})",
                    "outstanding: {{variant}}",
                ),
                Target(
                    f"sum by (variant) (hadis_gateway_waiting_requests{{{SEL}}})", "at gateway: {{variant}}"
                ),
                Target(f"sum by (variant) (hadis_worker_queue_requests{{{SEL}}})", "in worker: {{variant}}"),
            ),
            unit="none",
        ),
        Panel(
            "Drops and 429s",
            "Requests refused before dispatch by reason (queue_full is the 429), images answered "
            "with an error by code (deadline: could not finish in time), and the demand the "
            "allocation sheds because no configuration serves it within the SLO.",
            (
                Target(_rate("hadis_gateway_rejected_total", "reason"), "refused: {{reason}}"),
                Target(
                    _rate("hadis_gateway_requests_total", "outcome", ', outcome!~"ok|escalated"'),
                    "dropped: {{outcome}}",
                ),
                Target(f"sum by (service) (hadis_operator_shed_qps{{{OP}}})", "shed by plan: {{service}}"),
            ),
            unit="reqps",
        ),
        Panel(
            "Solver time",
            f"Time the policy took per decision (mean and p95 over {SOLVE_WINDOW}: one solve per "
            "allocation interval).",
            (
                Target(
                    f"sum by (service) (rate({solve.format('sum')})) / "
                    f"sum by (service) (rate({solve.format('count')}))",
                    "mean: {{service}}",
                ),
                Target(
                    f"histogram_quantile(0.95, sum by (le, service) (rate({solve.format('bucket')})))",
                    "p95: {{service}}",
                ),
            ),
            unit="s",
        ),
        Panel(
            "Chosen configuration",
            "The table row (light, heavy, θ, τ) and the policy of each HadisService's allocation.",
            (
                Target(f"hadis_operator_cascade_row_info{{{OP}}}", "", instant=True),
                Target(f"hadis_operator_allocation_info{{{OP}}}", "", instant=True),
            ),
            kind="table",
        ),
    ]


def variables() -> list[Variable]:
    return [
        Variable("namespace", "Namespace", "hadis_gateway_arrivals_total", NS_LABEL),
        Variable(
            "service",
            "HadisService",
            "hadis_gateway_arrivals_total",
            SVC_LABEL,
            f'{{{NS_LABEL}=~"$namespace"}}',
        ),
    ]


def build_dashboard() -> dict[str, Any]:
    return dashboard(
        uid=UID,
        title="HADIS",
        description="Hybrid cascade serving: traffic, SLO, quality, allocation and solver (generated by "
        "scripts/build_dashboard.py from hadis.dashboards.overview; do not edit by hand)",
        panels=panels(),
        variables=variables(),
        tags=["hadis", "diffusion", "serving"],
    )


def dashboard_text() -> str:
    return to_json(build_dashboard())
