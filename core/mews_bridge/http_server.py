"""The bridge's own small HTTP server (:mod:`.httpd`, on the bridge's event loop), at ``[bridge] http``.

* ``/healthz``: the process is alive and its event loop answers (no token asked: for systemd and
  container health checks).
* ``/readyz``: 200 when Mews is connected and every configured device and service is set up, else
  503 with the reasons, one a line.
* ``/``: the status page (:mod:`.status_page`); ``/status.json``: the same as JSON (what
  ``mews-bridge status`` prints); ``/metrics``: Prometheus; ``/diagnostics.json``: the diagnostics
  file's content, secrets masked; ``POST /charges/retry``: send a failed charge again.

Access: with ``[bridge] http_token`` every request but ``/healthz`` must carry it, as
``Authorization: Bearer …`` (Prometheus, curl, ``mews-bridge status``) or as the session cookie the
page's sign-in form sets (HttpOnly, SameSite=Strict; it holds an HMAC of the token, never the token).
Without a token the server may only listen on loopback (settings refuse anything else) and answers
only requests addressed to a loopback name, so a web page cannot reach it by DNS rebinding. The
retry form carries a per-process CSRF value and must come from the page's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import metrics, status
from .httpd import HttpServer, Request, Response
from .redaction import redactor
from .settings import is_loopback, listen_address

if TYPE_CHECKING:
    from .bridge import Bridge

log = logging.getLogger(__name__)
SESSION_COOKIE = "mews_bridge_session"
_NOTES_KEPT = 20
_HTML = "text/html; charset=utf-8"
_SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),  # "no-referrer" would make forms send "Origin: null"
    ("Cache-Control", "no-store"),
]
_UNAUTHORISED = Response.text(
    HTTPStatus.UNAUTHORIZED,
    "A token is needed: Authorization: Bearer <bridge.http_token>.\n",
    ("WWW-Authenticate", 'Bearer realm="mews-bridge"'),
)


class StatusServer:
    """Serves one bridge; :meth:`start` binds, :meth:`stop` closes. ``url`` is where it listens."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        settings = bridge.settings.bridge
        self.host, self.port = listen_address(settings.http)
        token = settings.http_token.get_secret_value() if settings.http_token else None
        self._token = token.encode() if token else None
        self._csrf_key = secrets.token_bytes(32)
        self._notes: OrderedDict[str, str] = OrderedDict()
        self._http = HttpServer(self._handle)
        self._routes: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            ("GET", "/healthz"): self._healthz,
            ("GET", "/readyz"): self._readyz,
            ("GET", "/"): self._page,
            ("POST", "/login"): self._login,
            ("GET", "/status.json"): self._status_json,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/diagnostics.json"): self._diagnostics,
            ("POST", "/charges/retry"): self._retry_charge,
        }
        self.url: str | None = None

    async def start(self) -> None:
        """Listen; a port already taken is logged and the bridge goes on without its pages."""
        try:
            host, port = await self._http.start(self.host, self.port)
        except OSError as exc:
            log.error(
                "The status page cannot listen on %s (%s); the bridge runs without it",
                self.bridge.settings.bridge.http,
                exc.strerror or exc,
            )
            return
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        log.info("Status page, /metrics and health checks at %s", self.url)

    async def stop(self) -> None:
        await self._http.stop()

    # -- access ------------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        if self._token is None and not is_loopback(request.host):
            return Response.text(
                HTTPStatus.MISDIRECTED_REQUEST, "This bridge answers only on a loopback address.\n"
            )
        route = self._routes.get((request.method if request.method != "HEAD" else "GET", request.path))
        if route is None:
            allowed = sorted(method for method, path in self._routes if path == request.path)
            if allowed:
                return Response.text(
                    HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed.\n", ("Allow", ", ".join(allowed))
                )
            return Response.text(HTTPStatus.NOT_FOUND, "Not found.\n")
        if request.path not in ("/healthz", "/login") and not self._signed_in(request):
            if request.path == "/":
                from . import status_page  # the HTML pages (and html's entity table) load at first view

                return Response(HTTPStatus.UNAUTHORIZED, status_page.sign_in(), _HTML)
            return _UNAUTHORISED
        try:
            response = await route(request)
        except Exception as exc:  # a fault in a page must not look like a dead bridge
            log.error("The status page failed on %s %s", request.method, request.path, exc_info=exc)
            response = Response.text(
                HTTPStatus.INTERNAL_SERVER_ERROR, "The bridge could not answer; its log says why.\n"
            )
        response.headers += _SECURITY_HEADERS
        return response

    def _signed_in(self, request: Request) -> bool:
        if self._token is None:
            return True
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), self._token):
            return True
        cookie = request.cookie(SESSION_COOKIE) or ""
        return hmac.compare_digest(cookie.encode(), self._session_value().encode())

    def _session_value(self) -> str:
        assert self._token is not None
        return hmac.new(self._token, b"mews-bridge session", hashlib.sha256).hexdigest()

    def csrf_value(self) -> str:
        return hmac.new(self._csrf_key, b"retry", hashlib.sha256).hexdigest()

    @staticmethod
    def _same_origin(request: Request) -> bool:
        """The form came from a page of this server (browsers send Origin with every POST)."""
        origin = request.headers.get("origin")
        if origin is None:  # not a browser (curl): CSRF needs a browser
            referer = request.headers.get("referer")
            return referer is None or urlsplit(referer).netloc == request.headers.get("host")
        return urlsplit(origin).netloc == request.headers.get("host")

    async def _login(self, request: Request) -> Response:
        if self._token is None:
            return Response.redirect("/")
        given = request.form().get("token", "").encode()
        if not self._same_origin(request) or not hmac.compare_digest(given, self._token):
            from . import status_page  # the HTML pages (and html's entity table) load at first view

            return Response(HTTPStatus.UNAUTHORIZED, status_page.sign_in(failed=True), _HTML)
        cookie = f"{SESSION_COOKIE}={self._session_value()}; HttpOnly; SameSite=Strict; Path=/"
        return Response.redirect("/", ("Set-Cookie", cookie))

    # -- pages -------------------------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return Response.text(HTTPStatus.OK, "ok\n")

    async def _readyz(self, request: Request) -> Response:
        if status.is_ready(self.bridge):
            return Response.text(HTTPStatus.OK, "ready\n")
        reasons = []
        if self.bridge.stream is None or not self.bridge.stream.connected.is_set():
            reasons.append("Mews: not connected")
        for managed in self.bridge.instances:
            if managed.state.value != "loaded":
                why = f" ({redactor.redact(managed.reason)})" if managed.reason else ""
                reasons.append(f"{managed.kind} {managed.name}: {managed.state.value}{why}")
        return Response.text(HTTPStatus.SERVICE_UNAVAILABLE, "\n".join(["not ready", *reasons]) + "\n")

    async def _page(self, request: Request) -> Response:
        from . import status_page  # the HTML pages (and html's entity table) load at first view

        note = self._notes.get(request.query.get("note", ""))
        picture = await status.take(self.bridge)
        page = status_page.render(
            picture, csrf=self.csrf_value(), refresh_s=self.bridge.settings.bridge.page_refresh_s, note=note
        )
        return Response(HTTPStatus.OK, page, _HTML)

    async def _status_json(self, request: Request) -> Response:
        picture = await status.take(self.bridge)
        return Response(HTTPStatus.OK, json.dumps(picture.as_dict(), default=str), "application/json")

    async def _metrics(self, request: Request) -> Response:
        body = metrics.exposition(await status.take(self.bridge))
        return Response(HTTPStatus.OK, body, "text/plain; version=0.0.4; charset=utf-8")

    async def _diagnostics(self, request: Request) -> Response:
        text = json.dumps(await self.bridge.diagnostics(), indent=2, default=str)
        return Response(
            HTTPStatus.OK,
            redactor.redact(text),
            "application/json",
            [("Content-Disposition", 'attachment; filename="mews-bridge-diagnostics.json"')],
        )

    async def _retry_charge(self, request: Request) -> Response:
        form = request.form()
        if not self._same_origin(request) or not hmac.compare_digest(form.get("csrf", ""), self.csrf_value()):
            return Response.text(
                HTTPStatus.FORBIDDEN, "This form is out of date or did not come from the status page.\n"
            )
        service, key = form.get("service", ""), form.get("key", "")
        try:
            outcome = await status.retry_charge(self.bridge, service, key)
        except (LookupError, ValueError) as exc:
            outcome = str(exc)
        log.info("Status page: retry of charge %s of %s: %s", key, service, outcome)
        note_id = secrets.token_urlsafe(8)
        self._notes[note_id] = redactor.redact(outcome)
        while len(self._notes) > _NOTES_KEPT:
            self._notes.popitem(last=False)
        return Response.redirect(f"/?note={note_id}")
