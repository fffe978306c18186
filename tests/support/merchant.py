"""A merchant's shop on loopback: receives notifications and checks them as merchant plugins do.

Its signature check is written here from the protocol description, independently of the
gateway's signing code, the way the Rainbow SDK's ``verifyNotify`` does it: every GET
parameter except ``sign``/``sign_type`` and empty values, ``ksort``, raw ``k=v&``, key
appended, MD5, strict comparison, then ``trade_status == TRADE_SUCCESS``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


def plugin_sign(params: dict[str, str], key: str) -> str:
    content = "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k] != "")
    return hashlib.md5((content + key).encode("utf-8")).hexdigest()


@dataclass
class Received:
    method: str
    path: str
    params: dict[str, str]
    body: bytes
    at: float
    signature_ok: bool | None = None


@dataclass
class FakeMerchant:
    """Answers ``reply`` (``success`` by default); ``key`` enables the plugin-style signature check."""

    key: str | None = None
    reply: bytes = b"success"
    status: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeMerchant:
        merchant = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                if self.command == "POST" and "form-urlencoded" in (self.headers.get("Content-Type") or ""):
                    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
                entry = Received(self.command, parts.path, params, body, time.monotonic())
                if merchant.key is not None and "sign" in params:
                    entry.signature_ok = plugin_sign(params, merchant.key) == params["sign"]
                merchant.received.append(entry)
                if merchant.delay:
                    time.sleep(merchant.delay)
                self.send_response(merchant.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(merchant.reply)))
                self.end_headers()
                self.wfile.write(merchant.reply)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def notifications(self, path: str = "/notify") -> list[Received]:
        return [entry for entry in self.received if entry.path == path]
