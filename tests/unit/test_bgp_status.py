"""`birdc show protocols all` read into sessions (what status shows), from BIRD 2.0.12's own output."""
from __future__ import annotations

from netlab.tools.bgp import Session, parse_protocols_all

OUTPUT = """BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
kernel1    Kernel     master4    up     18:58:10.148
  Channel ipv4
    State:          UP
    Routes:         1 imported, 3 exported, 1 preferred
device1    Device     ---        up     18:58:10.148

Mesh_10_250_0_11 BGP        ---        up     18:58:12.002  Established
  Description:    Connection to BGP peer
  BGP state:          Established
    Neighbor address: 10.250.0.11
    Neighbor AS:      64512
    Local AS:         64512
    Session:          internal multihop AS4
  Channel ipv4
    State:          UP
    Routes:         1 imported, 1 exported, 1 preferred

Mesh_10_250_0_13 BGP        ---        start  19:01:28.201  Passive
  Description:    Connection to BGP peer
  BGP state:          Passive
    Neighbor address: 10.250.0.13
    Neighbor AS:      64512
    Local AS:         64512
  Channel ipv4
    State:          DOWN
"""


def test_bgp_protocols_are_read_with_peer_state_and_routes():
    assert parse_protocols_all(OUTPUT) == [
        Session("Mesh_10_250_0_11", "10.250.0.11", "Established", "18:58:12.002", 1, 1),
        Session("Mesh_10_250_0_13", "10.250.0.13", "Passive", "19:01:28.201", 0, 0),
    ]


def test_output_without_bgp_protocols_gives_no_sessions():
    assert parse_protocols_all("BIRD 2.0.12 ready.\nName Proto Table State Since Info\n") == []
