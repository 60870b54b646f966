"""Demo data: users (the guide's `test@example.com` among them) and thousands of stocked items.

Idempotent: users are inserted with ON CONFLICT DO NOTHING and items only up to the requested
count, with content derived from the item's index, so a second run changes nothing and a run with
a larger count only adds the missing rows.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from rich.progress import Progress
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from patterns.db import session_scope
from patterns.security import PasswordHasher
from reference_app.crud.item import inventories
from reference_app.crud.item import items as catalog
from reference_app.crud.user import users as accounts
from reference_app.models.item import Item
from reference_app.models.user import Role, User

GUIDE_USER = ("test@example.com", "testpass123")  # the guide's load test logs in with these
DEMO_PASSWORD = "demo-password"  # noqa: S105 (demo data, documented)
CATEGORIES = ["books", "games", "tools", "music", "garden", "kitchen", "sports", "toys"]
ADJECTIVES = ["Red", "Blue", "Vintage", "Compact", "Deluxe", "Eco", "Smart", "Classic"]
NOUNS = ["lamp", "chair", "kettle", "guitar", "drill", "novel", "puzzle", "racket"]
DEMO_STOCK = 1_000_000
BATCH = 1000


def demo_email(i: int) -> str:
    return f"demo{i}@example.com"


def item_row(i: int, owner_id: int) -> dict[str, Any]:
    rng = random.Random(i)
    return {
        "title": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} #{i}",
        "description": f"Demo item number {i}.",
        "category": rng.choice(CATEGORIES),
        "price": Decimal(rng.randint(100, 50_000)) / 100,
        "is_featured": i % 50 == 0,
        "owner_id": owner_id,
    }


async def _ensure_users(session: AsyncSession, users: int, hasher: PasswordHasher) -> list[int]:
    demo_hash = await hasher.hash_async(DEMO_PASSWORD)
    rows = [
        {"email": GUIDE_USER[0], "hashed_password": await hasher.hash_async(GUIDE_USER[1]),
         "full_name": "Guide Test User", "role": Role.USER.value},
        {"email": "admin@example.com", "hashed_password": demo_hash, "full_name": "Demo Admin",
         "role": Role.ADMIN.value},
        {"email": "manager@example.com", "hashed_password": demo_hash,
         "full_name": "Demo Manager", "role": Role.MANAGER.value},
    ] + [
        {"email": demo_email(i), "hashed_password": demo_hash, "full_name": f"Demo User {i}",
         "role": Role.USER.value}
        for i in range(1, users + 1)
    ]  # fmt: skip
    await accounts.insert_missing(session, rows)
    emails = [r["email"] for r in rows]
    ids = await session.scalars(select(User.id).where(User.email.in_(emails)).order_by(User.id))
    return list(ids)


async def seed(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    users: int = 50,
    items: int = 5000,
    hasher: PasswordHasher | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Create what is missing; return how many users and items were added."""
    hasher = hasher or PasswordHasher()
    async with session_scope(sessionmaker) as session:
        users_before = int(await session.scalar(select(func.count()).select_from(User)) or 0)
        owner_ids = await _ensure_users(session, users, hasher)
        users_after = int(await session.scalar(select(func.count()).select_from(User)) or 0)
        demo_owner_ids = owner_ids[3:] or owner_ids
        existing = int(
            await session.scalar(
                select(func.count()).select_from(Item).where(Item.description.like("Demo item %"))
            )
            or 0
        )
    added = 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("seeding items", total=max(0, items - existing))
        for start in range(existing, items, BATCH):
            stop = min(items, start + BATCH)
            rows = [
                item_row(i, demo_owner_ids[i % len(demo_owner_ids)]) for i in range(start, stop)
            ]
            async with session_scope(sessionmaker) as session:
                created = await catalog.bulk_create(session, rows)
                stock = [{"item_id": item.id, "quantity": DEMO_STOCK} for item in created]
                await inventories.bulk_create(session, stock)
            added += len(rows)
            bar.advance(task, len(rows))
    return {"users": users_after - users_before, "items": added}
