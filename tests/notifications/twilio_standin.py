"""A local stand-in for Twilio's Messages API, served on a free port in the test process.

    POST /2010-04-01/Accounts/<AccountSid>/Messages.json   (HTTP basic auth: sid, auth token)
        201 + Twilio's message JSON (sid "SM…", status "queued", num_segments, …)
        400 code 21211 when "To" is not a valid E.164 number (or is in ``invalid``)
        400 code 21610 when "To" replied STOP (``unsubscribed`` numbers)
        401 code 20003 on bad credentials
        ``fail_next`` queues forced answers (e.g. 500, 429) for the next requests

Shapes follow https://www.twilio.com/docs/messaging/api/message-resource and
https://www.twilio.com/docs/api/errors.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-fA-F]{32})/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class TwilioStandin:
    accounts: dict[str, str] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)
    # Well-formed numbers Twilio still refuses as invalid (e.g. a landline, unassigned).
    invalid: set[str] = field(default_factory=set)
    received: list[dict] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    base_url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> TwilioStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                return

            def _answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _error(self, status: int, code: int, message: str) -> None:
                self._answer(
                    status,
                    {
                        "code": code,
                        "message": message,
                        "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status,
                    },
                )

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                match = _PATH.match(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if not match:
                    self._error(404, 20404, "The requested resource was not found")
                    return
                sid = match["sid"]
                auth = self.headers.get("Authorization", "")
                expected = standin.accounts.get(sid)
                given = ""
                if auth.startswith("Basic "):
                    given = base64.b64decode(auth[6:]).decode()
                if expected is None or given != f"{sid}:{expected}":
                    self._error(401, 20003, "Authenticate")
                    return
                if standin.fail_next:
                    status = standin.fail_next.pop(0)
                    code = 20429 if status == 429 else 20500
                    self._error(status, code, "Forced failure")
                    return
                to = form.get("To", "")
                if not _E164.match(to) or to in standin.invalid:
                    self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
                    return
                if to in standin.unsubscribed:
                    self._error(400, 21610, "Attempt to send to unsubscribed recipient")
                    return
                message_sid = "SM" + secrets.token_hex(16)
                body = form.get("Body", "")
                record = {
                    "account_sid": sid,
                    "api_version": "2010-04-01",
                    "body": body,
                    "date_created": formatdate(usegmt=True),
                    "date_sent": None,
                    "date_updated": formatdate(usegmt=True),
                    "direction": "outbound-api",
                    "error_code": None,
                    "error_message": None,
                    "from": form.get("From", ""),
                    "messaging_service_sid": None,
                    "num_media": "0",
                    "num_segments": "1",
                    "price": None,
                    "price_unit": "USD",
                    "sid": message_sid,
                    "status": "queued",
                    "subresource_uris": {
                        "media": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}/Media.json"
                    },
                    "to": to,
                    "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
                }
                standin.received.append(record)
                self._answer(201, record)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
