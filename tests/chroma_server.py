"""A real Chroma server for the tests (`chroma run` from the chromadb package, on 127.0.0.1 with a
temporary directory), and an HTTP relay in front of it that can kill the server after a number of
calls: a server dying mid-sync, at an exact point."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chroma_binary() -> str | None:
    local = Path(sys.executable).with_name("chroma")
    return str(local) if local.exists() else shutil.which("chroma")


class ChromaServer:
    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        binary = chroma_binary()
        assert binary, "chroma (pip install chromadb) is not installed"
        log = open(self.path.parent / f"chroma-{self.port}.log", "ab")
        self.proc = subprocess.Popen([binary, "run", "--path", str(self.path), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=log, stderr=log,
                                     env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma exited with {self.proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("chroma did not answer /api/v2/heartbeat in time")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    # Direct calls for the tests' own checks.
    def call(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def collection(self, name: str) -> dict:
        return self.call("GET", f"/api/v2/tenants/default_tenant/databases/default_database/collections/{name}")  # type: ignore[return-value]

    def records(self, name: str, path: str, body: object = None) -> object:
        cid = self.collection(name)["id"]
        base = f"/api/v2/tenants/default_tenant/databases/default_database/collections/{cid}"
        return self.call("GET" if body is None else "POST", f"{base}/{path}", body)


class KillingRelay:
    """Forwards HTTP calls to a Chroma server; after ``after`` upsert calls have gone through, it kills
    the server (SIGKILL) and, if ``restart_after`` is set, starts it again that many seconds later.
    While the server is down, callers get what a dead upstream gives a proxy: 502."""

    def __init__(self, server: ChromaServer, after: int | None, restart_after: float | None = None) -> None:
        self.server = server
        self.after = after
        self.restart_after = restart_after
        self.upserts = 0
        self.killed = threading.Event()
        self.restarted = threading.Event()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.path.endswith("/upsert") and relay.after is not None and not relay.killed.is_set():
                    relay.upserts += 1
                    if relay.upserts > relay.after:
                        relay._kill()
                req = urllib.request.Request(f"{relay.server.url}{self.path}", data=body, method=self.command,
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, payload = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, payload = e.code, e.read()
                except OSError as e:
                    status, payload = 502, json.dumps({"error": "BadGateway", "message": str(e)}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def arm(self, after: int) -> None:
        """Kill the server once ``after`` more upsert calls have gone through."""
        self.upserts, self.after = 0, after
        self.killed.clear()

    def _kill(self) -> None:
        self.server.kill()
        self.killed.set()
        if self.restart_after is not None:
            def later() -> None:
                time.sleep(self.restart_after or 0)
                self.server.start()
                self.restarted.set()
            threading.Thread(target=later, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
