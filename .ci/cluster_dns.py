"""Cluster DNS records for the one-node test cluster (.ci/k8s-cluster.sh), which has no CoreDNS.

``sync`` keeps a hosts file for dnsmasq in step with the cluster: ``<svc>.<ns>.svc.<domain>`` is the
Service's cluster IP, or for a headless Service every ready endpoint address (the pods' IPs), and
``<hostname>.<svc>.<ns>.svc.<domain>`` for endpoints with a hostname. When the file changes it sends
dnsmasq SIGHUP, which re-reads the file and forgets what it cached, so a deleted pod's address
leaves DNS as it leaves the Endpoints. ``resolve`` asks a DNS server for a name's A records (the
cluster script's readiness check and the tests use it). A test-harness piece: HADIS itself works
with any cluster DNS.

    python .ci/cluster_dns.py sync --kubeconfig K --hosts FILE --dnsmasq-pid-file P [--domain cluster.local]
    python .ci/cluster_dns.py resolve NAME --server 10.233.77.1
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any


def records(services: list[Any], endpoints: list[Any], domain: str) -> list[tuple[str, str]]:
    """(ip, name) pairs, sorted, from Service and Endpoints objects of the kubernetes client."""
    out: set[tuple[str, str]] = set()
    headless: set[tuple[str, str]] = set()
    for s in services:
        ns, name = s.metadata.namespace, s.metadata.name
        fqdn = f"{name}.{ns}.svc.{domain}"
        ip = s.spec.cluster_ip
        if ip and ip != "None":
            out.add((ip, fqdn))
        elif s.spec.type != "ExternalName":
            headless.add((ns, name))
    for e in endpoints:
        ns, name = e.metadata.namespace, e.metadata.name
        if (ns, name) not in headless:
            continue
        for subset in e.subsets or []:
            for addr in subset.addresses or []:  # ready addresses only
                out.add((addr.ip, f"{name}.{ns}.svc.{domain}"))
                if addr.hostname:
                    out.add((addr.ip, f"{addr.hostname}.{name}.{ns}.svc.{domain}"))
    return sorted(out)


def sync(kubeconfig: str, hosts: Path, pid_file: Path, domain: str, period_s: float) -> None:
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    last = None
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while running:
        try:
            text = "".join(
                f"{ip} {name}\n"
                for ip, name in records(
                    api.list_service_for_all_namespaces(_request_timeout=10).items,
                    api.list_endpoints_for_all_namespaces(_request_timeout=10).items,
                    domain,
                )
            )
        except Exception as e:  # the apiserver restarting: keep the last records, try again
            print(f"cluster-dns: listing failed, keeping the last records: {e}", file=sys.stderr, flush=True)
            time.sleep(period_s)
            continue
        if text != last:
            tmp = hosts.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, hosts)
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
            except (OSError, ValueError) as e:
                print(f"cluster-dns: could not signal dnsmasq: {e}", file=sys.stderr, flush=True)
            print(f"cluster-dns: {text.count(chr(10))} records", file=sys.stderr, flush=True)
            last = text
        time.sleep(period_s)


def _query(name: str) -> tuple[int, bytes]:
    qid = random.randrange(1 << 16)
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return qid, header + qname + struct.pack(">HH", 1, 1)  # A, IN


def _skip_name(msg: bytes, i: int) -> int:
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:  # a compression pointer ends the name
            return i + 2
        i += n + 1


def resolve(name: str, server: str, port: int = 53, timeout_s: float = 2.0) -> list[str]:
    """The A records of ``name`` at ``server`` (empty when it has none); raises OSError on no answer."""
    qid, packet = _query(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        s.sendto(packet, (server, port))
        msg, _ = s.recvfrom(4096)
    rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    if rid != qid:
        raise OSError("DNS answer for another query")
    if flags & 0xF not in (0, 3):  # NOERROR, NXDOMAIN
        raise OSError(f"DNS error rcode {flags & 0xF}")
    i = 12
    for _ in range(qd):
        i = _skip_name(msg, i) + 4
    out = []
    for _ in range(an):
        i = _skip_name(msg, i)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[i : i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(msg[i : i + 4]))
        i += rdlen
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sync", help="keep dnsmasq's hosts file in step with Services and Endpoints")
    s.add_argument("--kubeconfig", required=True)
    s.add_argument("--hosts", type=Path, required=True, help="the hosts file dnsmasq reads (--addn-hosts)")
    s.add_argument("--dnsmasq-pid-file", type=Path, required=True, help="signalled (SIGHUP) on a change")
    s.add_argument("--domain", default="cluster.local")
    s.add_argument("--period", type=float, default=0.5, help="seconds between two looks")
    r = sub.add_parser("resolve", help="print NAME's A records at a DNS server (exit 1 when none)")
    r.add_argument("name")
    r.add_argument("--server", required=True)
    r.add_argument("--port", type=int, default=53)
    args = ap.parse_args()
    if args.cmd == "sync":
        sync(args.kubeconfig, args.hosts, args.dnsmasq_pid_file, args.domain, args.period)
        return 0
    try:
        ips = resolve(args.name, args.server, args.port)
    except OSError as e:
        print(f"{args.name}: {e}", file=sys.stderr)
        return 1
    print("\n".join(ips))
    return 0 if ips else 1


if __name__ == "__main__":
    sys.exit(main())
