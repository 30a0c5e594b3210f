"""A seeded storm of malformed input (command data for every device type, AMI garbage, WebSocket
garbage) against a bridge with every plugin: nothing stops it, nothing goes beyond the limits."""

from __future__ import annotations

import pytest

from mews_bridge_mocks.fuzz import run_fuzz

SEED = 12


@pytest.mark.timeout(120)
async def test_a_storm_of_bad_input_leaves_every_command_final_in_plain_words_and_the_bridge_working(
    tmp_path,
):
    report = await run_fuzz(SEED, rounds=250, out=tmp_path)
    print("\n".join(report.lines()))
    assert report.not_final == []
    assert report.exception_notes == []
    assert report.crashes == [], "a driver crashed on malformed data instead of refusing it"
    assert report.violations == []
    assert report.final_checks == {
        "Printer": "Processed",
        "KeyCutter": "Processed",
        "FiscalMachine": "Processed",
        "Call": "posted",
    }
    # the storm reached every kind of input, and the limits were exercised, not just never approached
    kinds = {key.split()[0] for key in report.commands}
    assert kinds == {"Printer", "KeyCutter", "FiscalMachine"}
    assert all(report.commands[f"{kind} Error"] > 0 for kind in kinds)
    assert report.ami_garbage and report.cdr_garbage and report.websocket_garbage
    assert report.charges["failed"] > 0 and report.charges["posted"] > 0
