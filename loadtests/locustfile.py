"""Locust users for the kit's API (guide: "Load Testing"), on `FastHttpUser`.

* `APIUser` is the guide's user done right: it logs in through the OAuth2 password form (the
  guide posts JSON, which the login endpoint refuses), as its own seeded account, then reads its
  profile three times for every order it places; each order takes one seeded item, all of which
  have a million in stock.
* `BrowsingUser` is anonymous: lists, filters, pages and reads items.
* `WriterUser` logs in as the seeded manager: creates items, sets their stock, places orders.

Against a deployment the run did not start (`--host`), the users log in as the accounts handed
over in `KIT_LOAD_ACCOUNTS` (`loadtests/accounts.py`) instead of the seed's.
* `RateLimitProbe` logs in again and again: run against a server with a tiny login limit, it
  expects 429s (and counts them apart from the logins that were let through).
* The `Compare*` users and `PingUser` measure three endpoints beside a bare FastAPI `/ping`
  (`loadtests/ping_app.py`) at the same offered rate.

Request names carry their SLO group as a prefix (`"orders: POST /api/v1/orders"`), one group per
endpoint whichever user sends it; at the end of the run `loadtests.slo` holds each group to its
thresholds, writes the text summary (and its figures as JSON beside it, for `--compare`) and sets
Locust's exit code. In distributed mode the master also lists what each worker reported.
`loadtests/run.py` starts the stack and picks the users for a scenario.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import uuid
from typing import Any
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, between, events, task
from locust.argument_parser import LocustArgumentParser
from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests import accounts, slo
from loadtests.pacing import poisson_throughput

LOGIN_URL = "/api/v1/auth/login"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DEMO_PASSWORD = "demo-password"  # noqa: S105 (the seed's documented demo password)
GUIDE_ACCOUNT = ("test@example.com", "testpass123")  # the guide's own test user
MANAGER_ACCOUNT = ("manager@example.com", DEMO_PASSWORD)
CATEGORIES = ["books", "games", "tools", "music", "garden", "kitchen", "sports", "toys"]
ORDER = "orders: POST /api/v1/orders"  # one SLO group for an order, whoever places it
_accounts = itertools.count(0)
_GIVEN = accounts.from_env(os.environ)
_GIVEN_USERS = [(a.email, a.password) for a in _GIVEN if a.role != accounts.MANAGER]
_GIVEN_MANAGER = next(((a.email, a.password) for a in _GIVEN if a.role == accounts.MANAGER), None)
# Distributed mode, on the master: requests each worker reported (client id → count).
_worker_requests: dict[str, int] = {}


def log_in(client: FastHttpSession, email: str, password: str, name: str) -> ResponseContextManager:
    """POST the login form under the row `name`; the caller judges the answer (`catch_response`)."""
    return client.post(
        LOGIN_URL,
        data=urlencode({"username": email, "password": password}),
        headers=FORM,
        name=name,
        catch_response=True,
    )


def _add_arguments(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("kit", "Core Concepts Kit load options")
    group.add_argument("--slo-profile", default="default", help="thresholds: loadtests/slo.py")
    group.add_argument("--min-rps", type=float, default=None, help="throughput floor (total)")
    group.add_argument("--summary-file", default=None, help="write the SLO summary here")
    group.add_argument("--seed-users", type=int, default=200, help="demo users seeded")
    group.add_argument(
        "--seed-items", type=int, default=20_000, help="items with ids 1..N to read and order"
    )
    group.add_argument(
        "--user-rate",
        type=float,
        default=0.0,
        help="task runs per second per user (Poisson arrivals); 0: the guide's 1-3 s wait",
    )
    group.add_argument("--ping-host", default=None, help="base URL of loadtests/ping_app.py")
    group.add_argument(
        "--warmup", type=float, default=0.0, help="seconds from the start whose stats are dropped"
    )


def _start_warmup(environment: Environment, **_: Any) -> None:
    """After `--warmup` seconds, drop the statistics so far: the verdict is the steady state.

    Each process resets its own (a worker's next report then carries only new requests), the
    master its aggregate; the run's duration is then counted from the reset too."""
    options = environment.parsed_options
    if options is None or options.warmup <= 0:
        return

    def reset() -> None:
        environment.stats.reset_all()
        logging.getLogger("loadtests").info("warm-up of %ss over: statistics reset", options.warmup)

    gevent.spawn_later(options.warmup, reset)


def _configure(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    rate = float(options.user_rate)
    for user_class in (APIUser, BrowsingUser, WriterUser, *COMPARE_USERS):
        # The guide waits 1-3 s between tasks; a rate per user lets a modest number of users
        # offer a known load instead.
        user_class.wait_time = poisson_throughput(rate) if rate > 0 else between(1, 3)


def _count_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    total = data.get("stats_total") or {}
    _worker_requests[client_id] = _worker_requests.get(client_id, 0) + int(
        total.get("num_requests", 0)
    )


def _verdict(environment: Environment, **_: Any) -> None:
    """On the master (or the only process): judge the run and set the exit code."""
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    options = environment.parsed_options
    total = environment.stats.total
    duration = max(0.0, (total.last_request_timestamp or total.start_time) - total.start_time)
    rows = [
        slo.RequestStats(e.method or "", e.name, e.num_requests, e.num_failures, e.response_times)
        for e in environment.stats.entries.values()
    ]
    verdict = slo.evaluate(
        rows,
        slo.thresholds_for(options.slo_profile, min_rps=options.min_rps),
        duration_s=duration,
        required=slo.REQUIRED.get(options.slo_profile, ()),
        exclude_from_total=slo.EXCLUDED_FROM_TOTAL.get(options.slo_profile, ()),
    )
    summary = slo.render(verdict, title=f"SLO profile {options.slo_profile!r}")
    figures = slo.to_json(verdict)
    if isinstance(environment.runner, MasterRunner):
        summary += f"statistics merged from {len(_worker_requests)} workers: " + ", ".join(
            f"{client} {count} requests" for client, count in sorted(_worker_requests.items())
        )
        summary += "\n"
        figures["workers"] = dict(_worker_requests)
    print(summary, flush=True)
    if options.summary_file:
        with open(options.summary_file, "w", encoding="utf-8") as out:
            out.write(summary)
        with open(f"{options.summary_file.removesuffix('.txt')}.json", "w") as out:
            json.dump(figures, out, indent=1)
    environment.process_exit_code = verdict.exit_code


def _option(user: FastHttpUser, name: str) -> Any:
    return getattr(user.environment.parsed_options, name)


def _random_item_id(user: FastHttpUser) -> int:
    """A seeded item (ids 1..N in the dedicated load database), each with ample stock."""
    return random.randint(1, int(_option(user, "seed_items")))


class _LoggedIn(FastHttpUser):
    abstract = True
    token = ""

    def account(self) -> tuple[str, str]:
        raise NotImplementedError

    def on_start(self) -> None:
        email, password = self.account()
        with log_in(self.client, email, password, name="auth: POST /api/v1/auth/login") as response:
            if response.status_code != 200:
                response.failure(f"login as {email}: {response.status_code} {response.text}")
                # A user without a token would only produce 401s that measure nothing.
                self.stop()
                return
            self.token = response.json()["access_token"]
        self.client.auth_header = f"Bearer {self.token}"

    def place_order(self) -> None:
        self.client.post(
            "/api/v1/orders",
            json={"items": [{"id": _random_item_id(self), "quantity": 1}]},
            name=ORDER,
        )


class APIUser(_LoggedIn):
    """The guide's user: profile ×3, order ×1, logged in once at start."""

    weight = 3

    def account(self) -> tuple[str, str]:
        if _GIVEN_USERS:
            return _GIVEN_USERS[next(_accounts) % len(_GIVEN_USERS)]
        n = next(_accounts) % (int(_option(self, "seed_users")) + 1)
        return GUIDE_ACCOUNT if n == 0 else (f"demo{n}@example.com", DEMO_PASSWORD)

    @task(3)
    def get_user_profile(self) -> None:
        self.client.get("/api/v1/users/profile", name="profile: GET /api/v1/users/profile")

    @task(1)
    def create_order(self) -> None:
        self.place_order()


class BrowsingUser(FastHttpUser):
    """An anonymous shopper: list, filter, page, one item."""

    weight = 3

    @task(2)
    def list_items(self) -> None:
        self.client.get("/api/v1/items?limit=100", name="catalog: GET /api/v1/items?limit=100")

    @task(2)
    def filter_items(self) -> None:
        low = random.randint(1, 400)
        query = {"category": random.choice(CATEGORIES), "min_price": low, "max_price": low + 50}
        self.client.get(
            f"/api/v1/items?{urlencode(query)}", name="catalog: GET /api/v1/items?category&price"
        )

    @task(2)
    def page_items(self) -> None:
        skip = random.randint(0, int(_option(self, "seed_items")) - 20)
        self.client.get(
            f"/api/v1/items?skip={skip}&limit=20", name="catalog: GET /api/v1/items?skip&limit"
        )

    @task(3)
    def read_item(self) -> None:
        self.client.get(
            f"/api/v1/items/{_random_item_id(self)}", name="catalog: GET /api/v1/items/{id}"
        )

    @task(1)
    def featured(self) -> None:
        self.client.get("/api/v1/items/featured", name="catalog: GET /api/v1/items/featured")


class WriterUser(_LoggedIn):
    """A manager at work: new items, their stock, and orders."""

    weight = 1

    def account(self) -> tuple[str, str]:
        return _GIVEN_MANAGER or MANAGER_ACCOUNT

    @task(2)
    def create_item_and_stock_it(self) -> None:
        body = {
            "title": f"Load item {uuid.uuid4().hex[:12]}",
            "category": random.choice(CATEGORIES),
            "price": f"{random.randint(100, 50_000) / 100:.2f}",
        }
        with self.client.post(
            "/api/v1/items", json=body, name="writes: POST /api/v1/items", catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code} {response.text}")
                return
            item_id = response.json()["id"]
        self.client.put(
            f"/api/v1/items/{item_id}/inventory",
            json={"quantity": random.randint(1, 1000)},
            name="writes: PUT /api/v1/items/{id}/inventory",
        )

    @task(1)
    def create_order(self) -> None:
        self.place_order()


class RateLimitProbe(FastHttpUser):
    """Logs in until the server says 429: run with a tiny `KIT_RATE_LIMIT_LOGIN`."""

    wait_time = between(0.05, 0.2)

    @task
    def login(self) -> None:
        email, password = GUIDE_ACCOUNT
        with log_in(
            self.client, email, password, name="ratelimit-allowed: POST /api/v1/auth/login"
        ) as response:
            if response.status_code == 429:
                # The expected answer past the limit: counted in its own row, and it must be
                # the error envelope with a Retry-After, not any 429.
                response.request_meta["name"] = "ratelimit-429: POST /api/v1/auth/login"
                code = response.json().get("error", {}).get("code")
                if not response.headers.get("Retry-After") or code is None:
                    response.failure(f"429 without Retry-After or envelope: {response.text}")
                else:
                    response.success()
            elif response.status_code != 200:
                response.failure(f"{response.status_code} {response.text}")


class CompareListItems(FastHttpUser):
    @task
    def list_items(self) -> None:
        self.client.get("/api/v1/items?limit=100", name="items-100: GET /api/v1/items?limit=100")


class CompareMe(_LoggedIn):
    def account(self) -> tuple[str, str]:
        if _GIVEN_USERS:
            return _GIVEN_USERS[next(_accounts) % len(_GIVEN_USERS)]
        n = next(_accounts) % int(_option(self, "seed_users")) + 1
        return (f"demo{n}@example.com", DEMO_PASSWORD)

    @task
    def me(self) -> None:
        self.client.get("/api/v1/users/me", name="me: GET /api/v1/users/me")


class CompareItemById(FastHttpUser):
    @task
    def item(self) -> None:
        item_id = _random_item_id(self)
        self.client.get(f"/api/v1/items/{item_id}", name="item: GET /api/v1/items/{id}")


class PingUser(FastHttpUser):
    """The baseline: a bare FastAPI app on the same server settings, at `--ping-host`.

    An absolute URL, because Locust gives every user class the `--host` of the run."""

    @task
    def ping(self) -> None:
        self.client.get(f"{_option(self, 'ping_host')}/ping", name="ping: GET /ping")


COMPARE_USERS = (CompareListItems, CompareMe, CompareItemById, PingUser)

events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]
events.init.add_listener(_configure)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_verdict)  # type: ignore[no-untyped-call]
events.worker_report.add_listener(_count_worker_report)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_start_warmup)  # type: ignore[no-untyped-call]
