"""What goes to the receipt printer: Printer command data (as Mews would send it) for a printed receipt.

The text is printed in the printer's own font (sharp, and a few hundred bytes instead of a bitmap of
the whole receipt), with the QR code as a PNG between the two text parts: one ``multipart/mixed``
document that the printer prints on one receipt and cuts once. Without ``qrcode`` and Pillow (the
``print`` extra) the QR code's content is printed as text, which still verifies.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from .layout import PrintedReceipt
from .profiles.base import qr_string

QR_MODULE_DOTS = 4
"""Dots per QR module: a 4 dot (0.5 mm) module scans reliably from thermal paper."""


def print_data(printed: PrintedReceipt) -> dict[str, Any]:
    """The ``Printer`` command data of a printed receipt (what ``ctx.devices.run`` takes)."""
    qr = qr_string(printed.qr) if printed.qr else None
    png = _qr_png(qr) if qr else None
    if png is None:
        top = printed.top + ([qr] if qr else [])
        return _data("text/plain; charset=utf-8", "\n".join([*top, *printed.bottom]).encode() + b"\n")
    from email.mime.image import MIMEImage  # the email package loads at the first receipt printed
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    message = MIMEMultipart("mixed")
    message.attach(MIMEText("\n".join(printed.top) + "\n", "plain", "utf-8"))
    message.attach(MIMEImage(png, "png"))
    message.attach(MIMEText("\n".join(printed.bottom) + "\n", "plain", "utf-8"))
    body = message.as_bytes().split(b"\n\n", 1)[1]  # the document is what follows the headers
    return _data(f'multipart/mixed; boundary="{message.get_boundary()}"', body)


def text_data(lines: list[str]) -> dict[str, Any]:
    """A plain-text printout (a closing report)."""
    return _data("text/plain; charset=utf-8", ("\n".join(lines) + "\n").encode())


def _data(file_type: str, data: bytes) -> dict[str, Any]:
    return {
        "CopyCount": 1,
        "FileType": file_type,
        "FileData": base64.b64encode(data).decode(),
        "PrinterName": "",
        "PrinterDriverName": "",
        "PrinterPortName": "",
    }


def _qr_png(content: str) -> bytes | None:
    try:
        import qrcode
        from qrcode.image.pil import PilImage
    except ImportError:
        return None
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=QR_MODULE_DOTS)
    code.add_data(content)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image(image_factory=PilImage).save(out)
    return out.getvalue()
