"""The guide map (docs/guide_map.toml) stays true to the guide and to the code.

It fails when a guide heading or snippet path is missing from the map, when an entry lacks what its
status requires (code and tests unless planned), or when a referenced file, symbol, test function
or docs page no longer exists. Files are parsed (ast, tomllib), never imported.

The guide is read from `../shared/guide/core-concepts.md` beside the repository (as in CI), or
from the file named by `KIT_GUIDE_PATH` when that is set; in a clone without it, only the checks
against the guide are skipped, with that reason.
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAP_FILE = ROOT / "docs" / "guide_map.toml"
DOCS = ROOT / "docs"
GUIDE_ENV = "KIT_GUIDE_PATH"
GUIDE_BESIDE_REPO = ROOT.parent / "shared" / "guide" / "core-concepts.md"
SEPARATOR = " > "

STATUSES = {"done", "partial", "planned", "group", "prose"}
SECTION_KEYS = {"heading", "status", "issue", "page", "code", "tests", "note"}
SNIPPET_KEYS = {"guide", "status", "issue", "page", "code", "tests", "note"}

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*#*\s*$")
_SNIPPET_PATH = re.compile(r"^#\s+([\w.-]+(?:/[\w.-]+)+\.py)\s*$")


# --- the guide ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outline:
    """The guide's headings from `##` down (as " > "-joined paths) and its snippet paths."""

    headings: list[str]
    snippets: list[str]

    def has_subsections(self, heading: str) -> bool:
        return any(h.startswith(heading + SEPARATOR) for h in self.headings)


def parse_guide(text: str) -> Outline:
    headings: list[str] = []
    snippets: list[str] = []
    stack: list[tuple[int, str]] = []
    in_code = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            found = _SNIPPET_PATH.match(line)
            if found and found.group(1) not in snippets:
                snippets.append(found.group(1))
            continue
        heading = _HEADING.match(line)
        if not heading:
            continue
        level, title = len(heading.group(1)), heading.group(2)
        stack = [(lvl, t) for lvl, t in stack if lvl < level]
        stack.append((level, title))
        if level >= 2:  # the `#` title is the document, not a section
            headings.append(SEPARATOR.join(t for lvl, t in stack if lvl >= 2))
    return Outline(headings, snippets)


def find_guide(environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    named = env.get(GUIDE_ENV)
    if named:
        return Path(named)
    return GUIDE_BESIDE_REPO if GUIDE_BESIDE_REPO.is_file() else None


# --- references -----------------------------------------------------------------------------


def _defines(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id == name
    return False


def _find(tree: ast.Module, dotted: list[str]) -> ast.stmt | None:
    body: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for part in dotted:
        node = next((n for n in body if _defines(n, part)), None)
        if node is None:
            return None
        body = node.body if isinstance(node, ast.ClassDef) else []
    return node


def reference_problem(ref: str, root: Path, *, is_test: bool) -> str | None:
    """Why `ref` ("path", "path::Symbol", "path::Class.method") does not resolve, or None."""
    path_part, _, symbol = ref.partition("::")
    path = root / path_part
    if is_test and not (path_part.startswith("tests/") and symbol):
        return f"{ref}: a test is named as tests/...py::test_name"
    if not path.is_file():
        return f"{ref}: {path_part} does not exist"
    if not symbol:
        return None
    if path.suffix != ".py":
        return f"{ref}: a symbol can only be named in a Python file"
    dotted = re.split(r"::|\.", symbol)
    node = _find(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), dotted)
    if node is None:
        return f"{ref}: {path_part} defines no {symbol}"
    if is_test and not (
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    ):
        return f"{ref}: {symbol} is not a test function"
    return None


# --- entries --------------------------------------------------------------------------------


def _issues(entry: Mapping[str, Any]) -> list[Any]:
    issue = entry.get("issue")
    return issue if isinstance(issue, list) else [] if issue is None else [issue]


def entry_problems(
    entry: Mapping[str, Any], *, allowed_keys: set[str], outline: Outline | None = None
) -> list[str]:
    """What the entry's status requires and it lacks (`outline` checks `group` headings)."""
    name = entry.get("heading") or entry.get("guide") or "<an entry without heading or guide>"
    problems = [f"{name}: unknown key {k!r}" for k in sorted(set(entry) - allowed_keys)]
    status = entry.get("status")
    code, tests, note = entry.get("code", []), entry.get("tests", []), entry.get("note")
    issues = _issues(entry)
    if status not in STATUSES:
        return [*problems, f"{name}: status {status!r} is not one of {sorted(STATUSES)}"]
    if not all(isinstance(i, int) and i > 0 for i in issues):
        problems.append(f"{name}: issue must be an issue number or a list of them")
    if status in ("done", "partial") and not code:
        problems.append(f"{name}: {status} but names no code")
    if status in ("done", "partial") and not tests:
        problems.append(f"{name}: {status} but names no tests")
    if status in ("partial", "planned") and not issues:
        problems.append(f"{name}: {status} but names no issue that delivers the rest")
    if status == "prose" and not note:
        problems.append(f"{name}: prose needs a note saying why no code applies")
    if status == "group":
        if "heading" not in entry:
            problems.append(f"{name}: only a guide heading can be a group")
        elif outline is not None and not outline.has_subsections(entry["heading"]):
            problems.append(f"{name}: group, but the guide has no subsections under it")
        if code or tests:
            problems.append(f"{name}: a group names no code or tests; its subsections do")
    return problems


def reference_problems(entries: Iterable[Mapping[str, Any]], root: Path) -> list[str]:
    problems: list[str] = []
    for entry in entries:
        for ref in entry.get("code", []):
            problem = reference_problem(ref, root, is_test=False)
            if problem:
                problems.append(problem)
        for ref in entry.get("tests", []):
            problem = reference_problem(ref, root, is_test=True)
            if problem:
                problems.append(problem)
    return problems


def page_problems(entries: Iterable[Mapping[str, Any]], docs: Path) -> list[str]:
    problems = []
    for entry in entries:
        page = entry.get("page")
        if page and not (docs / page.partition("#")[0]).is_file():
            problems.append(f"{entry.get('heading') or entry.get('guide')}: no docs page {page}")
    return problems


def _report(problems: list[str]) -> str:
    return f"{len(problems)} problem(s) in {MAP_FILE.relative_to(ROOT)}:\n  " + "\n  ".join(
        problems
    )


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guide_map() -> dict[str, list[dict[str, Any]]]:
    with MAP_FILE.open("rb") as f:
        data = tomllib.load(f)
    return {"section": data.get("section", []), "snippet": data.get("snippet", [])}


@pytest.fixture(scope="module")
def outline() -> Outline:
    path = find_guide()
    if path is not None and not path.is_file():
        pytest.fail(f"{GUIDE_ENV} names {path}, which is not a file.")
    if path is None:
        # A clone without the team's guide beside it (the kit ships the map, not the guide):
        # the checks of the map against the code still run; these against the guide cannot.
        pytest.skip(
            f"the Core Concepts Guide is not at {GUIDE_BESIDE_REPO}; set {GUIDE_ENV} to its "
            "core-concepts.md to check the map against it"
        )
    return parse_guide(path.read_text(encoding="utf-8"))


# --- the map against the guide ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "field", "what"),
    [("section", "heading", "heading"), ("snippet", "guide", "snippet path")],
    ids=["headings", "snippets"],
)
def test_every_guide_heading_and_snippet_path_is_in_the_map(
    guide_map: dict[str, list[dict[str, Any]]], outline: Outline, table: str, field: str, what: str
) -> None:
    """Each `[[section]]` names a guide heading, each `[[snippet]]` a guide snippet path."""
    mapped = {s.get(field) for s in guide_map[table]}
    in_guide = outline.headings if table == "section" else outline.snippets
    missing = [name for name in in_guide if name not in mapped]
    assert not missing, _report([f"guide {what} not in the map: {name}" for name in missing])


def test_the_map_names_only_what_the_guide_has_once_and_in_its_order(
    guide_map: dict[str, list[dict[str, Any]]], outline: Outline
) -> None:
    headings = [str(s.get("heading")) for s in guide_map["section"]]
    snippets = [str(s.get("guide")) for s in guide_map["snippet"]]
    problems = [
        f"not a guide heading (renamed?): {h}" for h in headings if h not in outline.headings
    ]
    problems += [f"not a guide snippet path: {p}" for p in snippets if p not in outline.snippets]
    problems += [f"mapped twice: {h}" for h in sorted(set(headings)) if headings.count(h) > 1]
    problems += [f"mapped twice: {p}" for p in sorted(set(snippets)) if snippets.count(p) > 1]
    in_guide = [h for h in headings if h in outline.headings]
    if in_guide != [h for h in outline.headings if h in in_guide]:
        problems.append("sections are not in the guide's order (the rendered map follows the file)")
    assert not problems, _report(problems)


# --- the map against itself, the code and the docs ---------------------------------------------


def test_every_entry_has_what_its_status_requires(
    guide_map: dict[str, list[dict[str, Any]]], outline: Outline
) -> None:
    problems: list[str] = []
    for section in guide_map["section"]:
        problems += entry_problems(section, allowed_keys=SECTION_KEYS, outline=outline)
    for snippet in guide_map["snippet"]:
        problems += entry_problems(snippet, allowed_keys=SNIPPET_KEYS)
        if snippet.get("status") == "group":
            problems.append(f"{snippet.get('guide')}: a snippet cannot be a group")
    assert not problems, _report(problems)


def test_every_referenced_file_symbol_and_test_function_exists(
    guide_map: dict[str, list[dict[str, Any]]],
) -> None:
    problems = reference_problems([*guide_map["section"], *guide_map["snippet"]], ROOT)
    assert not problems, _report(problems)


def test_every_referenced_docs_page_exists(guide_map: dict[str, list[dict[str, Any]]]) -> None:
    problems = page_problems([*guide_map["section"], *guide_map["snippet"]], DOCS)
    assert not problems, _report(problems)


# --- the docs' own references to code --------------------------------------------------------

# Strict mkdocs checks links between pages, not code named in code spans: this does.
_CODE_SPAN = re.compile(r"`([^`\s]+)`")
_REPO_PATH = re.compile(
    r"^(patterns|reference_app|pitfalls|tests|docs|docs_hooks)/[\w./-]*(::[\w.:]+)?$"
)
_ERRATUM = re.compile(r"^## (E\d{3}) ", re.MULTILINE)


def docs_code_problems(docs: Path, root: Path) -> list[str]:
    """Code spans in the docs that name a repository path, symbol or test that does not exist."""
    problems: list[str] = []
    for page in sorted(docs.rglob("*.md")):
        for ref in _CODE_SPAN.findall(page.read_text(encoding="utf-8")):
            if not _REPO_PATH.match(ref):
                continue
            where = page.relative_to(docs)
            if "::" not in ref and (root / ref).exists():
                continue
            problem = reference_problem(ref, root, is_test=ref.startswith("tests/") and "::" in ref)
            if problem:
                problems.append(f"docs/{where}: {problem}")
    return problems


def errata_problems(text: str) -> list[str]:
    """Errata without a "Proven by" list of tests."""
    parts = _ERRATUM.split(text)
    problems = []
    for erratum, body in zip(parts[1::2], parts[2::2], strict=True):
        proven = body.partition("**Proven by:**")[2]
        tests = [r for r in _CODE_SPAN.findall(proven) if r.startswith("tests/") and "::" in r]
        if not tests:
            problems.append(f"{erratum}: names no test under **Proven by:**")
    return problems


def test_every_code_path_named_in_the_docs_exists() -> None:
    problems = docs_code_problems(DOCS, ROOT)
    assert not problems, "\n  ".join(["code named in the docs does not exist:", *problems])


def test_every_erratum_names_a_test_that_exists() -> None:
    text = (DOCS / "errata.md").read_text(encoding="utf-8")
    assert _ERRATUM.search(text), "docs/errata.md lists no erratum (## E001 ...)"
    problems = errata_problems(text)
    assert not problems, "\n  ".join(["docs/errata.md:", *problems])


# --- the checks themselves catch what they claim to ---------------------------------------------


def test_outline_reads_nested_headings_and_snippet_paths_but_not_code_comments() -> None:
    text = "\n".join(
        [
            "# Title",
            "## Part",
            "### 1. Topic",
            "```python",
            "# app/core/thing.py",
            "# Example model",
            "## not a heading inside code",
            "```",
            "#### Detail",
            "## Other",
        ]
    )
    outline = parse_guide(text)
    assert outline.headings == ["Part", "Part > 1. Topic", "Part > 1. Topic > Detail", "Other"]
    assert outline.snippets == ["app/core/thing.py"]
    assert outline.has_subsections("Part > 1. Topic")
    assert not outline.has_subsections("Other")


def test_reference_check_reports_missing_files_symbols_and_test_functions(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def helper(): ...\n"
        "async def test_real(): ...\n"
        "class TestGroup:\n    def test_inside(self): ...\n"
    )
    (tmp_path / "pkg.py").write_text("class Thing:\n    def method(self): ...\nVALUE = 1\n")

    def check(ref: str, *, is_test: bool) -> str | None:
        return reference_problem(ref, tmp_path, is_test=is_test)

    assert check("tests/test_x.py::test_real", is_test=True) is None
    assert check("tests/test_x.py::TestGroup::test_inside", is_test=True) is None
    assert check("pkg.py::Thing.method", is_test=False) is None
    assert check("pkg.py::VALUE", is_test=False) is None
    assert check("pkg.py", is_test=False) is None
    assert "defines no test_gone" in (check("tests/test_x.py::test_gone", is_test=True) or "")
    assert "not a test function" in (check("tests/test_x.py::helper", is_test=True) or "")
    assert "defines no Thing.gone" in (check("pkg.py::Thing.gone", is_test=False) or "")
    assert "does not exist" in (check("missing.py::Thing", is_test=False) or "")
    assert "tests/...py::test_name" in (check("tests/test_x.py", is_test=True) or "")


def test_status_rules_refuse_incomplete_entries() -> None:
    outline = parse_guide("## Part\n### Leaf\n## Flat\n")

    def problems(entry: dict[str, Any]) -> list[str]:
        return entry_problems(entry, allowed_keys=SECTION_KEYS, outline=outline)

    done = {"heading": "Part > Leaf", "status": "done", "code": ["x.py"], "tests": ["t"]}
    assert problems(done) == []
    assert problems({**done, "tests": []}) == ["Part > Leaf: done but names no tests"]
    assert problems({**done, "status": "partial"}) == [
        "Part > Leaf: partial but names no issue that delivers the rest"
    ]
    assert problems({"heading": "Part > Leaf", "status": "planned"}) == [
        "Part > Leaf: planned but names no issue that delivers the rest"
    ]
    assert problems({"heading": "Part", "status": "group"}) == []
    assert problems({"heading": "Flat", "status": "group"}) == [
        "Flat: group, but the guide has no subsections under it"
    ]
    assert problems({"heading": "Flat", "status": "prose"}) == [
        "Flat: prose needs a note saying why no code applies"
    ]
    assert problems({"heading": "Flat", "status": "planned", "issue": 4, "tset": []}) == [
        "Flat: unknown key 'tset'"
    ]


def test_guide_location_prefers_the_environment_variable(tmp_path: Path) -> None:
    named = tmp_path / "guide.md"
    assert find_guide({GUIDE_ENV: str(named)}) == named
    assert find_guide({}) == (GUIDE_BESIDE_REPO if GUIDE_BESIDE_REPO.is_file() else None)


def test_docs_checks_report_missing_code_and_unproven_errata(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "patterns").mkdir()
    (tmp_path / "patterns" / "x.py").write_text("def real(): ...\n")
    (docs / "page.md").write_text(
        "`patterns/x.py::real` `patterns/x.py::gone` `patterns/` `app/core/deps.py` `tests/y.py`"
    )
    assert docs_code_problems(docs, tmp_path) == [
        "docs/page.md: patterns/x.py::gone: patterns/x.py defines no gone",
        "docs/page.md: tests/y.py: tests/y.py does not exist",
    ]
    errata = "## E001 One\n**Proven by:**\n- `tests/a.py::test_a`\n## E002 Two\n**Proven by:**\n"
    assert errata_problems(errata) == ["E002: names no test under **Proven by:**"]
