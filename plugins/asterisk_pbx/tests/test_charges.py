"""The charge journal on its own: what a restart finds to post, and what is forgotten."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mews_bridge.journal import Journal
from mews_bridge_asterisk_pbx.charges import PREFIX, Charge, ChargeLedger


def charge(key, state, age_days):
    updated = (datetime.now(UTC) - timedelta(days=age_days)).isoformat(timespec="seconds")
    return Charge(
        key=key,
        state=state,
        start="2026-11-23T09:15:00Z",
        extension="101",
        room="101",
        number="+442071234567",
        item="Call to +44 20 7123 4567 (1 min)",
        call_class="international",
        seconds=60,
        amount="2.50",
        currency="PLN",
        account_id="guest",
        updated=updated,
    )


async def test_a_restart_queues_pending_charges_and_forgets_old_settled_ones(tmp_path):
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    store = journal.store("service:PBX")
    kept = {
        "old-pending": charge("old-pending", "pending", 200),
        "old-failed": charge("old-failed", "failed", 200),
        "recent-posted": charge("recent-posted", "posted", 10),
    }
    forgotten = {
        "old-posted": charge("old-posted", "posted", 91),
        "old-refused": charge("old-refused", "refused", 91),
        "old-unassigned": charge("old-unassigned", "unassigned", 91),
    }
    for item in {**kept, **forgotten}.values():
        await store.put(PREFIX + item.key, asdict(item))
    ledger = ChargeLedger(
        store,
        mews=None,  # loading asks Mews nothing
        service_id="telephone",
        pricing="Gross",
        retention=timedelta(days=90),
        retry_max_s=1.0,
        logger=logging.getLogger("test"),
    )
    try:
        await ledger.load()
        remaining = await store.items(PREFIX)
        duplicate = await ledger.record(kept["recent-posted"])
    finally:
        await journal.close()
    assert sorted(remaining) == sorted(PREFIX + key for key in kept)
    assert ledger.pending == 1
    assert not duplicate
    assert Charge.from_store(remaining[PREFIX + "old-pending"]).money == Decimal("2.50")
