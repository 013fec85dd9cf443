#!/usr/bin/env bash
# netlab's set-up on Debian/Ubuntu, as root. Installs what netlab needs (apt packages, a
# virtualenv in /opt/netlab, /usr/local/bin/netlab), then runs one job:
#   sudo bash setup.sh demo    build the default lab and show pods talking across nodes
#   sudo bash setup.sh test    run the test suite (extra arguments go to pytest)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${NETLAB_VENV:-/opt/netlab}
job=${1:-demo}; shift || true

install() {
  if [ "$(id -u)" != 0 ]; then echo "setup.sh: run it as root (sudo bash setup.sh $job)" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${NETLAB_SKIP_APT:-}" ]; then
    apt-get update -qq
    # no package may start a daemon in the host while installing (nginx would listen on :80):
    # a policy-rc.d for the duration, unless the machine already has one
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT   # gone even if the install fails
    fi
    apt-get install -y -qq --no-install-recommends iproute2 iperf3 iperf iputils-ping nftables iptables conntrack \
      procps util-linux catatonit kmod sudo wrk nginx bird2 wireguard-tools wireguard-go graphviz tcpdump tshark knot knot-dnssecutils bind9-dnsutils dnsperf \
      python3 python3-venv python3-pip >/dev/null
    if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
    # netlab bench runs its own nginx, backend bgp its own bird, and cluster DNS its own knotd, inside
    # lab namespaces; the distribution's services stay off
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      systemctl disable --now nginx bird knot >/dev/null 2>&1 || true
    fi
  fi
  modules
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # editable, as a plain path in a .pth: setuptools' default import finder costs every netlab command ~12 ms
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e "$here[test]"
  ln -sf "$venv/bin/netlab" /usr/local/bin/netlab
}

# The kernel modules netlab's backends and NetworkPolicy use, loaded here once and at every boot
# (modules-load.d), as kubeadm's prerequisites load br_netfilter. `netlab up` never loads a module
# itself, and refuses a lab whose module is not loaded. Not here: ipip, whose loading puts a
# fallback tunl0 in every namespace, the host's too (README: "Underlay, racks, IPIP, ipvlan").
NETLAB_MODULES="br_netfilter veth bridge vxlan macvlan ipvlan sch_tbf sch_netem"
modules() {
  [ -z "${NETLAB_SKIP_MODULES:-}" ] || return 0
  if [ ! -d "/lib/modules/$(uname -r)" ]; then
    return 0   # no module tree (a container, or a kernel with everything built in): nothing to load
  fi
  local m missing=""
  for m in $NETLAB_MODULES; do
    modprobe "$m" 2>/dev/null || missing="$missing $m"
  done
  [ -z "$missing" ] || echo "setup.sh: note: this kernel has no module$missing; labs that need it will say so" >&2
  if [ -d /etc/modules-load.d ]; then
    { echo "# loaded for netlab (setup.sh), as kubeadm's prerequisites load br_netfilter"
      printf '%s\n' $NETLAB_MODULES; } > /etc/modules-load.d/netlab.conf
  fi
}

demo() {
  set -x
  netlab up
  netlab status --name demo
  netlab ping --name demo web db
  netlab iperf --name demo web db -t 2
  netlab exec --name demo node-1 -- bridge fdb show dev flannel.1
  { set +x; } 2>/dev/null
  echo "The lab stays up: try 'sudo netlab exec web -- ip route', then 'sudo netlab down'."
}

install
case "$job" in
  demo) demo ;;
  test) cd "$here" && exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" ;;   # no path given: testpaths (tests/)
  *) echo "usage: sudo bash setup.sh demo|test [pytest args]" >&2; exit 2 ;;
esac
