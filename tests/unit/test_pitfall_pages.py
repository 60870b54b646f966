"""Each pitfall is called the same everywhere a reviewer meets it (its page, the site's menu, the
pitfalls index, the CLI), its page opens with a metadata table that has a header row, its wrong
and right code show the changed lines marked, and the CLI prints an address of the page."""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path
from types import ModuleType

import pytest

from pitfalls._evidence import DEFAULT_DOCS_URL, Pitfall
from pitfalls._runner import Registered, discover

ROOT = Path(__file__).resolve().parents[2]


def _load_hook() -> ModuleType:
    """docs_hooks/pitfall_diff.py, the mkdocs hook (not a package: mkdocs loads it by path)."""
    spec = importlib.util.spec_from_file_location(
        "pitfall_diff", ROOT / "docs_hooks" / "pitfall_diff.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = _load_hook()
changed_lines = hook.changed_lines
mark_differences = hook.mark_differences

PITFALLS = [pytest.param(r, id=r.pitfall.id) for r in discover()]
MKDOCS = (ROOT / "mkdocs.yml").read_text()
INDEX = (ROOT / "docs" / "pitfalls" / "index.md").read_text()


def plain(text: str) -> str:
    return text.replace("`", "").strip().strip('"')


def page_of(pitfall: Pitfall) -> str:
    return (ROOT / pitfall.page).read_text()


@pytest.mark.parametrize("entry", PITFALLS)
def test_the_title_is_the_same_on_the_page_in_the_menu_and_in_the_index(
    entry: Registered,
) -> None:
    p = entry.pitfall
    expected = f"{p.id} {p.title}"
    heading = page_of(p).splitlines()[0]
    assert plain(heading.removeprefix("# ")) == expected

    nav = re.search(rf"^\s*- (.+): pitfalls/{p.id}\.md$", MKDOCS, re.MULTILINE)
    assert nav is not None, f"{p.id} is not in mkdocs.yml's nav"
    assert plain(nav.group(1)) == expected

    row = re.search(rf"^\| \[{p.id}\]\({p.id}\.md\) \| ([^|]+) \|", INDEX, re.MULTILINE)
    assert row is not None
    assert plain(row.group(1)) == p.title
    section = re.search(rf"^## (.+) \{{#{p.id.lower()}\}}$", INDEX, re.MULTILINE)
    assert section is not None
    assert plain(section.group(1)) == expected


@pytest.mark.parametrize("entry", PITFALLS)
def test_the_metadata_table_has_a_header_row_and_a_run_command(entry: Registered) -> None:
    p = entry.pitfall
    lines = page_of(p).splitlines()
    table = lines[lines.index("|---|---|") - 1 : lines.index("|---|---|") + 5]
    header = table[0]
    assert re.fullmatch(rf"\| ID \| {p.id}\b.*\|", header), header
    assert all(cell.strip() for cell in header.strip("|").split("|")), header
    assert any(f"`python -m pitfalls run {p.id}`" in line for line in table), table


@pytest.mark.parametrize("entry", PITFALLS)
def test_wrong_and_right_are_shown_with_their_changed_lines_marked(entry: Registered) -> None:
    package = entry.package.replace(".", "/")
    rendered = mark_differences(page_of(entry.pitfall))
    for side in ("wrong", "right"):
        path = f"{package}/{side}.py"
        lines = changed_lines(path)
        assert lines, f"{path}: no line differs from the other version"
        header = f'```python title="{path}" hl_lines="{" ".join(map(str, lines))}"'
        assert header in rendered, f"{path} is not included with its changes marked"
        source = (ROOT / path).read_text().splitlines()
        assert all(source[n - 1].strip() for n in lines)


def test_changed_lines_are_the_lines_that_differ(tmp_path: Path) -> None:
    package = tmp_path / "pitfalls" / "pf999_x"
    package.mkdir(parents=True)
    (package / "wrong.py").write_text('"""wrong."""\n\nA = 1\nB = 2\nC = 3\n')
    (package / "right.py").write_text('"""right."""\n\nA = 1\nB = 20\nC = 3\nD = 4\n')
    assert changed_lines("pitfalls/pf999_x/wrong.py", tmp_path) == [4]
    assert changed_lines("pitfalls/pf999_x/right.py", tmp_path) == [4, 6]


def test_the_cli_prints_page_addresses_on_the_docs_site(monkeypatch: pytest.MonkeyPatch) -> None:
    site_url = re.search(r'^site_url: !ENV \[KIT_DOCS_URL, "([^"]+)"\]$', MKDOCS, re.MULTILINE)
    assert site_url is not None, "mkdocs.yml names no site_url"
    assert site_url.group(1) == DEFAULT_DOCS_URL
    pitfall = discover()[0].pitfall
    monkeypatch.delenv("KIT_DOCS_URL", raising=False)
    assert pitfall.url == f"{DEFAULT_DOCS_URL}pitfalls/{pitfall.id}/"
    monkeypatch.setenv("KIT_DOCS_URL", "https://kit.example/docs")
    assert pitfall.url == f"https://kit.example/docs/pitfalls/{pitfall.id}/"


def test_the_list_shows_each_page_address_whole_in_a_normal_window() -> None:
    from rich.console import Console

    from pitfalls._runner import list_table

    console = Console(width=120, record=True, file=io.StringIO())
    entries = discover()
    console.print(list_table(entries))
    text = console.export_text()
    for entry in entries:
        assert entry.pitfall.url in text
