"""The stdio load generator: JSON-RPC written straight to a child's pipes, no SDK, no event loop.

Requests are pre-encoded byte strings; the sequential loop is one ``os.write`` and one C-level
``readline`` per call, and the pipelined run has a writer thread keeping a window of requests
in flight while the caller counts answer lines. Responses are checked after the clock stops.
Every blocking phase runs under a watchdog that kills the child when it overruns, so a stuck
target fails the run instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from bench.procs import Command
from bench.stats import BenchError

PROTOCOL_VERSION = "2025-06-18"
#: requests the pipelined writer sends per burst, and bursts allowed in flight
PIPELINE_BURST = 32
PIPELINE_BURSTS = 4


def request_line(request_id: int | str, method: str, params: dict[str, Any] | None) -> bytes:
    """One newline-terminated JSON-RPC request."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def call_lines(tool: str, ids: range) -> list[bytes]:
    """Pre-encoded ``tools/call`` requests of ``tool`` with the given ids."""
    return [request_line(i, "tools/call", {"name": tool, "arguments": {"text": "hello"}})
            for i in ids]


def check_answers(lines: Sequence[bytes], ids: range) -> None:
    """Every line is a successful response and the ids are exactly ``ids`` (any order)."""
    seen = []
    for line in lines:
        message = json.loads(line)
        if "result" not in message:
            raise BenchError(f"request failed: {line[:300]!r}")
        seen.append(message["id"])
    if sorted(seen) != list(ids):
        raise BenchError(f"expected answers to ids {ids}, got {len(seen)} answers")


class StdioTarget:
    """A child process speaking MCP on its stdin/stdout (a backend, the relay or the gateway)."""

    def __init__(self, command: Command, cwd: Path, log: Path, timeout: float = 120.0) -> None:
        self.argv = command.argv
        self.timeout = timeout
        self.log = log
        self.started = time.perf_counter()
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                env=command.env, cwd=cwd,
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._fd = self.process.stdin.fileno()
        self._out: IO[bytes] = self.process.stdout
        self._next_id = 0

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    @contextlib.contextmanager
    def watchdog(self, what: str) -> Iterator[None]:
        """Kill the child if the block takes longer than the target's timeout."""
        fired = threading.Event()

        def fire() -> None:
            fired.set()
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

        timer = threading.Timer(self.timeout, fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise BenchError(f"{what}: {self.describe_failure()} ({exc})") from exc
        finally:
            timer.cancel()
        if fired.is_set():
            raise BenchError(f"{what}: timed out after {self.timeout:g}s")

    def describe_failure(self) -> str:
        """What the child said on stderr, for an error message."""
        tail = self.log.read_text("utf-8", "replace")[-1500:] if self.log.exists() else ""
        return f"{' '.join(self.argv[:4])} ... failed; stderr tail:\n{tail}"

    def _readline(self) -> bytes:
        line = self._out.readline()
        if not line:
            raise BenchError(f"the target closed its stdout: {self.describe_failure()}")
        return line

    def _request(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        self._next_id += 1
        request_id = f"setup-{self._next_id}"
        os.write(self._fd, request_line(request_id, method, params))
        while True:
            message = json.loads(self._readline())
            if message.get("id") == request_id and "method" not in message:
                break
        if "error" in message:
            raise BenchError(f"{method} failed: {message['error']}")
        result: dict[str, Any] = message["result"]
        return result

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request and return its result (skipping notifications in between)."""
        with self.watchdog(method):
            return self._request(method, params)

    def initialize(self) -> dict[str, Any]:
        """The MCP handshake; returns the ``initialize`` result."""
        with self.watchdog("initialize"):
            result = self._request("initialize", {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "vmcp-bench", "version": "1"},
            })
            os.write(self._fd, b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        return result

    def timed_lists(self, count: int, expected: int) -> tuple[list[int], int]:
        """Read the whole ``tools/list`` (every page) ``count`` times.

        Returns nanoseconds per complete read, and the pages each read took. Each read must
        return exactly ``expected`` tools.
        """
        durations = []
        pages = 0
        clock = time.perf_counter_ns
        with self.watchdog("tools/list"):
            for _ in range(count):
                start = clock()
                items = pages = 0
                cursor = None
                while True:
                    result = self._request("tools/list", {"cursor": cursor} if cursor else None)
                    items += len(result.get("tools", []))
                    pages += 1
                    cursor = result.get("nextCursor")
                    if not cursor:
                        break
                durations.append(clock() - start)
                if items != expected:
                    raise BenchError(f"tools/list returned {items} tools, expected {expected}")
        return durations, pages

    def sequential(self, lines: Sequence[bytes]) -> tuple[list[int], list[bytes]]:
        """Send each request after the previous answer; per-call nanoseconds, and the answers."""
        write, readline, clock = os.write, self._out.readline, time.perf_counter_ns
        fd = self._fd
        latencies = []
        answers = []
        with self.watchdog("sequential calls"):
            for line in lines:
                start = clock()
                write(fd, line)
                answer = readline()
                latencies.append(clock() - start)
                answers.append(answer)
        if not all(answers):
            raise BenchError(f"the target closed its stdout: {self.describe_failure()}")
        return latencies, answers

    def pipelined(self, lines: Sequence[bytes]) -> tuple[float, list[bytes]]:
        """Keep a window of requests in flight; returns (seconds for all answers, answers)."""
        bursts = [b"".join(lines[i:i + PIPELINE_BURST])
                  for i in range(0, len(lines), PIPELINE_BURST)]
        window = threading.Semaphore(PIPELINE_BURSTS)
        failure: list[BaseException] = []
        fd = self._fd

        def writer() -> None:
            try:
                for burst in bursts:
                    window.acquire()
                    os.write(fd, burst)
            except OSError as exc:
                failure.append(exc)

        chunks = []
        expected = len(lines)
        received = credited = 0
        read = self._out.read1
        with self.watchdog("pipelined calls"):
            start = time.perf_counter()
            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            while received < expected:
                chunk = read(1 << 16)
                if not chunk:
                    raise BenchError(f"the target closed its stdout: {self.describe_failure()}")
                chunks.append(chunk)
                received += chunk.count(b"\n")
                while received - credited >= PIPELINE_BURST:
                    credited += PIPELINE_BURST
                    window.release()
            elapsed = time.perf_counter() - start
            thread.join()
        if failure:
            raise BenchError(f"pipelined writer failed: {failure[0]}")
        return elapsed, b"".join(chunks).splitlines()

    def close(self) -> None:
        """Close stdin (the polite stop for every target here), then make sure it is gone."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # type: ignore[union-attr]
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            self._out.close()
