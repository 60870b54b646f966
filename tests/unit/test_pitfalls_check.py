"""`python -m pitfalls check`: the rules on the corpus (exact codes and lines), on the kit's own
wrong and right versions, patterns and reference_app, and the command line around them."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pitfalls.check import check_source
from pitfalls.check._model import RULES
from pitfalls.check.cli import run
from tests.unit.check_corpus import CORPUS

ROOT = Path(__file__).resolve().parents[2]
_EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>PF\d{3}(?:\s*,\s*PF\d{3})*)")
PITFALL_DIRS = sorted(p for p in (ROOT / "pitfalls").glob("pf0*") if p.is_dir())


def _expected(source: str) -> list[tuple[int, str]]:
    marks = []
    for lineno, line in enumerate(source.splitlines(), 1):
        match = _EXPECT.search(line)
        if match:
            marks += [(lineno, c.strip()) for c in match.group("codes").split(",")]
    return sorted(marks)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_snippet_reports_exactly_its_marked_lines(name: str) -> None:
    source = CORPUS[name].strip("\n")
    found = [(f.line, f.code) for f in check_source(source, f"{name}.py")]
    assert found == _expected(source)


def test_corpus_has_forty_snippets_and_both_shapes_for_every_rule() -> None:
    assert len(CORPUS) >= 40
    for code in RULES:
        mine = [src for name, src in CORPUS.items() if name.startswith(code.lower())]
        assert any(_expected(src) for src in mine), f"{code}: no positive snippet"
        assert any(not _expected(src) for src in mine), f"{code}: no negative snippet"


@pytest.mark.parametrize("package", PITFALL_DIRS, ids=lambda p: p.name)
def test_each_wrong_version_is_flagged_with_its_own_code_and_its_right_version_not(
    package: Path,
) -> None:
    code = package.name[:5].upper()
    wrong = check_source((package / "wrong.py").read_text(), "wrong.py")
    right = check_source((package / "right.py").read_text(), "right.py")
    assert wrong, f"{code}: wrong.py not flagged"
    assert {f.code for f in wrong} == {code}
    assert right == []


def _check(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        status = run(list(args), out, err)
    finally:
        os.chdir(previous)
    return status, out.getvalue(), err.getvalue()


def test_patterns_and_reference_app_are_clean() -> None:
    status, out, _ = _check(str(ROOT / "patterns"), str(ROOT / "reference_app"))
    assert (status, out.strip()) == (0, "No pitfalls found.")


def test_pitfalls_directory_reports_every_wrong_version_and_no_right_version() -> None:
    status, out, _ = _check(str(ROOT / "pitfalls"), "--format", "json")
    assert status == 1
    files = {Path(f["path"]).relative_to(ROOT / "pitfalls").as_posix() for f in json.loads(out)}
    assert files == {f"{p.name}/wrong.py" for p in PITFALL_DIRS}


def test_pre_commit_hook_runs_the_standalone_entry() -> None:
    hook = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "- id: pitfalls-check" in hook
    assert "entry: python -m pitfalls.check" in hook
    assert "types: [python]" in hook


def _project(tmp_path: Path, config: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'x'\n{config}")
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "tokens.py").write_text(
        "import jwt\nimport time\n\n\ndef token(k):\n"
        "    return jwt.encode({'sub': '1'}, k, algorithm='HS256')\n\n\n"
        "async def slow():\n    time.sleep(1)\n"
    )
    return tmp_path


def test_text_output_is_ruff_style_with_the_page_and_exit_1(tmp_path: Path) -> None:
    status, out, _ = _check("app", cwd=_project(tmp_path))
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith("app/tokens.py:6:12: PF005 ")
    assert lines[0].endswith("[docs/pitfalls/PF005.md]")
    assert lines[1].startswith("app/tokens.py:10:5: PF007 ")
    assert lines[2] == "Found 2 pitfall(s): PF005 ×1, PF007 ×1."


def test_select_ignore_and_pyproject_settings(tmp_path: Path) -> None:
    project = _project(tmp_path)
    selected = _check("app", "--select", "PF007", cwd=project)[1].splitlines()
    assert [line.split(": ")[1][:5] for line in selected if line.startswith("app/")] == ["PF007"]
    assert _check("app", "--ignore", "PF005,PF007", cwd=project)[0] == 0
    configured = _project(
        tmp_path,
        '[tool.pitfalls]\nignore = ["PF007"]\ndocs-url = "https://kit.example/pitfalls/{code}/"\n',
    )
    status, out, _ = _check("app", cwd=configured)
    assert status == 1
    assert "PF007" not in out
    assert "[https://kit.example/pitfalls/PF005/]" in out


def test_exclude_setting_skips_files(tmp_path: Path) -> None:
    project = _project(tmp_path, '[tool.pitfalls]\nexclude = ["app/tokens.py"]\n')
    assert _check("app", cwd=project)[0] == 0


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _check("missing_dir", cwd=project)[0] == 2
    assert _check("app", "--select", "PF999", cwd=project)[0] == 2
    bad = _project(tmp_path, "[tool.pitfalls]\nselekt = ['PF001']\n")
    status, _, err = _check("app", cwd=bad)
    assert status == 2
    assert "selekt" in err
    with pytest.raises(SystemExit) as exc:
        _check("app", "--format", "xml", cwd=project)
    assert exc.value.code == 2


def test_json_sarif_and_github_formats(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _, out, _ = _check("app", "--format", "json", cwd=project)
    first = json.loads(out)[0]
    assert {k: first[k] for k in ("code", "path", "line", "col")} == {
        "code": "PF005",
        "path": "app/tokens.py",
        "line": 6,
        "col": 12,
    }
    assert first["message"]
    _, out, _ = _check("app", "--format", "sarif", cwd=project)
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["PF005", "PF007"]
    region = results[1]["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (10, 5)
    assert {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]} == set(RULES)
    _, out, _ = _check("app", "--format", "github", cwd=project)
    assert out.splitlines()[1].startswith(
        "::error file=app/tokens.py,line=10,col=5,endLine=10,title=PF007 blocking-call-in-async::"
    )


def test_unparsable_file_is_reported_and_skipped(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "app" / "broken.py").write_text("def (:\n")
    status, out, err = _check("app", "--select", "PF007", cwd=project)
    assert status == 1
    assert "app/broken.py:1:" in err
    assert "PF007" in out


@pytest.mark.slow
@pytest.mark.parametrize("entry", [["pitfalls", "check"], ["pitfalls.check"]], ids=" ".join)
def test_module_entry_points(tmp_path: Path, entry: list[str]) -> None:
    """`python -m pitfalls check` and the pre-commit hook's `python -m pitfalls.check`."""
    project = _project(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", *entry, "app", "--format", "json"]
    # no check: the exit code is asserted
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert [f["code"] for f in json.loads(result.stdout)] == ["PF005", "PF007"]
