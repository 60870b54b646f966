"""The learn CLI's bookkeeping (no servers): the catalogue, the workspace, progress, and the
plain-words failure messages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from learn import cli
from learn.catalog import EXERCISES, by_number
from learn.plugin import _plain, load

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalogue_is_complete_and_in_order() -> None:
    assert len(EXERCISES) >= 14
    assert [e.number for e in EXERCISES] == list(range(1, len(EXERCISES) + 1))
    for e in EXERCISES:
        for path in (e.start, e.solution, e.check, e.hint, e.explanation):
            assert path.is_file(), f"{path} is missing"
        assert e.start.read_text() != e.solution.read_text()
        assert (ROOT / "docs" / e.docs).is_file(), f"exercise {e.number} names docs/{e.docs}"
        assert f"docs/{e.docs}" in e.explanation.read_text(), (
            f"exercise {e.number}'s explanation does not link docs/{e.docs}"
        )


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cli.WORKSPACE_ENV, str(tmp_path / "ws"))
    return cli.ensure_workspace()


def test_the_workspace_gets_the_starts_and_keeps_the_learners_work(workspace: Path) -> None:
    first = EXERCISES[0]
    assert sorted(p.name for p in workspace.glob("*.py")) == sorted(
        e.workspace_name for e in EXERCISES
    )
    cli.workspace_file(first).write_text("# my attempt\n")
    cli.ensure_workspace()
    assert cli.workspace_file(first).read_text() == "# my attempt\n"
    assert cli.main(["reset", "1"]) == 0
    assert cli.workspace_file(first).read_bytes() == first.start.read_bytes()


def test_a_solved_exercise_is_unsolved_by_an_edit(workspace: Path) -> None:
    first = EXERCISES[0]
    cli._mark(first, True)
    assert cli.is_solved(first)
    assert cli.current() == EXERCISES[1]
    cli.workspace_file(first).write_text("# changed after solving\n")
    assert not cli.is_solved(first)
    assert cli.current() == first
    (workspace / cli.PROGRESS_FILE).write_text("{not json")
    assert cli.solved_count() == 0


def test_hint_and_list_need_no_servers(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["hint", "14"]) == 0
    assert "selectinload" in capsys.readouterr().out
    assert cli.main(["list"]) == 0
    assert f"0 of {len(EXERCISES)} done" in capsys.readouterr().out


def test_an_unknown_exercise_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["check", "99"])
    assert exit_info.value.code == 2
    assert "exercise number from 1 to" in capsys.readouterr().err
    with pytest.raises(LookupError):
        by_number(0)


def test_an_assertion_reads_as_its_message_alone() -> None:
    try:
        raise AssertionError("the note is not saved\nassert 0 == 1\n +  where 0 = count()")
    except AssertionError:
        info = pytest.ExceptionInfo[BaseException].from_exc_info(sys.exc_info())  # type: ignore[arg-type]
    assert _plain(info, None) == "the note is not saved"


def test_an_exception_names_the_line_of_the_learners_file(tmp_path: Path) -> None:
    path = tmp_path / "attempt.py"
    path.write_text("def f() -> None:\n    raise NotImplementedError('commit here')\n")
    module = load(path)
    try:
        module.f()
    except NotImplementedError:
        info = pytest.ExceptionInfo[BaseException].from_exc_info(sys.exc_info())  # type: ignore[arg-type]
    message = _plain(info, path.resolve())
    assert message.splitlines() == [
        "your code raised NotImplementedError: commit here",
        "  at line 2 of your file: raise NotImplementedError('commit here')",
    ]


def test_a_file_that_does_not_compile_is_reported_at_once(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.workspace_file(EXERCISES[0]).write_text("def get_session(:\n")
    assert cli.main(["check", "1"]) == 1
    out = capsys.readouterr().out
    assert "your file does not compile: invalid syntax (line 1)" in out
    assert cli.solved_count() == 0
