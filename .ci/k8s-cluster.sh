#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine, for the e2e tests and for a person trying
# HADIS without a cloud: the control plane of .ci/k8s-local.sh (etcd, kube-apiserver,
# kube-controller-manager) plus kube-scheduler, a node (containerd + runc + CNI bridge, kubelet,
# kube-proxy) and cluster DNS (dnsmasq fed by .ci/cluster_dns.py). No registry: images are
# imported into the node's containerd (.ci/images.sh import, `make images`).
#
#   .ci/k8s-cluster.sh install  install the Debian packages the node needs (containerd, CNI plugins, ...)
#   .ci/k8s-cluster.sh up       start it (builds the binaries once if needed); prints KUBECONFIG
#   .ci/k8s-cluster.sh down     stop everything, and put back what it changed on the host
#   .ci/k8s-cluster.sh env      print `export KUBECONFIG=...` and the node's addresses
#   .ci/k8s-cluster.sh status   is it up? (exit 0 when it is)
#
# The pods live on a bridge ($BRIDGE) with a private /24 that only this cluster uses; the node
# address is its .1. Pods reach each other and the node, nothing beyond it (a FORWARD rule drops
# anything leaving or entering the bridge from another interface). Services get cluster IPs from
# HADIS_K8S_SERVICE_CIDR, served by kube-proxy's iptables rules.
#
# What `down` puts back: every process it started (and every container), every mount under the
# cluster's directories and the pod network namespaces, the bridge, the iptables rules (the tables
# as they were before `up`), the sysctls the kubelet and kube-proxy set, the kubelet's cgroups.
#
# Settings (environment): HADIS_CLUSTER_DIR (/tmp/hadis-cluster), HADIS_CLUSTER_NET (10.233.77: the
# pod /24's first three octets), HADIS_CLUSTER_BRIDGE (hadis0), HADIS_CLUSTER_API_PORT (16443),
# HADIS_CLUSTER_CACHE (/opt/hadis-cluster: containerd's image store, kept between runs),
# HADIS_CLUSTER_PYTHON (.venv/bin/python: runs the DNS sync), HADIS_K8S_NO_BUILD=1 (fail instead
# of building). Run it as root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
DIR="${HADIS_CLUSTER_DIR:-/tmp/hadis-cluster}"
NET="${HADIS_CLUSTER_NET:-10.233.77}"
BRIDGE="${HADIS_CLUSTER_BRIDGE:-hadis0}"
NODE_IP="$NET.1"
POD_CIDR="$NET.0/24"
SERVICE_CIDR="${HADIS_K8S_SERVICE_CIDR:-10.0.0.0/24}"
API_PORT="${HADIS_CLUSTER_API_PORT:-16443}"
CACHE="${HADIS_CLUSTER_CACHE:-/opt/hadis-cluster}"
PY="${HADIS_CLUSTER_PYTHON:-$ROOT/.venv/bin/python}"
NODE_NAME=hadis-node
CNI_NAME=hadis-cluster
SANDBOX_IMAGE=k8s.gcr.io/pause:3.2
CP_DIR="$DIR/control-plane"
CTR_SOCK="$DIR/containerd/containerd.sock"
START_TIMEOUT="${HADIS_CLUSTER_START_TIMEOUT:-180}"
# the host settings the kubelet and kube-proxy (or this script) change; `down` writes them back
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)
PACKAGES=(containerd runc containernetworking-plugins iptables conntrack dnsmasq-base openssl curl)
COMPONENTS=(cluster-dns dnsmasq kube-proxy kubelet kube-scheduler containerd)

log() { echo "k8s-cluster: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
STATE_DIR="$DIR"
# shellcheck source=.ci/lib.sh
source "$HERE/lib.sh"

k8s_local() { # the control plane script, on this cluster's directory, port and node address
  HADIS_K8S_DIR="$CP_DIR" HADIS_K8S_API_PORT="$API_PORT" HADIS_K8S_BIND_ADDRESS="$NODE_IP" \
    HADIS_K8S_SERVICE_CIDR="$SERVICE_CIDR" bash "$HERE/k8s-local.sh" "$@"
}

bin_dir() { # where .ci/k8s-local.sh keeps the built binaries
  local d
  d=$(k8s_local bindir) || die "no Kubernetes binaries: run make k8s-local"
  echo "$d"
}

kc() { kubectl --kubeconfig "$DIR/kubeconfig" "$@"; }

# ---------------------------------------------------------------- host state, recorded and put back
record_host() { # once per `up`, before anything changes
  [[ -f "$DIR/host/recorded" ]] && return 0
  mkdir -p "$DIR/host"
  local k
  for k in "${SYSCTLS[@]}"; do
    [[ -e "/proc/sys/${k//.//}" ]] && echo "$k=$(sysctl -n "$k")" >>"$DIR/host/sysctl"
  done
  iptables-save >"$DIR/host/iptables"
  ip6tables-save >"$DIR/host/ip6tables" 2>/dev/null || true
  [[ -d /var/lib/cni ]] && touch "$DIR/host/had-var-lib-cni"
  [[ -d /var/lib/kubelet ]] && touch "$DIR/host/had-var-lib-kubelet"
  [[ -d /run/containerd ]] && touch "$DIR/host/had-run-containerd"
  [[ -d /run/netns ]] && touch "$DIR/host/had-run-netns"
  # the kubelet writes container logs under /var/log/pods and links them from /var/log/containers
  local d
  for d in /var/log/pods /var/log/containers; do
    [[ -d "$d" ]] && ls -A "$d" >"$DIR/host/entries-${d##*/}"
  done
  touch "$DIR/host/recorded"
}

restore_tables() { # restore_tables iptables|ip6tables: the tables as they were; new tables emptied
  local cmd=$1 saved="$DIR/host/$1" table
  [[ -f "$saved" ]] || return 0
  "$cmd-restore" <"$saved" || log "WARNING: $cmd-restore failed"
  for table in $("$cmd-save" 2>/dev/null | sed -n 's/^\*//p'); do
    grep -qx "\*$table" "$saved" && continue
    if ! { "$cmd" -t "$table" -F && "$cmd" -t "$table" -X; }; then
      log "WARNING: could not empty the $cmd table $table"
    fi
  done
}

restore_host() {
  [[ -f "$DIR/host/recorded" ]] || return 0
  restore_tables iptables
  restore_tables ip6tables
  local line
  while IFS= read -r line; do
    sysctl -q -w "$line" >/dev/null || log "WARNING: could not put back $line"
  done <"$DIR/host/sysctl"
}

# ---------------------------------------------------------------- certificates and kubeconfigs
node_pki() { # the node components' certificates and kubeconfigs, from the control plane's CA
  local pki="$CP_DIR/pki"
  [[ -f "$pki/node-complete" ]] && return 0
  k8s_local credentials kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" >/dev/null
  k8s_local credentials kubelet-serving "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME" >/dev/null
  k8s_local credentials kube-proxy "/CN=system:kube-proxy" >/dev/null
  k8s_local credentials kube-scheduler "/CN=system:kube-scheduler" >/dev/null
  touch "$pki/node-complete"
}

# ---------------------------------------------------------------- the pieces
make_bridge() {
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "a network interface $BRIDGE exists already (another cluster? .ci/k8s-cluster.sh down, or set HADIS_CLUSTER_BRIDGE)"
  if ip -4 route show to match "$NODE_IP" | grep -qv '^default'; then
    die "$POD_CIDR overlaps a route of this machine ($(ip -4 route show to match "$NODE_IP" | grep -v '^default' | head -n1)): set HADIS_CLUSTER_NET"
  fi
  log "creating bridge $BRIDGE with $NODE_IP/24 (the node address; pods get $NET.16-250)"
  ip link add "$BRIDGE" type bridge
  touch "$DIR/host/made-bridge"
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # cluster IPs stay on this machine: kube-proxy rewrites those it serves; any other (a Service
  # being deleted, a typo) goes to the bridge, where nobody answers, never to the default route
  ip route add "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
}

isolate_pods() { # pods talk to the node and to each other, never past this machine
  iptables -N HADIS-CLUSTER-ISOLATE
  iptables -A HADIS-CLUSTER-ISOLATE -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  iptables -A HADIS-CLUSTER-ISOLATE -o "$BRIDGE" ! -i "$BRIDGE" -j DROP
  iptables -I FORWARD 1 -j HADIS-CLUSTER-ISOLATE
  # Service traffic between two pods on the bridge must pass kube-proxy's rules (br_netfilter) and
  # be routed back onto the bridge: FORWARD then only lets it stay on the bridge
  sysctl -q -w net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1 >/dev/null
}

write_cni() {
  mkdir -p "$DIR/cni/net.d" "$DIR/cni/ipam"
  cat >"$DIR/cni/net.d/10-$CNI_NAME.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "$NET.16", "rangeEnd": "$NET.250", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
JSON
}

containerd_answers() { ctr --address "$CTR_SOCK" version >/dev/null 2>&1; }

start_containerd() {
  local bins
  bins=$(bin_dir)
  mkdir -p "$DIR/containerd" "$CACHE/containerd"
  cat >"$DIR/containerd/config.toml" <<TOML
version = 2
root = "$CACHE/containerd"
state = "$DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$DIR/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  # this VM lacks CAP_SYS_RESOURCE: a negative oom_score_adj would fail every sandbox
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
TOML
  log "starting containerd $(containerd --version | awk '{print $3}') (images kept in $CACHE/containerd)"
  launch containerd containerd --config "$DIR/containerd/config.toml"
  wait_for containerd 30 containerd_answers
  # the sandbox image: the static pause binary built with the Kubernetes binaries, as one layer
  if ! ctr --address "$CTR_SOCK" -n k8s.io images ls -q | grep -qx "$SANDBOX_IMAGE"; then
    log "importing the pod sandbox image $SANDBOX_IMAGE (built from kubernetes' build/pause)"
    local tmp="$DIR/pause-image"
    mkdir -p "$tmp/rootfs"
    install -m 0755 "$bins/pause" "$tmp/rootfs/pause"
    tar -C "$tmp/rootfs" -cf "$tmp/layer.tar" pause
    python3 "$HERE/oci_archive.py" --layer "$tmp/layer.tar" --name "$SANDBOX_IMAGE" \
      --entrypoint /pause --out "$tmp/pause.tar"
    ctr --address "$CTR_SOCK" -n k8s.io images import --no-unpack=false "$tmp/pause.tar" >/dev/null
    rm -rf "$tmp"
  fi
}

start_control_plane() {
  mkdir -p "$CP_DIR"
  k8s_local start >/dev/null
  cp "$CP_DIR/kubeconfig" "$DIR/kubeconfig"
  node_pki
}

start_scheduler() {
  log "starting kube-scheduler"
  launch kube-scheduler "$(bin_dir)/kube-scheduler" --kubeconfig "$CP_DIR/kube-scheduler.kubeconfig" \
    --leader-elect=false --port 0 --secure-port 0 --profiling=false --v 1
}

start_kubelet() {
  local pki="$CP_DIR/pki"
  mkdir -p "$DIR/kubelet"
  : >"$DIR/resolv.conf" # pods resolve through cluster DNS only; no host search domains
  cat >"$DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
cgroupDriver: cgroupfs
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $DIR/resolv.conf
failSwapOn: false
serializeImagePulls: false
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 60
YAML
  log "starting kubelet (node $NODE_NAME at $NODE_IP)"
  launch kubelet "$(bin_dir)/kubelet" --config "$DIR/kubelet.yaml" --kubeconfig "$CP_DIR/kubelet.kubeconfig" \
    --container-runtime remote --container-runtime-endpoint "unix://$CTR_SOCK" \
    --image-service-endpoint "unix://$CTR_SOCK" --runtime-request-timeout 5m \
    --pod-infra-container-image "$SANDBOX_IMAGE" --root-dir "$DIR/kubelet" \
    --cert-dir "$DIR/kubelet/pki" --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" \
    --node-labels hadis.io/test-node=true --v 1
}

start_proxy() {
  log "starting kube-proxy (iptables mode)"
  launch kube-proxy "$(bin_dir)/kube-proxy" --kubeconfig "$CP_DIR/kube-proxy.kubeconfig" \
    --hostname-override "$NODE_NAME" --cluster-cidr "$POD_CIDR" --proxy-mode iptables \
    --bind-address "$NODE_IP" --healthz-bind-address 127.0.0.1:10256 \
    --metrics-bind-address 127.0.0.1:10249 --conntrack-max-per-core 0 \
    --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 --v 1
}

start_dns() {
  mkdir -p "$DIR/dns"
  : >"$DIR/dns/cluster.hosts"
  log "starting cluster DNS (dnsmasq on $NODE_IP:53, cluster.local from Services and Endpoints)"
  launch dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --listen-address="$NODE_IP" --bind-interfaces --port 53 --local=/cluster.local/ \
    --domain-needed --addn-hosts="$DIR/dns/cluster.hosts" --local-ttl=1 --user=root --pid-file=
  [[ -x "$PY" ]] || die "$PY missing: the DNS sync needs the project's virtualenv (make install)"
  launch cluster-dns "$PY" "$HERE/cluster_dns.py" sync --kubeconfig "$DIR/kubeconfig" \
    --hosts "$DIR/dns/cluster.hosts" --dnsmasq-pid-file "$DIR/dnsmasq.pid" --domain cluster.local
}

node_ready() {
  [[ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

kubernetes_service_answers() { # from the node's own Service rules: kube-proxy is in place
  curl -sf --max-time 2 -o /dev/null "https://$(first_ip "$SERVICE_CIDR"):443/healthz" --cacert "$CP_DIR/pki/ca.crt" \
    --cert "$CP_DIR/pki/admin.crt" --key "$CP_DIR/pki/admin.key"
}

dns_answers() { # the kubernetes Service by its cluster name, from dnsmasq
  python3 "$HERE/cluster_dns.py" resolve kubernetes.default.svc.cluster.local --server "$NODE_IP" >/dev/null 2>&1
}

# ---------------------------------------------------------------- up / down
cmd_up() {
  [[ $EUID -eq 0 ]] || die "run as root: a node changes network interfaces, iptables and mounts"
  if status_quiet; then
    log "already up in $DIR"
    echo "$DIR/kubeconfig"
    return 0
  fi
  [[ -d "$DIR" ]] && { log "a half-started cluster is in $DIR: taking it down first"; cmd_down; }
  local t0=$SECONDS
  ensure_packages "${PACKAGES[@]}"
  [[ "${HADIS_K8S_NO_BUILD:-0}" == 1 ]] || k8s_local build
  mkdir -p "$DIR/logs"
  trap 'log "up failed: taking down what was started"; cmd_down' ERR
  record_host
  make_bridge
  isolate_pods
  write_cni
  start_control_plane
  start_containerd
  start_scheduler
  start_kubelet
  start_proxy
  start_dns
  wait_for "node $NODE_NAME Ready" "$START_TIMEOUT" node_ready
  wait_for "the kubernetes Service through kube-proxy" 60 kubernetes_service_answers
  wait_for "cluster DNS" 60 dns_answers
  trap - ERR
  touch "$DIR/up"
  log "cluster up in $((SECONDS - t0)) s: export KUBECONFIG=$DIR/kubeconfig; images: .ci/images.sh import $CTR_SOCK"
  echo "$DIR/kubeconfig"
}

remove_containers() { # every pod sandbox and container of the node, with their shims
  [[ -S "$CTR_SOCK" ]] && pid_alive containerd || return 0
  local c t
  for t in $(ctr --address "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CTR_SOCK" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
  done
  for _ in $(seq 1 25); do
    [[ -z "$(ctr --address "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null | head -n1)" ]] && break
    for t in $(ctr --address "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CTR_SOCK" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
    done
    sleep 0.2
  done
  for c in $(ctr --address "$CTR_SOCK" -n k8s.io containers ls -q 2>/dev/null); do
    ctr --address "$CTR_SOCK" -n k8s.io containers delete "$c" >/dev/null 2>&1 || true
  done
}

drain_pods() { # let the kubelet stop its pods (network namespaces, CNI addresses) while it runs
  pid_alive kubelet && [[ -f "$DIR/kubeconfig" ]] || return 0
  kc delete pods --all-namespaces --all --grace-period 0 --force --wait=false >/dev/null 2>&1 || true
  local t0=$SECONDS
  while ((SECONDS - t0 < 30)); do
    [[ -z "$(ctr --address "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null | head -n1)" ]] && return 0
    sleep 0.5
  done
  log "pods still running after 30 s: removing their containers directly"
}

unmount_under() { # every mount at or below the given directories, deepest first
  local m
  for m in $(findmnt -rn -o TARGET | awk -v dirs="$*" 'BEGIN{n=split(dirs,d," ")} {for(i=1;i<=n;i++) if (index($0, d[i]) == 1) print}' | sort -r); do
    umount -l "$m" 2>/dev/null || log "WARNING: could not unmount $m"
  done
}

remove_cgroups() { # what the kubelet made for its pods (kubepods) in each hierarchy
  local d
  for d in /sys/fs/cgroup/*/kubepods; do
    [[ -d "$d" ]] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "WARNING: cgroups left under $d"
  done
}

remove_new_entries() { # remove_new_entries DIR: what the cluster added to DIR (all of DIR if it made it)
  local dir=$1 list="$DIR/host/entries-${1##*/}" e
  [[ -d "$dir" ]] || return 0
  if [[ ! -f "$list" ]]; then
    rm -rf "$dir"
    return 0
  fi
  while IFS= read -r e; do
    grep -qxF "$e" "$list" || rm -rf "${dir:?}/$e"
  done < <(ls -A "$dir")
}

cmd_down() {
  [[ -d "$DIR" ]] || {
    log "nothing to take down in $DIR"
    return 0
  }
  local t0=$SECONDS
  # controllers first, so no pod is recreated while the node stops them
  if [[ -d "$CP_DIR" ]] && [[ -f "$CP_DIR/kube-controller-manager.pid" ]]; then
    kill "$(cat "$CP_DIR/kube-controller-manager.pid")" 2>/dev/null || true
  fi
  stop_pid kube-scheduler
  drain_pods
  stop_pid cluster-dns
  stop_pid dnsmasq
  stop_pid kubelet 15
  remove_containers
  stop_pid kube-proxy
  if [[ -f "$CP_DIR/kube-proxy.kubeconfig" ]]; then
    "$(k8s_local bindir 2>/dev/null || echo /nonexistent)/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  stop_pid containerd 15
  # a shim whose container was not removed outlives containerd: end it (it belongs to this node)
  pkill -9 -f "containerd-shim-runc-v2 -namespace k8s.io -address $CTR_SOCK" 2>/dev/null || true
  k8s_local stop >/dev/null 2>&1 || true
  unmount_under "$DIR" "$CACHE/containerd" /run/netns/cni- /var/run/netns/cni-
  rm -f /run/netns/cni-* 2>/dev/null || true
  remove_cgroups
  if [[ -f "$DIR/host/made-bridge" ]]; then
    ip link del "$BRIDGE" 2>/dev/null || true
  fi
  ip link show "$BRIDGE" >/dev/null 2>&1 && log "WARNING: $BRIDGE is still there"
  restore_host
  [[ -f "$DIR/host/had-var-lib-cni" ]] || rm -rf /var/lib/cni
  [[ -f "$DIR/host/had-var-lib-kubelet" ]] || rm -rf /var/lib/kubelet
  [[ -f "$DIR/host/had-run-containerd" ]] || rm -rf /run/containerd
  [[ -f "$DIR/host/had-run-netns" ]] || rmdir /run/netns 2>/dev/null || true
  remove_new_entries /var/log/pods
  remove_new_entries /var/log/containers
  rm -rf "$DIR"
  log "down in $((SECONDS - t0)) s (processes, containers, mounts, bridge, iptables, sysctls, cgroups put back)"
}

status_quiet() {
  [[ -f "$DIR/up" ]] || return 1
  local c
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
  node_ready
}

cmd_status() {
  if status_quiet; then
    log "up: node $NODE_NAME at $NODE_IP, KUBECONFIG=$DIR/kubeconfig"
    return 0
  fi
  log "not up (no running cluster in $DIR)"
  return 1
}

cmd_env() {
  status_quiet || die "no cluster running in $DIR (.ci/k8s-cluster.sh up)"
  echo "export KUBECONFIG=$DIR/kubeconfig"
  echo "export HADIS_CLUSTER_NODE_IP=$NODE_IP"
  echo "export HADIS_CLUSTER_CONTAINERD=$CTR_SOCK"
}

main() {
  case "${1:-}" in
    install) ensure_packages "${PACKAGES[@]}" ;;
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) cmd_status ;;
    *)
      echo "usage: $0 install|up|down|env|status" >&2
      return 2
      ;;
  esac
}

main "$@"; exit $?
