"""The status page: one server-rendered HTML page, readable on a phone, no script, reloading itself
every few seconds. Every value is escaped (and was redacted when the status was taken)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from .redaction import redactor
from .status import BridgeStatus, ChargeBook, InstanceStatus, LastCommand

_STATE_WORDS = {
    "loaded": ("up", "ok"),
    "setup_in_progress": ("starting", "warn"),
    "setup_retry": ("retrying", "bad"),
    "setup_error": ("failed", "bad"),
    "not_loaded": ("stopped", "warn"),
    "unload_in_progress": ("stopping", "warn"),
    "failed_unload": ("failed to stop", "bad"),
}
_CARD = {"ok": "up", "warn": "starting", "bad": "down"}
_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}
header{background:#1d2430;color:#fff;padding:.6em 1em}header h1{font-size:1.1em;margin:0}
main{padding:.5em;max-width:60em;margin:auto}
section{background:#fff;border-radius:6px;margin:.6em 0;padding:.6em .8em;box-shadow:0 1px 2px #0002}
h2{font-size:1em;margin:.2em 0 .5em}
.ok{color:#0a7a32}.warn{color:#9a6700}.bad{color:#b42318;font-weight:600}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;border:1px solid currentColor;font-size:.85em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1em .8em;margin:.3em 0}dt{color:#5b6472}dd{margin:0}
.table{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9em}
td,th{text-align:left;padding:.25em .4em;border-bottom:1px solid #e3e6ea;vertical-align:top}
.device{border-left:4px solid #0a7a32}.device.down{border-color:#b42318}.device.starting{border-color:#9a6700}
.notes{font-size:.9em;color:#5b6472}.note{background:#fff7d6;border:1px solid #e6c200}button{font:inherit;padding:.2em .8em}
footer{color:#5b6472;font-size:.8em;padding:0 1em 1em}
"""


def _t(value: Any) -> str:
    """Text for the page: redacted, escaped, ``-`` for nothing."""
    if value is None or value == "":
        return "-"
    return escape(redactor.redact(str(value)))


def _when(iso: str | None) -> str:
    """``12:03:04`` today, else the date too (UTC, as the bridge's logs)."""
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    same_day = moment.date() == datetime.now(UTC).date()
    return escape(moment.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M") + " UTC")


def _page(title: str, body: str, *, refresh_s: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{meta}<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>"
    )


def sign_in(*, failed: bool = False) -> str:
    """The sign-in form shown when a token is set and the browser has no session yet."""
    error = '<p class="bad">That token is not right.</p>' if failed else ""
    body = (
        "<header><h1>mews-bridge</h1></header><main><section><h2>Sign in</h2>"
        "<p>This bridge asks for its access token (<code>[bridge] http_token</code>).</p>"
        f'{error}<form method="post" action="/login"><input type="password" name="token" '
        'autocomplete="current-password" aria-label="Token" required> <button>Sign in</button></form>'
        "</section></main>"
    )
    return _page("mews-bridge: sign in", body)


def render(status: BridgeStatus, *, csrf: str, refresh_s: int, note: str | None = None) -> str:
    ready = (
        '<span class="badge ok">ready</span>' if status.ready else '<span class="badge bad">not ready</span>'
    )
    parts = [f"<header><h1>mews-bridge {_t(status.version)} {ready}</h1></header><main>"]
    if note:
        parts.append(f'<section class="note" role="status">{_t(note)}</section>')
    parts.append(_mews(status))
    parts.append("<section><h2>Devices and services</h2>")
    parts += [_instance(instance) for instance in status.instances] or ["<p>None configured.</p>"]
    parts.append("</section>")
    parts += [_charges(book, csrf) for book in status.charges]
    parts.append(_commands(status.commands))
    parts.append(
        "<section><h2>Diagnostics</h2><p>"
        '<a href="/diagnostics.json" download>Download the diagnostics</a> (secrets masked) · '
        '<a href="/metrics">metrics</a> · <a href="/status.json">status as JSON</a></p>'
        f"<dl><dt>Results waiting for Mews</dt><dd>{status.waiting_for_mews}</dd>"
        f"<dt>Journal</dt><dd>{status.journal_bytes / 1e6:.1f} MB</dd>"
        f"<dt>Event loop blocked</dt><dd>{status.loop_blocked_incidents} times</dd>"
        f"<dt>Running since</dt><dd>{_when(status.started_at)}</dd></dl></section>"
    )
    parts.append(f"</main><footer>Taken at {_when(status.taken_at)}; reloads every {refresh_s} s.</footer>")
    return _page("mews-bridge status", "".join(parts), refresh_s=refresh_s)


def _mews(status: BridgeStatus) -> str:
    m = status.mews
    link = (
        f'<span class="ok" id="mews-link">connected since {_when(m.connected_since)}</span>'
        if m.connected
        else '<span class="bad" id="mews-link">not connected</span>'
    )
    error = f"{_t(m.last_error)} ({_when(m.last_error_at)})" if m.last_error else "-"
    return (
        f"<section><h2>Mews</h2><dl><dt>Event stream</dt><dd>{link}</dd>"
        f"<dt>Last event</dt><dd>{_when(m.last_event_at)}</dd>"
        f"<dt>Requests in the rate window</dt><dd>{m.window_requests} of {m.window_limit}</dd>"
        f"<dt>429 answers today</dt><dd>{m.throttled_today}</dd>"
        f"<dt>Last error</dt><dd>{error}</dd></dl></section>"
    )


def _instance(instance: InstanceStatus) -> str:
    word, tone = _STATE_WORDS.get(instance.state, (instance.state, "warn"))
    reason = f": {_t(instance.reason)}" if instance.reason else ""
    rows = [f'<dt>State</dt><dd class="{tone}" data-field="state">{escape(word)}{reason}</dd>']
    if instance.kind == "device":
        busy = ", one running" if instance.busy else ""
        rows.append(f"<dt>Queue</dt><dd>{instance.queued} waiting{busy}</dd>")
        rows.append(f'<dt>Last command</dt><dd data-field="last-command">{_last(instance.last_command)}</dd>')
    for key, value in instance.facts.items():
        rows.append(f'<dt>{_t(key.replace("_", " "))}</dt><dd data-fact="{escape(key)}">{_fact(value)}</dd>')
    kind = f"{instance.kind}, {instance.implementation}"
    return (
        f'<section class="device {_CARD[tone]}" data-name="{escape(instance.name)}">'
        f"<h2>{_t(instance.name)} <small>({_t(kind)})</small></h2><dl>{''.join(rows)}</dl></section>"
    )


def _fact(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            return _when(value)
        except ValueError:
            pass
    return _t(value)


def _last(command: LastCommand | None) -> str:
    if command is None:
        return "none yet"
    notes = f": {_t(command.notes)}" if command.notes else ""
    return f"{_t(command.state)} at {_when(command.received_at)}{notes}"


def _charges(book: ChargeBook, csrf: str) -> str:
    counts = book.counts
    summary = (
        f"{counts.get('pending', 0)} pending · {counts.get('posted', 0)} posted today · "
        f"{counts.get('refused', 0)} refused · {counts.get('failed', 0)} failed"
    )
    rows = []
    for line in book.lines:
        action = ""
        if line.retryable:
            action = (
                '<form method="post" action="/charges/retry">'
                f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
                f'<input type="hidden" name="service" value="{escape(book.service)}">'
                f'<input type="hidden" name="key" value="{escape(line.key)}">'
                "<button>Retry</button></form>"
            )
        tone = {"failed": "bad", "pending": "warn"}.get(line.state, "")
        rows.append(
            f'<tr data-charge="{escape(line.key)}"><td>{_when(line.at)}</td><td>{_t(line.room)}</td>'
            f"<td>{_t(line.item)}</td><td>{_t(line.amount)} {_t(line.currency)}</td>"
            f'<td class="{tone}">{_t(line.state)}</td><td>{_t(line.detail)}</td><td>{action}</td></tr>'
        )
    table = (
        '<div class="table"><table><tr><th>Call</th><th>Room</th><th>Item</th><th>Amount</th>'
        f"<th>State</th><th>Why</th><th></th></tr>{''.join(rows)}</table></div>"
        if rows
        else "<p>No charge needs attention.</p>"
    )
    return f"<section><h2>Charges: {_t(book.service)}</h2><p>{summary}</p>{table}</section>"


def _commands(commands: list[LastCommand]) -> str:
    if not commands:
        return "<section><h2>Last commands</h2><p>None yet.</p></section>"
    rows = []
    for command in commands:
        tone = {"Error": "bad", "Processed": "ok"}.get(command.state, "warn")
        notes = f'<div class="notes">{_t(command.notes)}</div>' if command.notes else ""
        rows.append(
            f"<tr><td>{_when(command.received_at)}</td><td>{_t(command.device)}</td>"
            f'<td><span class="{tone}">{_t(command.state)}</span>{notes}</td><td>{_took(command.duration_s)}</td></tr>'
        )
    return (
        f'<section><h2>Last {len(commands)} commands</h2><div class="table"><table><tr><th>Received</th>'
        f"<th>Device</th><th>Outcome</th><th>Took</th></tr>{''.join(rows)}</table></div></section>"
    )


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
