"""Peak memory and time of a reindex commit into a factory that needs training.

An `IndexBuilder` is given `--vectors` random unit descriptors (as a reindex's parts
give them), then commits: the generation's log is rewritten, the factory is trained on a
sample and every vector is added to it, the snapshot written. The process's peak resident
size before and after the commit is read from getrusage, so run one measurement per
process:

    python -m bench.commit [--vectors 1000000] [--factory IVF1024,SQ8]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from index import ShapeIndex

DIM = 512
_BLOCK = 10_000


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--factory", default="IVF1024,SQ8")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="gmvit-commit-") as tmp:
        with ShapeIndex.open(tmp, "bench", dim=DIM, factory=args.factory) as index:
            builder = index.rebuild()
            for start in range(0, args.vectors, _BLOCK):
                for offset, vector in enumerate(rng.standard_normal((_BLOCK, DIM), np.float32)):
                    number = start + offset
                    if number < args.vectors:
                        builder.add(
                            vector, name=f"s{number}", sha256=f"{number:064x}", source="bench"
                        )
            before = _peak_gib()
            start_s = time.perf_counter()
            builder.commit()
            seconds = time.perf_counter() - start_s
            after = _peak_gib()
    raw = args.vectors * DIM * 4 / 2**30
    table = "\n".join(
        [
            "| vectors | factory | fp32 GiB | peak GiB before commit | peak GiB | commit s |",
            "|---:|---|---:|---:|---:|---:|",
            f"| {args.vectors:,} | {args.factory} | {raw:.2f} | {before:.2f} | {after:.2f} "
            f"| {seconds:.0f} |",
        ]
    )
    print(table)
    return table


if __name__ == "__main__":
    main()
