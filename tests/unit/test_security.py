"""Container capabilities as containerd computes them, setpriv's options, a pod's files and environment."""
from __future__ import annotations

from netlab.core import ipam, plan
from netlab.kernel import sandbox
from netlab.model.security import DEFAULT_CAPS, cap_name, effective_caps
from netlab.spec import loader
from tests.support.labs import lab_yaml

DOCKER_DEFAULTS = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
                   "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"}


def test_the_default_set_is_dockers_and_holds_no_admin_capability():
    assert DEFAULT_CAPS == DOCKER_DEFAULTS
    assert set(effective_caps((), ())) == DOCKER_DEFAULTS
    assert "NET_ADMIN" not in DEFAULT_CAPS and "SYS_ADMIN" not in DEFAULT_CAPS


def test_add_and_drop_follow_containerd():
    assert set(effective_caps(("NET_ADMIN",), ("NET_RAW",))) == DOCKER_DEFAULTS - {"NET_RAW"} | {"NET_ADMIN"}
    assert effective_caps(("NET_BIND_SERVICE",), ("ALL",)) == ("NET_BIND_SERVICE",)
    assert "SYS_ADMIN" in effective_caps(("ALL",), ())
    assert "KILL" not in effective_caps(("ALL",), ("KILL",))      # drop applies after add
    assert cap_name("cap_net_admin") == "NET_ADMIN" and cap_name("FLY") is None


def test_setpriv_keeps_exactly_the_bounding_set_and_sets_no_new_privs():
    args = sandbox.setpriv_args(("CHOWN", "NET_RAW"))
    assert args == ["--no-new-privs", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all,+chown,+net_raw"]
    assert sandbox.setpriv_args(None) is None                      # privileged: run as is


def test_hosts_are_kubelets_and_the_environment_is_the_containers_own():
    text = sandbox.hosts_text("172.16.0.5", "web")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost")
    assert text.endswith("fe00::2\tip6-allrouters\n172.16.0.5\tweb\n")
    env = sandbox.container_env("web", (("A", "1"), ("HOME", "/srv")))
    assert env == {"PATH": sandbox.PATH, "HOSTNAME": "web", "HOME": "/srv", "A": "1"}


def test_the_plan_carries_hostname_environment_and_capabilities(tmp_path):
    text = lab_yaml("sec", nodes=1) + """---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostname: host-p
  containers:
    - name: c
      command: [sleep, "1"]
      env: [{name: A, value: "1"}]
      securityContext: {capabilities: {add: [NET_ADMIN]}}
    - name: d
      command: [sleep, "1"]
      securityContext: {privileged: true}
"""
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    lab = loader.load_file(str(path))
    ns = plan.build(lab, ipam.allocate(lab)).namespaces[-1]
    assert ns.hostname == "host-p"
    c, d = ns.containers
    assert c.env == (("A", "1"),) and "NET_ADMIN" in c.capabilities and d.capabilities is None
