"""The responder process's control protocol, without root: sockets on the loopback handed over
as netlab hands a pod's (SCM_RIGHTS), answered with the name given, closed on `drop`."""
from __future__ import annotations

import socket
import subprocess

import pytest

from netlab.kernel import labresponder, procs


@pytest.fixture
def responder(tmp_path):
    proc = subprocess.Popen(labresponder.argv(), cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("responder: pid")   # its control socket is bound
    rec = procs.ProcRecord(labresponder.SUBJECT, labresponder.ROLE, proc.pid, procs.start_time(proc.pid), "")
    with labresponder.Control(rec, tmp_path) as control:
        yield control
    proc.terminate()
    assert proc.wait(timeout=10) == 0   # SIGTERM ends it cleanly
    proc.stdout.close()


def listening(kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    return sock


def tcp_answer(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return conn.recv(100)


def udp_answer(port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"x", ("127.0.0.1", port))
        return sock.recvfrom(100)[0]


def test_handed_sockets_answer_with_their_pods_name_until_dropped(responder):
    a_tcp, a_udp, b_tcp = listening(socket.SOCK_STREAM), listening(socket.SOCK_DGRAM), listening(socket.SOCK_STREAM)
    ports = [s.getsockname()[1] for s in (a_tcp, a_udp, b_tcp)]
    # pod ns/a: two containers (TCP in one, UDP in the other); pod ns/b: one
    added = responder.ask({"op": "add", "containers": [
        {"key": "ns/a/t", "reply": "a", "ports": [[ports[0], "TCP"]]},
        {"key": "ns/a/u", "reply": "a", "ports": [[ports[1], "UDP"]]},
        {"key": "ns/b/c", "reply": "b", "ports": [[ports[2], "TCP"]]}]}, [s.fileno() for s in (a_tcp, a_udp, b_tcp)])
    for sock in (a_tcp, a_udp, b_tcp):
        sock.close()   # the responder holds its own descriptors
    assert added == 3
    assert (tcp_answer(ports[0]), udp_answer(ports[1]), tcp_answer(ports[2])) == (b"a\n", b"a\n", b"b\n")
    assert responder.drop(["ns/a"]) == 2   # both containers' sockets
    with pytest.raises(ConnectionRefusedError):
        tcp_answer(ports[0])
    assert tcp_answer(ports[2]) == b"b\n" and responder.drop(["ns/a"]) == 0


def test_a_request_it_cannot_follow_is_refused_and_it_keeps_serving(responder):
    sock = listening(socket.SOCK_STREAM)
    with pytest.raises(OSError, match="1 descriptors for the ports of 1 containers"):
        responder.ask({"op": "add", "containers": [{"key": "ns/a/c", "reply": "a", "ports": [[1, "TCP"], [2, "TCP"]]}]},
                      [sock.fileno()])
    with pytest.raises(OSError, match="unknown op"):
        responder.ask({"op": "list"})
    port = sock.getsockname()[1]
    assert responder.ask({"op": "add", "containers": [{"key": "ns/a/c", "reply": "a", "ports": [[port, "TCP"]]}]},
                         [sock.fileno()]) == 1
    sock.close()
    assert tcp_answer(port) == b"a\n"
