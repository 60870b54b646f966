"""A newcomer's first minutes: `python -m reference_app serve` with nothing configured starts on
the embedded default with demo data, and what it prints is enough to register, log in, read,
order and see the order processed (docs/quick-start.md). Its start-up output carries no library
noise (Alembic's plugin list, kombu's hostname warning).

The server runs as a subprocess in a directory of its own; the test follows the printed lines:
the login command's address and credentials, the order command's body, and the stated delay.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from patterns.testing import wait_until
from patterns.testing.backends import free_port

pytestmark = pytest.mark.slow

WAIT_S = 60


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The embedded default as a newcomer starts it: no KIT_* setting at all."""
    workdir = tmp_path_factory.mktemp("newcomer")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    command = [sys.executable, "-m", "reference_app", "serve", "--port", str(port)]
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=out)
    try:
        wait_until(
            lambda: "Application startup complete" in log.read_text(),
            "start-up",
            timeout_s=WAIT_S,
            process=proc,
        )
        yield log.read_text(), workdir
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=WAIT_S)


def line_starting(output: str, prefix: str) -> str:
    for line in output.splitlines():
        if line.strip().startswith(prefix):
            return line.strip()
    pytest.fail(f"no start-up line starting with {prefix!r} in:\n{output}")


def test_the_start_up_lines_are_enough_to_order_and_see_it_processed(
    served: tuple[str, Path],
) -> None:
    output, _ = served
    assert "embedded default" in line_starting(output, "Core Concepts Kit on")
    docs = line_starting(output, "OpenAPI page:").split()[-1]
    assert httpx.get(docs).status_code == 200

    # 1. log in, with the printed command's address and demo credentials.
    login = shlex.split(line_starting(output, "1. log in:").split("$(", 1)[1])
    fields = dict(arg.split("=", 1) for arg in login if "=" in arg and not arg.startswith("http"))
    login_url = next(arg for arg in login if arg.startswith("http"))
    response = httpx.post(login_url, data=fields)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    # 2. read the catalog: the demo data is there.
    items_url = re.search(r"'(http[^']+)'", line_starting(output, "2. read:"))
    assert items_url is not None
    items = httpx.get(items_url.group(1)).json()["items"]
    assert items

    # 3. order with the printed body, then watch it go from pending to processed.
    order_line = line_starting(output, "3. order:")
    body = re.search(r"-d '(\{.*\})'", order_line)
    order_url = order_line.split()[-1]
    assert body is not None
    created = httpx.post(
        order_url, content=body.group(1), headers={**auth, "Content-Type": "application/json"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    delay = re.search(r"processed (\d+) s after", line_starting(output, "Orders are processed"))
    assert delay is not None
    assert int(delay.group(1)) <= 10

    def processed() -> bool:
        order = httpx.get(f"{order_url}/{created.json()['id']}", headers=auth).json()
        return bool(order["status"] == "processed")

    wait_until(
        processed, "the order to be processed", timeout_s=int(delay.group(1)) + WAIT_S, interval=0.2
    )

    # Registering is the other way in, at the printed path.
    register = re.search(r"POST (/\S+)", line_starting(output, "Demo logins:"))
    assert register is not None
    base = docs.removesuffix("/docs")
    new_user = {"email": "newcomer@example.com", "password": "a-long-passphrase-1"}
    assert httpx.post(f"{base}{register.group(1)}", json=new_user).status_code == 201


def test_the_start_up_output_has_no_library_noise(served: tuple[str, Path]) -> None:
    output, _ = served
    assert "setup plugin" not in output
    assert "No hostname was supplied" not in output
    assert "Context impl" not in output
    assert "PromptMemoryTransport" not in output


def test_demo_data_is_added_once(served: tuple[str, Path]) -> None:
    """A second start on the same database adds nothing (the seed is idempotent)."""
    _, workdir = served
    code = (
        "import sqlite3; c = sqlite3.connect('.kit/kit.db'); "
        "print(c.execute('select count(*) from users').fetchone()[0], "
        "c.execute('select count(*) from items').fetchone()[0])"
    )
    before = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, check=True
    ).stdout
    from reference_app.cli import EMBEDDED_DEMO_ITEMS, _seed_demo
    from reference_app.core.config import Settings

    _seed_demo(Settings(database_url=f"sqlite:///{workdir / '.kit' / 'kit.db'}", _env_file=None))
    after = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, check=True
    ).stdout
    assert after == before
    assert int(before.split()[1]) == EMBEDDED_DEMO_ITEMS
