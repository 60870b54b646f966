"""`python -m pitfalls check PATH...`: find the catalog's pitfalls in source, without running it.

One rule per pitfall whose shape is visible in source, coded with the pitfall's stable ID
(PF001 … PF010), so a reviewer's "this is PF001" and the tool's finding name the same page.
Findings are reported Ruff-style (`path:line:col: PF001 message`), silenced per line with
`# noqa: PF001`, configured in `[tool.pitfalls]` (docs/check.md). PF002 and PF001 have run-time
checks in the test harness as well (`patterns.testing`).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable, Iterator
from pathlib import Path

from pitfalls.check._ast import Module
from pitfalls.check._model import RULES, Finding, Rule
from pitfalls.check.rules import RULE_CHECKS

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.I)
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".nox", ".tox", ".venv", "venv", "__pycache__", "node_modules", "build",
     "dist", "site", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
)  # fmt: skip


def _noqa_lines(source: str) -> dict[int, set[str] | None]:
    """Line → the codes its `# noqa: …` silences (None: a bare `# noqa` silences all)."""
    lines: dict[int, set[str] | None] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type != tokenize.COMMENT:
                continue
            match = _NOQA.search(tok.string)
            if match:
                codes = match.group("codes")
                lines[tok.start[0]] = (
                    {c.upper() for c in re.split(r"[,\s]+", codes) if c} if codes else None
                )
    except (tokenize.TokenError, SyntaxError):
        pass
    return lines


def check_source(
    source: str, path: str = "<string>", select: Iterable[str] = RULES
) -> list[Finding]:
    """The findings of the selected rules in one module's source (SyntaxError if unparsable)."""
    module = Module.parse(source, path)
    noqa = _noqa_lines(source)
    found: set[Finding] = set()
    for code in select:
        for node, hit_code, message in RULE_CHECKS[code](module):
            line = getattr(node, "lineno", 1)
            silenced = noqa.get(line, set())
            if silenced is None or hit_code in silenced:
                continue
            found.add(
                Finding(
                    path=path,
                    line=line,
                    col=getattr(node, "col_offset", 0) + 1,
                    code=hit_code,
                    message=message,
                    end_line=getattr(node, "end_lineno", None) or line,
                    end_col=(getattr(node, "end_col_offset", None) or 0) + 1,
                )
            )
    return sorted(found)


def python_files(paths: Iterable[Path], exclude: Iterable[str] = ()) -> Iterator[Path]:
    """The `.py` files under each path (a file is taken as given), minus excluded globs."""
    patterns = list(exclude)

    def excluded(p: Path) -> bool:
        posix = p.as_posix()
        return any(p.match(pat) or posix.startswith(pat.rstrip("/") + "/") for pat in patterns)

    for path in paths:
        if path.is_file():
            if not excluded(path):
                yield path
            continue
        for file in sorted(path.rglob("*.py")):
            rel = file.relative_to(path)
            if any(part in SKIPPED_DIRS for part in rel.parts[:-1]) or excluded(file):
                continue
            yield file


def parse_failure(path: str, exc: SyntaxError) -> str:
    return f"{path}:{exc.lineno or 1}:{(exc.offset or 0) + 1}: cannot parse: {exc.msg}"


__all__ = ["RULES", "Finding", "Rule", "check_source", "parse_failure", "python_files"]
