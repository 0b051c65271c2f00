# The HADIS operator: kopf runs hadis.operator (observe -> decide -> build -> apply per HadisService).
# Build from the repository root:  docker build -f images/operator.Dockerfile -t hadis-operator .
# Stage 1 builds the hadis wheel and its dependencies into a virtualenv; stage 2 copies only that
# virtualenv onto a clean python:3.11-slim, so no compiler, pip cache or source tree ships.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/hadis
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY gateway/ gateway/
COPY worker/ worker/
RUN /opt/hadis/bin/pip install --no-cache-dir ".[operator]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="hadis-operator" \
      org.opencontainers.image.description="HADIS operator: MILP allocation and reconciliation of HadisServices" \
      org.opencontainers.image.licenses="Apache-2.0"
# a passwd and group entry for the numeric user: getpass.getuser() fails for a uid without one, and
# kopf calls it for its peering id at start. --no-log-init keeps the sparse lastlog/faillog out.
RUN groupadd --gid 65532 hadis \
    && useradd --uid 65532 --gid 65532 --no-create-home --no-log-init --home-dir /tmp \
       --shell /usr/sbin/nologin hadis
COPY --from=build /opt/hadis /opt/hadis
# HOME and the caches under /tmp: the operator's manifests (and the chart) run every HADIS
# container with a read-only root filesystem and an emptyDir on /tmp.
ENV PATH=/opt/hadis/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HADIS_OPERATOR_METRICS_PORT=8080
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080
# /healthz turns 503 when the operator loop has not reported alive recently (hadis.operator.metrics);
# Kubernetes uses the chart's probes on the same path, this is for plain `docker run`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HADIS_OPERATOR_METRICS_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["kopf", "run", "-m", "hadis.operator", "--standalone"]
# the scope: override with e.g. `--namespace=team-a` (the chart's args) for a namespaced operator
CMD ["--all-namespaces"]
