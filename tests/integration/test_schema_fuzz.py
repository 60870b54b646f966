"""Hostile input against the running server: schemathesis generates it from the app's own OpenAPI
schema, and hand-written requests add what generators rarely send (guide: "Error Middleware",
"Type Safety"). The promise under test: the OpenAPI document is the contract. Every one of
schemathesis' checks passes (no 5xx, only documented statuses, headers and bodies, schema-valid
input accepted and schema-violating input refused, 405 with the path's `Allow` for undeclared
methods, authentication not ignored), in every phase including the stateful one, which follows
the document's links from what a request created to the operations that take it; and every
operation is reached (answers 2xx at least once), not only refused.

The server runs as a real subprocess (`python -m reference_app serve`) on this worker's migrated
database and Redis database; whatever it commits is truncated and flushed at the end of the module.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from loadtests.processes import stop_group
from patterns.testing import wait_until_async
from patterns.testing.backends import free_port
from patterns.testing.plugin import truncate_all

pytestmark = pytest.mark.slow

API = "/api/v1"
REPO = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzz-admin-password-1"
STAFF_PASSWORD = "fuzz-staff-password-1"
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0  # a hostile request that takes longer counts as a hang
# Per operation and phase. The three passes together take about a minute on 2 cores.
MAX_EXAMPLES = 40
FUZZ_TIMEOUT_S = 300
# The rules the document cannot state (a price range the right way up, opaque cursors, one body
# per idempotency key).
HOOKS = "tests.integration.schemathesis_hooks"
# Logging out revokes the token a pass runs with: the admin pass leaves it out, and the session
# pass runs it with a throwaway user's token, beside the operations a login is made of, so that
# its stateful phase follows register → login → refresh. Nothing else the admin may do ends the
# admin's session (an admin cannot deactivate or demote themselves; a new password needs the
# current one).
SESSION_ENDING = ["/api/v1/auth/logout"]
SESSION = ["/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh", *SESSION_ENDING]


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
        KIT_RATE_LIMIT_LOGIN_ACCOUNT="100000/60",
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
            json={"items": [{"item_id": i, "quantity": 1} for i in server.item_ids]},
            headers=server.auth("user"),
        )
        assert r.status_code == 201, r.text
        server.order_id = int(r.json()["id"])


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
        stop_group(proc, 30)


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


@dataclass
class FuzzRun:
    """One schemathesis pass: its exit code, output, JSON report and every status it got."""

    code: int
    output: str
    summary: dict[str, Any]
    statuses: dict[str, set[int]]  # "METHOD /path" (as documented) -> statuses answered


def _operations(document: Mapping[str, Any]) -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, documented path, regex of concrete paths): literal paths first, so
    `/items/featured` is not counted as `/items/{item_id}`."""
    ops = [
        (method.upper(), path, re.compile("^" + re.sub(r"\{[^}/]+\}", "[^/]+", path) + "$"))
        for path, item in document["paths"].items()
        for method in item
    ]
    return sorted(ops, key=lambda op: op[1].count("{"))


def _statuses(har: Path, base: str, document: Mapping[str, Any]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = defaultdict(set)
    ops = _operations(document)
    for entry in json.loads(har.read_text())["log"]["entries"]:
        method = entry["request"]["method"]
        path = entry["request"]["url"].removeprefix(base).split("?")[0]
        for op_method, op_path, pattern in ops:
            if op_method == method and pattern.match(path):
                found[f"{method} {op_path}"].add(int(entry["response"]["status"]))
                break
    return dict(found)


ALL_PHASES = "examples,coverage,fuzzing,stateful"


def _schemathesis(server: LiveServer, workdir: Path, *extra: str) -> FuzzRun:
    report, har = workdir / "report.json", workdir / "requests.har"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server.base}{API}/openapi.json",
        "--checks",
        "all",
        "--phases",
        ALL_PHASES,
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
        "json,har",
        "--report-json-path",
        str(report),
        "--report-har-path",
        str(har),
        *extra,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(REPO)}
    # no check: the exit code is part of the result
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S
    )
    output = done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    document = httpx.get(f"{server.base}{API}/openapi.json").json()
    statuses = _statuses(har, server.base, document) if har.exists() else {}
    return FuzzRun(done.returncode, output, summary, statuses)


async def _restore_seeded_accounts(server: LiveServer) -> None:
    """The admin pass may deactivate or demote the seeded manager and user (that is what the
    operation is for); the hand-written cases below log in with them, so they are put back."""
    async with httpx.AsyncClient(base_url=server.base, timeout=REQUEST_TIMEOUT_S) as client:
        for role in ("manager", "user"):
            r = await client.get(
                f"{API}/admin/users", params={"limit": 100}, headers=server.auth("admin")
            )
            assert r.status_code == 200, r.text
            (user,) = [u for u in r.json()["items"] if u["email"] == f"fuzz-{role}@example.com"]
            r = await client.patch(
                f"{API}/admin/users/{user['id']}",
                json={"is_active": True, "role": role},
                headers=server.auth("admin"),
            )
            assert r.status_code == 200, r.text


async def _throwaway_token(server: LiveServer) -> str:
    async with httpx.AsyncClient(base_url=server.base, timeout=REQUEST_TIMEOUT_S) as client:
        r = await client.post(
            f"{API}/auth/register",
            json={"email": "fuzz-logout@example.com", "password": STAFF_PASSWORD},
        )
        assert r.status_code == 201, r.text
        return await _login(client, "fuzz-logout@example.com", STAFF_PASSWORD)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_runs(
    live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, FuzzRun]:
    """The three passes, once for the module: anonymous, as the admin (all but logging out),
    and the session's operations with a throwaway user's token."""

    def run(name: str, *extra: str) -> FuzzRun:
        return _schemathesis(live_server, tmp_path_factory.mktemp(f"fuzz-{name}"), *extra)

    runs = {"anonymous": await asyncio.to_thread(run, "anonymous")}
    bearer = f"Authorization: Bearer {live_server.tokens['admin']}"
    excluded = [arg for path in SESSION_ENDING for arg in ("--exclude-path", path)]
    runs["admin"] = await asyncio.to_thread(run, "admin", "--header", bearer, *excluded)
    await _restore_seeded_accounts(live_server)
    bearer = f"Authorization: Bearer {await _throwaway_token(live_server)}"
    included = [arg for path in SESSION for arg in ("--include-path", path)]
    runs["session"] = await asyncio.to_thread(run, "session", "--header", bearer, *included)
    return runs


def _assert_clean(run: FuzzRun, server: LiveServer) -> None:
    # On failure schemathesis prints each case with a `curl` line that reproduces it.
    assert run.code == 0, f"{run.output}\n--- server log (tail) ---\n{server.log_tail()}"
    operations, cases = run.summary["operations"], run.summary["test_cases"]
    print(f"schemathesis: {operations['tested']} operations, {cases['generated']} cases")
    assert operations["tested"] == operations["selected"] > 0, run.output
    assert cases["generated"] > 0, run.output
    assert run.summary["failures"] == [], run.output
    assert run.summary["errors"] == [], run.output
    # Every phase ran (the document has no examples: that phase has nothing to do).
    ran = {name for name, phase in run.summary["phases"].items() if phase["status"] != "skip"}
    assert ran == {"coverage", "fuzzing", "stateful"}, run.summary["phases"]
    assert server.errors_logged() == []


@pytest.mark.parametrize("name", ["anonymous", "admin", "session"])
def test_schema_generated_requests_pass_every_check_in_every_phase(
    fuzz_runs: dict[str, FuzzRun], live_server: LiveServer, name: str
) -> None:
    _assert_clean(fuzz_runs[name], live_server)


def test_every_operation_is_reached_not_only_refused(
    fuzz_runs: dict[str, FuzzRun], live_server: LiveServer
) -> None:
    """Across the passes each documented operation answered 2xx at least once: the fuzzer got
    past authentication, permissions and unknown ids to the operation's own logic."""
    document = httpx.get(f"{live_server.base}{API}/openapi.json").json()
    answered: dict[str, set[int]] = defaultdict(set)
    for run in fuzz_runs.values():
        for operation, statuses in run.statuses.items():
            answered[operation] |= statuses
    unreached = {
        f"{method} {path}": sorted(answered.get(f"{method} {path}", set()))
        for method, path, _ in _operations(document)
        if not any(200 <= s < 300 for s in answered.get(f"{method} {path}", set()))
    }
    assert unreached == {}, unreached


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


def _sent(
    method: str,
    path: str,
    expected: set[int],
    body: object,
    role: str | None = None,
    content_type: str = "application/json",
) -> Hostile:
    """A request whose body is `body` as it is (bytes) or as JSON, labelled `content_type`."""
    content = body if isinstance(body, bytes) else _json(body)
    headers = {"Content-Type": content_type}
    return Hostile(method, f"{API}{path}", frozenset(expected), role, content, headers)


def _get(path: str, expected: set[int], role: str | None = None) -> Hostile:
    return Hostile("GET", f"{API}{path}", frozenset(expected), role)


FORM = "application/x-www-form-urlencoded"
BIG = 4 * 1024 * 1024
DEPTH = 100_000
ITEM = {"title": "x", "category": "c", "price": 1}
ADMIN_LOGIN = {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
CASES: dict[str, Hostile] = {
    # over KIT_MAX_BODY_BYTES: refused before it is read whole
    "huge-json-string": _sent("POST", "/items", {413}, {**ITEM, "description": "d" * BIG}, "admin"),
    "huge-json-array": _sent(
        "POST", "/orders", {413}, {"items": [{"id": 1, "quantity": 1}] * (BIG // 24)}, "user"
    ),
    "deeply-nested-array": _sent(
        "POST", "/items", {400, 422}, b"[" * DEPTH + b"]" * DEPTH, "admin"
    ),
    "deeply-nested-object": _sent(
        "POST", "/auth/register", {400, 422}, b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
    ),
    "invalid-utf8-body": _sent(
        "POST", "/items", {400, 422}, b'{"title": "\xff\xfe", "category": "c", "price": 1}', "admin"
    ),
    "invalid-utf8-in-number-query": _get("/items?min_price=%FF%FE", {422}),
    # Decoded with replacement characters: a search that finds nothing is a fair answer.
    "invalid-utf8-in-text-query": _get("/items?q=%FF%FE&category=%C0%80", {200, 422}),
    "nul-in-query": _get("/items?category=a%00b", {422}),
    "form-to-json-route": Hostile(
        "POST",
        f"{API}/items",
        frozenset({422}),
        "admin",
        data={"title": "x", "category": "c", "price": "1"},
    ),
    "json-as-text-plain": _sent("POST", "/items", {422}, ITEM, "admin", "text/plain"),
    "json-to-login-form": _sent("POST", "/auth/login", {422}, ADMIN_LOGIN),
    "garbage-multipart-to-login": _sent(
        "POST",
        "/auth/login",
        {400, 422},
        b"--x\r\nnot a part",
        content_type="multipart/form-data; boundary=x",
    ),
    "invalid-utf8-login-form": _sent(
        "POST",
        "/auth/login",
        {400, 401, 422},
        b"username=\xff%FE&password=" + b"\xfe" * 8,
        content_type=FORM,
    ),
    "nul-in-login-username": Hostile(
        "POST",
        f"{API}/auth/login",
        frozenset({401, 422}),
        data={**ADMIN_LOGIN, "username": f"fuzz\x00{ADMIN_EMAIL}"},
    ),
    "ten-kb-bearer-token": Hostile(
        "GET",
        f"{API}/users/me",
        frozenset({401}),
        headers={"Authorization": "Bearer eyJ" + "A" * 10_240},
    ),
    "bearer-without-token": Hostile(
        "GET", f"{API}/users/me", frozenset({401}), headers={"Authorization": "Bearer"}
    ),
    "refresh-token-with-nul": _sent(
        "POST", "/auth/refresh", {401, 422}, {"refresh_token": "a\x00b"}
    ),
}
for raw_id in ["1e3", "0x10", "%00", "-1", "0", "2147483648", "9" * 40, "%FF", "1;DROP", "１"]:
    CASES[f"item-id-{raw_id[:12]}"] = _get(f"/items/{raw_id}", {422})
    CASES[f"order-id-{raw_id[:12]}"] = _get(f"/orders/{raw_id}", {422}, role="user")
for traversal in ["..%2F..%2Fadmin%2Fusers", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2f1"]:
    CASES[f"traversal-{traversal[:10]}"] = _get(f"/items/{traversal}", {404, 422})
    CASES[f"traversal-inventory-{traversal[:10]}"] = _sent(
        "PUT", f"/items/{traversal}/inventory", {404, 422}, {"quantity": 0}, role="admin"
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
