"""One measurement in its own process: ``python -m bench.worker NAME --spec JSON``.

The parent (:func:`bench.measure.measure`) starts it with the repository as its working
directory. The spec is the run's :class:`~bench.settings.Settings` plus the measurement's own
values (``manifest_url``, ``case``, ``staged``, ``key``, ``peer_site``). With ``ingestion_root`` set
(``--ingestion-root``) the worker puts that directory first on its own ``sys.path`` before
anything imports ``ingestion``, and checks that the package it measures is the one there.

The worker prints exactly one JSON object on its original stdout (everything else, including
libraries that print or log, goes to stderr, the parent's ``<name>.log``): ``wall_s`` and
``cpu_s`` of the measured part, ``rows``, the measurement's details, ``worker_peak_rss_mb``
and ``ok`` (or ``error``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bench.measure import own_peak_rss_mb
from bench.settings import Settings

# name -> (module, function); the module is imported only by the worker that runs it, so
# a floor never imports Airflow and the peer never imports anything of ours it does not use.
WORKERS = MappingProxyType(
    {
        "client_floor": ("bench.floors", "client_floor"),
        "cx_floor": ("bench.floors", "cx_floor"),
        "copy_floor": ("bench.floors", "copy_floor"),
        "copy_batch_floor": ("bench.floors", "copy_floor"),
        "adbc_floor": ("bench.floors", "adbc_floor"),
        "duckdb_floor": ("bench.floors", "duckdb_floor"),
        "ours_extract": ("bench.ours", "ours_extract"),
        "ours_batch_extract": ("bench.ours", "ours_extract"),
        "ours_day_extract": ("bench.ours", "ours_extract"),
        "ours_embedded_extract": ("bench.ours", "ours_extract"),
        "ours_load": ("bench.ours", "ours_load"),
        "ours_load_staged": ("bench.ours", "ours_load"),
        "ours_merge": ("bench.ours", "ours_load"),
        "ours_day_load": ("bench.ours", "ours_load"),
        "ours_embedded_load": ("bench.ours", "ours_load"),
        "ours_reconcile": ("bench.reconcile", "ours_reconcile"),
        "dag_parse": ("bench.dagparse", "dag_parse"),
        "sql_to_s3_operator": ("bench.peer", "sql_to_s3_operator"),
    }
)

Worker = Callable[[Settings, dict[str, Any]], dict[str, Any]]


def use_ingestion_root(root: str | None) -> None:
    """Measure the ``ingestion`` package in ``root`` (this process only, before any import)."""
    if not root:
        return
    if "ingestion" in sys.modules:
        raise RuntimeError("ingestion was imported before --ingestion-root could take effect")
    sys.path.insert(0, root)
    found = importlib.util.find_spec("ingestion")
    expected = Path(root, "ingestion", "__init__.py").resolve()
    if found is None or found.origin is None or Path(found.origin).resolve() != expected:
        raise RuntimeError(f"--ingestion-root {root}: imports {found and found.origin}, not {expected}")


def load_worker(name: str) -> Worker:
    module, function = WORKERS[name]
    return getattr(importlib.import_module(module), function)


def run_worker(name: str, spec: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        use_ingestion_root(spec.get("ingestion_root"))
        result = load_worker(name)(Settings.from_spec(spec), spec)
        result["ok"] = True
        result["worker_peak_rss_mb"] = own_peak_rss_mb()
        return 0, result
    except BaseException as exc:  # report every failure, including KeyboardInterrupt
        traceback.print_exc()
        return 1, {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def main(argv: list[str] | None = None) -> int:
    """Run one measurement; print its JSON on the original stdout (everything else to stderr)."""
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("name", choices=sorted(WORKERS))
    parser.add_argument("--spec", default="{}", help="the run's settings and the measurement's values")
    args = parser.parse_args(argv)
    result_fd = os.dup(1)
    os.dup2(2, 1)  # libraries that print or log to stdout cannot garble the result
    sys.stdout = sys.stderr
    code, result = run_worker(args.name, json.loads(args.spec))
    with os.fdopen(result_fd, "w") as out:
        out.write(json.dumps(result, default=str) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
