"""Hostile input against the running server: schemathesis generates it from the app's own OpenAPI
schema, and hand-written requests add what generators rarely send (guide: "Error Middleware",
"Type Safety"). The promise under test: bad input gets a 4xx in the envelope, never a 5xx, never
an undocumented status, and changes nothing.

The server runs as a real subprocess (`python -m reference_app serve`) on this worker's migrated
database and Redis database; whatever it commits is truncated and flushed at the end of the module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from patterns.testing import wait_until_async
from patterns.testing.backends import free_port
from patterns.testing.plugin import truncate_all

pytestmark = pytest.mark.slow

API = "/api/v1"
ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzz-admin-password-1"
STAFF_PASSWORD = "fuzz-staff-password-1"
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0  # a hostile request that takes longer counts as a hang
# Per operation and phase. Both passes together stay well under a minute on 2 cores.
MAX_EXAMPLES = 40
FUZZ_TIMEOUT_S = 300
# Every documented response is checked against its schema (the envelope, for errors), every
# returned status must be documented, schema-violating input must be refused, and a protected
# operation must refuse a request without or with a forged token.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
]
# Logging out revokes the token the authenticated pass runs with, and an admin's change of a user
# can deactivate or demote the accounts the other checks log in with; the anonymous pass covers
# both (401), tests/integration/test_principals.py covers the admin change.
EXCLUDED_WITH_TOKEN = ["/api/v1/auth/logout", "/api/v1/admin/users/{user_id}"]


@dataclass
class LiveServer:
    base: str
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)  # role -> access token
    item_ids: list[int] = field(default_factory=list)
    order_id: int = 0

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def errors_logged(self) -> list[str]:
        """Log lines at error level or worse, and tracebacks: an exception a response hid (an
        after-commit hook, a background task) is a finding too."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                level = json.loads(line).get("level")
            except (ValueError, AttributeError):
                level = None
            if level in ("error", "critical") or "Traceback" in line:
                found.append(line)
        return found


def _server_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    env.update(
        KIT_ENV="test",
        KIT_DATABASE_URL=database_url,
        KIT_REDIS_URL=redis_url,
        KIT_RATE_LIMIT_REGISTER="100000/60",
        KIT_RATE_LIMIT_LOGIN="100000/60",
        KIT_ORDER_PROCESSING_DELAY_S="3600",
        KIT_CACHE_WARM_ON_STARTUP="false",
        KIT_FIRST_ADMIN_EMAIL=ADMIN_EMAIL,
        KIT_FIRST_ADMIN_PASSWORD=ADMIN_PASSWORD,
        KIT_LOG_LEVEL="WARNING",
        KIT_LOG_JSON="true",  # one JSON object a line: levels are read back by errors_logged
    )
    return env


async def _wait_until_ready(proc: subprocess.Popen[bytes], server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=2.0) as client:

        async def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{server.log_tail()}")
            return (await client.get("/health/ready")).status_code == 200

        await wait_until_async(
            ready,
            f"the server to be ready (log: {server.log})",
            timeout_s=START_TIMEOUT_S,
            interval=0.1,
            ignore=(httpx.TransportError,),
        )


async def _login(client: httpx.AsyncClient, email: str, password: str) -> str:
    r = await client.post(f"{API}/auth/login", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def _seed(server: LiveServer) -> None:
    """A user of each role, three stocked items, and one order holding all of them (so the
    fuzzer's DELETEs get a 409 for these instead of emptying the catalog)."""
    async with httpx.AsyncClient(base_url=server.base, timeout=REQUEST_TIMEOUT_S) as client:
        server.tokens["admin"] = await _login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        for role in ("manager", "user"):
            email = f"fuzz-{role}@example.com"
            r = await client.post(
                f"{API}/users/",
                json={"email": email, "password": STAFF_PASSWORD, "role": role},
                headers=server.auth("admin"),
            )
            assert r.status_code == 201, r.text
            server.tokens[role] = await _login(client, email, STAFF_PASSWORD)
        for n in range(3):
            r = await client.post(
                f"{API}/items",
                json={"title": f"Fuzz item {n}", "category": "fuzz", "price": "9.99"},
                headers=server.auth("admin"),
            )
            assert r.status_code == 201, r.text
            item_id = int(r.json()["id"])
            r = await client.put(
                f"{API}/items/{item_id}/inventory",
                json={"quantity": 1000},
                headers=server.auth("manager"),
            )
            assert r.status_code == 200, r.text
            server.item_ids.append(item_id)
        r = await client.post(
            f"{API}/orders",
            json={"items": [{"id": i, "quantity": 1} for i in server.item_ids]},
            headers=server.auth("user"),
        )
        assert r.status_code == 201, r.text
        server.order_id = int(r.json()["id"])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def committed_by_server(db_engine: AsyncEngine, redis_url: str) -> AsyncIterator[None]:
    """Empty tables (ids from 1: the fuzzer's small ids then hit the seeded rows) and Redis
    database before the server starts, and again once it (set up later, so stopped earlier) is
    gone: what it committed must not leak into this worker's next tests."""

    async def empty() -> None:
        await truncate_all(db_engine)
        redis = Redis.from_url(redis_url)
        try:
            await redis.flushdb()
        finally:
            await redis.aclose()

    await empty()
    yield
    await empty()


@pytest.fixture(scope="module")
def server_process(
    committed_by_server: None,
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[bytes], LiveServer]]:
    workdir = tmp_path_factory.mktemp("fuzz-server")  # no stray .env is read from the repo
    port = free_port()
    server = LiveServer(base=f"http://127.0.0.1:{port}", log=workdir / "server.log")
    command = [sys.executable, "-m", "reference_app", "serve", "--host", "127.0.0.1"]
    with server.log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=workdir,
            env=_server_env(database_url, redis_url),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole below
        )
    try:
        yield proc, server
    finally:
        _stop(proc)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live_server(
    server_process: tuple[subprocess.Popen[bytes], LiveServer],
) -> LiveServer:
    """The app as a client meets it: its own process, its own connections, real commits."""
    proc, server = server_process
    await _wait_until_ready(proc, server)
    await _seed(server)
    return server


# --- generated from the schema -------------------------------------------------------------


def _schemathesis(
    server: LiveServer, workdir: Path, *extra: str
) -> tuple[int, str, dict[str, Any]]:
    report = workdir / "report.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server.base}{API}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--mode",
        "all",  # positive and negative (schema-violating) data
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",  # derandomised: the same cases every run
        "--workers",
        "1",
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *extra,
    ]
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S, check=False
    )
    output = done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    return done.returncode, output, summary


def _assert_clean(code: int, output: str, summary: Mapping[str, Any], server: LiveServer) -> None:
    # On failure schemathesis prints each case with a `curl` line that reproduces it.
    assert code == 0, f"{output}\n--- server log (tail) ---\n{server.log_tail()}"
    operations, cases = summary["operations"], summary["test_cases"]
    print(f"schemathesis: {operations['tested']} operations, {cases['generated']} cases")
    assert operations["tested"] == operations["selected"] > 0, output
    assert cases["generated"] > 0, output
    assert summary["failures"] == [], output
    assert summary["errors"] == [], output
    assert server.errors_logged() == []


def test_schema_generated_requests_with_an_admin_token_get_documented_answers(
    live_server: LiveServer, tmp_path: Path
) -> None:
    code, output, summary = _schemathesis(
        live_server,
        tmp_path,
        "--header",
        f"Authorization: Bearer {live_server.tokens['admin']}",
        *(arg for path in EXCLUDED_WITH_TOKEN for arg in ("--exclude-path", path)),
    )
    _assert_clean(code, output, summary, live_server)


def test_schema_generated_requests_without_credentials_get_documented_answers(
    live_server: LiveServer, tmp_path: Path
) -> None:
    code, output, summary = _schemathesis(live_server, tmp_path)
    _assert_clean(code, output, summary, live_server)


# --- hand-written: what generators rarely produce -------------------------------------------


@dataclass(frozen=True)
class Hostile:
    method: str
    path: str
    expected: frozenset[int]
    role: str | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] | None = None


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BIG = 4 * 1024 * 1024
DEPTH = 100_000
CASES: dict[str, Hostile] = {
    "huge-json-string": Hostile(
        "POST",
        f"{API}/items",
        frozenset({413}),  # over KIT_MAX_BODY_BYTES: refused before it is read whole
        role="admin",
        content=_json({"title": "x", "category": "c", "price": 1, "description": "d" * BIG}),
        headers=JSON,
    ),
    "huge-json-array": Hostile(
        "POST",
        f"{API}/orders",
        frozenset({413}),
        role="user",
        content=_json({"items": [{"id": 1, "quantity": 1}] * (BIG // 24)}),
        headers=JSON,
    ),
    "deeply-nested-array": Hostile(
        "POST",
        f"{API}/items",
        frozenset({400, 422}),
        role="admin",
        content=b"[" * DEPTH + b"]" * DEPTH,
        headers=JSON,
    ),
    "deeply-nested-object": Hostile(
        "POST",
        f"{API}/auth/register",
        frozenset({400, 422}),
        content=b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
        headers=JSON,
    ),
    "invalid-utf8-body": Hostile(
        "POST",
        f"{API}/items",
        frozenset({400, 422}),
        role="admin",
        content=b'{"title": "\xff\xfe", "category": "c", "price": 1}',
        headers=JSON,
    ),
    "invalid-utf8-in-number-query": Hostile(
        "GET", f"{API}/items?min_price=%FF%FE", frozenset({422})
    ),
    "invalid-utf8-in-text-query": Hostile(
        # Decoded with replacement characters: a search that finds nothing is a fair answer.
        "GET",
        f"{API}/items?q=%FF%FE&category=%C0%80",
        frozenset({200, 422}),
    ),
    "nul-in-query": Hostile("GET", f"{API}/items?category=a%00b", frozenset({422})),
    "form-to-json-route": Hostile(
        "POST",
        f"{API}/items",
        frozenset({422}),
        role="admin",
        data={"title": "x", "category": "c", "price": "1"},
    ),
    "json-as-text-plain": Hostile(
        "POST",
        f"{API}/items",
        frozenset({422}),
        role="admin",
        content=_json({"title": "x", "category": "c", "price": 1}),
        headers={"Content-Type": "text/plain"},
    ),
    "json-to-login-form": Hostile(
        "POST",
        f"{API}/auth/login",
        frozenset({422}),
        content=_json({"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        headers=JSON,
    ),
    "garbage-multipart-to-login": Hostile(
        "POST",
        f"{API}/auth/login",
        frozenset({400, 422}),
        content=b"--x\r\nnot a part",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    ),
    "invalid-utf8-login-form": Hostile(
        "POST",
        f"{API}/auth/login",
        frozenset({400, 401, 422}),
        content=b"username=\xff%FE&password=\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe",
        headers=FORM,
    ),
    "nul-in-login-username": Hostile(
        "POST",
        f"{API}/auth/login",
        frozenset({401, 422}),
        data={"username": f"fuzz\x00{ADMIN_EMAIL}", "password": ADMIN_PASSWORD},
    ),
    "ten-kb-bearer-token": Hostile(
        "GET",
        f"{API}/users/me",
        frozenset({401}),
        headers={"Authorization": "Bearer " + "eyJ" + "A" * 10_240},
    ),
    "bearer-without-token": Hostile(
        "GET", f"{API}/users/me", frozenset({401}), headers={"Authorization": "Bearer"}
    ),
    "refresh-token-with-nul": Hostile(
        "POST",
        f"{API}/auth/refresh",
        frozenset({401, 422}),
        content=_json({"refresh_token": "a\x00b"}),
        headers=JSON,
    ),
}
for raw_id in ["1e3", "0x10", "%00", "-1", "0", "2147483648", "9" * 40, "%FF", "1;DROP", "１"]:
    CASES[f"item-id-{raw_id[:12]}"] = Hostile("GET", f"{API}/items/{raw_id}", frozenset({422}))
    CASES[f"order-id-{raw_id[:12]}"] = Hostile(
        "GET", f"{API}/orders/{raw_id}", frozenset({422}), role="user"
    )
for traversal in ["..%2F..%2Fadmin%2Fusers", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2f1"]:
    CASES[f"traversal-{traversal[:10]}"] = Hostile(
        "GET", f"{API}/items/{traversal}", frozenset({404, 422})
    )
    CASES[f"traversal-inventory-{traversal[:10]}"] = Hostile(
        "PUT",
        f"{API}/items/{traversal}/inventory",
        frozenset({404, 422}),
        role="admin",
        content=_json({"quantity": 0}),
        headers=JSON,
    )


async def _state(client: httpx.AsyncClient, server: LiveServer) -> tuple[int, ...]:
    """What a hostile request must leave alone: items, users, the user's orders, the stock."""
    items = (await client.get(f"{API}/items")).json()["total"]
    users = (await client.get(f"{API}/admin/users", headers=server.auth("admin"))).json()["total"]
    r = await client.get(f"{API}/orders", headers=server.auth("user"))
    assert r.status_code == 200, r.text
    orders = r.json()["total"]
    return (int(items), int(users), int(orders))


@pytest.mark.parametrize("name", sorted(CASES))
async def test_hostile_request_gets_a_4xx_in_the_envelope_and_changes_nothing(
    live_server: LiveServer, name: str
) -> None:
    case = CASES[name]
    headers = dict(case.headers)
    if case.role:
        headers.update(live_server.auth(case.role))
    async with httpx.AsyncClient(base_url=live_server.base, timeout=REQUEST_TIMEOUT_S) as client:
        before = await _state(client, live_server)
        # A timeout here fails the test: a hang is a finding too.
        r = await client.request(
            case.method, case.path, content=case.content, data=case.data, headers=headers
        )
        after = await _state(client, live_server)
    assert r.status_code in case.expected, f"{r.status_code} {r.text[:500]}"
    assert after == before
    assert live_server.errors_logged() == []
    if r.status_code >= 400:
        error = r.json()["error"]
        assert set(error) >= {"code", "message", "request_id"}, error
        assert error["request_id"] == r.headers["X-Request-ID"]
