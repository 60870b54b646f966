# ruff: noqa: E501  (the snippets keep their lines whole: the marks are line-exact)
"""The static checker's corpus: small modules, each line that must be reported marked
`# expect: PFxxx` (several codes comma-separated). A snippet without a mark must be clean.

Positive and negative shapes for every rule: aliases, `from x import y as z`, nested functions,
comprehensions, `async with session.begin()`, sync and async SQLAlchemy.
"""

from __future__ import annotations

# A read-through cache whose key is KEY: with an input missing (PF004) and with every input.
PF004_USER_DATA = """
async def user_data(redis, user_id: int, data_type: str):
    key = KEY
    if (hit := await redis.get(key)) is not None:
        return hit
    value = await load(user_id, data_type)
    await redis.set(key, value, ex=60)
    return value
"""

CORPUS: dict[str, str] = {
    # --- PF001 ----------------------------------------------------------------------------------
    "pf001_async_scalars_in_for": """
async def owners(session):
    users = (await session.scalars(select(User))).all()
    for user in users:
        items = await session.scalars(select(Item).where(Item.owner_id == user.id))  # expect: PF001
""",
    "pf001_sync_query_in_for": """
def owners(db):
    for user in db.query(User).all():
        user.n = db.query(Item).filter(Item.owner_id == user.id).count()  # expect: PF001
""",
    "pf001_session_get_in_loop_over_result": """
async def orders(session):
    result = await session.execute(select(Order))
    rows = result.scalars().all()
    for order in rows:
        order.user = await session.get(User, order.user_id)  # expect: PF001
""",
    "pf001_in_list_comprehension": """
def titles(db):
    users = db.execute(select(User)).scalars().all()
    return [db.scalar(select(func.count()).where(Item.owner_id == u.id)) for u in users]  # expect: PF001
""",
    "pf001_awaitable_attrs": """
async def owners(session):
    users = await session.scalars(select(User))
    return {u.email: await u.awaitable_attrs.items for u in users}  # expect: PF001
""",
    "pf001_through_helper_same_module": """
async def items_of(session, user_id):
    return (await session.scalars(select(Item).where(Item.owner_id == user_id))).all()


async def owners(session):
    users = (await session.scalars(select(User))).all()
    out = {}
    for user in users:
        out[user.id] = await items_of(session, user.id)  # expect: PF001
    return out
""",
    "pf001_crud_call_in_loop": """
def report(db):
    users = crud.user.get_multi(db, limit=100)
    for user in users:
        user.orders = crud.order.get_by_owner(db, owner_id=user.id)  # expect: PF001
""",
    "pf001_async_for_stream": """
async def owners(session):
    async for user in await session.stream_scalars(select(User)):
        await session.scalar(select(Item).where(Item.owner_id == user.id))  # expect: PF001
""",
    "pf001_eager_load_is_clean": """
async def owners(session):
    users = (await session.scalars(select(User).options(selectinload(User.items)))).all()
    return {u.email: [i.title for i in u.items] for u in users}
""",
    "pf001_loop_over_input_ids_is_clean": """
async def fetch(session, ids):
    return [await session.get(User, i) for i in ids]
""",
    "pf001_update_per_row_is_not_n_plus_one": """
async def touch(session):
    users = (await session.scalars(select(User))).all()
    for user in users:
        await session.execute(update(Item).where(Item.owner_id == user.id).values(seen=True))
""",
    "pf001_nested_def_in_loop_is_not_run_per_row": """
async def owners(session):
    users = (await session.scalars(select(User))).all()
    for user in users:
        async def later():
            return await session.get(Item, 1)
        register(later)
""",
    "pf001_rows_from_a_helper_of_the_module": """
def all_projects(db):
    return db.query(Project).all()


def report(db):
    for project in all_projects(db):
        db.query(Incident).filter(Incident.project_id == project.id).count()  # expect: PF001
""",
    "pf001_session_opened_per_row_is_another_database": """
def per_tenant(get_session, tenant_session):
    with get_session() as db:
        orgs = db.query(Organization).all()
    for org in orgs:
        with tenant_session(org.slug) as tenant_db:
            tenant_db.query(Project).all()
""",
    "pf001_raw_sql_update_per_row_is_not_a_read": """
def slugs(conn):
    rows = conn.execute("select id, name from org").fetchall()
    for r in rows:
        conn.execute(f"update org set slug = '{r[1]}' where id = {r[0]}")
""",
    # --- PF002 ----------------------------------------------------------------------------------
    "pf002_filter_on_unindexed_column": """
items = Table(
    "items", metadata,
    Column("id", Integer, primary_key=True),
    Column("category", String(50)),
)


def by_category(category):
    return select(items).where(items.c.category == category)  # expect: PF002
""",
    "pf002_indexed_column_is_clean": """
items = Table(
    "items", metadata,
    Column("id", Integer, primary_key=True),
    Column("category", String(50)),
    Column("price", Numeric),
    Index("ix_items_category_price", "category", "price"),
)


def by_category(category):
    return select(items).where(items.c.category == category, items.c.id > 10)
""",
    # --- PF003 ----------------------------------------------------------------------------------
    "pf003_update_without_invalidation": """
async def get_item(cache, session, item_id):
    return await cache.get_or_set(ITEM, lambda: session.get(Item, item_id), parts={"id": item_id})


async def set_price(session, item_id, price):
    await session.execute(update(Item).where(Item.id == item_id).values(price=price))  # expect: PF003
""",
    "pf003_delete_without_invalidation_redis": """
async def get_item(redis, item_id):
    return await redis.get(f"item:{item_id}")


async def remove(db, item):
    await db.delete(item)  # expect: PF003
""",
    "pf003_invalidated_is_clean": """
async def get_item(cache, session, item_id):
    return await cache.get_or_set(ITEM, lambda: session.get(Item, item_id), parts={"id": item_id})


async def set_price(session, cache, item_id, price):
    await session.execute(update(Item).where(Item.id == item_id).values(price=price))
    cache.invalidate_on_commit(session, keys=[cache.key(ITEM, {"id": item_id})])
""",
    "pf003_no_cache_in_module_is_clean": """
async def set_price(session, item_id, price):
    await session.execute(update(Item).where(Item.id == item_id).values(price=price))
""",
    "pf003_raw_sql_update_without_invalidation": """
async def price(redis, item_id):
    return await redis.get(f"price:{item_id}")


async def set_price(conn, item_id, price):
    await conn.execute(text("UPDATE items SET price = :p WHERE id = :i"), {"p": price})  # expect: PF003
""",
    # --- PF004 ----------------------------------------------------------------------------------
    "pf004_key_without_an_input": PF004_USER_DATA.replace(
        "KEY", 'f"user_data:{user_id}"  # expect: PF004'
    ),
    "pf004_constant_key_with_paging_inputs": """
async def list_items(cache, db, skip: int, limit: int):
    return await cache_get_or_set("items:all", lambda: crud.items(db, skip, limit))  # expect: PF004
""",
    "pf004_per_user_route_without_principal": """
@router.get("/me/orders")
async def my_orders(redis: Redis, current_user: User = Depends(get_current_user)):
    cache_key = "orders:me"  # expect: PF004
    return await cached(redis, cache_key, lambda: orders_of(current_user.id))
""",
    "pf004_every_input_in_the_key_is_clean": PF004_USER_DATA.replace(
        "KEY", 'f"user_data:{user_id}:{data_type}"'
    ),
    "pf004_unused_parameter_does_not_count": """
async def settings_page(redis, user_id: int, trace: bool = False):
    key = "settings:" + str(user_id)
    return await redis.get(key)
""",
    # --- PF005 ----------------------------------------------------------------------------------
    "pf005_encode_without_exp_aliased_module": """
import jwt as pyjwt


def token(secret, user_id):
    return pyjwt.encode({"sub": str(user_id)}, secret, algorithm="HS256")  # expect: PF005
""",
    "pf005_encode_imported_as_name": """
from jwt import encode as sign


def token(secret, user_id):
    payload = {"sub": str(user_id), "type": "access"}
    return sign(payload, secret, algorithm="HS256")  # expect: PF005
""",
    "pf005_decode_without_algorithms": """
from jose import jwt


def claims(token, key):
    return jwt.decode(token, key)  # expect: PF005
""",
    "pf005_decode_signature_off": """
import jwt


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})  # expect: PF005
""",
    "pf005_encode_with_exp_added_later_is_clean": """
import jwt


def token(secret, user_id, expires):
    to_encode = {"sub": str(user_id)}
    to_encode["exp"] = expires
    return jwt.encode(to_encode, secret, algorithm="HS256")
""",
    "pf005_decode_pinned_is_clean_and_other_encode_is_not_jwt": """
import base64
import jwt


def claims(token, key):
    base64.encode(token, key)
    return jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp"]})
""",
    # --- PF006 ----------------------------------------------------------------------------------
    "pf006_md5_from_import_alias": """
from hashlib import md5 as digest


def hash_password(password: str) -> str:
    return digest(password.encode()).hexdigest()  # expect: PF006
""",
    "pf006_sha256_assigned_to_hashed_password": """
import hashlib as h


def register(form):
    hashed_password = h.sha256(form.secret.encode()).hexdigest()  # expect: PF006
    return User(email=form.email, hashed_password=hashed_password)
""",
    "pf006_stored_as_given": """
def create_user(db, email, password):
    user = User(email=email, hashed_password=password)  # expect: PF006
    db.add(user)
""",
    "pf006_sha256_of_a_token_is_clean": """
import hashlib


def fingerprint(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()
""",
    "pf006_argon2_is_clean": """
def create_user(db, email, password):
    db.add(User(email=email, hashed_password=hasher.hash(password)))
""",
    # --- PF007 ----------------------------------------------------------------------------------
    "pf007_time_sleep_aliased": """
import time as t


async def handler():
    t.sleep(1)  # expect: PF007
""",
    "pf007_requests_from_import": """
from requests import get as fetch


async def handler(url):
    return fetch(url, timeout=5).json()  # expect: PF007
""",
    "pf007_sync_session_in_async_route": """
from sqlalchemy.orm import Session


@router.get("/report")
async def report(db: Annotated[Session, Depends(get_db)]):
    return db.execute(text("select 1")).all()  # expect: PF007
""",
    "pf007_sync_client_object": """
import httpx


async def handler(url):
    client = httpx.Client()
    return client.get(url)  # expect: PF007
""",
    "pf007_nested_sync_def_and_to_thread_are_clean": """
import asyncio
import time


async def handler():
    def work():
        time.sleep(1)
    await asyncio.to_thread(work)
    await asyncio.to_thread(time.sleep, 1)
""",
    "pf007_async_session_and_sync_def_are_clean": """
import time
from sqlalchemy.ext.asyncio import AsyncSession


async def report(db: AsyncSession):
    return (await db.execute(text("select 1"))).all()


def sync_route():
    time.sleep(1)
""",
    # --- PF008 ----------------------------------------------------------------------------------
    "pf008_read_check_write": """
async def buy(session, item_id, quantity):
    inventory = await session.scalar(select(Inventory).where(Inventory.item_id == item_id))
    if inventory.quantity < quantity:
        raise OutOfStock()
    inventory.quantity -= quantity  # expect: PF008
""",
    "pf008_sync_get_then_assign": """
def withdraw(db, account_id, amount):
    account = db.get(Account, account_id)
    if account.balance >= amount:
        account.balance = account.balance - amount  # expect: PF008
        db.commit()
""",
    "pf008_locked_row_is_clean": """
async def buy(session, item_id, quantity):
    stmt = select(Inventory).where(Inventory.item_id == item_id).with_for_update()
    inventory = await session.scalar(stmt)
    if inventory.quantity < quantity:
        raise OutOfStock()
    inventory.quantity -= quantity
""",
    "pf008_conditional_update_is_clean": """
async def buy(session, item_id, quantity):
    left = await session.scalar(update(Inventory).where(Inventory.item_id == item_id, Inventory.quantity >= quantity).values(quantity=Inventory.quantity - quantity).returning(Inventory.quantity))
    if left is None:
        raise OutOfStock()
""",
    # --- PF009 ----------------------------------------------------------------------------------
    "pf009_incr_then_expire": """
async def allow(redis, key, limit, window):
    count = await redis.incr(key)
    await redis.expire(key, window)  # expect: PF009
    return count <= limit
""",
    "pf009_get_then_incr": """
def allow(r, key, limit):
    current = r.get(key)  # expect: PF009
    if current and int(current) >= limit:
        return False
    r.incr(key)
    return True
""",
    "pf009_get_then_set_counter": """
async def allow(redis, key, limit):
    current = int(await redis.get(key) or 0)  # expect: PF009
    if current >= limit:
        return False
    await redis.set(key, current + 1, ex=60)
    return True
""",
    "pf009_expire_nx_and_cache_aside_are_clean": """
async def allow(redis, key, window):
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
        count, _ = await pipe.execute()
    return count


async def cached(redis, key, compute):
    hit = await redis.get(key)
    if hit is None:
        hit = await compute()
        await redis.set(key, hit, ex=60)
    return hit
""",
    # --- PF010 ----------------------------------------------------------------------------------
    "pf010_delay_inside_async_with_begin": """
async def place(session, order):
    async with session.begin():
        session.add(order)
        await session.flush()
        process_order.delay(order.id)  # expect: PF010
""",
    "pf010_apply_async_before_commit": """
def place(db, order):
    db.add(order)
    db.flush()
    send_receipt.apply_async(args=[order.id], countdown=5)  # expect: PF010
    db.commit()
""",
    "pf010_send_task_after_flush_caller_commits": """
async def place(session, celery, order):
    session.add(order)
    await session.flush()
    celery.send_task("orders.process", args=[order.id])  # expect: PF010
""",
    "pf010_after_commit_is_clean": """
def place(db, order):
    db.add(order)
    db.commit()
    process_order.delay(order.id)
""",
    "pf010_on_commit_callback_is_clean": """
async def place(session, order):
    async with session.begin():
        session.add(order)
        on_commit(session, lambda: process_order.delay(order.id))
""",
    # --- noqa -----------------------------------------------------------------------------------
    "noqa_silences_its_code_only": """
import time


async def handler():
    time.sleep(1)  # noqa: PF007
    time.sleep(2)  # noqa: PF001  # expect: PF007
""",
}
