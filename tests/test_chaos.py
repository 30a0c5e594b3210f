"""The seeded chaos run (see ``mews_bridge_mocks.chaos``): a bridge process with all four plugins
against the simulators while Mews loses 20-30 % of the answers to orders/add and commands/update, fails
in 5xx bursts and throttles, sockets and the AMI drop, and the bridge is killed with SIGKILL and
restarted. Nothing may be lost, done twice, or charged to a No Post guest."""

from __future__ import annotations

import pytest

from mews_bridge_mocks.chaos import run_chaos

pytestmark = pytest.mark.timeout(90)

SEED = 13


async def test_a_chaotic_morning_loses_nothing_and_does_nothing_twice(tmp_path):
    report = await run_chaos(SEED, steps=80, workdir=tmp_path)
    summary = "\n".join(report.lines())
    assert report.actions["kill -9"] >= 2, summary
    assert report.actions["call"] >= 5 and report.commands >= 15, summary
    assert report.lost_answers["orders/add"] and report.lost_answers["commands/update"], summary
    assert report.faults == dict.fromkeys(report.faults, 0), summary
    assert report.new_keys and report.receipts and report.charges_posted, summary
