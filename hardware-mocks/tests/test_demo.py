"""``mews-bridge demo``, the README's main job, as a person runs it."""

from __future__ import annotations

import asyncio
import sys


async def test_the_demo_plays_the_day_and_ends_with_every_command_processed(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mews_bridge",
        "demo",
        "--out",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    text = out.decode()
    assert process.returncode == 0, text + err.decode()
    table = text[text.index("Command ") :].splitlines()
    rows = [line for line in table[1:] if line.strip() and not line.startswith(("Written", " "))]
    assert len(rows) == 9
    refused = [row for row in rows if "No Post" in row]
    assert len(refused) == 1 and "Refused" in refused[0] and "Cashlist" in refused[0]
    assert all("Processed" in row for row in rows if row not in refused), rows
    assert "2 keys for room 101 (1 new, 1 copy)" in text
    assert "on Jana Horak's bill" in text
    assert (
        "2 x Mineral water 0.5 l: EUR 7.00, posted as a product order (Mews item ProductOrder, 2 units)"
        in text
    )
    assert "Originate to PJSIP/201 at 07:00, prompt in 'cs': answered" in text
    assert "AstDB hotel/201: {'outside': '0'}" in text
    assert (tmp_path / "fiscal-export.zip").is_file()
    # The registration card went to the A4 printer, the fiscal receipts to the receipt printer.
    assert sorted(p.name for p in (tmp_path / "a4-printer").glob("*.png")) == ["job-1.png"]
    assert sorted(p.name for p in (tmp_path / "receipts").glob("*.png")) == [
        "receipt-0001.png",  # the fiscal machine's start receipt
        "receipt-0002.png",  # Anna's receipt
    ]
    assert "is intact" in text
