"""The bridge's own small HTTP server (aiohttp, on the bridge's event loop), at ``[bridge] http``.

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
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from . import metrics, status, status_page
from .redaction import redactor
from .settings import is_loopback, listen_address

if TYPE_CHECKING:
    from .bridge import Bridge

log = logging.getLogger(__name__)
SESSION_COOKIE = "mews_bridge_session"
_OPEN_PATHS = frozenset({"/healthz"})
_NOTES_KEPT = 20
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make forms send "Origin: null"
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> None:
        """Listen; a port already taken is logged and the bridge goes on without its pages."""
        app = web.Application(middlewares=[self._guard])
        app.add_routes(
            [
                web.get("/healthz", self._healthz),
                web.get("/readyz", self._readyz),
                web.get("/", self._page),
                web.post("/login", self._login),
                web.get("/status.json", self._status_json),
                web.get("/metrics", self._metrics),
                web.get("/diagnostics.json", self._diagnostics),
                web.post("/charges/retry", self._retry_charge),
            ]
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            log.error(
                "The status page cannot listen on %s (%s); the bridge runs without it",
                self.bridge.settings.bridge.http,
                exc.strerror or exc,
            )
            return
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        log.info("Status page, /metrics and health checks at %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- access ------------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._token is None and not is_loopback(request.url.host or ""):
            raise web.HTTPMisdirectedRequest(text="This bridge answers only on a loopback address.\n")
        if request.path not in _OPEN_PATHS and request.path != "/login" and not self._signed_in(request):
            if request.method == "GET" and request.path == "/":
                return self._html(status_page.sign_in(), status=401)
            raise web.HTTPUnauthorized(
                text="A token is needed: Authorization: Bearer <bridge.http_token>.\n",
                headers={"WWW-Authenticate": 'Bearer realm="mews-bridge"'},
            )
        response = await handler(request)
        response.headers.update(_SECURITY_HEADERS)
        return response

    def _signed_in(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), self._token):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self._session_value().encode())

    def _session_value(self) -> str:
        assert self._token is not None
        return hmac.new(self._token, b"mews-bridge session", hashlib.sha256).hexdigest()

    def csrf_value(self) -> str:
        return hmac.new(self._csrf_key, b"retry", hashlib.sha256).hexdigest()

    def _same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":
            referer = request.headers.get("Referer")
            return origin is None and (referer is None or urlsplit(referer).netloc == request.host)
        return urlsplit(origin).netloc == request.host

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if self._token is None:
            raise web.HTTPSeeOther("/")
        form = await request.post()
        given = str(form.get("token", "")).encode()
        if not self._same_origin(request) or not hmac.compare_digest(given, self._token):
            return self._html(status_page.sign_in(failed=True), status=401)
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(SESSION_COOKIE, self._session_value(), httponly=True, samesite="Strict", path="/")
        return response

    # -- pages -------------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.StreamResponse:
        if status.is_ready(self.bridge):
            return web.Response(text="ready\n")
        reasons = []
        if self.bridge.stream is None or not self.bridge.stream.connected.is_set():
            reasons.append("Mews: not connected")
        for managed in self.bridge.instances:
            if managed.state.value != "loaded":
                why = f" ({redactor.redact(managed.reason)})" if managed.reason else ""
                reasons.append(f"{managed.kind} {managed.name}: {managed.state.value}{why}")
        return web.Response(status=503, text="\n".join(["not ready", *reasons]) + "\n")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        note = self._notes.get(request.query.get("note", ""))
        picture = await status.take(self.bridge)
        return self._html(status_page.render(picture, csrf=self.csrf_value(), note=note))

    async def _status_json(self, request: web.Request) -> web.StreamResponse:
        picture = await status.take(self.bridge)
        return web.json_response(picture.as_dict(), dumps=lambda data: json.dumps(data, default=str))

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = metrics.exposition(await status.take(self.bridge))
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def _diagnostics(self, request: web.Request) -> web.StreamResponse:
        text = json.dumps(await self.bridge.diagnostics(), indent=2, default=str)
        return web.Response(
            text=redactor.redact(text),
            content_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="mews-bridge-diagnostics.json"'},
        )

    async def _retry_charge(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        csrf = str(form.get("csrf", ""))
        if not self._same_origin(request) or not hmac.compare_digest(csrf, self.csrf_value()):
            raise web.HTTPForbidden(text="This form is out of date or did not come from the status page.\n")
        service, key = str(form.get("service", "")), str(form.get("key", ""))
        try:
            outcome = await status.retry_charge(self.bridge, service, key)
        except (LookupError, ValueError) as exc:
            outcome = str(exc)
        log.info("Status page: retry of charge %s of %s: %s", key, service, outcome)
        note_id = secrets.token_urlsafe(8)
        self._notes[note_id] = redactor.redact(outcome)
        while len(self._notes) > _NOTES_KEPT:
            self._notes.popitem(last=False)
        raise web.HTTPSeeOther(f"/?note={note_id}")

    @staticmethod
    def _html(text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html", headers=_SECURITY_HEADERS)
