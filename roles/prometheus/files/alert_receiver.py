#!/usr/bin/python3
"""Alert receiver: records Alertmanager's webhook notifications, for the lab and its tests.

POST /alerts    a notification (JSON object): appended, with `receivedAt`, as one line of the journal
GET  /alerts    every recorded notification, oldest first, as a JSON list
GET  /healthz   {"status": "ok", "notifications": <count>}

Standard library only, so it runs on the node's own python3.
"""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MAX_BODY_BYTES = 1 << 20


class Journal:
    """A JSONL file of notifications; one lock serialises appends and reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, notification: dict[str, Any]) -> None:
        line = json.dumps(notification, separators=(",", ":"))
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def read(self) -> list[Any]:
        with self._lock:
            if not self.path.exists():
                return []
            lines = self.path.read_text(encoding="utf-8").splitlines()
        notifications = []
        for line in lines:
            try:
                notifications.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash: skip it
        return notifications


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], journal: Journal) -> None:
        super().__init__(address, Handler)
        self.journal = journal


class Handler(BaseHTTPRequestHandler):
    server_version = "alert-receiver/1"

    @property
    def journal(self) -> Journal:
        assert isinstance(self.server, ReceiverServer)
        return self.server.journal

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._reply(200, {"status": "ok", "notifications": len(self.journal.read())})
        elif path == "/alerts":
            self._reply(200, self.journal.read())
        else:
            self._reply(404, {"error": f"no {path}: GET /alerts, GET /healthz, POST /alerts"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/alerts":
            self._reply(404, {"error": "POST notifications to /alerts"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(411, {"error": "Content-Length is required"})
            return
        if not 0 < length <= MAX_BODY_BYTES:
            self._reply(413, {"error": f"body must be 1 to {MAX_BODY_BYTES} bytes"})
            return
        try:
            notification = json.loads(self.rfile.read(length))
        except ValueError:
            self._reply(400, {"error": "body is not JSON"})
            return
        if not isinstance(notification, dict):
            self._reply(400, {"error": "body is not a JSON object"})
            return
        notification["receivedAt"] = datetime.now(UTC).isoformat()
        self.journal.append(notification)
        self._reply(200, {"status": "recorded"})

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--journal", type=Path, default=Path("notifications.jsonl"))
    args = parser.parse_args()
    server = ReceiverServer((args.host, args.port), Journal(args.journal))
    print(f"alert receiver on {args.host}:{args.port}, journal {args.journal}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
