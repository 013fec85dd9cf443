"""BGP sessions as BIRD reports them: `birdc show protocols all` on each node's control socket.

birdc talks to the node's BIRD over the socket file under the node's own /run
(<lab dir>/nodes/<node>/run/bird/bird.ctl), so no namespace is entered; `-r` keeps it read-only.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from ..kernel import nodefs
from ..ops import state
from ..ops.record import LabRecord

ESTABLISHED = "Established"


@dataclass(frozen=True)
class Session:
    """One BGP protocol of a node's BIRD (`birdc show protocols all`): its peer, state, since when, and
    the routes imported and exported."""

    protocol: str          # Mesh_10_250_0_11, Node_..., Rack_...
    peer: str              # the neighbour's address
    state: str             # BGP state: Idle, Connect, Active, OpenSent, OpenConfirm, Established
    since: str             # when the protocol last changed state (BIRD's clock)
    routes: int            # routes received from the peer and imported
    exported: int

    def to_json(self) -> dict:
        return asdict(self)


def control_socket(lab: str, node: str) -> Path:
    return nodefs.node_root(state.lab_dir(lab), node) / "run" / "bird" / "bird.ctl"


def parse_protocols_all(text: str) -> list[Session]:
    """The BGP protocols of `birdc show protocols all` output."""
    sessions: list[Session] = []
    blocks = re.split(r"\n(?=\S)", text)
    for block in blocks:
        head = re.match(r"(\S+)\s+BGP\s+\S+\s+\S+\s+(\S+)", block)
        if not head:
            continue
        bgp_state = re.search(r"BGP state:\s+(\S+)", block)
        neighbor = re.search(r"Neighbor address:\s+(\S+)", block)
        routes = re.search(r"Routes:\s+(\d+) imported, (?:\d+ filtered, )?(\d+) exported", block)
        sessions.append(Session(head.group(1), neighbor.group(1) if neighbor else "",
                                bgp_state.group(1) if bgp_state else "Down", head.group(2),
                                int(routes.group(1)) if routes else 0, int(routes.group(2)) if routes else 0))
    return sessions


def sessions(lab: str, node: str, timeout: float = 2.0) -> list[Session] | None:
    """The node's BGP sessions; None when its BIRD does not answer (stopped, or not there)."""
    sock = control_socket(lab, node)
    if not sock.exists():
        return None
    try:
        done = subprocess.run(["birdc", "-r", "-s", str(sock), "show", "protocols", "all"],
                              capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or "BIRD" not in done.stdout:
        return None
    return parse_protocols_all(done.stdout)


def lab_sessions(record: LabRecord) -> dict[str, list[Session] | None]:
    """Every node's sessions, for a bgp lab's state record."""
    return {n.name: sessions(record.name, n.name) for n in record.nodes}


def converged(record: LabRecord) -> bool:
    """Every node's BIRD answers, every session is Established, and each node has received a
    route for every other node's block (its own block it announces)."""
    found = lab_sessions(record)
    blocks = len(record.nodes)
    for node_sessions in found.values():
        if not node_sessions or any(s.state != ESTABLISHED for s in node_sessions):
            return False
    # routes received count paths; a node needs at least one per other block
    return all(sum(s.routes for s in node_sessions or []) >= blocks - 1 for node_sessions in found.values())
