"""A minimal LSP client for tests: JSON-RPC with Content-Length framing over a subprocess's stdio."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Client:
    """Starts `gendsl lsp` and talks to it as an editor does."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self.process = subprocess.Popen([sys.executable, "-m", "gendsl.cli", "lsp"], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.messages: queue.Queue = queue.Queue()
        self.notifications: list[dict] = []
        self.next_id = 0
        self.stderr: list[bytes] = []  # drained as it comes: a full pipe would block the server
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(iter(self.process.stderr.readline, b"")),
                         daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode("utf-8")
        self.process.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: dict) -> object:
        """Send a request and wait for its response (notifications meanwhile are kept)."""
        self.next_id += 1
        wanted = self.next_id
        self._send({"jsonrpc": "2.0", "id": wanted, "method": method, "params": params})
        while True:
            message = self._next()
            if message.get("id") == wanted and "method" not in message:
                assert "error" not in message, message["error"]
                return message.get("result")
            self._keep(message)

    def diagnostics(self, uri: str) -> list[dict]:
        """Wait for the next publishDiagnostics of a document."""
        for index, note in enumerate(self.notifications):
            if note["method"] == "textDocument/publishDiagnostics" and note["params"]["uri"] == uri:
                del self.notifications[index]
                return note["params"]["diagnostics"]
        while True:
            message = self._next()
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return message["params"]["diagnostics"]
            self._keep(message)

    def _keep(self, message: dict) -> None:
        if "id" in message and "method" in message:  # a request from the server: answer it
            self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)

    def _next(self) -> dict:
        try:
            message = self.messages.get(timeout=self.timeout)
        except queue.Empty:
            raise AssertionError(f"no message from the server in {self.timeout} s") from None
        if message is None:
            self.process.wait(timeout=self.timeout)
            raise AssertionError("the server exited: " + b"".join(self.stderr).decode(errors="replace"))
        return message

    def close(self) -> int:
        """shutdown + exit, as an editor ends a session; returns the server's exit code."""
        self.request("shutdown", None)
        self.notify("exit", None)
        try:
            return self.process.wait(timeout=self.timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
