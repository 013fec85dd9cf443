"""Failures name what failed and, for limits a big lab can reach, what to do."""
from __future__ import annotations

import errno

from netlab.kernel.apply import ApplyError
from netlab.core.steps import Bridge


def test_limit_errors_say_what_to_do():
    err = ApplyError("lab.node-1", Bridge("cni0", 1450), OSError(errno.EMFILE, "Too many open files"))
    assert str(err).startswith("in namespace lab.node-1: `ip link add cni0 type bridge mtu 1450` failed")
    assert "raise `ulimit -n`" in str(err)


def test_other_errors_carry_no_hint():
    err = ApplyError("lab.node-1", "ip netns add x", OSError(errno.EEXIST, "File exists"))
    assert "—" not in str(err) and "File exists" in str(err)
