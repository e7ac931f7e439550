"""The client floors: the fastest a client gets the rows out of MariaDB and into PostgreSQL.

* ``client_floor``: ``mariadb --quick -B ... -e "SELECT * FROM db.nps" > file`` (streamed,
  ``mysql_use_result``, tab-separated text), the wall time of that shell command;
* ``copy_floor``: ``psql -c "\\copy copy_floor_nps from 'dump' with (format text, header
  true)"``: that dump (PostgreSQL's text format already) into an empty table with the five
  column types of ``raw_data.nps``.

Both run under GNU time when it is installed: the client's own maximum RSS goes into the JSON
as ``client_max_rss_mb``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.measure import command_max_rss_mb, timed_command
from bench.settings import COPY_TABLE, TABLE, Settings


def client_floor(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    command = (
        f"mariadb --quick -B -h {s.mysql_host} -P {s.mysql_port} --protocol=TCP -u {s.mysql_user} "
        f'-e "SELECT * FROM {s.mysql_db}.{TABLE}" > {s.dump_path}'
    )
    env = dict(os.environ)
    if s.mysql_password:
        env["MYSQL_PWD"] = s.mysql_password
    rss_file = Path(s.workdir) / "client_floor.maxrss"
    clock, done = timed_command(["bash", "-c", command], env, rss_file)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited with {done.returncode}: {done.stderr.strip()}")
    lines = 0
    with open(s.dump_path, "rb") as dump:
        while chunk := dump.read(1 << 20):
            lines += chunk.count(b"\n")
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": lines - 1,  # the first line holds the column names
        "bytes": Path(s.dump_path).stat().st_size,
        "command": command,
        "client_max_rss_mb": command_max_rss_mb(rss_file),
    }


def copy_floor(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    # The client dump is PostgreSQL's text format already (tab-separated, \-escaped);
    # the first line holds the column names.
    copy = f"\\copy {COPY_TABLE} from '{s.dump_path}' with (format text, header true)"
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", s.pg_host, "-p", str(s.pg_port)]
    command += ["-U", s.pg_user, "-d", s.pg_db, "-c", copy]
    env = dict(os.environ)
    if s.pg_password:
        env["PGPASSWORD"] = s.pg_password
    rss_file = Path(s.workdir) / "copy_floor.maxrss"
    clock, done = timed_command(command, env, rss_file)
    if done.returncode != 0:
        raise RuntimeError(f"psql {copy} exited with {done.returncode}: {done.stderr.strip()}")
    rows = None
    for line in done.stdout.splitlines():
        if line.startswith("COPY "):
            rows = int(line.split()[1])
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": rows,
        "command": copy,
        "client_max_rss_mb": command_max_rss_mb(rss_file),
    }
