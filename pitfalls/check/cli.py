"""The `check` command: arguments, `[tool.pitfalls]` settings, and the four output formats."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pitfalls.check import check_source, parse_failure, python_files
from pitfalls.check._model import RULES, Finding

FORMATS = ("text", "json", "sarif", "github")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


class UsageError(Exception):
    """Bad arguments or settings: exit status 2."""


@dataclass
class Settings:
    """`[tool.pitfalls]` in pyproject.toml; command-line options override each key."""

    select: list[str] = field(default_factory=lambda: list(RULES))
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    docs_url: str = ""

    @classmethod
    def load(cls, config: Path | None) -> Settings:
        path = config or _find_pyproject(Path.cwd())
        if path is None:
            return cls()
        try:
            table = tomllib.loads(path.read_text()).get("tool", {}).get("pitfalls", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{path}: {exc}") from exc
        unknown = set(table) - {"select", "ignore", "exclude", "docs-url"}
        if unknown:
            raise UsageError(f"{path}: unknown [tool.pitfalls] keys: {', '.join(sorted(unknown))}")
        settings = cls()
        settings.select = _codes(table.get("select", settings.select), path)
        settings.ignore = _codes(table.get("ignore", []), path)
        settings.exclude = list(table.get("exclude", []))
        settings.docs_url = str(table.get("docs-url", ""))
        return settings

    def codes(self) -> list[str]:
        return [c for c in self.select if c not in self.ignore]


def _find_pyproject(start: Path) -> Path | None:
    for directory in [start, *start.parents]:
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _codes(values: Any, where: object) -> list[str]:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    codes = [str(v).upper() for v in values]
    for code in codes:
        if code not in RULES and code != "ALL":
            raise UsageError(f"{where}: unknown rule {code} (known: {', '.join(RULES)})")
    return list(RULES) if "ALL" in codes else codes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pitfalls check",
        description="Find the catalog's pitfalls (PF001 … PF010) in Python source.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories")
    p.add_argument("--select", help="only these rules, comma-separated (PF001,PF004)")
    p.add_argument("--ignore", help="not these rules, comma-separated")
    p.add_argument("--format", choices=FORMATS, default="text", help="output (default: text)")
    p.add_argument("--config", type=Path, help="pyproject.toml to read [tool.pitfalls] from")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when something is found")
    return p


def main() -> int:
    return run(sys.argv[1:])


def run(argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """0: nothing found; 1: findings; 2: a usage error (bad option, path or setting)."""
    args = parser().parse_args(argv)  # argparse exits 2 on its own errors
    try:
        settings = Settings.load(args.config)
        if args.select:
            settings.select = _codes(args.select, "--select")
        if args.ignore:
            settings.ignore = _codes(args.ignore, "--ignore")
        missing = [str(p) for p in args.paths if not p.exists()]
        if missing:
            raise UsageError(f"no such file or directory: {', '.join(missing)}")
    except UsageError as exc:
        print(f"python -m pitfalls check: error: {exc}", file=err)
        return 2
    findings: list[Finding] = []
    for file in python_files(args.paths, settings.exclude):
        try:
            source = file.read_text(encoding="utf-8")
            findings += check_source(source, file.as_posix(), settings.codes())
        except SyntaxError as exc:
            print(parse_failure(file.as_posix(), exc), file=err)
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{file}: cannot read: {exc}", file=err)
    WRITERS[args.format](findings, settings.docs_url, out)
    return 1 if findings and not args.exit_zero else 0


def _text(findings: list[Finding], docs_url: str, out: TextIO) -> None:
    for f in findings:
        page = RULES[f.code].page(docs_url)
        print(f"{f.path}:{f.line}:{f.col}: {f.code} {f.message} [{page}]", file=out)
    if findings:
        counts = Counter(f.code for f in findings)
        per_rule = ", ".join(f"{code} ×{n}" for code, n in sorted(counts.items()))
        print(f"Found {len(findings)} pitfall(s): {per_rule}.", file=out)
    else:
        print("No pitfalls found.", file=out)


def _as_dict(f: Finding, docs_url: str) -> dict[str, Any]:
    rule = RULES[f.code]
    return {
        "code": f.code,
        "name": rule.name,
        "path": f.path,
        "line": f.line,
        "col": f.col,
        "end_line": f.end_line,
        "end_col": f.end_col,
        "message": f.message,
        "url": rule.page(docs_url),
    }


def _json(findings: list[Finding], docs_url: str, out: TextIO) -> None:
    json.dump([_as_dict(f, docs_url) for f in findings], out, indent=2)
    out.write("\n")


def _escape(value: str, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def _github(findings: list[Finding], docs_url: str, out: TextIO) -> None:
    """Workflow commands: GitHub Actions shows each as an annotation on the pull request."""
    for f in findings:
        rule = RULES[f.code]
        props = (
            f"file={_escape(f.path, True)},line={f.line},col={f.col},endLine={f.end_line},"
            f"title={_escape(f'{f.code} {rule.name}', True)}"
        )
        print(f"::error {props}::{_escape(f'{f.message} ({rule.page(docs_url)})')}", file=out)


def _sarif(findings: list[Finding], docs_url: str, out: TextIO) -> None:
    """SARIF 2.1.0, which code scanning (GitHub, GitLab, Azure) shows next to the diff."""
    rules = [
        {
            "id": r.code,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "helpUri": r.page(docs_url),
        }
        for r in RULES.values()
    ]
    index = {code: i for i, code in enumerate(RULES)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": "warning",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path},
                        "region": {
                            "startLine": f.line,
                            "startColumn": f.col,
                            "endLine": f.end_line,
                            "endColumn": f.end_col,
                        },
                    }
                }
            ],
        }
        for f in findings
    ]
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "pitfalls", "rules": rules}},
                "results": results,
            }
        ],
    }
    json.dump(doc, out, indent=2)
    out.write("\n")


WRITERS = {"text": _text, "json": _json, "sarif": _sarif, "github": _github}
