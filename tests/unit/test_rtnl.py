"""netlab.kernel.rtnl packs the messages pyroute2's IPRoute sent for the same steps: decoded here by
pyroute2's own message classes, field by field (values as IPRoute sent them, captured)."""
from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.kernel import rtnl

ADD = 0x605      # NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
SET = 0x5        # NLM_F_REQUEST | NLM_F_ACK
CLASSES = {16: ifinfmsg, 18: ifinfmsg, 20: ifaddrmsg, 24: rtmsg, 28: ndmsg}


def decode(req: rtnl.Request):
    data = rtnl.encode(req, 7)
    msg = CLASSES[req.type](data)
    msg.decode()
    assert msg["header"]["length"] == len(data) and msg["header"]["sequence_number"] == 7
    return msg


def attrs(msg) -> list:
    """Attributes as plain data; nested ones as (name, [...])."""
    out = []
    for name, value in msg["attrs"]:
        if hasattr(value, "get") and "attrs" in value:
            value = attrs(value)
        out.append((name, value))
    return out


def test_link_set_up_master_alias():
    msg = decode(rtnl.set_link(5, up=True, master=3))
    assert (msg["header"]["type"], msg["header"]["flags"]) == (16, SET)
    assert (msg["index"], msg["flags"], msg["change"]) == (5, 1, 1)
    assert attrs(msg) == [("IFLA_MASTER", 3)]
    msg = decode(rtnl.set_link(1, alias="netlab:lab:pod:default/a"))
    assert (msg["index"], msg["flags"], msg["change"]) == (1, 0, 0)
    assert attrs(msg) == [("IFLA_IFALIAS", "netlab:lab:pod:default/a")]
    msg = decode(rtnl.set_link(7, name="eth0"))
    assert (msg["index"], attrs(msg)) == (7, [("IFLA_IFNAME", "eth0")])


def test_bridge():
    msg = decode(rtnl.new_bridge("cni0", 1450))
    assert (msg["header"]["type"], msg["header"]["flags"]) == (16, ADD)
    assert attrs(msg) == [("IFLA_IFNAME", "cni0"), ("IFLA_MTU", 1450),
                          ("IFLA_LINKINFO", [("IFLA_INFO_KIND", "bridge")])]


def test_veth_with_its_peer_in_another_namespace():
    msg = decode(rtnl.new_veth("eth0", 1450, "veth11843228", 1450, 15))
    assert msg["header"]["flags"] == ADD  # no NLM_F_ECHO: kernels before 6.3 ignore it for links
    assert attrs(msg)[:2] == [("IFLA_IFNAME", "eth0"), ("IFLA_MTU", 1450)]
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert attrs(peer) == [("IFLA_IFNAME", "veth11843228"), ("IFLA_NET_NS_FD", 15), ("IFLA_MTU", 1450)]
    assert peer["index"] == 0


def test_vxlan_vtep_as_flannel_makes_it():
    msg = decode(rtnl.new_vxlan("flannel.1", "be:dd:ec:0a:e3:35", 1450, 1, 8472, IPv4Address("10.250.0.10"), 2))
    assert attrs(msg)[:3] == [("IFLA_IFNAME", "flannel.1"), ("IFLA_ADDRESS", "be:dd:ec:0a:e3:35"), ("IFLA_MTU", 1450)]
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "vxlan"
    assert attrs(info.get_attr("IFLA_INFO_DATA")) == [
        ("IFLA_VXLAN_ID", 1), ("IFLA_VXLAN_PORT", 8472), ("IFLA_VXLAN_LOCAL", "10.250.0.10"),
        ("IFLA_VXLAN_LINK", 2), ("IFLA_VXLAN_LEARNING", 0)]


def test_hairpin_is_bridge_slave_mode():
    msg = decode(rtnl.bridge_port_mode(5, 1))
    assert (msg["header"]["flags"], msg["index"]) == (SET, 5)
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_SLAVE_KIND") == "bridge_slave"
    assert attrs(info.get_attr("IFLA_INFO_SLAVE_DATA")) == [("IFLA_BRPORT_MODE", 1)]


def test_address():
    msg = decode(rtnl.new_addr(2, IPv4Address("172.16.1.2"), 24))
    assert (msg["header"]["type"], msg["header"]["flags"]) == (20, ADD)
    assert (msg["family"], msg["prefixlen"], msg["scope"], msg["index"]) == (2, 24, 0, 2)
    assert attrs(msg) == [("IFA_ADDRESS", "172.16.1.2"), ("IFA_LOCAL", "172.16.1.2")]


@pytest.mark.parametrize("dst,dst_len,gateway,onlink,scope,expected", [
    ("172.16.1.0", 24, "172.16.1.0", True, 0,
     [("RTA_DST", "172.16.1.0"), ("RTA_OIF", 4), ("RTA_GATEWAY", "172.16.1.0")]),
    ("0.0.0.0", 0, "172.16.1.1", False, 0, [("RTA_OIF", 4), ("RTA_GATEWAY", "172.16.1.1")]),
    ("10.2.0.0", 16, None, False, 253, [("RTA_DST", "10.2.0.0"), ("RTA_OIF", 4)]),
])
def test_routes(dst, dst_len, gateway, onlink, scope, expected):
    msg = decode(rtnl.new_route(dst, dst_len, 4, gateway, onlink, scope))
    assert (msg["header"]["type"], msg["header"]["flags"]) == (24, ADD)
    assert (msg["family"], msg["dst_len"], msg["table"], msg["proto"], msg["scope"], msg["type"]) == \
        (2, dst_len, 254, 4, scope, 1)
    assert msg["flags"] == (4 if onlink else 0)
    assert attrs(msg) == expected


def test_neighbour_and_fdb_entries():
    msg = decode(rtnl.new_neigh(4, "172.16.1.0", "62:6f:c6:d4:b2:43"))
    assert (msg["family"], msg["ifindex"], msg["state"], msg["flags"]) == (2, 4, 0x80, 0)
    assert attrs(msg) == [("NDA_DST", "172.16.1.0"), ("NDA_LLADDR", "62:6f:c6:d4:b2:43")]
    msg = decode(rtnl.new_fdb(4, "62:6f:c6:d4:b2:43", "10.250.0.11"))
    assert (msg["family"], msg["ifindex"], msg["state"], msg["flags"]) == (7, 4, 0xC0, 2)
    assert attrs(msg) == [("NDA_LLADDR", "62:6f:c6:d4:b2:43"), ("NDA_DST", "10.250.0.11")]


def test_a_link_reply_is_read_back():
    reply = rtnl.Request(16, 0, rtnl.ifinfo(7) + rtnl.nla_str(rtnl.IFLA_IFNAME, "eth0")
                         + rtnl.nla_u32(rtnl.IFLA_LINK, 12) + rtnl.nla_str(rtnl.IFLA_IFALIAS, "netlab:a:vpc:a"))
    link = rtnl.parse_link(rtnl.encode(reply, 1))
    assert link == rtnl.Link(7, "eth0", "netlab:a:vpc:a", 12)
    bare = rtnl.parse_link(rtnl.encode(rtnl.Request(16, 0, rtnl.ifinfo(1)), 1))
    assert bare == rtnl.Link(1, None, None, None)
