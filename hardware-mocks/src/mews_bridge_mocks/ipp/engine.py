"""The "print engine" ippeveprinter runs for each job (its ``-c`` option): it reads the document that
arrived, reports the pages as printed impressions, and writes what it found beside the spool file.

ippeveprinter runs it as ``COMMAND SPOOL-FILE`` with the job's attributes in ``IPP_*`` variables and
reads ``ATTR:`` lines from its standard error to update the job. The document is checked with readers
that are not the bridge's own: PDFium for PDF, CUPS' ``ippevepcl`` (libcups' raster reader) for PWG
raster, Pillow for JPEG. While a file named ``hold`` exists in the spool directory, the engine waits
after the first page, which lets a test cancel a job that is printing.

The result, ``SPOOL-FILE.json``: ``{"format", "pages", "copies", "job_name", "ok"}``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HOLD_FILE = "hold"
HOLD_LIMIT_S = 60.0


def count_pages(path: Path, document_format: str) -> int:
    if document_format == "application/pdf":
        import pypdfium2 as pdfium

        document = pdfium.PdfDocument(str(path))
        try:
            return len(document)
        finally:
            document.close()
    if document_format == "image/pwg-raster":
        found = subprocess.run(
            ["ippevepcl", str(path)],
            env={**os.environ, "CONTENT_TYPE": document_format},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        pages = re.findall(r"^ATTR: job-impressions=(\d+)$", found.stderr, re.MULTILINE)
        return int(pages[-1]) if pages else 0
    if document_format == "image/jpeg":
        from PIL import Image

        with Image.open(path) as image:
            image.verify()
        return 1
    raise ValueError(f"unexpected format {document_format}")


def main(argv: list[str]) -> int:
    path = Path(argv[1])
    document_format = os.environ.get("CONTENT_TYPE", "")
    copies = int(os.environ.get("IPP_COPIES", "1"))
    result = {
        "format": document_format,
        "copies": copies,
        "job_name": os.environ.get("IPP_JOB_NAME", ""),
        "pages": 0,
        "ok": False,
    }
    try:
        result["pages"] = count_pages(path, document_format)
        result["ok"] = True
    except Exception as exc:
        print(f"ERROR: unreadable document: {exc!r}", file=sys.stderr, flush=True)
    finally:
        path.with_name(path.name + ".json").write_text(json.dumps(result))
    if not result["ok"]:
        return 1
    impressions = result["pages"] * copies
    print(f"ATTR: job-impressions={impressions}", file=sys.stderr, flush=True)
    hold = path.parent / HOLD_FILE
    for done in range(1, impressions + 1):
        print(f"ATTR: job-impressions-completed={done}", file=sys.stderr, flush=True)
        deadline = time.monotonic() + HOLD_LIMIT_S
        while hold.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
