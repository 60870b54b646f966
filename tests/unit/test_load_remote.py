"""`nox -s load` against a deployment it did not start, and Locust's distributed mode: the
options, the accounts and what the run refuses (loadtests/run.py, loadtests/accounts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests import accounts, run
from loadtests.accounts import Account, AccountsError

HOST = ["--host", "http://staging.example:8000"]


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        run.parse_args(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_an_account_option_splits_at_the_first_colon() -> None:
    assert accounts.parse_option("ann@example.com:pa:ss") == Account("ann@example.com", "pa:ss")


@pytest.mark.parametrize("text", ["ann@example.com", "ann:secret", "ann@example.com:"])
def test_a_malformed_account_is_refused_without_echoing_the_password(text: str) -> None:
    with pytest.raises(AccountsError) as exc:
        accounts.parse_option(text)
    assert "secret" not in str(exc.value)


def test_accounts_csv_with_roles(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("email,password,role\na@x.io,pw1,\nm@x.io,pw2,manager\n\n")
    assert accounts.read_csv(path) == [
        Account("a@x.io", "pw1", "user"),
        Account("m@x.io", "pw2", "manager"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [("mail,secret\na@x.io,pw\n", "must name email and password"), ("email,password\n", "no acc")],
)
def test_an_unusable_accounts_csv_says_why(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(content)
    with pytest.raises(AccountsError, match=message):
        accounts.read_csv(path)


def test_accounts_travel_to_locust_through_the_environment() -> None:
    given = [Account("a@x.io", "pw"), Account("m@x.io", "pw2", "manager")]
    assert accounts.from_env({accounts.ENV: accounts.to_env(given)}) == given
    assert accounts.from_env({}) == []


def test_host_without_accounts_names_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error([*HOST, "--scenario", "mixed"], capsys)
    assert "--account EMAIL:PASSWORD" in err
    assert "--manager-account" in err  # the writers need a manager too


def test_host_with_user_accounts_but_no_manager_is_refused_for_writers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _usage_error([*HOST, "--scenario", "write", "--account", "a@x.io:pw"], capsys)
    assert "manager account" in err
    assert "--account EMAIL:PASSWORD (repeatable)" not in err  # the users' accounts were given


def test_anonymous_browsing_needs_no_account() -> None:
    options = run.parse_args([*HOST, "--scenario", "browse", "--item-ids", "500"])
    assert options.host == "http://staging.example:8000"
    assert options.seed_items == 500  # the ids the users read


def test_host_with_accounts_from_options_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("email,password\nb@x.io,pw2\n")
    options = run.parse_args(
        [
            *HOST,
            "--account",
            "a@x.io:pw",
            "--manager-account",
            "m@x.io:pw3",
            "--accounts-csv",
            str(path),
        ]
    )
    assert [a.email for a in options.accounts] == ["a@x.io", "m@x.io", "b@x.io"]
    assert options.accounts[1].role == accounts.MANAGER


@pytest.mark.parametrize(
    "extra",
    [
        ["--seed-users", "10"],
        ["--seed-items", "10"],
        ["--set", "KIT_DB_POOL_SIZE=5"],
        ["--order-delay", "0"],
        ["--workers", "4"],
        ["--no-celery"],
        ["--profile"],
    ],
)
def test_host_refuses_what_would_seed_reset_or_reconfigure_it(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error([*HOST, "--scenario", "browse", *extra], capsys)
    assert "never seeds, resets or reconfigures it" in err
    assert extra[0] in err


@pytest.mark.parametrize("scenario", ["compare", "ratelimit"])
def test_host_refuses_scenarios_that_need_their_own_servers_or_settings(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error([*HOST, "--scenario", scenario, "--account", "a@x.io:pw"], capsys)
    assert "against --host use one of" in err


def test_host_must_be_a_base_url(capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(["--host", "staging.example", "--scenario", "browse"], capsys)
    assert "base URL" in err


def test_seeding_is_refused_for_a_deployment_the_run_did_not_start() -> None:
    options = run.parse_args([*HOST, "--scenario", "browse"])
    with pytest.raises(run.RemoteDatabaseError, match="refusing to seed"):
        run.seed_command(options)
    assert "--force" in run.seed_command(run.parse_args([]))  # the run's own database


def test_master_waits_for_its_workers_on_the_given_address(tmp_path: Path) -> None:
    options = run.parse_args(
        [
            "--master",
            "--expect-workers",
            "2",
            "--master-bind-host",
            "127.0.0.1",
            "--master-port",
            "6000",
        ]
    )
    argv = run.locust_command(options, "http://h", tmp_path)
    joined = " ".join(argv)
    assert "--master --expect-workers 2" in joined
    assert "--master-bind-host 127.0.0.1 --master-bind-port 6000" in joined


def test_worker_joins_the_master_and_runs_the_scenarios_users(tmp_path: Path) -> None:
    options = run.parse_args(
        ["--worker", "--master-host", "10.0.0.5", "--master-port", "6000", "--scenario", "guide"]
    )
    argv = run.locust_worker_command(options, tmp_path)
    joined = " ".join(argv)
    assert "--worker --master-host 10.0.0.5 --master-port 6000" in joined
    assert "--headless" not in argv  # the master drives it
    assert argv[-1] == "APIUser"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--worker"], "--worker needs --master-host"),
        (["--master", "--worker", "--master-host", "h"], "not both"),
        (["--master", "--processes", "4"], "not with --master or --worker"),
    ],
)
def test_distributed_mode_combinations_that_cannot_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in _usage_error(argv, capsys)


def test_compare_needs_a_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "holds no summary.json" in _usage_error(["--compare", str(tmp_path)], capsys)


def test_a_missing_prometheus_is_named_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert "apt-get install -y prometheus" in _usage_error(["--prometheus"], capsys)


def test_a_missing_py_spy_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    assert "needs py-spy" in _usage_error(["--profile"], capsys)
