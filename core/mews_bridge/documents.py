"""What every printer plugin does with a Mews document before turning it into its own format: decode
``FileData`` within a size limit, and take turns with PDFium."""

from __future__ import annotations

import base64
import binascii
import threading

PDFIUM_LOCK = threading.Lock()
"""PDFium (pypdfium2) is not thread-safe and plugins render in worker threads, so every plugin that
calls it holds this one process-wide lock: a receipt and an A4 page rendered at once cannot collide."""


class DocumentError(Exception):
    """The document cannot be printed as given; the message is written for the front desk."""


def decode_file_data(data: str, max_bytes: int) -> bytes:
    """Mews ``FileData`` (base64; line breaks and spaces inside tolerated) to bytes, refusing what is
    not base64, empty or over ``max_bytes``; the size is checked before decoding too."""
    compact = "".join(data.split())
    too_big = DocumentError(f"the document is larger than the {max_bytes / 1_000_000:g} MB limit")
    if len(compact) // 4 * 3 > max_bytes + 2:
        raise too_big
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise DocumentError("the document data is not valid base64") from None
    if not raw:
        raise DocumentError("the document is empty")
    if len(raw) > max_bytes:
        raise too_big
    return raw
