"""A tiny HTTP server standing in for the app: it records every request byte for byte (method,
path, headers as sent, raw body) and answers what the test scripts, so the devshop's webhook
deliveries and app-proxy requests can be inspected exactly as they left the devshop."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Captured:
    method: str
    path: str
    query_string: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string, keep_blank_values=True)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class CaptureServer:
    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.replies: list[Reply] = []
        self.responder: Callable[[Captured], Reply] | None = None
        self._lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                captured = Captured(
                    method=self.command,
                    path=parts.path,
                    query_string=parts.query,
                    headers=list(self.headers.items()),
                    body=body,
                )
                reply = capture._record(captured)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, captured: Captured) -> Reply:
        with self._lock:
            self.requests.append(captured)
            if self.responder is not None:
                return self.responder(captured)
            if self.replies:
                return self.replies.pop(0)
        return Reply()

    def start(self) -> "CaptureServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.replies.clear()
            self.responder = None

    def received(self, **header_equals: str) -> list[Captured]:
        """Requests so far whose headers match, e.g. received(x_shopify_shop_domain="a…")."""
        with self._lock:
            found = list(self.requests)
        for key, value in header_equals.items():
            name = key.replace("_", "-")
            found = [r for r in found if r.header(name) == value]
        return found
