"""``mews-bridge-mocks mews``: options and the fault console."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mews_bridge_mocks.cli import main
from mews_bridge_mocks.mews import MewsSimulator
from mews_bridge_mocks.mews.cli import run_console_command


def test_help_lists_the_options():
    result = CliRunner().invoke(main, ["mews", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--tokens", "--seed-demo", "--rate-limit"):
        assert option in result.output


def test_tokens_must_be_a_pair():
    result = CliRunner().invoke(main, ["mews", "--tokens", "only-one"])
    assert result.exit_code == 2
    assert "CLIENT:ACCESS" in result.output


async def test_console_sets_and_clears_faults():
    sim = MewsSimulator()
    for line in ("errors 0.25 503", "timeouts 0.5", "latency 0.1", "silent on", "fail commands/update 2 409"):
        assert await run_console_command(sim, line) == "ok"
    assert (sim.faults.error_ratio, sim.faults.error_status) == (0.25, 503)
    assert (sim.faults.timeout_ratio, sim.faults.latency_s, sim.faults.silent_websockets) == (0.5, 0.1, True)

    assert await run_console_command(sim, "clear") == "ok"
    assert (sim.faults.error_ratio, sim.faults.timeout_ratio, sim.faults.silent_websockets) == (
        0.0,
        0.0,
        False,
    )
    assert sim.faults.injected_error("commands/update") is None


async def test_console_fails_an_operation_until_told_otherwise():
    sim = MewsSimulator()
    await run_console_command(sim, "fail commands/update 2 409")
    failed = sim.faults.injected_error("commands/update")
    await run_console_command(sim, "fail commands/update 0")
    assert failed is not None
    assert failed.status == 409
    assert sim.faults.injected_error("commands/update") is None


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("", ""),
        ("drop", "dropped 0 socket(s)"),
        ("status", "sockets open: 0, calls: 0, active commands: 0"),
        ("errors half", "bad argument: could not convert string to float: 'half'"),
        ("silent maybe", 'unknown command; type "help"'),
        ("reboot", 'unknown command; type "help"'),
    ],
)
async def test_console_answers(line, answer):
    assert await run_console_command(MewsSimulator(), line) == answer
