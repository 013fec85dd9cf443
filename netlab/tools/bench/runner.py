"""The real tools, run inside the lab's namespaces: one server, one client, their CPU time.

Tools (Debian 12 packages): iperf3 for TCP_STREAM, iperf 2.1 `--bounceback` for TCP_RR,
wrk against nginx with one request per connection for TCP_CRR (docs/benchmarks.md says why).
Each process starts in its own session with PR_SET_PDEATHSIG, so a killed `netlab bench`
takes its tools with it; each carries the lab's marker, so `netlab down` finds strays.
CPU time comes from wait4(): the process's user+system time plus that of the children it
reaped (nginx's workers), read when we reap it.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, IO

from ...kernel import netns, procs
from ...errors import NetlabError
from . import parse
from .paths import Endpoint, PathPair

IPERF3_PORT, IPERF2_PORT, HTTP_PORT = 5201, 5001, 8080
READY_TIMEOUT = 10.0          # seconds for a server to listen
CLIENT_SLACK = 60.0           # seconds a client may run past the test's duration


class BenchTest(StrEnum):
    STREAM = "TCP_STREAM"
    RR = "TCP_RR"
    CRR = "TCP_CRR"


TEST_ALIASES = {"stream": BenchTest.STREAM, "rr": BenchTest.RR, "crr": BenchTest.CRR}
UNITS = {BenchTest.STREAM: "Gbit/s", BenchTest.RR: "trans/s", BenchTest.CRR: "trans/s"}
TOOLS = {BenchTest.STREAM: "iperf3", BenchTest.RR: "iperf (2) --bounceback", BenchTest.CRR: "wrk + nginx"}
PACKAGES = {"iperf3": "iperf3", "iperf": "iperf", "wrk": "wrk", "nginx": "nginx"}   # binary -> apt package
BINARIES = {BenchTest.STREAM: ("iperf3",), BenchTest.RR: ("iperf",), BenchTest.CRR: ("wrk", "nginx")}


class ToolMissing(NetlabError):
    """A measuring tool is not installed (or too old): named with its package."""


@dataclass(frozen=True)
class Measurement:
    """One test on one path: its rate in `unit`, the CPU time of client, server and machine, and how
    it ran (wall time, duration, flows, errors, tool)."""

    value: float
    unit: str
    client_cpu: float       # seconds of user+system time of the client process(es)
    server_cpu: float
    host_cpu: float         # busy seconds of every CPU of the machine meanwhile (softirq included)
    seconds: float          # wall time of the client
    duration: int           # seconds asked for: `value` is a rate over them
    flows: int
    errors: int
    tool: str


def check_tools(tests: list[BenchTest]) -> None:
    """Fail before anything is built when a tool the asked tests need is missing."""
    missing = sorted({binary for test in tests for binary in BINARIES[test] if not shutil.which(binary)})
    if missing:
        packages = " ".join(PACKAGES[b] for b in missing)
        raise ToolMissing(f"netlab bench needs {', '.join(missing)} for the tests asked; nothing was built — "
                          f"install with: apt-get install {packages} (or leave those tests out with --tests)")
    if BenchTest.RR in tests:
        found = subprocess.run(["iperf", "--help"], capture_output=True, text=True)
        helptext = found.stdout + found.stderr    # iperf 2 prints its help on stderr
        if "--bounceback" not in helptext:
            version = subprocess.run(["iperf", "-v"], capture_output=True, text=True)
            raise ToolMissing(f"TCP_RR needs iperf 2.1 or later (--bounceback); this iperf is "
                              f"{(version.stderr or version.stdout).strip() or 'of an unknown version'}")


# -- processes ----------------------------------------------------------------------------------
class Tool:
    """One tool process inside a namespace; reaped by us alone, so its rusage is its own."""

    def __init__(self, where: Endpoint, name: str, argv: list[str], out: IO[bytes], err: IO[bytes]):
        self.name, self.argv, self.where = name, argv, where
        self.out, self.err = out, err
        self.cpu: float | None = None
        self.status: int | None = None
        fd = netns.open_ns(where.netns)
        env = dict(os.environ, **{procs.ENV_LAB: where.lab, procs.ENV_POD: where.subject,
                                  procs.ENV_CONTAINER: f"bench-{name}"})
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                         pass_fds=(fd,), preexec_fn=netns.child_joining(fd, die_with_parent=True),
                                         start_new_session=True)
        finally:
            os.close(fd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def reaped(self) -> bool:
        return self.status is not None

    def wait(self, timeout: float) -> bool:
        """Reap the process within `timeout` seconds (its CPU time recorded); False if still running."""
        deadline = time.monotonic() + timeout
        while not self.reaped:
            try:
                pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:     # reaped elsewhere: exit status and CPU time are lost
                self.status, self.proc.returncode = -1, -1
                break
            if pid == self.pid:
                self.status = self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.cpu = usage.ru_utime + usage.ru_stime
                break
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(0.05, left))   # a light poll: the machine's CPUs are what is measured
        return True

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM its whole session (nginx's workers too), SIGKILL if it lingers; always reaped."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if self.reaped:
                return
            try:
                os.killpg(self.pid, sig)   # the session leader is unreaped: its pgid is still ours
            except ProcessLookupError:
                pass
            if self.wait(wait):
                return

    def output(self) -> str:
        self.out.seek(0)
        return self.out.read().decode(errors="replace")

    def error_text(self, lines: int = 5) -> str:
        self.err.seek(0)
        text = self.err.read().decode(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "no message"


def listening(pid: int, port: int) -> bool:
    """True when the namespace of process `pid` has a TCP socket listening on `port` (IPv4 or v6)."""
    return any(port in netns.bound_ports(f"/proc/{pid}/net", table, netns.TCP_LISTEN) for table in ("tcp", "tcp6"))


def host_busy_seconds() -> float:
    """CPU time the whole machine spent not idle since boot (all CPUs; /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)     # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0                  # another guest's time, not ours
    return (sum(fields[:8]) - idle - steal) / os.sysconf("SC_CLK_TCK")


# -- one measurement ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """How each test runs: for how many seconds, with how many parallel flows."""

    duration: int
    parallel: int


class Runner:
    """Runs tests on path pairs; every process it starts is stopped and reaped by close()."""

    def __init__(self, settings: Settings, log: Callable[[str], None]):
        self.settings = settings
        self.log = log
        self.live: list[Tool] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="netlab-bench-")

    def close(self) -> None:
        for tool in self.live:
            tool.stop(grace=1.0)
        self.live.clear()
        self.tmp.cleanup()

    def measure(self, pair: PathPair, test: BenchTest) -> Measurement:
        if test is BenchTest.STREAM:
            return self._stream(pair)
        if test is BenchTest.RR:
            return self._rr(pair)
        return self._crr(pair)

    def _start(self, where: Endpoint, name: str, argv: list[str]) -> Tool:
        out = tempfile.TemporaryFile(dir=self.tmp.name)
        err = tempfile.TemporaryFile(dir=self.tmp.name)
        try:
            tool = Tool(where, name, argv, out, err)
        except OSError as error:
            out.close()
            err.close()
            raise NetlabError(f"could not start `{' '.join(argv)}` in {where.netns}: "
                              f"{error.strerror or error}") from error
        self.live.append(tool)
        return tool

    def _finish(self, *tools: Tool) -> None:
        for tool in tools:
            tool.stop()
            tool.out.close()
            tool.err.close()
            self.live.remove(tool)

    def _run(self, pair: PathPair, test: BenchTest, server_argv: list[str], port: int, client_argv: list[str],
             parser: Callable[[str], object]):
        """Start the server, wait until it listens, run the client to its end; parsed report and CPU."""
        label = f"{test.value} {pair.label}"
        server = self._start(pair.server, argv=server_argv, name=server_argv[0])
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while not listening(server.pid, port):
                if server.wait(0) or time.monotonic() >= deadline:
                    raise NetlabError(f"{label}: {server_argv[0]} did not listen on port {port} in "
                                      f"{pair.server.netns}: {server.error_text()}")
                time.sleep(0.02)
            busy = host_busy_seconds()
            started = time.monotonic()
            client = self._start(pair.client, argv=client_argv, name=client_argv[0])
            try:
                if not client.wait(self.settings.duration + CLIENT_SLACK):
                    raise NetlabError(f"{label}: `{' '.join(client_argv)}` did not finish within "
                                      f"{self.settings.duration + CLIENT_SLACK:.0f}s; stopped it")
                seconds = time.monotonic() - started
                host = host_busy_seconds() - busy
                text = client.output()
                try:
                    report = parser(text)
                except parse.ToolOutputError as err:
                    raise NetlabError(f"{label}: {err} (stderr: {client.error_text()})") from err
                if client.status != 0:
                    raise NetlabError(f"{label}: {client_argv[0]} exited {client.status}: {client.error_text()}")
            finally:
                self._finish(client)
        finally:
            self._finish(server)
        return report, client.cpu or 0.0, server.cpu or 0.0, host, seconds

    def _stream(self, pair: PathPair) -> Measurement:
        s = self.settings
        server = ["iperf3", "-s", "-1", "-p", str(IPERF3_PORT)]
        client = ["iperf3", "-c", pair.server.ip, "-p", str(IPERF3_PORT), "-t", str(s.duration),
                  "-P", str(s.parallel), "-i", "0", "-J"]
        report, ccpu, scpu, host, secs = self._run(pair, BenchTest.STREAM, server, IPERF3_PORT, client, parse.iperf3)
        return Measurement(round(report.bits_per_second / 1e9, 3), UNITS[BenchTest.STREAM], ccpu, scpu, host, secs,
                           duration=s.duration, flows=s.parallel, errors=0, tool=TOOLS[BenchTest.STREAM])

    def _rr(self, pair: PathPair) -> Measurement:
        s = self.settings
        server = ["iperf", "-s", "-p", str(IPERF2_PORT)]
        # --bounceback-period 0: back to back, as netperf TCP_RR (the default is 10 bounces a second)
        client = ["iperf", "-c", pair.server.ip, "-p", str(IPERF2_PORT), "--bounceback",
                  "--bounceback-period", "0", "-t", str(s.duration), "-P", str(s.parallel)]
        report, ccpu, scpu, host, secs = self._run(pair, BenchTest.RR, server, IPERF2_PORT, client,
                                                   parse.iperf2_bounceback)
        if report.flows != s.parallel:
            raise NetlabError(f"{BenchTest.RR.value} {pair.label}: iperf reported {report.flows} of "
                              f"{s.parallel} flows")
        return Measurement(round(report.per_second, 1), UNITS[BenchTest.RR], ccpu, scpu, host, secs,
                           duration=s.duration, flows=report.flows, errors=0, tool=TOOLS[BenchTest.RR])

    def _crr(self, pair: PathPair) -> Measurement:
        s = self.settings
        conf_dir = tempfile.mkdtemp(prefix="nginx-", dir=self.tmp.name)
        conf = os.path.join(conf_dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(conf_dir, HTTP_PORT, workers=min(s.parallel, os.cpu_count() or 1)))
        server = ["nginx", "-e", "stderr", "-p", conf_dir, "-c", conf]
        threads = min(s.parallel, os.cpu_count() or 1)
        client = ["wrk", "-t", str(threads), "-c", str(s.parallel), "-d", f"{s.duration}s", "--timeout", "5s",
                  "-H", "Connection: close", f"http://{pair.server.ip}:{HTTP_PORT}/"]
        report, ccpu, scpu, host, secs = self._run(pair, BenchTest.CRR, server, HTTP_PORT, client, parse.wrk)
        if report.errors:
            self.log(f"  note: {BenchTest.CRR.value} {pair.label}: wrk counted {report.errors} failed requests "
                     "(socket errors or non-2xx); the rate counts completed ones only")
        return Measurement(round(report.per_second, 1), UNITS[BenchTest.CRR], ccpu, scpu, host, secs,
                           duration=s.duration, flows=s.parallel, errors=report.errors, tool=TOOLS[BenchTest.CRR])


def nginx_conf(prefix: str, port: int, workers: int) -> str:
    """nginx answering every request with 200 and closing: no file I/O, no logging, no keep-alive."""
    return f"""\
daemon off;
master_process on;
worker_processes {workers};
user root;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen {port} backlog=4096;
    keepalive_timeout 0;
    location / {{ return 200 "netlab\\n"; }}
  }}
}}
"""
