"""Documents shaped like the ones Mews sends to printers, made from scratch (no fixtures to ship).

``registration_card_pdf`` writes a vector PDF by hand: Helvetica text, rules, a table, a grey logo
image and a signature box on every page, which is what a registration card or an invoice looks like
to a rasteriser. Used by the tests, the benchmark and the ``printer`` simulator's demo.
"""

from __future__ import annotations

import zlib

_MM = 72 / 25.4
_TERMS = (
    "By signing this card I confirm that the details above are correct and I agree to the house "
    "rules. Check-out is at 11:00. The hotel is not liable for valuables left in the room. City tax "
    "is charged per person and night. Breakfast is served from 07:00 to 10:30 in the restaurant on "
    "the ground floor. Please hand in your key card at the reception desk when you leave."
)


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def _logo(width: int = 240, height: int = 96) -> bytes:
    """A grey gradient with a dark band: continuous tone, so it exercises dithering."""
    rows = bytearray()
    for y in range(height):
        for x in range(width):
            band = 40 <= y < 56 and 20 <= x < width - 20
            rows.append(30 if band else 255 - (x * 200 // width))
    return bytes(rows)


def _page_content(index: int, pages: int, width: float, height: float, guest: str) -> bytes:
    s = width / 595.0  # lay out on an A4 grid, scaled to the page width
    top = height - 20 * _MM * s
    left = 18 * _MM * s
    right = width - 18 * _MM * s
    ops: list[bytes] = []

    def text(x: float, y: float, size: float, value: str, font: str = "F1") -> None:
        ops.append(
            b"BT /%s %.2f Tf %.2f %.2f Td (%s) Tj ET" % (font.encode(), size * s, x, y, _escape(value))
        )

    def rule(x1: float, y1: float, x2: float, y2: float, weight: float = 0.6) -> None:
        ops.append(b"%.2f w %.2f %.2f m %.2f %.2f l S" % (weight * s, x1, y1, x2, y2))

    ops.append(b"q %.2f 0 0 %.2f %.2f %.2f cm /Im1 Do Q" % (150 * s, 60 * s, left, top - 60 * s))
    text(right - 90 * s, top - 10 * s, 9, f"Page {index + 1} of {pages}")
    text(left + 170 * s, top - 30 * s, 22, "Registration card", "F2")
    text(left + 170 * s, top - 48 * s, 10, "Hotel Mews Bridge - 1 Station Road - Prague")
    y = top - 100 * s
    for label, value in (
        ("Guest", guest),
        ("Reservation", f"#{48213 + index}"),
        ("Arrival", "12 May 2025 15:00"),
        ("Departure", "15 May 2025 11:00"),
        ("Room", f"{204 + index} - Double, city view"),
        ("Rate", "Flexible incl. breakfast  EUR 129.00 / night"),
    ):
        text(left, y, 11, label, "F2")
        text(left + 110 * s, y, 11, value)
        rule(left + 108 * s, y - 4 * s, right, y - 4 * s, 0.4)
        y -= 24 * s
    y -= 16 * s
    columns = (left, left + 90 * s, right - 90 * s)
    for x, head in zip(columns, ("Date", "Description", "Amount"), strict=True):
        text(x + 4 * s, y, 10, head, "F2")
    rule(left, y - 6 * s, right, y - 6 * s, 1.2)
    for row in range(8):
        y -= 18 * s
        text(columns[0] + 4 * s, y, 10, f"{12 + row % 3:02d}.05.2025")
        text(columns[1] + 4 * s, y, 10, ("Accommodation", "Breakfast", "City tax", "Minibar")[row % 4])
        text(columns[2] + 4 * s, y, 10, f"EUR {(129.0, 18.5, 2.1, 6.4)[row % 4]:8.2f}")
        rule(left, y - 6 * s, right, y - 6 * s, 0.3)
    y -= 36 * s
    for line in _wrap(_TERMS, 100):
        text(left, y, 8, line)
        y -= 11 * s
    y -= 20 * s
    ops.append(b"%.2f w %.2f %.2f %.2f %.2f re S" % (1.0 * s, left, y - 70 * s, 240 * s, 70 * s))
    text(left + 4 * s, y - 82 * s, 9, "Guest signature")
    return b"\n".join(ops)


def registration_card_pdf(
    pages: int = 2, *, width_mm: float = 210, height_mm: float = 297, guest: str = "Anna Müller"
) -> bytes:
    """A multi-page vector PDF (A4 by default) shaped like a Mews registration card."""
    width, height = width_mm * _MM, height_mm * _MM
    logo = zlib.compress(_logo())
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in once the page numbers are known
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Type /XObject /Subtype /Image /Width 240 /Height 96 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (len(logo), logo),
    ]
    kids: list[int] = []
    for index in range(pages):
        content = _page_content(index, pages, width, height, guest)
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> /XObject << /Im1 5 0 R >> >> >>"
            % (width, height, len(objects))
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        pages,
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
