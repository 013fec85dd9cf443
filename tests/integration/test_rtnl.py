"""netlab.kernel.rtnl on a real kernel, in a throwaway unnamed namespace (gone when its fd closes)."""
from __future__ import annotations

import errno
import os

import pytest

from netlab.kernel import netns, rtnl

pytestmark = pytest.mark.root


@pytest.fixture
def throwaway():
    """A socket in a new unnamed namespace, and that namespace's fd (never the root's)."""
    switch = netns.Switcher()
    with switch.fresh() as fd:
        nl = rtnl.RtnlSocket()
    yield nl, fd
    nl.close()
    os.close(fd)
    switch.close()


@pytest.fixture
def sock(throwaway):
    return throwaway[0]


def test_a_create_reads_back_the_new_index_and_a_veth_names_its_peer(throwaway):
    """The index comes from a GET sent in the same write, so it does not depend on NLM_F_ECHO,
    which kernels before 6.3 ignore for links (6.1 sends no echo; 6.18 does)."""
    sock, fd = throwaway
    bridge = sock.create_and_get(rtnl.new_bridge("br0", 1400), "br0")
    assert (bridge.index, bridge.name) == (sock.link(name="br0").index, "br0")
    veth = sock.create_and_get(rtnl.new_veth("a0", 1400, "a1", 1400, fd), "a0")   # both ends here
    assert veth.name == "a0" and veth.link == sock.link(name="a1").index
    assert veth.index == sock.link(name="a0").index != bridge.index
    with pytest.raises(rtnl.RequestFailed) as caught:     # a refused create is raised as the create's
        sock.create_and_get(rtnl.new_bridge("br0", 1400), "br0")
    assert (caught.value.code, caught.value.position) == (errno.EEXIST, 0)


def test_a_renamed_link_keeps_its_index(sock):
    made = sock.create_and_get(rtnl.new_bridge("tmp0", 1400), "tmp0")
    sock.call(rtnl.set_link(made.index, name="br1"))
    assert sock.link(name="br1").index == made.index


def test_a_refused_request_in_a_batch_is_named_and_the_socket_stays_in_step(sock):
    # (index 2 is not br0 everywhere: with the ipip module loaded, every new namespace has tunl0)
    br0 = sock.create_and_get(rtnl.new_bridge("br0", 1400), "br0").index
    with pytest.raises(rtnl.RequestFailed) as caught:
        sock.call(rtnl.set_link(1, up=True), rtnl.new_bridge("br0", 1400), rtnl.set_link(br0, up=True))
    assert (caught.value.code, caught.value.position) == (errno.EEXIST, 1)
    assert sock.link(br0).name == "br0"        # the next answer is this call's, not a stale ack
    with pytest.raises(rtnl.RequestFailed) as caught:
        sock.call(rtnl.new_link("x0", "no-such-kind"))
    assert caught.value.code == errno.EOPNOTSUPP


def test_the_alias_is_read_back(sock):
    sock.call(rtnl.set_link(1, alias="netlab:t:vpc:t"))
    assert sock.link(1).alias == "netlab:t:vpc:t"
    with pytest.raises(rtnl.NetlinkError) as caught:
        sock.link(name="nope0")
    assert caught.value.code == errno.ENODEV
