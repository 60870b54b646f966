"""`python -m pitfalls`: the list of stable IDs, and `run all` on the embedded default (SQLite +
fakeredis), which must say which pitfalls need a real server instead of faking their evidence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pitfalls._evidence import POSTGRESQL, REDIS
from pitfalls._runner import discover, select

ROOT = Path(__file__).resolve().parents[2]
IDS = [f"PF{i:03d}" for i in range(1, 11)]


def _pitfalls(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No KIT_* settings from the caller's environment and no .env: the embedded default.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "200"
    command = [sys.executable, "-m", "pitfalls", *args]
    # no check: the callers assert the exit code
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_every_pitfall_package_has_a_unique_stable_id_and_a_page() -> None:
    found = discover()
    assert [r.pitfall.id for r in found] == IDS
    for r in found:
        assert r.package.startswith(f"pitfalls.{r.pitfall.id.lower()}_")
        assert (ROOT / r.pitfall.page).is_file(), r.pitfall.page


def test_select_accepts_ids_in_any_case_and_refuses_unknown_ones() -> None:
    assert [r.pitfall.id for r in select(["pf003", "PF001"])] == ["PF003", "PF001"]
    assert len(select(["all"])) == len(IDS)
    with pytest.raises(KeyError, match="PF999"):
        select(["PF999"])


@pytest.mark.slow
def test_list_prints_every_id(tmp_path: Path) -> None:
    result = _pitfalls("list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for pitfall_id in IDS:
        assert pitfall_id in result.stdout


@pytest.mark.slow
def test_run_of_an_unknown_id_fails_with_the_known_ones(tmp_path: Path) -> None:
    result = _pitfalls("run", "PF999", cwd=tmp_path)
    assert result.returncode == 2
    assert "PF001" in result.stdout


@pytest.mark.slow
def test_run_all_on_the_embedded_default_shows_what_it_can_and_names_the_servers_it_needs(
    tmp_path: Path,
) -> None:
    result = _pitfalls("run", "all", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "sqlite" in out
    assert "fakeredis" in out
    results = tmp_path / "results" / "pitfalls"
    for r in discover():
        needs = r.pitfall.needs
        if needs:
            # Not run, and the reason says which server and which setting.
            assert not (results / f"{r.pitfall.id}.md").exists()
            if POSTGRESQL in needs:
                assert "needs a real PostgreSQL" in out
            if REDIS in needs:
                assert "needs a real Redis" in out
        else:
            assert (results / f"{r.pitfall.id}.md").is_file(), r.pitfall.id
    assert (results / "PF001_n_plus_one.png").read_bytes().startswith(b"\x89PNG")
    assert "KIT_DATABASE_URL=postgresql://" in out
    assert "KIT_REDIS_URL=redis://" in out
