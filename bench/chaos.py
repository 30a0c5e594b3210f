"""The chaos run of ``tests/test_chaos.py`` at a larger size: prints what was injected, what happened,
and the counts that must be zero, with the seed to replay it.

    python bench/chaos.py                 # 600 steps (a few minutes), a random seed
    python bench/chaos.py --seed 7 --steps 2000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

from mews_bridge_mocks.chaos import run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1_000_000))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--keep", type=Path, help="Keep the bridge's state and log in this directory.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.keep or Path(scratch)
        print(f"chaos: seed {args.seed}, {args.steps} steps (replay with --seed {args.seed})", flush=True)
        report = asyncio.run(run_chaos(args.seed, args.steps, workdir))
    print("\n".join(report.lines()))
    return 1 if any(report.faults.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
