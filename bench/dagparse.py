"""DAG parse time: what Airflow's DAG processor does with ``dags/`` on every parse.

The processor parses each file in a fresh child of a process that has Airflow imported:
``BundleDagBag(dag_folder=<file>, load_op_links=False)`` (which imports the file, Cosmos and
its ``manifest.json`` included), then serialises each DAG (``DagSerialization.to_dict``).
The worker imports Airflow and those two classes before the clock, then times both steps.
"""

from __future__ import annotations

from typing import Any

from bench.measure import Clock
from bench.settings import REPO_ROOT, Settings

DAG_FILE = REPO_ROOT / "dags" / "mysql_to_redshift.py"


def dag_parse(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    # AIRFLOW_HOME is the run's (set by the parent, see bench.peer.airflow_env).
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    with Clock() as parse:
        bag = DagBag(dag_folder=str(DAG_FILE), load_op_links=False)
    if bag.import_errors or not bag.dags:
        raise RuntimeError(f"{DAG_FILE}: import errors {bag.import_errors or 'none, but no DAG'}")
    with Clock() as serialise:
        for dag in bag.dags.values():
            DagSerialization.to_dict(dag)
    return {
        "wall_s": parse.wall + serialise.wall,
        "cpu_s": parse.cpu + serialise.cpu,
        "rows": None,
        "dags": sorted(bag.dag_ids),
        "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
        "phases": {"parse_s": round(parse.wall, 3), "serialize_s": round(serialise.wall, 3)},
    }
