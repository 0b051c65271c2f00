"""The one-node Kubernetes cluster (.ci/k8s-cluster.sh) for the tests whose pods really run.

``running_cluster()`` brings the cluster up once (control plane, scheduler, containerd, kubelet,
kube-proxy, cluster DNS) in a temporary directory, imports the project's images into the node's
containerd (.ci/images.sh import; ``make images`` built them), and takes it down at the end. After
``down`` it checks that the host is as it was: no process of the cluster left, no mount under its
directories, no bridge, no iptables chain of kube-proxy, the kubelet or the pod isolation, the same
sysctls. The binaries and images must be there (``make k8s-local images``; ``make test`` does it):
when they are missing the session fails loudly instead of skipping.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from hadis.local.processes import free_port
from tests.prometheus_local import LocalPrometheus, Target

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "k8s-cluster.sh"
IMAGES = ROOT / ".ci" / "images.sh"
#: the host settings the node changes, compared before ``up`` and after ``down``
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)
#: what the cluster tests report for the end of the run (tests/e2e/conftest.py prints it in pytest's
#: summary, so `make test`'s quiet output shows the timeline too)
SUMMARY: list[str] = []
#: directories of the host that the kubelet, containerd and CNI create by default
HOST_DIRS = ("/var/lib/kubelet", "/var/lib/cni", "/run/containerd", "/run/netns", "/etc/kubernetes")
#: iptables chains that the node's parts create (kube-proxy, the kubelet, CNI, the isolation rule)
NODE_CHAINS = re.compile(r"^:(KUBE-|CNI-|HADIS-)", re.M)


@dataclass(frozen=True)
class Cluster:
    dir: Path
    kubeconfig: Path
    api: client.ApiClient
    node_ip: str
    node_name: str
    containerd: Path
    env: dict[str, str]

    def kubectl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log(self, component: str, tail: int = 4000) -> str:
        path = self.dir / "logs" / f"{component}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def node_rss_mib(self) -> float:
        """Resident memory of the whole node: the control plane, the node's daemons, every
        container shim and every process in the pods."""
        pids: set[int] = set()
        for pid_file in [*self.dir.glob("*.pid"), *(self.dir / "control-plane").glob("*.pid")]:
            try:
                pids.add(int(pid_file.read_text().strip()))
            except (OSError, ValueError):
                continue
        pids |= _descendants_of_shims(self.containerd)
        return sum(_rss_kib(p) for p in pids) / 1024


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(d.name))
    return tree


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants_of_shims(socket_path: Path) -> set[int]:
    tree = _children()
    shims = [
        int(d.name)
        for d in Path("/proc").iterdir()
        if d.name.isdigit()
        and "containerd-shim" in _cmdline(int(d.name))
        and str(socket_path) in _cmdline(int(d.name))
    ]
    out: set[int] = set()
    todo = list(shims)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(tree.get(pid, []))
    return out


def _host_state() -> dict[str, str]:
    state = {k: _sysctl(k) for k in SYSCTLS}
    state["iptables chains"] = " ".join(sorted(NODE_CHAINS.findall(_run("iptables-save"))))
    state["ip6tables chains"] = " ".join(sorted(NODE_CHAINS.findall(_run("ip6tables-save"))))
    for logs in ("/var/log/pods", "/var/log/containers"):  # the kubelet's container logs
        state[logs] = " ".join(sorted(os.listdir(logs))) if os.path.isdir(logs) else ""
    # directories the kubelet, containerd and CNI make by default
    state["host directories"] = " ".join(p for p in HOST_DIRS if os.path.exists(p))
    return state


def _sysctl(key: str) -> str:
    path = Path("/proc/sys") / key.replace(".", "/")
    return path.read_text().strip() if path.exists() else "-"


def _run(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout
    except FileNotFoundError:
        return ""


def leftovers(cluster_dir: Path, bridge: str, before: dict[str, str]) -> list[str]:
    """What ``down`` left behind on the host (empty when nothing)."""
    found: list[str] = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and str(cluster_dir) in _cmdline(int(d.name)):
            found.append(f"process {d.name}: {_cmdline(int(d.name))[:160]}")
    mounts = _run("findmnt", "-rn", "-o", "TARGET").splitlines()
    found += [f"mount {m}" for m in mounts if m.startswith(str(cluster_dir)) or "/netns/cni-" in m]
    if Path(f"/sys/class/net/{bridge}").exists():
        found.append(f"network interface {bridge}")
    if cluster_dir.exists():
        found.append(f"directory {cluster_dir}")
    after = _host_state()
    found += [
        f"{k}: {before[k]!r} before, {after[k]!r} after"
        for k in before
        if after.get(k) != before[k] and not k.startswith("/var/log/")
    ]
    for logs in ("/var/log/pods", "/var/log/containers"):
        now = set(os.listdir(logs)) if os.path.isdir(logs) else set()
        found += [f"{logs}/{e}" for e in sorted(now - set(before.get(logs, "").split()))]
    if any(Path(f"/sys/fs/cgroup/{h}/kubepods").exists() for h in ("cpu", "memory", "pids")):
        found.append("cgroup kubepods")
    return found


@contextmanager
def running_cluster(bridge: str = "hadis0") -> Iterator[Cluster]:
    """The one-node cluster with the project's images in its containerd; nothing left after."""
    cluster_dir = Path(tempfile.mkdtemp(prefix="hadis-cluster-"))
    cluster_dir.rmdir()  # the script creates it (and refuses a half-started one)
    env = {
        **os.environ,
        "HADIS_CLUSTER_DIR": str(cluster_dir),
        "HADIS_CLUSTER_API_PORT": str(free_port()),
        "HADIS_CLUSTER_BRIDGE": bridge,
        "HADIS_K8S_NO_BUILD": "1",
    }
    before = _host_state()
    t0 = time.monotonic()
    up = subprocess.run(
        ["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=420, check=False
    )
    try:
        if up.returncode != 0:
            raise RuntimeError(f"{SCRIPT.name} up failed (exit {up.returncode}):\n{up.stderr[-6000:]}")
        SUMMARY.append(f"cluster up in {time.monotonic() - t0:.1f} s ({SCRIPT.name} up)")
        print(f"\n{SUMMARY[-1]}")
        values = dict(
            line.removeprefix("export ").split("=", 1)
            for line in subprocess.run(
                ["bash", str(SCRIPT), "env"], env=env, capture_output=True, text=True, timeout=60, check=True
            ).stdout.splitlines()
        )
        sock = Path(values["HADIS_CLUSTER_CONTAINERD"])
        t1 = time.monotonic()
        imported = subprocess.run(
            ["bash", str(IMAGES), "import", str(sock)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if imported.returncode != 0:
            raise RuntimeError(
                f"{IMAGES.name} import failed (exit {imported.returncode}); "
                f"build the images with `make cluster-images`:\n"
                f"{imported.stderr[-4000:]}"
            )
        SUMMARY.append(f"images imported into the node in {time.monotonic() - t1:.1f} s")
        print(SUMMARY[-1])
        kubeconfig = Path(values["KUBECONFIG"])
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            yield Cluster(
                dir=cluster_dir,
                kubeconfig=kubeconfig,
                api=api,
                node_ip=values["HADIS_CLUSTER_NODE_IP"],
                node_name="hadis-node",
                containerd=sock,
                env=env,
            )
        finally:
            api.close()
    finally:
        t2 = time.monotonic()
        down = subprocess.run(
            ["bash", str(SCRIPT), "down"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        left = leftovers(cluster_dir, bridge, before)
        SUMMARY.append(
            f"cluster down in {time.monotonic() - t2:.1f} s; left on the host: {left or 'nothing'} "
            f"(processes, mounts, bridge, iptables chains, sysctls {', '.join(SYSCTLS)}, cgroups)"
        )
        if down.returncode != 0 or left:
            raise RuntimeError(
                f"{SCRIPT.name} down (exit {down.returncode}) left the host changed: {left}\n"
                f"{down.stderr[-3000:]}"
            )


def _label_name(key: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def scrape_targets(api: client.ApiClient, namespace: str) -> list[Target]:
    """What a cluster Prometheus' usual pod scrape job finds: running pods annotated
    ``prometheus.io/scrape: "true"`` at their ``prometheus.io/port``, labelled with ``namespace``,
    ``pod`` and every pod label (``app.kubernetes.io/instance`` → ``app_kubernetes_io_instance``):
    the labels hadis.observe.promql's default matchers expect."""
    targets = []
    for pod in client.CoreV1Api(api).list_namespaced_pod(namespace).items:
        notes = pod.metadata.annotations or {}
        if notes.get("prometheus.io/scrape") != "true" or not pod.status.pod_ip:
            continue
        if pod.status.phase != "Running" or pod.metadata.deletion_timestamp is not None:
            continue
        labels = {_label_name(k): v for k, v in (pod.metadata.labels or {}).items()}
        labels |= {"namespace": namespace, "pod": pod.metadata.name}
        targets.append(Target(f"{pod.status.pod_ip}:{notes.get('prometheus.io/port', '80')}", labels))
    return targets


class PodDiscovery:
    """Keeps ``prom``'s file_sd targets equal to :func:`scrape_targets` (every ``period_s``), for a
    Prometheus built without Kubernetes service discovery (Debian's is), while the ``with`` lasts."""

    def __init__(self, prom: LocalPrometheus, api: client.ApiClient, namespace: str, period_s: float = 1.0):
        self.prom, self.api, self.namespace, self.period_s = prom, api, namespace, period_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last: list[Target] | None = None
        while not self.stop.wait(self.period_s):
            try:
                now = scrape_targets(self.api, self.namespace)
            except Exception:  # the API server restarting: keep the last targets
                continue
            if now != last:
                self.prom.set_targets(now)
                last = now

    def __enter__(self) -> PodDiscovery:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
