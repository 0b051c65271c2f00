# A HADIS worker: serves one model variant (diffusers pipelines on the GPU, or the emulated engine)
# and scores light images with the CLIP discriminator.
# Build from the repository root:  docker build -f images/worker.Dockerfile -t hadis-worker .
#
# The base is NVIDIA's CUDA "base" image (driver hooks and NVIDIA_* variables for the container
# toolkit): torch's PyPI wheel (torch==2.13.0, pinned by the `diffusers` extra) is built against
# CUDA 13.0 and brings its own cuBLAS/cuDNN/NCCL as pip packages, so the larger "runtime" image would
# only duplicate them. The node needs a driver that supports CUDA 13.0. Ubuntu 24.04's Python is
# 3.12 (HADIS needs >= 3.11). Weights are never downloaded at start: they come from the volume the
# operator mounts at /models (spec.modelVolume), HF_HUB_OFFLINE=1 keeps Hugging Face libraries to
# local files, and HADIS_MODEL_ROOT=/models refuses local paths outside the mount.
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 python3.12-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3.12 -m venv /opt/hadis
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY gateway/ gateway/
COPY worker/ worker/
RUN /opt/hadis/bin/pip install --no-cache-dir ".[worker,diffusers]"

FROM ${CUDA_IMAGE}
LABEL org.opencontainers.image.title="hadis-worker" \
      org.opencontainers.image.description="HADIS worker: one diffusion model variant, dynamic batching, CLIP discriminator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV DEBIAN_FRONTEND=noninteractive
# the interpreter only (the virtualenv's python links to /usr/bin/python3.12); no pip, no compiler
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 \
    && rm -rf /var/lib/apt/lists/*
# a passwd and group entry for the numeric user: getpass.getuser() fails for a uid without one, and
# torch (inductor/triton cache paths) calls it. --no-log-init keeps the sparse lastlog/faillog out.
RUN groupadd --gid 65532 hadis \
    && useradd --uid 65532 --gid 65532 --no-create-home --no-log-init --home-dir /tmp \
       --shell /usr/sbin/nologin hadis
COPY --from=build /opt/hadis /opt/hadis
# HOME and every cache under /tmp: the operator runs this container with a read-only root
# filesystem and an emptyDir on /tmp (hadis.reconcile.pods); the cascade ConfigMap is mounted at
# /etc/hadis/cascade and the weights at /models.
ENV PATH=/opt/hadis/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor \
    TRITON_CACHE_DIR=/tmp/triton \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HADIS_MODEL_ROOT=/models \
    HADIS_WORKER_PORT=8001
USER 65532:65532
WORKDIR /tmp
EXPOSE 8001
# loading a large pipeline takes minutes: a long start period (the operator's startupProbe allows 10 min)
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HADIS_WORKER_PORT', '8001'), timeout=4)"]
ENTRYPOINT ["python", "-m", "hadis_worker"]
