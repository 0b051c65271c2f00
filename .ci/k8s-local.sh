#!/usr/bin/env bash
# A real Kubernetes control plane for the tests: etcd + kube-apiserver + kube-controller-manager on
# 127.0.0.1, no kubelet (Pods stay Pending), built from Debian bookworm's `kubernetes` source package.
# .ci/k8s-cluster.sh adds a node (containerd, kubelet, kube-proxy, kube-scheduler) on top of it.
#
#   .ci/k8s-local.sh build   build kube-apiserver and kube-controller-manager once, cached in
#                            $HADIS_K8S_PREFIX/<version>-r<recipe>/bin (default /opt/hadis-k8s/1.20.2-r2/bin)
#   .ci/k8s-local.sh start   build if needed, start the control plane in $HADIS_K8S_DIR
#                            (default /tmp/hadis-k8s), wait until /readyz is ok, print KUBECONFIG
#   .ci/k8s-local.sh stop    stop it and delete $HADIS_K8S_DIR
#   .ci/k8s-local.sh env     print `export KUBECONFIG=...` for a running control plane
#   .ci/k8s-local.sh bindir  print where the built binaries are (exit 1 when they are not built)
#   .ci/k8s-local.sh credentials NAME SUBJECT [SANS]  a certificate (and for a client a kubeconfig)
#                            from the running control plane's CA, for a node's components
#
# Settings (environment): HADIS_K8S_DIR, HADIS_K8S_API_PORT (16443), HADIS_K8S_ETCD_PORT (23790),
# HADIS_K8S_ETCD_PEER_PORT (23800), HADIS_K8S_PREFIX (/opt/hadis-k8s), HADIS_K8S_NO_BUILD=1 (start
# fails instead of building), HADIS_K8S_KEEP_SRC=1 (keep the build tree), HADIS_K8S_BIND_ADDRESS
# (127.0.0.1; .ci/k8s-cluster.sh sets its node address), HADIS_K8S_SERVICE_CIDR (10.0.0.0/24).
#
# The build also makes kubelet, kube-scheduler, kube-proxy and the static pause binary (the pod
# sandbox) from the same source, for the one-node cluster of .ci/k8s-cluster.sh.
#
# Every step is idempotent: a second build is a no-op, a second start finds the running one.
# Run it under `nice -n 19` on a shared machine: the children inherit the niceness.
set -euo pipefail

K8S_VERSION="${HADIS_K8S_VERSION:-1.20.2}"
# bump when the build recipe changes (patches below), so cached binaries of an older recipe are rebuilt
RECIPE=3
PREFIX="${HADIS_K8S_PREFIX:-/opt/hadis-k8s}"
BIN_DIR="$PREFIX/$K8S_VERSION-r$RECIPE/bin"
BUILD_DIR="$PREFIX/build"
RUN_DIR="${HADIS_K8S_DIR:-/tmp/hadis-k8s}"
API_PORT="${HADIS_K8S_API_PORT:-16443}"
ETCD_PORT="${HADIS_K8S_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${HADIS_K8S_ETCD_PEER_PORT:-23800}"
# the address the apiserver listens on and advertises: loopback for the control plane alone; the
# one-node cluster (.ci/k8s-cluster.sh) sets its node's bridge address, which its pods can reach
BIND_ADDRESS="${HADIS_K8S_BIND_ADDRESS:-127.0.0.1}"
SERVICE_CIDR="${HADIS_K8S_SERVICE_CIDR:-10.0.0.0/24}" # Service cluster IPs (kube-proxy serves them on a node)
START_TIMEOUT="${HADIS_K8S_START_TIMEOUT:-120}"
DEB_SRC_LIST=/etc/apt/sources.list.d/hadis-deb-src.sources
PACKAGES=(golang-go rsync make dpkg-dev etcd-server golang-github-modern-go-reflect2-dev openssl curl)

log() { echo "k8s-local: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
STATE_DIR="$RUN_DIR"
COMPONENTS=(etcd kube-apiserver kube-controller-manager)
# shellcheck source=.ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- build
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy pause)
have_binaries() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
}

ensure_deb_src() {
  [[ -f "$DEB_SRC_LIST" ]] && return 0
  [[ -f /etc/apt/sources.list.d/debian.sources ]] || die "no /etc/apt/sources.list.d/debian.sources to mirror"
  log "adding deb-src entries mirroring debian.sources -> $DEB_SRC_LIST"
  sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$DEB_SRC_LIST"
  apt-get update -qq
}

ensure_kubectl() { # the tests and users talk to the control plane with kubectl too
  command -v kubectl >/dev/null && return 0
  log "installing kubectl (Debian kubernetes-client)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
}

cmd_build() {
  ensure_kubectl
  if have_binaries; then
    log "binaries cached in $BIN_DIR ($("$BIN_DIR/kube-apiserver" --version 2>/dev/null || echo '?')); skipping the build"
    return 0
  fi
  local t0=$SECONDS
  ensure_deb_src
  ensure_packages "${PACKAGES[@]}"
  mkdir -p "$BUILD_DIR"
  local src
  src=$(find "$BUILD_DIR" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
  if [[ -z "$src" ]]; then
    log "fetching Debian's kubernetes source package into $BUILD_DIR"
    (cd "$BUILD_DIR" && apt-get source -qq kubernetes >/dev/null)
    src=$(find "$BUILD_DIR" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
    [[ -n "$src" ]] || die "apt-get source kubernetes produced no kubernetes-* directory"
  fi
  [[ -d "$src/cmd/kube-apiserver" && -d "$src/vendor" ]] || die "$src is not a complete Kubernetes tree"
  local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [[ -d "$reflect2" ]] || die "$reflect2 missing (golang-github-modern-go-reflect2-dev)"
  # vendored reflect2 1.0.1 makes the apiserver segfault (runtime.mapiterinit) under Go >= 1.18
  # on the first custom-object create; Debian's 1.0.2 is API-compatible
  log "replacing vendor/github.com/modern-go/reflect2 with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
  rsync -a --delete --exclude '*_test.go' --exclude '.git*' "$reflect2/" "$src/vendor/github.com/modern-go/reflect2/"
  # go-openapi/validate's zero-value check is true for "" since Go 1.16 (shared reflect.Zero), so the
  # apiserver rejects every empty string in a custom object as null (kubernetes#99804); 1.21 took the
  # fix of kube-openapi#230, which keeps only the nil check
  local zero_check='reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))' f
  while IFS= read -r f; do
    log "patching ${f#"$src/"}: an empty string is not null (kubernetes#99804)"
    sed -i 's/data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))/data == nil/' "$f"
  done < <(grep -rlF --include='*.go' "$zero_check" "$src/vendor" || true)
  if grep -rqF --include='*.go' "$zero_check" "$src/vendor"; then
    die "a vendored go-openapi zero-value check is left unpatched: $(grep -rlF --include='*.go' "$zero_check" "$src/vendor")"
  fi
  log "building ${BINARIES[*]} with $(go version) in $src (takes 10-20 min on 2 cores)"
  (
    cd "$src"
    export GOCACHE="$BUILD_DIR/go-cache"
    unset GOFLAGS GO111MODULE GOPATH
    export KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=debian
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kube-proxy"
  ) 2>&1 | sed -u 's/^/  [make] /' >&2
  # the pod sandbox ("pause") image's only binary, from the same source: static, so a one-file image
  # needs no registry
  [[ -f "$src/build/pause/linux/pause.c" ]] || die "$src/build/pause/linux/pause.c missing"
  gcc -Os -Wall -Werror -static -DVERSION=v3.2-hadis -o "$BUILD_DIR/pause" "$src/build/pause/linux/pause.c"
  local out
  out=$(find "$src/_output" -type f -name kube-apiserver -path '*/bin/*' | head -n1)
  [[ -n "$out" ]] || die "the build produced no kube-apiserver"
  mkdir -p "$BIN_DIR.tmp"
  local b
  for b in "${BINARIES[@]}"; do
    [[ $b == pause ]] && continue
    install -m 0755 "$(dirname "$out")/$b" "$BIN_DIR.tmp/"
  done
  install -m 0755 "$BUILD_DIR/pause" "$BIN_DIR.tmp/pause"
  rm -rf "$BIN_DIR" && mv "$BIN_DIR.tmp" "$BIN_DIR"
  local old # binaries of older recipes
  for old in "$PREFIX/$K8S_VERSION" "$PREFIX/$K8S_VERSION"-r*; do
    [[ -d "$old" && "$old" != "$(dirname "$BIN_DIR")" ]] && rm -rf "$old"
  done
  log "built in $((SECONDS - t0)) s: $("$BIN_DIR/kube-apiserver" --version); cached in $BIN_DIR"
  if [[ "${HADIS_K8S_KEEP_SRC:-0}" != 1 ]]; then
    log "removing the build tree $BUILD_DIR (HADIS_K8S_KEEP_SRC=1 keeps it)"
    rm -rf "$BUILD_DIR"
  fi
}

# ---------------------------------------------------------------- start / stop
port_free() { ! (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

apiserver_ready() {
  [[ -f "$RUN_DIR/pki/admin.crt" ]] || return 1
  [[ "$(curl -sf --max-time 3 --cacert "$RUN_DIR/pki/ca.crt" --cert "$RUN_DIR/pki/admin.crt" \
    --key "$RUN_DIR/pki/admin.key" "https://$BIND_ADDRESS:$API_PORT/readyz" 2>/dev/null)" == ok ]]
}

kubeconfig() { # kubeconfig FILE USER: a kubeconfig with USER's client certificate, embedded
  local file=$1 user=$2 b64='base64 -w0'
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: hadis-local
  cluster:
    server: https://$BIND_ADDRESS:$API_PORT
    certificate-authority-data: $($b64 <"$RUN_DIR/pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $($b64 <"$RUN_DIR/pki/$user.crt")
    client-key-data: $($b64 <"$RUN_DIR/pki/$user.key")
contexts:
- name: hadis-local
  context: {cluster: hadis-local, user: $user, namespace: default}
current-context: hadis-local
KUBECONFIG
  chmod 600 "$file"
}

issue_cert() { # issue_cert NAME SUBJECT [SERVER_SANS]: $RUN_DIR/pki/NAME.{crt,key}, signed by the CA
  local pki="$RUN_DIR/pki" ext="$RUN_DIR/pki/$1.ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$2" 2>/dev/null
  echo "basicConstraints=CA:FALSE" >"$ext"
  if [[ -n "${3:-}" ]]; then
    echo "subjectAltName=$3" >>"$ext"
    echo "extendedKeyUsage=serverAuth" >>"$ext"
  else
    echo "extendedKeyUsage=clientAuth" >>"$ext"
  fi
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/$1.crt" -days 30 -extfile "$ext" 2>/dev/null
  rm -f "$pki/$1.csr" "$ext"
}

make_pki() { # a CA, the apiserver's serving certificate, client certificates, the service-account key pair
  local pki="$RUN_DIR/pki"
  [[ -f "$pki/complete" ]] && return 0
  log "creating certificates in $pki (openssl)"
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 30 \
    -subj "/CN=hadis-local-ca" 2>/dev/null
  issue_cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:$BIND_ADDRESS,IP:$(first_ip "$SERVICE_CIDR"),DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue_cert admin "/O=system:masters/CN=hadis-admin"
  issue_cert controller-manager "/CN=system:kube-controller-manager"
  # the apiserver's identity towards kubelets (logs, exec): a node's kubelet trusts this CA
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  touch "$pki/complete"
}

cmd_credentials() { # credentials NAME SUBJECT [SERVER_SANS]: a certificate from this control plane's CA;
  # a client's (no SANs) also gets $RUN_DIR/NAME.kubeconfig. Prints the certificate's path.
  [[ $# -ge 2 ]] || die "usage: $0 credentials NAME SUBJECT [SERVER_SANS]"
  [[ -f "$RUN_DIR/pki/complete" ]] || die "no control plane certificates in $RUN_DIR (.ci/k8s-local.sh start)"
  issue_cert "$@"
  [[ -n "${3:-}" ]] || kubeconfig "$RUN_DIR/$1.kubeconfig" "$1"
  echo "$RUN_DIR/pki/$1.crt"
}

default_service_account() { # created by the controller-manager's service-account controller
  curl -sf --max-time 3 --cacert "$RUN_DIR/pki/ca.crt" --cert "$RUN_DIR/pki/admin.crt" \
    --key "$RUN_DIR/pki/admin.key" -o /dev/null \
    "https://$BIND_ADDRESS:$API_PORT/api/v1/namespaces/default/serviceaccounts/default"
}

cmd_start() {
  if pid_alive kube-apiserver && pid_alive etcd && pid_alive kube-controller-manager && apiserver_ready; then
    log "already running in $RUN_DIR"
    echo "$RUN_DIR/kubeconfig"
    return 0
  fi
  cmd_stop quiet # half-started leftovers
  if ! have_binaries && [[ "${HADIS_K8S_NO_BUILD:-0}" == 1 ]]; then
    die "kube-apiserver is not built in $BIN_DIR: run \`make k8s-local\` (.ci/k8s-local.sh build, 6-15 min once)"
  fi
  cmd_build
  command -v etcd >/dev/null || ensure_packages "${PACKAGES[@]}"
  local t0=$SECONDS
  port_free "$API_PORT" "$BIND_ADDRESS" || die "port $API_PORT on $BIND_ADDRESS is taken (set HADIS_K8S_API_PORT)"
  for port in "$ETCD_PORT" "$ETCD_PEER_PORT"; do
    port_free "$port" || die "port $port on 127.0.0.1 is taken (set HADIS_K8S_API_PORT / HADIS_K8S_ETCD_PORT / HADIS_K8S_ETCD_PEER_PORT)"
  done
  mkdir -p "$RUN_DIR/logs"
  make_pki
  local pki="$RUN_DIR/pki"
  kubeconfig "$RUN_DIR/kubeconfig" admin
  kubeconfig "$RUN_DIR/controller-manager.kubeconfig" controller-manager

  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  launch etcd etcd --name hadis-local --data-dir "$RUN_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "hadis-local=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
  wait_for etcd 30 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" -o /dev/null

  # a loopback address cannot be the "kubernetes" Service's endpoint: keep no endpoints then (nothing
  # in a pod can reach loopback anyway); on a node address the apiserver keeps them itself
  local reconciler=lease
  [[ $BIND_ADDRESS == 127.* ]] && reconciler=none
  log "starting kube-apiserver on https://$BIND_ADDRESS:$API_PORT"
  launch kube-apiserver "$BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$BIND_ADDRESS" --advertise-address "$BIND_ADDRESS" --secure-port "$API_PORT" --insecure-port 0 \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" --kubelet-preferred-address-types InternalIP \
    --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC --anonymous-auth=false \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$SERVICE_CIDR" --endpoint-reconciler-type "$reconciler" \
    --allow-privileged --profiling=false --v 1
  wait_for kube-apiserver "$START_TIMEOUT" apiserver_ready

  log "starting kube-controller-manager"
  launch kube-controller-manager "$BIN_DIR/kube-controller-manager" \
    --kubeconfig "$RUN_DIR/controller-manager.kubeconfig" \
    --use-service-account-credentials --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" --leader-elect=false --port 0 --secure-port 0 \
    --profiling=false --v 1
  wait_for "kube-controller-manager (default service account)" "$START_TIMEOUT" default_service_account

  log "control plane ready in $((SECONDS - t0)) s; export KUBECONFIG=$RUN_DIR/kubeconfig"
  echo "$RUN_DIR/kubeconfig"
}

cmd_stop() {
  local quiet=${1:-}
  local stopped=0
  for p in kube-controller-manager kube-apiserver etcd; do
    pid_alive "$p" || continue
    [[ -z "$quiet" ]] && log "stopping $p (pid $(cat "$RUN_DIR/$p.pid"))"
    stop_pid "$p"
    stopped=1
  done
  rm -rf "$RUN_DIR"
  [[ -z "$quiet" ]] && log "stopped ($([[ $stopped == 1 ]] && echo "processes ended" || echo "nothing was running"); removed $RUN_DIR)"
  return 0
}

cmd_env() {
  apiserver_ready || die "no control plane running in $RUN_DIR (.ci/k8s-local.sh start)"
  echo "export KUBECONFIG=$RUN_DIR/kubeconfig"
}

# ---------------------------------------------------------------- main
main() {
  case "${1:-}" in
    build) cmd_build ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    bindir) have_binaries && echo "$BIN_DIR" ;;
    credentials) cmd_credentials "${@:2}" ;;
    *)
      echo "usage: $0 build|start|stop|env|bindir|credentials" >&2
      return 2
      ;;
  esac
}

# on one line, so that editing this file while it runs (a long build) cannot change what runs next
main "$@"; exit $?
