"""The driver's set-up of a register, in a short-lived child process.

Set-up needs what only ``cryptography`` does: on the first start make the keys and sign the start
receipt, on every start read the signing key and check that it is the one the journal started with.
Imported into the bridge, cryptography would stay resident (about 10 MB) in a process that may not
sign anything for hours. So :func:`open_register` runs :meth:`.FiscalRegister.open` and
:meth:`.FiscalRegister.start` in a child (``python -m mews_bridge_fiscal_virtual.opening``), which
writes to the journal in its own ``BEGIN IMMEDIATE`` transaction as the ``fiscal`` CLI commands do,
and then opens the register in the bridge with the signing key read at the first signature
(:func:`.keys.deferred_keys`). A missing or wrong key is still a set-up error, in the same words.

The child reads ``{"state_dir", "config", "now", "print_kinds"}`` as JSON on stdin, logs to stderr
as ``LEVEL message`` lines (relayed to the driver's logger) and writes ``{"started": receipt number
or null, "error": message or null}`` on stdout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .register import FiscalRegister, RegisterConfig, RegisterError


@dataclass(frozen=True)
class Opened:
    register: FiscalRegister
    started: str | None
    """The start receipt's number when this set-up wrote it (the register's first start)."""


async def open_register(
    state_dir: Path,
    config: RegisterConfig,
    now: datetime,
    print_kinds: frozenset[str],
    logger: logging.Logger,
) -> Opened:
    """Open (and on the first start, start) the register; :class:`.RegisterError` if it cannot be used."""
    request = {
        "state_dir": str(state_dir),
        "config": config.to_json(),
        "now": now.isoformat(),
        "print_kinds": sorted(print_kinds),
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await child.communicate(json.dumps(request).encode())
    except BaseException:  # cancelled: the child is not left running
        if child.returncode is None:
            child.kill()
            await child.wait()
        raise
    for line in err.decode(errors="replace").splitlines():
        level, _, message = line.partition(" ")
        if level in ("INFO", "WARNING", "ERROR"):
            logger.log(logging.getLevelName(level), "%s", message)
        else:  # a traceback from the child
            logger.error("%s", line)
    try:
        answer = json.loads(out)
    except ValueError:
        raise RuntimeError(
            f"The fiscal register's set-up process ended with status {child.returncode}"
        ) from None
    if answer["error"] is not None:
        raise RegisterError(answer["error"])
    register = await asyncio.to_thread(FiscalRegister.open, state_dir, config, defer_keys=True)
    register.print_kinds = print_kinds
    return Opened(register, answer["started"])


def _child() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    request = json.load(sys.stdin)
    answer: dict[str, str | None] = {"started": None, "error": None}
    try:
        register = FiscalRegister.open(
            Path(request["state_dir"]), RegisterConfig.from_json(request["config"])
        )
    except RegisterError as exc:
        answer["error"] = str(exc)
    else:
        try:
            register.print_kinds = frozenset(request["print_kinds"])
            started = register.start(datetime.fromisoformat(request["now"]))
            answer["started"] = started.receipt_number if started is not None else None
        finally:
            register.close()
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    _child()
