"""`netlab graph`, `netlab capture`: seeing a running lab — its picture, and its packets."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import click

from ..errors import InputError, NetlabError
from ..kernel.privileges import require_privileges
from ..ops import targets

FORMATS = ("svg", "png", "dot", "mermaid", "json")


def need_tool(tool: str, package: str, why: str) -> str:
    """The path of `tool`, or exit 1 naming the Debian package, before anything is done."""
    found = shutil.which(tool)
    if found is None:
        raise NetlabError(f"{why} needs `{tool}`, which is not installed: "
                          f"apt-get install --no-install-recommends {package} (setup.sh installs it)")
    return found


@click.command()
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Default: from -o's suffix, else svg.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here (default: stdout).")
def graph(lab_name, fmt, output):
    """The lab as a picture: VPC, nodes and their interfaces, pods by node and namespace, policies."""
    if fmt is None:
        suffix = output.rsplit(".", 1)[-1].lower() if output and "." in output else ""
        fmt = {"gv": "dot", "mmd": "mermaid"}.get(suffix, suffix if suffix in FORMATS else "svg")
    dot = need_tool("dot", "graphviz", f"--format {fmt}") if fmt in ("svg", "png") else None
    require_privileges("graph")
    record = targets.load_lab(lab_name)
    from ..tools import drawing, topology   # lazily: pyroute2 only for this command
    topo = topology.of_lab(record)
    if fmt == "json":
        data = (json.dumps(topo.to_json(), indent=2) + "\n").encode()
    elif fmt == "mermaid":
        data = drawing.to_mermaid(topo).encode()
    else:
        data = drawing.to_dot(topo).encode()
        if dot is not None:
            proc = subprocess.run([dot, f"-T{fmt}"], input=data, capture_output=True)
            if proc.returncode != 0:
                raise NetlabError(f"dot -T{fmt} failed: {proc.stderr.decode(errors='replace').strip()}")
            data = proc.stdout
    if output:
        try:
            with open(output, "wb") as f:
                f.write(data)
        except OSError as err:
            raise InputError(f"-o {output}: {err.strerror}") from None
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-w", "write", metavar="FILE|-", help="Write packets (pcap; pcapng with several targets); - is stdout.")
@click.option("-c", "count", type=click.IntRange(min=1), help="Stop after N packets (in all).")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def capture(args, write, count, lab_name):
    """tcpdump inside lab namespaces: TARGET[,TARGET...] [IFACE] [FILTER...]

    TARGET is a pod, a node or vpc (the underlay), optionally TARGET:IFACE; the interface
    defaults to eth0 (vpc: any). Several targets give one pcapng with an interface per
    target, named TARGET:IFACE.  netlab capture web,db,vpc -w - icmp | wireshark -k -i -
    """
    tool = need_tool("tcpdump", "tcpdump", "netlab capture")
    require_privileges("capture")
    from ..tools import capture as cap   # lazily: only this command starts tcpdump
    points, expression = cap.parse_arguments(list(args), lab_name)
    binary = write is not None
    if binary and write == "-" and sys.stdout.isatty():
        raise InputError("-w - writes binary pcap: pipe it (| wireshark -k -i -) or give -w FILE")
    out = sys.stdout.buffer
    if binary and write != "-":
        try:
            out = open(write, "wb")
        except OSError as err:
            raise InputError(f"-w {write}: {err.strerror}") from None
    try:
        running = cap.start(tool, points, binary, count, expression)
        click.echo("netlab: capturing on " + ", ".join(f"{p.label} ({p.netns})" for p in points)
                   + (f" until {count} packets" if count else "") + "; Ctrl-C stops", err=True)
        try:
            cap.relay(running, out, binary, count, in_order=out is not sys.stdout.buffer)
        except KeyboardInterrupt:
            cap.stop(running)
        for one in running:
            said = [line for line in one.err.decode(errors="replace").splitlines()
                    if line and not any(k in line for k in ("listening on", "verbose output", "data link type"))]
            counted = f"{one.packets} packets written; " if len(running) > 1 else ""
            click.echo(f"netlab: {one.point.label}: {counted}tcpdump: {'; '.join(said)}", err=True)
    finally:
        if out is not sys.stdout.buffer:
            out.close()


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--port", type=click.IntRange(1, 65535), help="Destination port (TCP/UDP).")
@click.option("--protocol", type=click.Choice(["tcp", "udp", "icmp"], case_sensitive=False),
              help="Default: tcp with --port, else icmp.")
@click.option("--json", "as_json", is_flag=True, help="Data for scripts.")
@click.option("--svg", "svg", type=click.Path(dir_okay=False), help="Also draw the path over the lab's picture.")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def trace(src, dst, port, protocol, as_json, svg, lab_name):
    """The path of one packet from SRC to DST, hop by hop: predicted from the kernel, observed on the wire.

    DST may be a Service (namespace/name, name, svc/namespace/name or ClusterIP:port): the
    kube-proxy DNAT is a hop, and the endpoint is the one conntrack says answered."""
    tool = need_tool("tcpdump", "tcpdump", "netlab trace")
    dot = need_tool("dot", "graphviz", "--svg") if svg else None
    require_privileges("trace")
    s = targets.resolve(src, lab_name)
    names = {p.key for p in s.record.pods} | {p.name for p in s.record.pods} | {n.name for n in s.record.nodes}
    service = None
    if dst not in names:   # a pod or node of that name comes first, as before Services could be traced
        service = targets.resolve_service(dst, s.record, port, protocol.upper() if protocol else None)
    if service is not None:
        d, port, protocol = service
        svc = next(v for v in s.record.services if f"svc/{v.key}" == d.name)
        if s.kind != "pod":
            raise InputError(f"trace to Service {svc.key} starts at a pod: from a node kube-proxy also "
                             "masquerades the packet (nat-output, then SNAT), which trace does not follow")
        if any(e.ip == str(s.ip) for e in svc.endpoints):
            raise InputError(f"{s.name} is an endpoint of Service {svc.key}: kube-proxy masquerades hairpin "
                             "traffic, which trace does not follow; trace from another pod")
        need_tool("conntrack", "conntrack", "netlab trace to a Service")
    else:
        protocol = (protocol or ("tcp" if port else "icmp")).upper()
        if protocol != "ICMP" and port is None:
            raise InputError(f"--protocol {protocol.lower()} needs --port")
        if protocol == "ICMP" and port is not None:
            raise InputError("--port goes with --protocol tcp or udp, not icmp")
        d = targets.resolve(dst, lab_name or s.lab, allow_ip=True)
    from ..tools import tracing   # lazily: pyroute2 and the policy engine only for this command
    result = tracing.run(tool, s, d, protocol, port)
    if svg:
        from ..tools import drawing, topology
        topo = topology.of_lab(s.record)
        picture = drawing.to_dot(topo, tracing.path_steps(result, topo))
        proc = subprocess.run([dot, "-Tsvg", "-o", svg], input=picture.encode(), capture_output=True)
        if proc.returncode != 0:
            raise NetlabError(f"dot -Tsvg failed: {proc.stderr.decode(errors='replace').strip()}")
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    click.echo(result.text())
    if result.disagreements:
        ctx = click.get_current_context()
        ctx.exit(1)
