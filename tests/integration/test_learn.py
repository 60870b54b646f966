"""`python -m learn`: every exercise's check fails on its starting file and passes on its
solution, through the learner's workspace, and `reset` brings the start back.

The checks run in a child pytest with servers of their own (the harness's local binaries or
containers, not this run's `KIT_TEST_*` servers): the child's Redis database would otherwise be
one this run's xdist workers use too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from learn import cli
from learn.catalog import EXERCISES
from patterns.testing import POSTGRES_URL_ENV, REDIS_URL_ENV

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cli.WORKSPACE_ENV, str(tmp_path / "ws"))
    monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    return cli.ensure_workspace()


def test_check_fails_on_every_start_and_passes_on_every_solution(workspace: Path) -> None:
    for exercise in EXERCISES:
        assert cli.workspace_file(exercise).read_bytes() == exercise.start.read_bytes()
    with cli.servers() as env:  # one PostgreSQL and Redis for both runs, as `watch` does
        assert set(env) == {POSTGRES_URL_ENV, REDIS_URL_ENV}
        started = cli.run_checks(EXERCISES, env=env)
        for exercise in EXERCISES:
            shutil.copyfile(exercise.solution, cli.workspace_file(exercise))
        solved = cli.run_checks(EXERCISES, env=env)
    for exercise in EXERCISES:
        outcome = started.outcomes.get((exercise.number, "workspace"))
        assert outcome is not None, (
            f"exercise {exercise.number}'s check did not run:\n{started.output[-2000:]}"
        )
        assert outcome.failures, f"exercise {exercise.number}'s starting file passes its check"
        assert all(message.strip() for _, message in outcome.failures)
    for exercise in EXERCISES:
        outcome = solved.outcomes.get((exercise.number, "workspace"))
        assert outcome is not None, f"exercise {exercise.number}'s check did not run"
        assert outcome.ok, (
            f"exercise {exercise.number}'s solution fails its check: {outcome.failures}"
        )


def test_check_records_progress_and_reset_restores_the_start(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = EXERCISES[0], EXERCISES[1]
    assert cli.current() == first
    assert cli.solved_count() == 0
    shutil.copyfile(first.solution, cli.workspace_file(first))
    assert cli.main(["check", "1"]) == 0
    out = capsys.readouterr().out
    assert "solved" in out
    assert f"1 of {len(EXERCISES)} done" in out
    assert cli.current() == second  # `learn` moves on

    assert cli.main(["reset", "1"]) == 0
    assert cli.workspace_file(first).read_bytes() == first.start.read_bytes()
    assert cli.current() == first
    assert cli.solved_count() == 0


def test_a_check_that_never_ends_is_stopped(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cli.TIMEOUT_ENV, "10")
    last = EXERCISES[-1]
    cli.workspace_file(last).write_text(
        "import asyncio\n\n\nasync def books_by_author(session):\n    await asyncio.sleep(3600)\n"
    )
    assert cli.main(["check", str(last.number)]) == 1
    assert "did not finish within 10 s and was stopped" in capsys.readouterr().out
