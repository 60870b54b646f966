"""PF004 evidence: the keys each version builds for four calls, what each call is served, and
what it should have been (the loader's answer)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from patterns.cache import Cache, CacheSettings
from patterns.db import session_scope
from pitfalls._evidence import Evidence
from pitfalls._runner import Backends
from pitfalls.pf004_cache_key_collision import data, right, wrong
from reference_app.models import Item, Order, User


@dataclass(frozen=True)
class Call:
    call: str
    key: str
    served: Any
    expected: Any

    @property
    def correct(self) -> bool:
        return bool(self.served == self.expected)


async def _people(backends: Backends) -> tuple[User, User]:
    async with session_scope(backends.sessionmaker) as s:
        alice = User(email="alice@example.com", hashed_password="-", full_name="Alice A.")
        bob = User(email="bob@example.com", hashed_password="-", full_name="Bob B.")
        s.add_all([alice, bob])
        await s.flush()
        s.add_all(
            [
                Item(title="kettle", category="kitchen", price=Decimal(10), owner_id=alice.id),
                Item(title="teapot", category="kitchen", price=Decimal(15), owner_id=alice.id),
                Order(user_id=alice.id, total=Decimal("42.00")),
            ]
        )
    return alice, bob


def _name(user: User) -> str:
    return user.email.split("@")[0]


def _short(key: str, prefix: str) -> str:
    key = key.removeprefix(prefix + ":")
    return re.sub(r"([0-9a-f]{8})[0-9a-f]{56}$", r"\1…", key)


async def calls(backends: Backends) -> dict[str, list[Call]]:
    """Both versions, same four calls in the same order."""
    alice, bob = await _people(backends)
    out: dict[str, list[Call]] = {"wrong": [], "right": []}
    cache = Cache(backends.redis, CacheSettings(prefix=backends.key("right")))
    wrong_prefix = backends.key("wrong")

    async def record(version: str, label: str, key: str, served: Any, expected: Any) -> None:
        out[version].append(Call(label, _short(key, backends.prefix), served, expected))

    for user, data_type in ((alice, "orders"), (alice, "items")):
        label = f"user_data({_name(user)}, {data_type!r})"
        async with backends.sessionmaker() as s:
            expected: Any = await data.user_data(s, user.id, data_type)
            served = await wrong.user_data(backends.redis, wrong_prefix, s, user.id, data_type)
            await record("wrong", label, f"{wrong_prefix}:user_data:{user.id}", served, expected)
            served = await right.user_data(cache, s, user.id, data_type)
            key = cache.key(right.USER_DATA, {"user_id": user.id, "data_type": data_type})
            await record("right", label, key, served, expected)
    for user in (alice, bob):
        label = f"my_profile() as {_name(user)}"
        async with backends.sessionmaker() as s:
            expected = await data.profile(s, user.id)
            served = await wrong.my_profile(backends.redis, wrong_prefix, s, user)
            await record(
                "wrong", label, f"{wrong_prefix}:GET /api/v1/users/profile", served, expected
            )
            served = await right.my_profile(cache, s, user)
            await record(
                "right", label, cache.key(right.PROFILE, principal=user.id), served, expected
            )
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("email"))
    return ", ".join(map(str, value)) or "(nothing)"


async def run(backends: Backends) -> Evidence:
    result = await calls(backends)
    rows: list[list[object]] = []
    for version, made in result.items():
        for c in made:
            leak = isinstance(c.served, dict) and not c.correct
            verdict = (
                "ok"
                if c.correct
                else f"{'LEAKED' if leak else 'WRONG'}: expected {_show(c.expected)}"
            )
            rows.append([version, c.call, c.key, _show(c.served), verdict])
    wrong_keys = {c.key for c in result["wrong"]}
    right_keys = {c.key for c in result["right"]}
    leaked = [c for c in result["wrong"] if isinstance(c.served, dict) and not c.correct]
    shown = (
        not all(c.correct for c in result["wrong"])
        and bool(leaked)
        and all(c.correct for c in result["right"])
        and len(right_keys) == len(result["right"])
    )
    leaked_email = _show(leaked[0].served) if leaked else "-"
    return Evidence(
        columns=["version", "call", "key (after the run prefix)", "served", "correct?"],
        rows=rows,
        shown=shown,
        verdict=(
            f"wrong built {len(wrong_keys)} keys for 4 different answers: 'items' was served the "
            f"orders, and bob was served another user's profile ({leaked_email}); "
            f"right built {len(right_keys)} keys and served every answer correctly."
        ),
    )
