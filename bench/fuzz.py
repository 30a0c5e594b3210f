"""The fuzz storm of the test suite, longer: ``python bench/fuzz.py [--seed N] [--rounds N]``.

Prints the counts (commands by type and outcome, garbage sent, charges by state) and whether every
command ended final, in plain words and within the limits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from mews_bridge_mocks.fuzz import run_fuzz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=random.randrange(10**6))
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the storm is meant to make the bridge complain
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        report = asyncio.run(run_fuzz(args.seed, args.rounds, Path(out)))
        elapsed = time.monotonic() - started
    for line in report.lines():
        print(line)
    for problem in (report.not_final + report.exception_notes + report.violations)[:20]:
        print("  problem:", problem)
    print(f"{elapsed:.1f} s; {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
