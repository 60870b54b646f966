"""mkdocs hook: on a pitfall page, mark the lines where `wrong.py` and `right.py` differ.

A page includes both files with snippets, each in its own fence:

    ```python
    --8<-- "pitfalls/pf001_n_plus_one/wrong.py"
    ```

This hook gives each such fence the file name as its title and `hl_lines` for the lines that the
other version replaces, drops or adds (difflib, the module docstrings left out: they differ by
design). Computed at build time from the files themselves, so the marks cannot drift from the code.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(
    r'^```python[^\n]*\n--8<-- "(?P<path>pitfalls/[\w/]+/(?P<side>wrong|right)\.py)"\n```',
    re.MULTILINE,
)
_OTHER = {"wrong": "right", "right": "wrong"}


def _body_start(source: str) -> int:
    """The first line number after the module docstring (1 when there is none)."""
    module = ast.parse(source)
    first = module.body[0] if module.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return (first.end_lineno or 0) + 1
    return 1


def changed_lines(path: str, root: Path = ROOT) -> list[int]:
    """Line numbers (from 1) of `path` (a pitfall's wrong.py or right.py) that differ from the
    other version, module docstring excluded."""
    this = root / path
    side = this.stem
    other = this.with_name(f"{_OTHER[side]}.py")
    mine, theirs = this.read_text(encoding="utf-8"), other.read_text(encoding="utf-8")
    start_mine, start_theirs = _body_start(mine), _body_start(theirs)
    a = mine.splitlines()[start_mine - 1 :]
    b = theirs.splitlines()[start_theirs - 1 :]
    lines: list[int] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag != "equal":
            lines += [start_mine + i for i in range(i1, i2) if a[i].strip()]
    return lines


def mark_differences(markdown: str, root: Path = ROOT) -> str:
    """The page with each wrong/right fence titled and its changed lines highlighted."""

    def fence(match: re.Match[str]) -> str:
        path = match.group("path")
        lines = " ".join(str(n) for n in changed_lines(path, root))
        header = f'```python title="{path}" hl_lines="{lines}"'
        return f'{header}\n--8<-- "{path}"\n```'

    return _FENCE.sub(fence, markdown)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri.startswith("pitfalls/PF"):
        return mark_differences(markdown)
    return markdown
