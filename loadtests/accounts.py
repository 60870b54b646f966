"""Who the simulated users log in as (guide: "Load Testing").

On the stack `nox -s load` starts, the run seeds the accounts itself and the users log in as the
guide's test user and the seed's demo users. A deployment the run did not start (`--host`) has
accounts of its own: they come from `--account EMAIL:PASSWORD` options or a CSV file with the
columns `email,password[,role]` (role `manager` for the manager that writes the catalog).

The accounts reach Locust through the environment (`KIT_LOAD_ACCOUNTS`, JSON), never its command
line: the commands of a run are recorded in `run.txt`, and passwords have no place there.
Pure Python (no Locust import), so the rules are unit tested (`tests/unit/test_load_accounts.py`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENV = "KIT_LOAD_ACCOUNTS"
MANAGER = "manager"


class AccountsError(ValueError):
    """The accounts given cannot serve the scenario: the message says what is missing."""


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    role: str = "user"


def parse_option(text: str, role: str = "user") -> Account:
    """`EMAIL:PASSWORD` (split at the first colon: an address has none, a password may)."""
    email, sep, password = text.partition(":")
    if not sep or "@" not in email or not password:
        raise AccountsError(f"an account is EMAIL:PASSWORD, not {text.split(':', 1)[0]!r}:…")
    return Account(email.strip(), password, role)


def read_csv(path: Path) -> list[Account]:
    """Accounts from a CSV file with a header row naming `email`, `password` and optionally
    `role`; blank rows are skipped."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"email", "password"} - set(reader.fieldnames or ())
            if missing:
                raise AccountsError(
                    f"{path}: the header must name email and password (missing: "
                    f"{', '.join(sorted(missing))})"
                )
            found = [
                Account(row["email"].strip(), row["password"], (row.get("role") or "user").strip())
                for row in reader
                if (row.get("email") or "").strip()
            ]
    except OSError as exc:
        raise AccountsError(f"cannot read the accounts file {path}: {exc.strerror}") from None
    if not found:
        raise AccountsError(f"{path}: no accounts in the file")
    return found


# What each Locust user class logs in as; the others are anonymous.
NEEDS: Mapping[str, str] = {"APIUser": "user", "CompareMe": "user", "WriterUser": MANAGER}


def check(accounts: Sequence[Account], users: Iterable[str], scenario: str) -> None:
    """Raise AccountsError naming what a scenario's users need that `accounts` lacks."""
    roles = {account.role for account in accounts}
    needed = {NEEDS[user] for user in users if user in NEEDS}
    problems = []
    if "user" in needed and "user" not in roles:
        problems.append(
            "accounts to log in as: --account EMAIL:PASSWORD (repeatable) or --accounts-csv FILE "
            "(columns email,password[,role])"
        )
    if MANAGER in needed and MANAGER not in roles:
        problems.append(
            "a manager account (it creates and stocks items): --manager-account EMAIL:PASSWORD "
            "or a CSV row with role manager"
        )
    if problems:
        raise AccountsError(
            f"scenario {scenario!r} against a deployment the run did not start needs "
            + "; and ".join(problems)
        )


def to_env(accounts: Sequence[Account]) -> str:
    return json.dumps([[a.email, a.password, a.role] for a in accounts])


def from_env(environ: Mapping[str, str]) -> list[Account]:
    """The accounts handed over by `to_env`; none when the variable is unset (the run seeded)."""
    raw = environ.get(ENV)
    if not raw:
        return []
    return [Account(email, password, role) for email, password, role in json.loads(raw)]
