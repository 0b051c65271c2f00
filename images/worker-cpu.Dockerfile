# A HADIS worker without torch: the emulated engine only (HadisService `engine: emulated`), for
# capacity tests and the CI cluster, where there is no GPU and NVIDIA's CUDA base cannot be pulled.
# The GPU image (diffusers engines, CLIP discriminator) is worker.Dockerfile.
# Build from the repository root:  docker build -f images/worker-cpu.Dockerfile -t hadis-worker-cpu .
# Stage 1 builds the hadis wheel with the `worker` extra (FastAPI, uvicorn; no torch) into a
# virtualenv; stage 2 copies only that virtualenv onto a clean python:3.11-slim.
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
RUN /opt/hadis/bin/pip install --no-cache-dir ".[worker]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="hadis-worker-cpu" \
      org.opencontainers.image.description="HADIS worker, emulated engine only (no torch): capacity tests and CI clusters" \
      org.opencontainers.image.licenses="Apache-2.0"
# a passwd and group entry for the numeric user: getpass.getuser() fails for a uid without one.
# keeps the sparse lastlog/faillog out.
RUN groupadd --gid 65532 hadis \
    && useradd --uid 65532 --gid 65532 --no-create-home --no-log-init --home-dir /tmp \
       --shell /usr/sbin/nologin hadis
COPY --from=build /opt/hadis /opt/hadis
# HOME and the caches under /tmp: the operator runs this container with a read-only root filesystem
# and an emptyDir on /tmp (hadis.reconcile.pods); the cascade ConfigMap is mounted at
# /etc/hadis/cascade. HADIS_MODEL_ROOT as in the GPU image (the emulated engine loads no weights).
ENV PATH=/opt/hadis/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HADIS_MODEL_ROOT=/models \
    HADIS_WORKER_PORT=8001
USER 65532:65532
WORKDIR /tmp
EXPOSE 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HADIS_WORKER_PORT', '8001'), timeout=4)"]
ENTRYPOINT ["python", "-m", "hadis_worker"]
