"""Three ``vmcp start -t http`` processes behind a real HAProxy, sharing a real redis-server.

HAProxy runs the documented ``deploy/haproxy/haproxy.cfg`` itself (its addresses come from
the environment). The gateways mount one Streamable HTTP fixture backend (the HTTP
transport tests' SDK server), so a backend's messages keep their relation to a request, and
each its own stdio ``alpha`` fixture (resource subscriptions) and ``tasker`` (tasks, known to
the instance whose backend created them).
:class:`Workers` runs ``--workers N`` on the same Redis and backend. Every port is chosen
at run time; every process is ended by :meth:`Cluster.stop` and :meth:`Workers.stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from http_harness import write_config

from vmcp.testing import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[3]
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
FIXTURE = ROOT / "plugins" / "vmcp-transport-http" / "tests" / "http_fixture_server.py"
#: a stdio backend of each instance's own, with resource subscriptions
ALPHA = ROOT / "tests" / "fixtures" / "servers" / "alpha.py"
#: a stdio backend of each instance's own, with (2025-11-25) tasks
TASKER = ROOT / "tests" / "fixtures" / "servers" / "tasker.py"
#: seconds a process gets to start (a loaded 2-core CI machine needs many)
START_TIMEOUT = 90.0
SERVING = "vmcp: serving http on "


def haproxy_path() -> str | None:
    """The HAProxy binary (Debian installs it in /usr/sbin), or None."""
    found = shutil.which("haproxy")
    if found is None and Path("/usr/sbin/haproxy").exists():
        found = "/usr/sbin/haproxy"
    return found


def _end(process: subprocess.Popen[str], signalled: bool = False) -> None:
    """SIGTERM ``process`` (unless ``signalled`` already), then SIGKILL it after 10 s."""
    if process.poll() is None:
        if not signalled:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass
class Gateway:
    """One gateway instance with its own ``VMCP_HOME``; its stderr is kept."""

    name: str
    folder: Path
    process: subprocess.Popen[str] | None = None
    url: str = ""
    lines: list[str] = field(default_factory=list)
    _serving: threading.Event = field(default_factory=threading.Event)
    _logged: threading.Condition = field(default_factory=threading.Condition)

    def configure(self, redis_url: str, prefix: str, backend_url: str,
                  only: str | None = None, idle_timeout: float | None = None) -> None:
        """Write its ``vmcp.toml``: the HTTP front on a free port (``idle_timeout``: its
        sessions' idle timeout, if not the default), the cluster, the mounts (``only``: just
        that one, for a quicker start)."""
        http: dict[str, object] = {"port": 0, "keepalive_interval": 1.0}
        if idle_timeout is not None:
            http["session_idle_timeout"] = idle_timeout
        servers = {
            "fx": {"transport": "http", "url": backend_url, "read_only_tools": ["hold"]},
            "al": {"command": sys.executable, "args": [str(ALPHA)]},
            "tk": {"command": sys.executable, "args": [str(TASKER)]},
        }
        write_config(self.folder / "vmcp.toml", {
            # a drain outlasts HAProxy's checks (inter 1 s, fall 2) before it closes
            # (and a requestState one seals, another opens: the key must match)
            "gateway": {"drain_linger": 3.0, "shutdown_grace": 10.0,
                        "state_key": f"{prefix}-state"},
            "transports.http": http,
            "cluster": {"redis_url": redis_url, "instance": self.name, "key_prefix": prefix,
                        "heartbeat_interval": 0.3},
            **{f"servers.{name}": server for name, server in servers.items()
               if only in (None, name)},
        })

    def spawn(self) -> None:
        """Start ``vmcp start -t http`` (see :meth:`wait_serving`)."""
        self._serving.clear()
        env = {**os.environ, "VMCP_HOME": str(self.folder / "home")}
        env.pop("VMCP_REDIS_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vmcp", "--config", str(self.folder / "vmcp.toml"),
             "start", "--transport", "http"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def vmcp(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``vmcp`` command against this instance's home and configuration."""
        env = {**os.environ, "VMCP_HOME": str(self.folder / "home")}
        return subprocess.run(
            [sys.executable, "-m", "vmcp", "--config", str(self.folder / "vmcp.toml"), *args],
            env=env, capture_output=True, text=True, timeout=60, check=False)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._logged:
                self.lines.append(line.rstrip("\n"))
                self._logged.notify_all()
            if line.startswith(SERVING):
                self.url = line.removeprefix(SERVING).strip()
                self._serving.set()
        self._serving.set()  # it ended: let the waiter see why

    def wait_serving(self) -> None:
        """Return once the front serves; raise with its stderr if it does not."""
        if not self._serving.wait(START_TIMEOUT) or not self.url or not self.alive:
            raise AssertionError(f"{self.name} did not start:\n" + "\n".join(self.lines))

    def wait_logged(self, text: str, timeout: float) -> None:
        """Return once it logged a line containing ``text``; raise after ``timeout`` s."""
        with self._logged:
            if not self._logged.wait_for(lambda: any(text in line for line in self.lines),
                                         timeout):
                raise AssertionError(f"{self.name} did not log {text!r}")

    @property
    def alive(self) -> bool:
        """The process runs."""
        return self.process is not None and self.process.poll() is None

    @property
    def address(self) -> str:
        """``host:port`` of its front."""
        return self.url.removeprefix("http://").split("/", 1)[0]

    @property
    def base(self) -> str:
        """``http://host:port`` of its front (for the probes)."""
        return "http://" + self.address

    def taken_up(self) -> int:
        """How many sessions another instance opened it has served."""
        return sum("taken up from instance" in line for line in self.lines)

    def resumed_for_others(self) -> int:
        """How many waiting calls it resumed for a retry that reached another instance."""
        return sum("for a retry on instance" in line for line in self.lines)

    def kill(self) -> None:
        """``kill -9`` it, by pid."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float) -> int:
        """SIGTERM it, by pid, and wait for it to drain and exit; its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        """End it (SIGTERM, then SIGKILL)."""
        if self.process is not None:
            _end(self.process)


@dataclass
class Balancer:
    """HAProxy running ``deploy/haproxy/haproxy.cfg`` in front of three addresses."""

    process: subprocess.Popen[str] | None = None
    url: str = ""
    stats_url: str = ""

    def start(self, haproxy: str, addresses: list[str]) -> None:
        """Start it; return once its checks see every server up."""
        port, stats = free_port(), free_port()
        env = {**os.environ, "VMCP_LB_BIND": f"127.0.0.1:{port}",
               "VMCP_LB_STATS_BIND": f"127.0.0.1:{stats}"}
        for n, address in enumerate(addresses, 1):
            env[f"VMCP{n}_ADDR"] = address
        self.process = subprocess.Popen([haproxy, "-db", "-f", str(HAPROXY_CONFIG)], env=env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        self.stats_url = f"http://127.0.0.1:{stats}/stats;csv"
        _wait_listening(stats, self.process)
        assert self.process.stderr is not None
        threading.Thread(target=self.process.stderr.read, daemon=True).start()
        self.wait_routing(len(addresses))
        self.url = f"http://127.0.0.1:{port}/mcp"

    def servers_up(self) -> int:
        """How many servers HAProxy's readiness checks see up (its CSV status page)."""
        with urllib.request.urlopen(self.stats_url, timeout=5) as page:
            rows = page.read().decode().splitlines()
        header = rows[0].lstrip("# ").split(",")
        proxy, name, status = (header.index(h) for h in ("pxname", "svname", "status"))
        cells = [row.split(",") for row in rows[1:]]
        return sum(1 for row in cells if row[proxy] == "vmcp" and
                   row[name].startswith("vmcp") and row[status] == "UP")

    def wait_routing(self, count: int) -> None:
        """Return once HAProxy routes to ``count`` servers (it checks each every second)."""
        deadline = time.monotonic() + START_TIMEOUT
        while self.servers_up() != count:
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy does not see {count} servers up")
            time.sleep(0.1)

    def stop(self) -> None:
        """End it."""
        if self.process is not None:
            _end(self.process)


@dataclass
class Workers:
    """``vmcp start -t http --workers N`` with ``[cluster]``: N worker processes on one
    listening port (``SO_REUSEPORT``), sharing the cluster's Redis. The supervisor runs in
    its own process group, ended (with its workers) by :meth:`stop`."""

    folder: Path
    count: int
    process: subprocess.Popen[str] | None = None
    url: str = ""
    lines: list[str] = field(default_factory=list)
    config: Path = Path()
    env: dict[str, str] = field(default_factory=dict)
    #: HAProxy in front of the one port (three server lines naming it: the workers behind
    #: it are the kernel's choice per connection)
    balancer: Balancer = field(default_factory=lambda: Balancer())
    _serving: threading.Event = field(default_factory=threading.Event)

    def start(self, haproxy: str, redis_url: str, prefix: str, backend_url: str) -> None:
        """Write its configuration, start it and HAProxy in front; return once every worker
        serves."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = self.folder / "vmcp.toml"
        write_config(self.config, {
            "gateway": {"shutdown_grace": 5.0, "state_key": f"{prefix}-state"},
            "transports.http": {"port": 0, "keepalive_interval": 1.0},
            "cluster": {"redis_url": redis_url, "key_prefix": prefix,
                        "heartbeat_interval": 0.3},
            "servers.fx": {"transport": "http", "url": backend_url},
        })
        self.env = {**os.environ, "VMCP_HOME": str(self.folder / "home")}
        self.env.pop("VMCP_REDIS_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vmcp", "--config", str(self.config), "start", "-t", "http",
             "--workers", str(self.count)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=self.env, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._serving.wait(START_TIMEOUT) or not self.url:
            raise AssertionError("the workers did not start:\n" + "\n".join(self.lines))
        address = self.url.removeprefix("http://").split("/", 1)[0]
        self.balancer.start(haproxy, [address] * 3)

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        serving = f"vmcp: {self.count} workers serving http on "
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(serving):
                self.url = line.removeprefix(serving).strip()
                self._serving.set()
        self._serving.set()

    def pids(self) -> list[int]:
        """The workers' process ids, from ``vmcp status --json``."""
        shown = subprocess.run(
            [sys.executable, "-m", "vmcp", "--config", str(self.config), "status", "--json"],
            env=self.env, capture_output=True, text=True, timeout=60, check=True)
        return [int(worker["pid"]) for worker in json.loads(shown.stdout)["workers"]]

    def taken_up(self) -> int:
        """How many sessions one worker opened another has served."""
        return sum("taken up from instance" in line for line in self.lines)

    def stop(self) -> None:
        """End HAProxy, the supervisor and its workers (their whole process group)."""
        self.balancer.stop()
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@dataclass
class Cluster:
    """redis-server, one backend, three gateways and HAProxy in front of them."""

    folder: Path
    redis: RedisServer = field(init=False)
    gateways: list[Gateway] = field(default_factory=list)
    backend: subprocess.Popen[str] | None = None
    backend_url: str = ""
    balancer: Balancer = field(default_factory=lambda: Balancer())
    lb_url: str = ""
    prefix: str = field(default_factory=lambda: f"t{os.getpid()}")

    def start(self, haproxy: str) -> None:
        """Start everything; return once HAProxy accepts connections."""
        self.redis = RedisServer(free_port())
        self.redis.start()
        backend_url = self.backend_url = self._start_backend()
        self.gateways = [Gateway(f"g{n}", self.folder / f"g{n}") for n in (1, 2, 3)]
        for gateway in self.gateways:
            gateway.configure(self.redis.url, self.prefix, backend_url)
            gateway.spawn()
        for gateway in self.gateways:
            gateway.wait_serving()
        self.balancer.start(haproxy, [gateway.address for gateway in self.gateways])
        self.lb_url = self.balancer.url

    @contextmanager
    def extra_gateway(self, name: str, only: str | None = None,
                      idle_timeout: float | None = None) -> Iterator[Gateway]:
        """One more instance on the same Redis and backend (``only``: with just that
        mount; ``idle_timeout``: of its sessions), not behind HAProxy (a test may kill it
        without changing what the balancer routes to); ended on leaving."""
        gateway = Gateway(name, self.folder / name)
        gateway.configure(self.redis.url, self.prefix, self.backend_url, only, idle_timeout)
        gateway.spawn()
        try:
            gateway.wait_serving()
            yield gateway
        finally:
            gateway.stop()

    def _start_backend(self) -> str:
        self.backend = subprocess.Popen([sys.executable, str(FIXTURE), "http"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        assert self.backend.stdout is not None
        line = self.backend.stdout.readline()  # "PORT <n>" once it listens
        if not line.startswith("PORT "):
            raise AssertionError(f"the fixture backend did not start: {line!r}")
        return f"http://127.0.0.1:{int(line.split()[1])}/mcp"

    def stop(self) -> None:
        """End every process started (each by its own handle)."""
        self.balancer.stop()
        # all drain at once (each lingers drain_linger seconds)
        running = [p for p in (*(g.process for g in self.gateways), self.backend)
                   if p is not None and p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            _end(process, signalled=True)
        self.redis.stop()


def _wait_listening(port: int, process: subprocess.Popen[str]) -> None:
    """Return once something accepts connections on ``port`` (HAProxy prints nothing)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = process.stderr.read() if process.stderr is not None else ""
            raise AssertionError(f"haproxy exited with {process.returncode}: {said}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("haproxy did not listen")
