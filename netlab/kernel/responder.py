"""netlab's built-in responder: one process per lab serves every container with ports and no command.

TCP and SCTP: accept, send the pod's name and a newline, close. UDP: answer every datagram with
the pod's name and a newline. Run as a file (`python3 -I -S responder.py --control PATH`,
standard library only) by `netlab up`, in the lab's VPC network namespace, without capabilities.

It opens no listening socket itself: netlab creates each pod's sockets inside that pod's network
namespace (a socket stays in the namespace it was created in) and hands them over on the
control socket (a Unix SEQPACKET socket at PATH, in the lab's private run directory), with
SCM_RIGHTS. One message, one JSON object, answered with one JSON object:

  {"op": "add", "containers": [{"key": "NS/POD/CONTAINER", "reply": NAME, "ports": [[80, "TCP"], ...]}, ...]}
      + one descriptor per port, in order: serve them (a container's earlier sockets are closed
      first). Answer {"ok": CONTAINERS}.
  {"op": "drop", "pods": ["NS/POD", ...]}
      close the sockets of those pods' containers (their namespaces can then go). Answer
      {"ok": SOCKETS-CLOSED}.

Everything runs in one event loop (epoll); SIGTERM ends the process.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import selectors
import signal
import socket
import sys

MAX_MESSAGE = 1 << 20
MAX_FDS = 253          # SCM_MAX_FD: descriptors one message can carry
BURST = 64             # connections or datagrams served per socket per wake-up


class Responder:
    def __init__(self, control: socket.socket) -> None:
        self.sel = selectors.DefaultSelector()
        self.served: dict[str, list[socket.socket]] = {}   # NS/POD/CONTAINER -> its sockets
        self.sel.register(control, selectors.EVENT_READ, ("control", None))

    def add(self, containers: list[dict], fds: list[int]) -> int:
        socks = iter(fds)
        for item in containers:
            self.close(item["key"])
            reply = (item["reply"] + "\n").encode()
            served = []
            for port, proto in item["ports"]:
                sock = socket.socket(fileno=next(socks))
                sock.setblocking(False)
                self.sel.register(sock, selectors.EVENT_READ, ("udp" if proto == "UDP" else "stream", reply))
                served.append(sock)
            self.served[item["key"]] = served
            print(f"responder: serving {item['key']}: "
                  + ", ".join(f"{port}/{proto}" for port, proto in item["ports"]), flush=True)
        return len(containers)

    def close(self, key: str) -> int:
        socks = self.served.pop(key, ())
        for sock in socks:
            self.sel.unregister(sock)
            sock.close()
        return len(socks)

    def drop(self, pods: list[str]) -> int:
        prefixes = tuple(pod + "/" for pod in pods)
        closed = sum(self.close(key) for key in [k for k in self.served if k.startswith(prefixes)])
        if closed:
            print(f"responder: dropped {', '.join(pods)}", flush=True)
        return closed

    def handle(self, conn: socket.socket) -> None:
        try:
            data, fds, flags, _ = socket.recv_fds(conn, MAX_MESSAGE, MAX_FDS)
        except OSError:
            data, fds, flags = b"", [], 0
        if not data:
            self.sel.unregister(conn)
            conn.close()
            return
        try:
            if flags & socket.MSG_CTRUNC:   # the kernel could not give this process every descriptor
                raise OSError(errno.EMFILE, "it could not take every descriptor: " + os.strerror(errno.EMFILE))
            if flags & socket.MSG_TRUNC:
                raise ValueError("message truncated")
            req = json.loads(data)
            if req["op"] == "add":
                if len(fds) != sum(len(c["ports"]) for c in req["containers"]):
                    raise ValueError(f"{len(fds)} descriptors for the ports of {len(req['containers'])} containers")
                answer = {"ok": self.add(req["containers"], fds)}
                fds = []
            elif req["op"] == "drop":
                answer = {"ok": self.drop(req["pods"])}
            else:
                raise ValueError(f"unknown op {req['op']!r}")
        except OSError as err:
            answer = {"error": err.strerror or str(err), "errno": err.errno}
        except (ValueError, KeyError, TypeError) as err:
            answer = {"error": str(err)}
        for fd in fds:   # not taken over
            os.close(fd)
        try:
            conn.send(json.dumps(answer).encode())
        except OSError:
            pass

    def serve(self) -> None:
        while True:
            for key, _ in self.sel.select():
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                kind, reply = key.data
                if kind == "udp":
                    for _ in range(BURST):
                        try:
                            _, peer = sock.recvfrom(65535)
                            sock.sendto(reply, peer)
                        except BlockingIOError:
                            break
                        except OSError:
                            continue
                elif kind == "stream":
                    for _ in range(BURST):
                        try:
                            conn, _ = sock.accept()
                        except BlockingIOError:
                            break
                        except OSError:
                            continue
                        try:
                            conn.send(reply)   # a new connection's buffer is empty: never blocks
                        except OSError:
                            pass
                        conn.close()
                elif kind == "control":
                    conn, _ = sock.accept()
                    self.sel.register(conn, selectors.EVENT_READ, ("conn", None))
                else:
                    self.handle(sock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netlab.responder")
    parser.add_argument("--control", required=True, help="path of the control socket")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        os.unlink(args.control)   # a socket left by a responder that was killed
    except FileNotFoundError:
        pass
    control.bind(args.control)
    control.listen(16)
    control.setblocking(False)
    print(f"responder: pid {os.getpid()}, control socket {args.control}", flush=True)
    Responder(control).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
