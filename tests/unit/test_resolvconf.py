"""A pod's resolv.conf, pure: kubelet's composition (pkg/kubelet/network/dns) and its test
expectations (dns_test.go), written anew; the pod's dnsPolicy/dnsConfig as the loader reads them."""
from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from netlab.core import resolvconf
from netlab.core.resolvconf import Resolver, parse, pod_resolver, render, resolv_conf
from netlab.errors import InputError
from netlab.model.lab import DnsConfig, DnsOption, DnsPolicy
from netlab.spec.labtext import lab_yaml
from netlab.spec.loader import load_text

CLUSTER_DNS = IPv4Address("10.0.0.10")
ZONE = "kubernetes.io"
NODE = Resolver(("8.8.8.8",), ("testdomain",), ("attempts:2",))


# -- the node's file, read as kubelet's parseResolvConf reads it ------------------------------------

@pytest.mark.parametrize("text, nameservers, searches, options", [
    ("", (), (), ()),
    ("nameserver 1.2.3.4", ("1.2.3.4",), (), ()),
    (" nameserver 1.2.3.4 ", ("1.2.3.4",), (), ()),
    ("\tnameserver 1.2.3.4", ("1.2.3.4",), (), ()),
    ("nameserver\t1.2.3.4", ("1.2.3.4",), (), ()),
    ("nameserver 1.2.3.4 # a comment after it", ("1.2.3.4",), (), ()),
    ("nameserver 1.2.3.4\nnameserver 5.6.7.8", ("1.2.3.4", "5.6.7.8"), (), ()),   # nameservers add up
    ("search foo", (), ("foo",), ()),
    ("search foo bar", (), ("foo", "bar"), ()),
    ("search foo. bar", (), ("foo", "bar"), ()),            # a trailing dot is dropped
    ("search foo\nsearch bar", (), ("bar",), ()),           # the last search line wins
    ("search .", (), (), ()),                               # the root domain is no search domain
    ("search . foo", (), ("foo",), ()),
    ("nameserver 1.2.3.4\nsearch foo bar", ("1.2.3.4",), ("foo", "bar"), ()),
    ("#comment\nnameserver 1.2.3.4\n#comment\nsearch foo\n# search bar", ("1.2.3.4",), ("foo",), ()),
    ("options ndots:5 attempts:2", (), (), ("ndots:5", "attempts:2")),
    ("options ndots:1\noptions ndots:5 attempts:3", (), (), ("ndots:5", "attempts:3")),   # same name: the later
    ("nameserver", (), (), ()),                             # nothing after it: no nameserver
    ("domain example.com\nsortlist 10.0.0.0/8", (), (), ()),   # lines kubelet does not read
])
def test_the_node_file_is_read_as_kubelet_reads_it(text, nameservers, searches, options):
    assert parse(text) == Resolver(nameservers, searches, options)


def test_the_file_is_written_as_the_runtime_writes_it():
    # containerd's CRI: search first, one nameserver line each, then options
    assert render(Resolver(("10.0.0.10", "10.0.0.11"), ("a.b", "b"), ("ndots:5", "edns0"))) == (
        "search a.b b\nnameserver 10.0.0.10\nnameserver 10.0.0.11\noptions ndots:5 edns0\n")
    assert render(Resolver()) == ""


def test_a_lab_node_keeps_the_hosts_search_and_options_but_no_nameserver():
    host = "# managed\nnameserver 10.255.255.53\nnameserver 1.1.1.1\nsearch corp.example lab.\noptions rotate\n"
    assert resolvconf.node_resolv_conf(host) == "search corp.example lab\noptions rotate\n"
    assert resolvconf.node_resolv_conf("nameserver 10.255.255.53\n") == ""


# -- GetPodDNS by dnsPolicy --------------------------------------------------------------------------

def test_cluster_first_is_the_cluster_dns_alone_with_the_cluster_search_list_first():
    got = pod_resolver(DnsPolicy.CLUSTER_FIRST, None, "ns1", ZONE, CLUSTER_DNS, NODE)
    assert got == Resolver(("10.0.0.10",), ("ns1.svc.kubernetes.io", "svc.kubernetes.io", "kubernetes.io",
                                            "testdomain"), ("ndots:5",))   # the node's options replaced


def test_cluster_first_as_the_issue_shows_it():
    text = resolv_conf(DnsPolicy.CLUSTER_FIRST, None, "default", "cluster.local", IPv4Address("172.18.0.10"), "")
    assert text == ("search default.svc.cluster.local svc.cluster.local cluster.local\n"
                    "nameserver 172.18.0.10\noptions ndots:5\n")


def test_the_node_search_domains_already_in_the_cluster_list_are_not_repeated():
    node = Resolver(("8.8.8.8",), ("svc.kubernetes.io", "kubernetes.io", "other"), ())
    got = pod_resolver(DnsPolicy.CLUSTER_FIRST, None, "ns1", ZONE, CLUSTER_DNS, node)
    assert got.searches == ("ns1.svc.kubernetes.io", "svc.kubernetes.io", "kubernetes.io", "other")


def test_cluster_first_with_host_net_is_cluster_first_for_a_pod_on_its_own_network():
    assert (pod_resolver(DnsPolicy.CLUSTER_FIRST_WITH_HOST_NET, None, "ns1", ZONE, CLUSTER_DNS, NODE)
            == pod_resolver(DnsPolicy.CLUSTER_FIRST, None, "ns1", ZONE, CLUSTER_DNS, NODE))


def test_default_is_the_nodes_file():
    assert pod_resolver(DnsPolicy.DEFAULT, None, "ns1", ZONE, CLUSTER_DNS, NODE) == NODE


def test_cluster_first_without_cluster_dns_falls_back_to_default():
    # kubelet: "kubelet does not have ClusterDNS IP configured ... Falling back to Default"
    assert pod_resolver(DnsPolicy.CLUSTER_FIRST, None, "ns1", ZONE, None, NODE) == NODE
    assert pod_resolver(DnsPolicy.CLUSTER_FIRST_WITH_HOST_NET, None, "ns1", ZONE, None, NODE) == NODE


def test_nothing_to_write_leaves_the_runtime_copying_the_nodes_file():
    assert resolv_conf(DnsPolicy.DEFAULT, None, "ns1", ZONE, None, "# only a comment\n") == "# only a comment\n"


def test_none_takes_dns_config_alone():
    config = DnsConfig(("203.0.113.1",), ("my.domain", "second.domain"),
                       (DnsOption("ndots", "2"), DnsOption("debug")))
    got = pod_resolver(DnsPolicy.NONE, config, "ns1", ZONE, CLUSTER_DNS, NODE)
    assert got == Resolver(("203.0.113.1",), ("my.domain", "second.domain"), ("ndots:2", "debug"))


def test_dns_config_is_appended_to_cluster_first():
    config = DnsConfig(("10.0.0.10", "203.0.113.1"), ("my.domain", "kubernetes.io"),
                       (DnsOption("ndots", "3"), DnsOption("debug")))
    got = pod_resolver(DnsPolicy.CLUSTER_FIRST, config, "ns1", ZONE, CLUSTER_DNS, NODE)
    assert got.nameservers == ("10.0.0.10", "203.0.113.1")        # the repeated one once
    assert got.searches == ("ns1.svc.kubernetes.io", "svc.kubernetes.io", "kubernetes.io", "testdomain", "my.domain")
    assert got.options == ("ndots:3", "debug")                     # the pod's ndots wins


def test_dns_config_is_appended_to_default():
    config = DnsConfig(("203.0.113.1",), ("my.domain",), (DnsOption("attempts", "5"), DnsOption("rotate", "")))
    got = pod_resolver(DnsPolicy.DEFAULT, config, "ns1", ZONE, CLUSTER_DNS, NODE)
    assert got == Resolver(("8.8.8.8", "203.0.113.1"), ("testdomain", "my.domain"), ("attempts:5", "rotate"))


def test_options_merge_by_name_and_an_empty_value_is_none():
    config = DnsConfig(options=(DnsOption("edns0"), DnsOption("ndots", "2"), DnsOption("timeout", "")))
    got = pod_resolver(DnsPolicy.DEFAULT, config, "ns1", ZONE, None,
                       Resolver((), (), ("ndots:3", "edns0", "timeout:5")))
    assert got.options == ("ndots:2", "edns0", "timeout")


# -- formDNSConfigFitsLimits ----------------------------------------------------------------------------

def test_at_most_three_nameservers_are_written():
    config = DnsConfig(("1.1.1.1", "2.2.2.2", "3.3.3.3"))
    got = pod_resolver(DnsPolicy.CLUSTER_FIRST, config, "ns1", ZONE, CLUSTER_DNS, NODE)
    assert got.nameservers == ("10.0.0.10", "1.1.1.1", "2.2.2.2")


def test_the_search_list_is_cut_to_32_domains():
    node = Resolver((), tuple(f"d{i}.example" for i in range(40)), ())
    got = pod_resolver(DnsPolicy.CLUSTER_FIRST, None, "ns1", ZONE, CLUSTER_DNS, node)
    assert len(got.searches) == 32 and got.searches[:4] == ("ns1.svc.kubernetes.io", "svc.kubernetes.io",
                                                              "kubernetes.io", "d0.example")
    assert got.searches[-1] == "d28.example"


def test_a_search_domain_over_253_characters_is_dropped():
    long = ".".join(["a" * 63] * 4)   # 255 characters
    got = pod_resolver(DnsPolicy.DEFAULT, None, "ns1", ZONE, None, Resolver((), ("a.example", long, "b.example"), ()))
    assert got.searches == ("a.example", "b.example")


def test_the_search_line_is_cut_from_the_end_to_2048_characters():
    domains = tuple(f"{i:02d}." + "x" * 96 for i in range(25))   # 99 characters each: 25 make 2499 with spaces
    got = pod_resolver(DnsPolicy.DEFAULT, None, "ns1", ZONE, None, Resolver((), domains, ()))
    assert got.searches == domains[:20] and len(" ".join(got.searches)) == 1999   # 21 would be 2099


# -- what the loader reads ----------------------------------------------------------------------------

def pod_doc(spec: str) -> str:
    return f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}  containers: [{{name: c, ports: [{{containerPort: 80}}]}}]\n"


def test_a_pod_is_cluster_first_with_no_dns_config_by_default():
    pod = load_text(lab_yaml("x") + pod_doc(""), "f").pods[0]
    assert pod.dns_policy is DnsPolicy.CLUSTER_FIRST and pod.dns_config is None


def test_dns_policy_and_config_are_read():
    spec = ("  dnsPolicy: None\n  dnsConfig:\n    nameservers: [172.18.0.10, '2001:db8::1']\n"
            "    searches: [corp.example.]\n    options: [{name: ndots, value: 2}, {name: edns0}]\n")
    pod = load_text(lab_yaml("x") + pod_doc(spec), "f").pods[0]
    assert pod.dns_policy is DnsPolicy.NONE
    assert pod.dns_config == DnsConfig(("172.18.0.10", "2001:db8::1"), ("corp.example.",),
                                       (DnsOption("ndots", "2"), DnsOption("edns0")))


def test_a_deployment_template_carries_its_dns_settings_to_every_replica():
    doc = ("---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2\n"
           "  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n"
           "      dnsPolicy: Default\n      dnsConfig: {searches: [corp.example]}\n"
           "      containers: [{name: c, ports: [{containerPort: 80}]}]\n")
    pods = load_text(lab_yaml("x") + doc, "f").pods
    assert len(pods) == 2
    assert all(p.dns_policy is DnsPolicy.DEFAULT and p.dns_config == DnsConfig((), ("corp.example",)) for p in pods)


def test_a_search_list_over_2048_characters_is_refused():
    searches = ", ".join(f"{i:02d}." + "x" * 96 for i in range(21))   # 21 x 99 + 20 spaces = 2099
    with pytest.raises(InputError) as err:
        load_text(lab_yaml("x") + pod_doc(f"  dnsConfig: {{searches: [{searches}]}}\n"), "f")
    assert [p.message for p in err.value.problems] == [
        "the search list is 2099 characters long: at most 2048 are allowed (spaces included)"]
