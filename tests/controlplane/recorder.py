"""A recording extender for the test harness: forwards every call to a real extender and keeps
the first call of each chosen verb as a fixture — what kube-scheduler sent (headers and body)
and the reply it accepted — in the layout of ``tests/fixtures/kube-scheduler/``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.controlplane.processes import free_port


class Recorder:
    """Serve on a free loopback port, forwarding to ``target``; ``calls[verb]`` is the first
    call of each verb in ``verbs`` (set once it was answered)."""

    def __init__(self, target: str, verbs: set[str]) -> None:
        self.target = target
        self.verbs = verbs
        self.calls: dict[str, dict[str, Any]] = {}
        self.recorded = threading.Condition()
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, verb: str, timeout: float) -> dict[str, Any]:
        with self.recorded:
            if not self.recorded.wait_for(lambda: verb in self.calls, timeout):
                raise TimeoutError(f"kube-scheduler sent no {verb} call in {timeout:g}s")
            return self.calls[verb]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reply = httpx.post(
                    recorder.target + self.path, content=body, timeout=30,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                )  # fmt: skip
                self.send_response(reply.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)
                verb = self.path.strip("/")
                if verb in recorder.verbs and reply.status_code == 200:
                    with recorder.recorded:
                        recorder.calls.setdefault(verb, {
                            "verb": verb, "method": "POST", "path": self.path,
                            "headers": dict(self.headers.items()),
                            "request": json.loads(body), "reply_accepted": reply.json(),
                        })  # fmt: skip
                        recorder.recorded.notify_all()

        return Handler
