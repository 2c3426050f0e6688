"""A real ``redis-server`` for the cluster tests, stoppable and restartable on its port."""

from __future__ import annotations

import socket
import subprocess
import threading

READY = "Ready to accept connections"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process without persistence."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.process = process
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # ends at EOF if the server fails to start
            seen.append(line)
            if READY in line:
                break
        else:
            raise RuntimeError("redis-server did not start:\n" + "".join(seen))
        threading.Thread(target=process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        """Kill the server (as a crash would) and wait for it to be gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
