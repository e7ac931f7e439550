"""Command line: run tables for a window outside Airflow, and the demo helpers.

python -m ingestion run nps --start 2026-10-30 --end 2026-10-31
python -m ingestion run nps session_timestamp --start ... --end ...   # or: run all
python -m ingestion extract nps --start ... --end ...
python -m ingestion load nps --manifest <url> --start ... --end ...
python -m ingestion generate --size 1000 --days 3
python -m ingestion env            # shell exports of the selected environment
python -m ingestion check-config   # validate config/tables.yml
python -m ingestion report         # raw row counts and mau_summary
python -m ingestion stage-clean --older-than 7d [--dry-run]   # remove old staged attempts
python -m ingestion exec -- dbt build   # a command with the environment's variables

A bad setting or input ends with one line on stderr, ``error: <what is wrong and
what to do>``, and exit status 2; ``-v`` adds the traceback (before that line).
Log lines go to stderr as well, each starting with its timestamp; the error line
is always the last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
import traceback
from dataclasses import replace
from datetime import date, datetime

from ingestion import config, environments, pipeline
from ingestion.errors import ConfigError, PipelineError, first_line
from ingestion.warehouse import open_warehouse
from ingestion.window import Window, parse_timestamp

DEMO_START = "2026-10-30"  # devtools.generate.DEFAULT_START


def _timestamp(option: str, text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not a date or timestamp ({exc}); use ISO 8601 in UTC, "
            "e.g. 2026-10-30 or 2026-10-30T06:00:00Z"
        ) from None


def _window(args: argparse.Namespace) -> Window:
    start, end = _timestamp("--start", args.start), _timestamp("--end", args.end)
    if end <= start:
        raise ConfigError(
            f"--start {args.start} must be before --end {args.end}: the window [start, end) is empty"
        )
    return Window(start, end)


def _environment(args: argparse.Namespace) -> environments.Environment:
    return environments.resolve(getattr(args, "env", None))


log = logging.getLogger(__name__)


def cmd_run(args: argparse.Namespace) -> None:
    """One table: its results as one JSON object. Several (or ``all``): one after the
    other, a JSON list on stdout, a summary table on stderr; a failed table does not
    stop the others, and the command ends with an error (exit status 2)."""
    if len(args.table) == 1 and args.table[0] != ALL:
        table = _chunked(config.get_table(args.table[0], args.config), args)
        extracted, loaded = pipeline.run_table(table, _window(args), _environment(args), rebuild=args.rebuild)
        print(json.dumps({"extract": extracted.as_dict(), "load": loaded.as_dict()}, indent=2))
        return
    tables = _run_tables(args)
    window, environment = _window(args), _environment(args)
    outcomes = []
    for table in tables:
        started = time.monotonic()
        try:
            extracted, loaded = pipeline.run_table(table, window, environment, rebuild=args.rebuild)
            outcome = {"table": table.name, "extract": extracted.as_dict(), "load": loaded.as_dict()}
        except Exception as exc:  # noqa: BLE001 - reported in the summary; the next table runs
            log.error("run %s failed: %s", table.name, first_line(exc), exc_info=args.verbose)
            outcome = {"table": table.name, "error": first_line(exc)}
        outcome["seconds"] = round(time.monotonic() - started, 3)
        outcomes.append(outcome)
    print(json.dumps(outcomes, indent=2))
    print(run_summary(outcomes), file=sys.stderr)
    failed = [o["table"] for o in outcomes if "error" in o]
    if failed:
        raise PipelineError(
            f"{len(failed)} of {len(outcomes)} table(s) failed: {', '.join(failed)} "
            "(see the summary above; rerun them with python -m ingestion run TABLE ...)"
        )


ALL = "all"


def _run_tables(args: argparse.Namespace) -> list[config.TableConfig]:
    """The tables ``run`` names (``all``: every table of the config), each once, checked
    before any runs."""
    if ALL in args.table:
        if len(args.table) > 1:
            raise ConfigError(f"run: give either {ALL} or table names, not both ({' '.join(args.table)})")
        return [_chunked(table, args) for table in config.load_tables(args.config).values()]
    return [_chunked(config.get_table(name, args.config), args) for name in dict.fromkeys(args.table)]


def _chunked(table: config.TableConfig, args: argparse.Namespace) -> config.TableConfig:
    """The table with ``--chunks`` instead of its configured ``chunks``, when given."""
    return replace(table, chunks=args.chunks) if args.chunks else table


def _chunks(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= config.MAX_CHUNKS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {config.MAX_CHUNKS}")
    return int(text)


def run_summary(outcomes: list[dict]) -> str:
    """One line per table: rows extracted, inserted, replaced, deleted, seconds, status."""
    lines = [
        f"{'table':<24} {'extracted':>11} {'inserted':>11} {'replaced':>11} {'deleted':>11} "
        f"{'seconds':>8}  status"
    ]
    for o in outcomes:
        if "error" in o:
            counts = ["-"] * 4
            status = f"failed: {o['error']}"
        else:
            load = o["load"]
            numbers = [
                o["extract"]["rows"],
                load["rows_inserted"],
                load["rows_replaced"],
                load["rows_deleted"],
            ]
            counts = [f"{n:,}" for n in numbers]
            status = "ok"
        lines.append(
            f"{o['table']:<24} {counts[0]:>11} {counts[1]:>11} {counts[2]:>11} {counts[3]:>11} "
            f"{o['seconds']:>8.1f}  {status}"
        )
    return "\n".join(lines)


def cmd_extract(args: argparse.Namespace) -> None:
    table = _chunked(config.get_table(args.table, args.config), args)
    print(json.dumps(pipeline.run_extract(table, _window(args), _environment(args)).as_dict(), indent=2))


def cmd_load(args: argparse.Namespace) -> None:
    table = config.get_table(args.table, args.config)
    result = pipeline.run_load(table, args.manifest, _window(args), _environment(args))
    print(json.dumps(result.as_dict(), indent=2))


def cmd_generate(args: argparse.Namespace) -> None:
    from devtools import generate

    environment = _environment(args)
    spec = generate.DemoSpec(seed=args.seed, size=args.size, start=date.fromisoformat(args.start))
    counts = generate.generate(
        environment.source, spec, args.days, first_day=args.first_day, recreate=not args.append
    )
    where = (
        environment.source.host
        if environment.source.conn_type == "sqlite"
        else (
            f"{environment.source.conn_type}://{environment.source.host}:{environment.source.port}"
            f"/{environment.source.schema}"
        )
    )
    last = spec.day(args.first_day + args.days - 1)
    print(f"demo OLTP data in {where}: days {spec.day(args.first_day)} .. {last}, seed {args.seed}")
    for name, count in counts.items():
        print(f"  {name:<22} {count:>9,} rows")


def cmd_init_warehouse(args: argparse.Namespace) -> None:
    """Create the warehouse database of a loopback environment if it is missing."""
    print(open_warehouse(_environment(args).warehouse).create_database())


def cmd_env(args: argparse.Namespace) -> None:
    for key, value in _environment(args).variables().items():
        print(f"export {key}={shlex.quote(value)}")


def cmd_exec(args: argparse.Namespace) -> None:
    """Run a command (dbt, airflow, ...) with the environment's variables set."""
    command = [c for c in args.command_line if c != "--"]
    if not command:
        raise PipelineError("exec: give a command to run, e.g. exec -- dbt build")
    name = args.env or environments.environment_name()
    try:
        variables = environments.resolve(name).variables()
    except PipelineError:
        if name != "production":
            raise
        # dbt by hand needs only the warehouse connection, already in the shell.
        variables = {
            "PIPELINE_ENV": name,
            "DBT_TARGET": environments.DBT_TARGETS[name],
            **environments.dbt_variables_of(dict(os.environ)),
        }
    for key, value in variables.items():
        os.environ.setdefault(key, value)
    # dbt finds the project's profiles.yml from any folder, in a fresh shell too.
    os.environ.setdefault("DBT_PROFILES_DIR", str(environments.REPO_ROOT))
    os.execvp(command[0], command)  # noqa: S606 - the user's own command


def cmd_check_config(args: argparse.Namespace) -> None:
    tables = config.load_tables(args.config)
    for table in tables.values():
        detail = f"cursor {table.cursor}, lookback {table.lookback}" if table.is_incremental else ""
        print(f"{table.name:<22} {table.mode:<13} key {', '.join(table.primary_key)}  {detail}")


def cmd_stage_clean(args: argparse.Namespace) -> None:
    from ingestion import retention

    older_than = retention.parse_age(args.older_than)
    report = retention.clean_environment(_environment(args), older_than, dry_run=args.dry_run)
    print("\n".join(report.lines()))


def cmd_report(args: argparse.Namespace) -> None:
    from devtools import report

    print(report.demo_report(_environment(args), config.load_tables(args.config)))


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its errors as one ``error:`` line like every other error here."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m ingestion", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="table config file (default: config/tables.yml)")
    parser.add_argument("--env", choices=environments.ENVIRONMENTS, help="default: $PIPELINE_ENV or embedded")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    def windowed(name: str, handler, help_text: str, many: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        if many:
            sub.add_argument("table", nargs="+", metavar="TABLE", help=f"table name(s), or {ALL}")
        else:
            sub.add_argument("table")
        sub.add_argument("--start", required=True, help="interval start, ISO 8601, UTC")
        sub.add_argument("--end", required=True, help="interval end (exclusive), ISO 8601, UTC")
        sub.set_defaults(handler=handler)
        return sub

    run = windowed("run", cmd_run, "extract and load tables (or all) for one window", many=True)
    run.add_argument(
        "--rebuild",
        action="store_true",
        help="extract every row and replace the raw table (after a schema change)",
    )
    extract = windowed("extract", cmd_extract, "extract one table's window into the stage")
    for sub in (run, extract):
        sub.add_argument(
            "--chunks",
            type=_chunks,
            help="split the extract into N key ranges (default: chunks in the config)",
        )
    windowed("load", cmd_load, "load a staged manifest").add_argument("--manifest", required=True)

    gen = commands.add_parser("generate", help="write deterministic demo OLTP data to the source")
    gen.add_argument("--size", type=int, default=1000, help="sessions per day (default 1000)")
    gen.add_argument("--days", type=int, default=3)
    gen.add_argument("--first-day", type=int, default=0, help="0-based index of the first day to write")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--start", default=DEMO_START, help="date of day 0")
    gen.add_argument("--append", action="store_true", help="add days to existing tables")
    gen.set_defaults(handler=cmd_generate)

    commands.add_parser(
        "init-warehouse", help="create the PostgreSQL database (services) if it is missing"
    ).set_defaults(handler=cmd_init_warehouse)
    commands.add_parser("env", help="print the environment's variables as shell exports").set_defaults(
        handler=cmd_env
    )
    run_with_env = commands.add_parser("exec", help="run a command with the environment's variables")
    run_with_env.add_argument("command_line", nargs=argparse.REMAINDER)
    run_with_env.set_defaults(handler=cmd_exec)
    commands.add_parser("check-config", help="validate the table config").set_defaults(
        handler=cmd_check_config
    )
    commands.add_parser("report", help="raw row counts and mau_summary").set_defaults(handler=cmd_report)
    clean = commands.add_parser(
        "stage-clean", help="remove staged attempts older than a limit (never unloaded or newest loaded ones)"
    )
    clean.add_argument("--older-than", required=True, help="age limit like 30m, 2h or 7d")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    clean.set_defaults(handler=cmd_stage_clean)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        args.handler(args)
    except PipelineError as exc:
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return 2
    return 0
