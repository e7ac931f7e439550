"""The architecture rules of ``ingestion/`` (README "Layout"), checked on the source tree.

* one room per job: no module of the package is over 350 lines;
* every dialect question is a method of ``ingestion/warehouse/``: no ``dialect ==`` or
  ``dialect in`` comparison anywhere else in the shipped code;
* ``devtools/`` (demo data, the S3 server, reports) is not shipped: nothing under
  ``ingestion/`` or ``dags/`` imports it at module level (a CLI command may inside its
  function), and importing the DAG and every task module leaves it unloaded.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from tests.airflow_helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "ingestion"
SHIPPED = (PACKAGE, REPO_ROOT / "dags")
MAX_LINES = 350
DIALECT_TEST = re.compile(r"\bdialect\s*(==|!=|\bin\b|\bnot\s+in\b)")


def python_files(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def test_no_module_of_the_package_is_over_350_lines() -> None:
    sizes = {relative(path): len(path.read_text().splitlines()) for path in python_files(PACKAGE)}

    assert sizes, "no modules found under ingestion/"
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_no_dialect_comparison_outside_the_warehouse_package() -> None:
    warehouse = PACKAGE / "warehouse"
    found = [
        f"{relative(path)}:{number}: {line.strip()}"
        for path in python_files(*SHIPPED)
        if warehouse not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if DIALECT_TEST.search(line.split("#", 1)[0])
    ]

    assert found == []


def module_level_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) of every import that runs when the module is imported: at the top,
    under ``if``/``try``/``with``, in class bodies; not inside a function."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        pending.extend(ast.iter_child_nodes(node))


def test_module_level_imports_finds_only_what_runs_at_import() -> None:
    tree = ast.parse(
        "import devtools.a\nif True:\n    from devtools import b\n"
        "class C:\n    import devtools.c\n"
        "def f():\n    from devtools import d\n"
    )

    assert sorted(module_level_imports(tree)) == [(1, "devtools.a"), (3, "devtools"), (5, "devtools.c")]


def test_nothing_shipped_imports_devtools_at_module_level() -> None:
    found = [
        f"{relative(path)}:{line}: {module}"
        for path in python_files(*SHIPPED)
        for line, module in module_level_imports(ast.parse(path.read_text()))
        if module == "devtools" or module.startswith("devtools.")
    ]

    assert found == []


IMPORT_EVERYTHING_SHIPPED = """
import importlib, json, pkgutil, sys
import dags.mysql_to_redshift
import ingestion
names = [m.name for m in pkgutil.walk_packages(ingestion.__path__, "ingestion.")]
for name in names:
    if name != "ingestion.__main__":  # runs the CLI
        importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""


def test_importing_the_dag_and_every_task_module_leaves_devtools_unloaded(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING_SHIPPED],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"ingestion.airflow_tasks", "ingestion.cli", "ingestion.warehouse.redshift"} <= set(
        result["imported"]
    )
    assert "dags.mysql_to_redshift" in result["loaded"]
    assert [name for name in result["loaded"] if name.split(".")[0] == "devtools"] == []


def test_test_files_have_unique_names() -> None:
    """The test folders have no ``__init__.py``: pytest imports each test file by its
    base name, so two files of one name in different folders would collide."""
    names = Counter(path.name for path in (REPO_ROOT / "tests").rglob("test_*.py"))

    assert [name for name, count in names.items() if count > 1] == []
