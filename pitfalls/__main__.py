"""`python -m pitfalls list | run PF001 [PF002 …] | run all | check PATH…`: the pitfalls, their
evidence, and a check that finds them in source (`check --help`).

`run` uses the app's settings (`KIT_DATABASE_URL`, `KIT_REDIS_URL`), so with nothing set it runs
on the embedded default and says which pitfalls need a real server. `--servers harness` gets
PostgreSQL and Redis the way the test harness does (`KIT_TEST_POSTGRES_URL`/`KIT_TEST_REDIS_URL`,
else testcontainers, else local server binaries started for the run and stopped after).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from pitfalls._runner import DEFAULT_RESULTS, discover, list_table, run_selected, select
from reference_app.core.config import Settings


@contextmanager
def harness_servers() -> Iterator[tuple[str, str]]:
    from patterns.testing import backends

    pg, _ = backends.choose("postgres")
    try:
        rd, _ = backends.choose("redis")
        try:
            yield pg.url, rd.url
        finally:
            backends.stop(rd)
    finally:
        backends.stop(pg)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["check"]:
        # Its own parser and no server imports: a CI job or a pre-commit hook runs it bare.
        from pitfalls.check.cli import run as check

        return check(args_in[1:])
    parser = argparse.ArgumentParser(prog="python -m pitfalls", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list every pitfall with its ID")
    commands.add_parser("check", help="find the pitfalls in source: check PATH… (see check -h)")
    run = commands.add_parser("run", help="run wrong and right side by side and print evidence")
    run.add_argument("ids", nargs="+", metavar="ID", help="PF001 … or all")
    run.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help="where charts and tables go"
    )
    run.add_argument(
        "--servers",
        choices=["configured", "harness"],
        default="configured",
        help="configured: KIT_DATABASE_URL/KIT_REDIS_URL (default); harness: as the tests do",
    )
    args = parser.parse_args(argv)
    console = Console(width=max(120, Console().width))

    if args.command == "list":
        console.print(list_table(discover()))
        return 0
    try:
        selected = select(args.ids)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/]")
        return 2
    if args.servers == "harness":
        with harness_servers() as (pg_url, redis_url):
            settings = Settings(database_url=pg_url, redis_url=redis_url)
            outcomes = asyncio.run(run_selected(selected, settings, args.results, console))
    else:
        outcomes = asyncio.run(run_selected(selected, Settings(), args.results, console))
    return 1 if any(o.status in ("not shown", "error") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
