"""The printed receipt: a few text lines and the QR code of the signed receipt data.

It goes to a configured printer device as a PNG (58 mm wide, 384 dots) when ``qrcode`` and Pillow
are installed, else as plain text carrying the QR string itself.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from .journal import Entry
from .money import format_minor
from .profiles import Profile
from .profiles.base import qr_string, short_code

WIDTH = 384
_MARGIN = 8


def receipt_lines(entry: Entry, profile: Profile) -> list[str]:
    p = entry.payload
    currency, sep = p["currency"], profile.decimal_separator

    def amount(minor: int) -> str:
        return format_minor(minor, currency, sep)

    lines = [
        p["register_id"],
        f"Receipt {p['receipt_number']}",
        f"{p['ts_local'].replace('T', ' ')} ({p['tz']})",
    ]
    if p.get("bill") and p["bill"].get("number"):
        lines.append(f"Bill {p['bill']['number']}")
    if label := profile.kind_label(p["kind"]):
        lines.append(label)
    if p.get("corrected_receipt"):
        lines.append(f"Corrects {p['corrected_receipt']}")
    for bucket, totals in p["totals"].items():
        lines.append(f"{bucket:<12}{amount(totals['gross']):>14}")
    total = sum(t["gross"] for t in p["totals"].values())
    lines.append(f"{'Total':<12}{amount(total):>14} {currency}")
    for method, paid in p["payments"].items():
        lines.append(f"{method[:20]:<20}{amount(paid):>10}")
    if p.get("profile_code"):
        lines.append(f"Code {short_code(p['profile_code'])}")
    return lines


def print_data(entry: Entry, profile: Profile) -> dict[str, Any]:
    """The Printer command data for a receipt (what ``ctx.devices.run`` takes)."""
    lines = receipt_lines(entry, profile)
    qr = qr_string(entry.payload["profile_code"])
    try:
        file_type, data = "image/png", _png(lines, qr)
    except ImportError:  # the printing extras are not installed: the QR string as text still verifies
        file_type, data = "text/plain", ("\n".join([*lines, "", qr]) + "\n").encode()
    return {
        "CopyCount": 1,
        "FileType": file_type,
        "FileData": base64.b64encode(data).decode(),
        "PrinterName": "",
        "PrinterDriverName": "",
        "PrinterPortName": "",
    }


def _png(lines: list[str], qr: str) -> bytes:
    import qrcode
    from PIL import Image, ImageDraw, ImageFont

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(qr)
    code.make(fit=True)
    matrix = code.get_matrix()
    modules = len(matrix)
    scale = max(1, (WIDTH - 2 * _MARGIN) // modules)
    symbol = Image.new("L", (modules, modules))
    symbol.putdata([0 if dark else 255 for row in matrix for dark in row])
    symbol = symbol.resize((modules * scale, modules * scale), Image.Resampling.NEAREST)

    font = ImageFont.load_default(18)
    line_height = 24
    height = _MARGIN * 3 + line_height * len(lines) + symbol.height
    page = Image.new("L", (WIDTH, height), 255)
    draw = ImageDraw.Draw(page)
    for index, line in enumerate(lines):
        draw.text((_MARGIN, _MARGIN + index * line_height), line, fill=0, font=font)
    page.paste(symbol, ((WIDTH - symbol.width) // 2, _MARGIN * 2 + line_height * len(lines)))
    out = io.BytesIO()
    page.convert("1").save(out, format="PNG", optimize=True)
    return out.getvalue()
