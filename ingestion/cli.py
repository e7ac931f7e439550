"""Command line: run tables for a window outside Airflow, and the demo helpers.

python -m ingestion run nps --start 2026-10-30 --end 2026-10-31
python -m ingestion extract nps --start ... --end ...
python -m ingestion load nps --manifest <url> --start ... --end ...
python -m ingestion generate --size 1000 --days 3
python -m ingestion env            # shell exports of the selected environment
python -m ingestion check-config   # validate config/tables.yml
python -m ingestion report         # raw row counts and mau_summary
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
import traceback
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


def cmd_run(args: argparse.Namespace) -> None:
    table = config.get_table(args.table, args.config)
    extracted, loaded = pipeline.run_table(table, _window(args), _environment(args), rebuild=args.rebuild)
    print(json.dumps({"extract": extracted.as_dict(), "load": loaded.as_dict()}, indent=2))


def cmd_extract(args: argparse.Namespace) -> None:
    table = config.get_table(args.table, args.config)
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
        variables = {"PIPELINE_ENV": name, "DBT_TARGET": environments.DBT_TARGETS[name]}
    for key, value in variables.items():
        os.environ.setdefault(key, value)
    os.execvp(command[0], command)  # noqa: S606 - the user's own command


def cmd_check_config(args: argparse.Namespace) -> None:
    tables = config.load_tables(args.config)
    for table in tables.values():
        detail = f"cursor {table.cursor}, lookback {table.lookback}" if table.is_incremental else ""
        print(f"{table.name:<22} {table.mode:<13} key {', '.join(table.primary_key)}  {detail}")


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

    def windowed(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("table")
        sub.add_argument("--start", required=True, help="interval start, ISO 8601, UTC")
        sub.add_argument("--end", required=True, help="interval end (exclusive), ISO 8601, UTC")
        sub.set_defaults(handler=handler)
        return sub

    windowed("run", cmd_run, "extract and load one table for one window").add_argument(
        "--rebuild",
        action="store_true",
        help="extract every row and replace the raw table (after a schema change)",
    )
    windowed("extract", cmd_extract, "extract one table's window into the stage")
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
