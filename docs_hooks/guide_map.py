"""mkdocs hook: render docs/guide_map.toml (the guide map) into the pages that ask for it.

`<!-- guide-map -->` becomes the whole map (sections, then snippet paths); on a section page,
`<!-- guide-map:entry -->` becomes that page's entries (status, kit code, tests). Code under a
module the API reference documents (a `::: module` line in docs/reference/) links to it through
mkdocstrings' cross-references; everything else stays a code span, since strict mode refuses links
to files outside docs/. The data itself is checked by tests/unit/test_guide_map.py.
"""

from __future__ import annotations

import logging
import posixpath
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.guide_map")

MAP_MARKER = "<!-- guide-map -->"
ENTRY_MARKER = "<!-- guide-map:entry -->"
MAP_FILE = "guide_map.toml"
SEPARATOR = " > "
_SHOWN_SEPARATOR = " › "
_REFERENCE_DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)

_state: dict[str, Any] = {"sections": [], "snippets": [], "documented": set()}


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    with (docs / MAP_FILE).open("rb") as f:
        data = tomllib.load(f)
    _state["sections"] = data.get("section", [])
    _state["snippets"] = data.get("snippet", [])
    documented: set[str] = set()
    for page in (docs / "reference").glob("*.md"):
        documented.update(_REFERENCE_DIRECTIVE.findall(page.read_text(encoding="utf-8")))
    _state["documented"] = documented
    return config


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    src = page.file.src_uri
    if MAP_MARKER in markdown:
        markdown = markdown.replace(MAP_MARKER, render_map(src))
    if ENTRY_MARKER in markdown:
        entries = [e for e in _all_entries() if _page_of(e) == src]
        if not entries:
            log.warning("%s asks for its guide-map entry, but no entry names this page", src)
        markdown = markdown.replace(ENTRY_MARKER, render_entries(entries, src))
    return markdown


# --- rendering --------------------------------------------------------------------------------


def _all_entries() -> list[dict[str, Any]]:
    return [*_state["sections"], *_state["snippets"]]


def _page_of(entry: Mapping[str, Any]) -> str | None:
    page = entry.get("page")
    return page.partition("#")[0] if page else None


def _link(target: str, from_page: str) -> str:
    path, _, anchor = target.partition("#")
    rel = posixpath.relpath(path, posixpath.dirname(from_page) or ".")
    return rel + (f"#{anchor}" if anchor else "")


def _issues(entry: Mapping[str, Any]) -> str:
    issue = entry.get("issue")
    numbers = issue if isinstance(issue, list) else [] if issue is None else [issue]
    return ", ".join(f"#{n}" for n in numbers)


def status_text(entry: Mapping[str, Any]) -> str:
    status = entry.get("status", "?")
    issues = _issues(entry)
    if status == "done":
        return "**done**"
    if status == "partial":
        return f"partial, rest in issue {issues}"
    if status == "planned":
        return f"planned, issue {issues}"
    return str(status)


def _module(path: str) -> str | None:
    """The dotted module the API reference documents for `path`, if it does."""
    if not path.endswith(".py"):
        return None
    module = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return module if module in _state["documented"] else None


def _linked(span: str, module: str | None, symbol: str) -> str:
    parts = [p for p in re.split(r"::|\.", symbol) if p] if symbol else []
    if module is None or any(p.startswith("_") for p in parts):
        return span
    return f"[{span}][{'.'.join([module, *parts])}]"


def grouped_code(refs: Iterable[str], joiner: str = "<br>") -> str:
    """Code grouped by file: `patterns/errors.py`: `AppError`, `NotFoundError`."""
    by_file: dict[str, list[str]] = {}
    for ref in refs:
        path, _, symbol = ref.partition("::")
        by_file.setdefault(path, [])
        if symbol:
            by_file[path].append(symbol)
    lines = []
    for path, symbols in by_file.items():
        module = _module(path)
        head = _linked(f"`{path}`", module, "")
        names = ", ".join(_linked(f"`{s}`", module, s) for s in symbols)
        lines.append(f"{head}: {names}" if names else head)
    return joiner.join(lines)


def grouped_tests(refs: Iterable[str], joiner: str = "<br>") -> str:
    """Tests grouped by file: `tests/unit/test_x.py`: `test_a`, `test_b`."""
    by_file: dict[str, list[str]] = {}
    for ref in refs:
        path, _, name = ref.partition("::")
        by_file.setdefault(path, []).append(name)
    return joiner.join(
        f"`{path}`: " + ", ".join(f"`{n}`" for n in names) for path, names in by_file.items()
    )


def _label(heading: str, top: str) -> str:
    rest = heading.removeprefix(top).removeprefix(SEPARATOR)
    return (rest or heading).replace(SEPARATOR, _SHOWN_SEPARATOR)


def _row(label: str, entry: Mapping[str, Any], from_page: str) -> str:
    page = entry.get("page")
    shown = f"[{label}]({_link(page, from_page)})" if page else label
    code = grouped_code(entry.get("code", []))
    if entry.get("status") == "prose":
        code = f"*{entry.get('note', '')}*"
    tests = grouped_tests(entry.get("tests", []))
    return f"| {shown} | {code} | {tests} | {status_text(entry)} |"


def render_map(from_page: str) -> str:
    sections, snippets = _state["sections"], _state["snippets"]
    counted = [s for s in sections if s.get("status") not in ("group", "prose")]
    counts = {k: sum(1 for s in counted if s.get("status") == k) for k in ("done", "partial")}
    planned = len(counted) - counts["done"] - counts["partial"]
    out = [
        f"Of the guide's {len(counted)} sections with code, **{counts['done']} are done**, "
        f"{counts['partial']} partly done and {planned} planned. "
        f"Of its {len(snippets)} snippet paths, "
        f"{sum(1 for s in snippets if s.get('status') == 'done')} are done and "
        f"{sum(1 for s in snippets if s.get('status') == 'partial')} partly done.",
        "",
        "## Sections",
    ]
    top = ""
    for entry in sections:
        heading = entry["heading"]
        if SEPARATOR not in heading:
            top = heading
            out += ["", f"### {heading}", ""]
            out += ["| Guide section | Kit code | Tests | Status |", "|---|---|---|---|"]
            if entry.get("status") == "group":
                continue
        elif entry.get("status") == "group":
            continue  # its subsections carry the mapping and show it in their labels
        out.append(_row(_label(heading, top), entry, from_page))
    out += [
        "",
        "## Guide snippet paths",
        "",
        "| Guide snippet | Kit code | Tests | Status |",
        "|---|---|---|---|",
    ]
    for entry in snippets:
        out.append(_row(f"`{entry['guide']}`", entry, from_page))
    return "\n".join(out) + "\n"


def render_entries(entries: list[dict[str, Any]], from_page: str) -> str:
    out: list[str] = []
    planned = [e for e in entries if "heading" in e and e.get("status") == "planned"]
    if planned:
        out += [
            '!!! note "Not built yet"',
            "",
            f"    Issue {_issues(planned[0])} delivers this section. This page will then name the",
            "    kit code that realises it and the tests that check it, and say what differs from",
            "    the guide and why.",
            "",
        ]
    for entry in entries:
        if "heading" in entry:
            title = "Guide section: " + entry["heading"].replace(SEPARATOR, _SHOWN_SEPARATOR)
        else:
            title = f"Guide snippet: `{entry['guide']}`"
        out += [f'!!! abstract "{title}"', "", f"    **Status:** {status_text(entry)}", ""]
        if entry.get("note"):
            out += [f"    {entry['note']}", ""]
        if entry.get("code"):
            out += ["    **Kit code**", ""]
            out += [f"    - {line}" for line in grouped_code(entry["code"], "\n").splitlines()]
            out.append("")
        if entry.get("tests"):
            out += ["    **Tests**", ""]
            out += [f"    - {line}" for line in grouped_tests(entry["tests"], "\n").splitlines()]
            out.append("")
    map_link = _link("guide-map.md", from_page)
    out.append(f"*From the [guide map]({map_link}), kept in `docs/{MAP_FILE}`.*")
    return "\n".join(out) + "\n"
