"""The cluster DNS objects kubeadm installs, added to a lab whose `spec.dns.enabled` is true.

kubeadm's DNS addon (cmd/kubeadm/app/phases/addons/dns/manifests.go) creates the Service
`kube-system/kube-dns` at the 10th address of serviceSubnet and the Deployment
`kube-system/coredns` (2 replicas, pods labelled `k8s-app: kube-dns`, dnsPolicy Default so
that the DNS server itself does not resolve through itself). netlab adds the same two objects,
as the loader would read them from a file, with these differences: the container runs Knot
DNS (`knotd`, authoritative for the cluster's zones) instead of the coredns image, and it
declares no `metrics` port, since knotd serves none (the Service keeps the port, as
kubeadm's, with no server behind it). kubeadm's nodeSelector `kubernetes.io/os: linux`,
tolerations, affinity and resources are left out: netlab's nodes carry no such label, taint or
limit, and its scheduler already spreads a Deployment's pods over the nodes.

The injected pods come after every pod of the file, so the file's pods keep their addresses.
"""
from __future__ import annotations

from typing import Mapping

from ..model.checks import DocChecker
from ..model.lab import Networking
from .collected import Collected

NAMESPACE = "kube-system"
SERVICE = "kube-dns"
DEPLOYMENT = "coredns"
APP_LABEL = ("k8s-app", "kube-dns")
REPLICAS = 2
KNOTD_ARGV = ["knotd", "-c", "/etc/knot/knot.conf"]
HINT = "remove it, or leave netlab's cluster DNS out of the lab: spec.dns: {enabled: false} in the Lab"


def service_manifest(net: Networking) -> dict:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE,
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                "kubernetes.io/name": "CoreDNS"},
                     "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
        "spec": {"clusterIP": str(net.dns_service_ip), "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]},
    }


def deployment_manifest() -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE, "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "replicas": REPLICAS,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "containers": [{
                        "name": "coredns",
                        "command": list(KNOTD_ARGV),
                        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"}],
                        "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
                    }],
                    "dnsPolicy": "Default",
                },
            },
        },
    }


def is_dns_pod(namespace: str, labels: Mapping[str, str]) -> bool:
    """A cluster DNS pod, as kube-dns's selector picks them: in kube-system, labelled k8s-app: kube-dns."""
    return namespace == NAMESPACE and labels.get(APP_LABEL[0]) == APP_LABEL[1]


def inject(got: Collected, net: Networking, lab_check: DocChecker) -> None:
    """Refuse what would clash with the cluster DNS objects, then add them to what the file declares
    (the Service last among the Services; the Deployment kept aside in `got.dns`, expanded last).
    A problem found later with the added objects is reported at the Lab's spec.dns."""
    from .services import load_deployment, load_service
    before = len(lab_check.problems)
    if net.dns_service_ip not in net.service_subnet or net.dns_service_ip == net.service_subnet.broadcast_address:
        lab_check.error("spec.dns", f"serviceSubnet {net.service_subnet} has no 10th address for the cluster DNS "
                        "Service (kubeadm puts kube-system/kube-dns there)",
                        "use a serviceSubnet of /28 or larger, or spec.dns: {enabled: false}")
        return
    for svc, check in got.services:
        if svc.key == f"{NAMESPACE}/{SERVICE}":
            check.error("metadata.name", f"Service {svc.key} is the cluster DNS Service, which netlab adds", HINT)
        elif svc.cluster_ip == net.dns_service_ip:
            check.error("spec.clusterIP", f"clusterIP {svc.cluster_ip} is the cluster DNS address (the 10th of "
                        "serviceSubnet, kube-system/kube-dns's)", "pin another address, or leave clusterIP out")
    for loaded, check in got.deployments:
        if loaded.deployment.key == f"{NAMESPACE}/{DEPLOYMENT}":
            check.error("metadata.name", f"Deployment {loaded.deployment.key} is the cluster DNS Deployment, "
                        "which netlab adds", HINT)
        elif is_dns_pod(loaded.template.namespace, loaded.template.labels):
            check.error("spec.template.metadata.labels", "pods in kube-system labelled k8s-app: kube-dns are the "
                        "cluster DNS pods, which netlab adds", HINT)
    for pod, check in got.pods:
        if is_dns_pod(pod.namespace, pod.labels):
            check.error("metadata.labels", "pods in kube-system labelled k8s-app: kube-dns are the cluster DNS "
                        "pods, which netlab adds", HINT)
    if len(lab_check.problems) > before:
        return   # the clash stops the build; adding the objects would only repeat it
    service = load_service(service_manifest(net), _Added(lab_check, f"Service {NAMESPACE}/{SERVICE}"))
    loaded = load_deployment(deployment_manifest(), _Added(lab_check, f"Deployment {NAMESPACE}/{DEPLOYMENT}"))
    assert service is not None and loaded is not None   # netlab's own manifests
    got.services.append((service, _Added(lab_check, f"Service {NAMESPACE}/{SERVICE}")))
    got.dns = (loaded, _Added(lab_check, f"a pod of Deployment {NAMESPACE}/{DEPLOYMENT}"))


class _Added(DocChecker):
    """The checker of an object netlab adds: its problems are the Lab's, at spec.dns."""

    def __init__(self, lab_check: DocChecker, what: str):
        super().__init__(lab_check.doc, lab_check.problems, lab_check.label)
        self.lab_check, self.what = lab_check, what

    def error(self, path: str, message: str, hint: str = "") -> None:
        self.errors += 1
        self.lab_check.error("spec.dns", f"the cluster DNS {self.what} ({path or 'itself'}): {message}", hint)
