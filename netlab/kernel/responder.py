"""netlab's built-in responder: a container with ports and no command runs this.

TCP: accept, send the pod's name and a newline, close. UDP: answer every datagram
with the pod's name. One process serves all declared ports of its container.
"""
from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys


def serve(name: str, ports: list[tuple[int, str]]) -> None:
    sel = selectors.DefaultSelector()
    reply = (name + "\n").encode()
    for port, proto in ports:
        if proto == "UDP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        elif proto == "SCTP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        if proto != "UDP":
            sock.listen(128)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, proto)
    print(f"responder {name}: serving " + ", ".join(f"{p}/{proto}" for p, proto in ports), flush=True)
    while True:
        for key, _ in sel.select():
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                if key.data == "UDP":
                    _, peer = sock.recvfrom(65535)
                    sock.sendto(reply, peer)
                else:
                    conn, _ = sock.accept()
                    with conn:
                        conn.setblocking(True)
                        conn.settimeout(1.0)
                        conn.sendall(reply)
            except OSError:
                continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netlab.responder")
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", action="append", default=[], help="PORT/PROTO, e.g. 80/TCP")
    args = parser.parse_args(argv)
    ports = []
    for spec in args.port:
        port, _, proto = spec.partition("/")
        ports.append((int(port), (proto or "TCP").upper()))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.name, ports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
