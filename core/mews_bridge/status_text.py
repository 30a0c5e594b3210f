"""``mews-bridge status``: the status page's picture in a terminal, read from the running bridge's
``/status.json`` (the bridge's own HTTP server, ``[bridge] http``)."""

from __future__ import annotations

from typing import Any

import httpx

from .redaction import redactor
from .settings import BridgeSettings, listen_address

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
_STATE_WORDS = {"loaded": "up", "setup_retry": "RETRYING", "setup_error": "FAILED", "failed_unload": "FAILED"}


class StatusUnavailable(Exception):
    """The running bridge could not be asked (off, not running, refused the token)."""


def status_url(settings: BridgeSettings) -> str:
    """Where this machine reaches the bridge's ``/status.json``."""
    if not settings.http:
        raise StatusUnavailable('The bridge\'s HTTP server is off (bridge.http = ""): nothing to ask.')
    host, port = listen_address(settings.http)
    host = _WILDCARDS.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/status.json"


def fetch(settings: BridgeSettings, timeout_s: float = 5.0) -> dict[str, Any]:
    url = status_url(settings)
    token = settings.http_token.get_secret_value() if settings.http_token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.TransportError as exc:
        raise StatusUnavailable(
            f"No bridge answers at {url} ({type(exc).__name__}): is it running? "
            "(systemctl status mews-bridge; journalctl -u mews-bridge)"
        ) from None
    if response.status_code == 401:
        raise StatusUnavailable(
            f"The bridge at {url} refused the token: bridge.http_token differs from its own."
        )
    if response.status_code != 200:
        raise StatusUnavailable(f"The bridge at {url} answered HTTP {response.status_code}.")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise StatusUnavailable(f"The bridge at {url} answered, but not with its status.")
    return body


def _when(value: str | None) -> str:
    return value.replace("T", " ").replace("+00:00", " UTC") if value else "-"


def render(status: dict[str, Any]) -> str:
    """The picture as lines of text (every value redacted once more: this may be pasted anywhere)."""
    mews = status["mews"]
    lines = [
        f"mews-bridge {status['version']}: {'READY' if status['ready'] else 'NOT READY'}"
        f"  (running since {_when(status['started_at'])})",
        "",
        "Mews: "
        + (f"connected since {_when(mews['connected_since'])}" if mews["connected"] else "NOT CONNECTED")
        + f"; last event {_when(mews['last_event_at'])}; {mews['window_requests']} of "
        f"{mews['window_limit']} requests in the rate window; {mews['throttled_today']} 429s today",
    ]
    if mews["last_error"]:
        lines.append(f"  last error: {mews['last_error']} ({_when(mews['last_error_at'])})")
    lines += ["", "Devices and services:"]
    for instance in status["instances"]:
        state = _STATE_WORDS.get(instance["state"], instance["state"])
        reason = f": {instance['reason']}" if instance["reason"] else ""
        lines.append(f"  {instance['name']} ({instance['implementation']}): {state}{reason}")
        if instance["kind"] == "device":
            last = instance["last_command"]
            done = f"{last['state']} at {_when(last['received_at'])}" if last else "none yet"
            if last and last["notes"]:
                done += f": {last['notes']}"
            busy = ", one running" if instance["busy"] else ""
            lines.append(f"      queue {instance['queued']}{busy}; last command {done}")
        for key, value in instance["facts"].items():
            lines.append(f"      {key.replace('_', ' ')}: {'-' if value is None else value}")
    for book in status["charges"]:
        counts = book["counts"]
        lines += [
            "",
            f"Charges ({book['service']}): {counts.get('pending', 0)} pending, {counts.get('posted', 0)} "
            f"posted today, {counts.get('refused', 0)} refused, {counts.get('failed', 0)} failed",
        ]
        for line in book["lines"]:
            detail = f"  {line['detail']}" if line["detail"] else ""
            lines.append(
                f"  {_when(line['at'])}  room {line['room'] or '-'}  {line['item']}  "
                f"{line['amount']} {line['currency']}  {line['state']}{detail}"
            )
    lines += ["", f"Last {len(status['commands'])} commands:"]
    for command in status["commands"]:
        took = f"{command['duration_s']:.1f} s" if command["duration_s"] is not None else "-"
        notes = f"  {command['notes']}" if command["notes"] else ""
        lines.append(
            f"  {_when(command['received_at'])}  {command['device']}  {command['state']}  {took}{notes}"
        )
    lines += [
        "",
        f"Results waiting for Mews: {status['waiting_for_mews']}; journal {status['journal_bytes'] / 1e6:.1f} MB; "
        f"event loop blocked {status['loop_blocked_incidents']} times",
    ]
    return redactor.redact("\n".join(lines))
