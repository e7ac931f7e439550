"""Benchmark: our extract and load against Airflow's SqlToS3Operator and the client floors.

``make bench ROWS=N REPEAT=R`` runs ``.venv/bin/python bench/run.py --rows N --repeat R``.
See bench/README.md; the work is done by the ``bench`` package (``bench/runner.py`` runs
one benchmark, each measurement runs in its own ``python -m bench.worker`` process).

A missed target is a result, not a failure: the exit code is non-zero only when a
measurement errored or a row count is wrong.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: Python put bench/ first on sys.path; the package lives in the
    # repository root (this only affects this process, the workers are started with -m).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.runner import Options, run  # noqa: E402


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark our extract/load against SqlToS3Operator and the client floors.",
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows of the nps table (default 1,000,000)"
    )
    parser.add_argument(
        "--skip-peer", action="store_true", help="skip SqlToS3Operator (it needs GBs of memory at 5M rows)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the MariaDB/PostgreSQL databases and work dir"
    )
    parser.add_argument("--s3-port", type=int, default=0, help="port of the S3 server (default: a free one)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="run every measurement N times, report the fastest (default 3)"
    )
    parser.add_argument(
        "--ingestion-root",
        help="measure the ingestion package found in this directory (e.g. a scratch copy with a fix)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    root = None
    if args.ingestion_root:
        root = Path(args.ingestion_root).resolve()
        if not (root / "ingestion" / "__init__.py").exists():
            parser.error(f"--ingestion-root {root}: no ingestion package there")
    return Options(
        rows=args.rows,
        repeat=args.repeat,
        skip_peer=args.skip_peer,
        keep=args.keep,
        s3_port=args.s3_port,
        ingestion_root=str(root) if root else None,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
